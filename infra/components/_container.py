"""Pieces shared by the apps and the migration job: identity, registry and Key Vault secrets."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import app

DATABASE_URL_SECRET = "database-url"


def identity(identity_id: pulumi.Input[str]) -> app.ManagedServiceIdentityArgs:
    return app.ManagedServiceIdentityArgs(
        type="UserAssigned", user_assigned_identities=[identity_id]
    )


def registry(server: str, identity_id: pulumi.Input[str]) -> app.RegistryCredentialsArgs:
    # pulled with the identity's AcrPull role: no registry password exists
    return app.RegistryCredentialsArgs(server=server, identity=identity_id)


def key_vault_secret(name: str, uri: str, identity_id: pulumi.Input[str]) -> app.SecretArgs:
    # a Key Vault reference resolved by ACA with the identity; the value never enters state
    return app.SecretArgs(name=name, key_vault_url=uri, identity=identity_id)
