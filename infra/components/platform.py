"""What every workload of a stack stands on: resource group, Log Analytics workspace, the ACA
managed environment, and the user-assigned identity the apps and the job run as.

The identity gets exactly two roles: AcrPull on the registry and Key Vault Secrets User on the
vault (both scopes come from config), so images are pulled and secrets read without a password
anywhere.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import app, authorization, managedidentity, operationalinsights, resources

from infra.config import StackConfig

__all__ = ["ACR_PULL", "KEY_VAULT_SECRETS_USER", "Platform", "PlatformArgs"]

# Built-in role definition IDs (the same in every Azure tenant).
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"


@dataclass(frozen=True)
class PlatformArgs:
    config: StackConfig


def _role_definition(scope: str, role: str) -> str:
    subscription = "/".join(scope.split("/")[:3])  # "/subscriptions/<id>"
    return f"{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role}"


class Platform(pulumi.ComponentResource):
    """Resource group, workspace, managed environment and the workload identity."""

    resource_group_name: pulumi.Output[str]
    environment_id: pulumi.Output[str]
    identity_id: pulumi.Output[str]
    workspace_customer_id: pulumi.Output[str]
    role_assignments: list[authorization.RoleAssignment]

    def __init__(
        self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gated-release:infra:Platform", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)

        group = resources.ResourceGroup(
            f"{name}-rg",
            resource_group_name=f"rg-{cfg.resource_name('app')}",
            location=cfg.location,
            opts=child,
        )
        workspace = operationalinsights.Workspace(
            f"{name}-logs",
            workspace_name=cfg.resource_name("logs"),
            resource_group_name=group.name,
            location=cfg.location,
            sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=cfg.log_retention_days,
            opts=child,
        )
        keys = operationalinsights.get_shared_keys_output(
            resource_group_name=group.name,
            workspace_name=workspace.name,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        environment = app.ManagedEnvironment(
            f"{name}-env",
            environment_name=cfg.resource_name("env"),
            resource_group_name=group.name,
            location=cfg.location,
            app_logs_configuration=app.AppLogsConfigurationArgs(
                destination="log-analytics",
                log_analytics_configuration=app.LogAnalyticsConfigurationArgs(
                    customer_id=workspace.customer_id,
                    shared_key=pulumi.Output.secret(keys.primary_shared_key),
                ),
            ),
            opts=child,
        )
        identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_name_=cfg.resource_name("id"),
            resource_group_name=group.name,
            location=cfg.location,
            opts=child,
        )
        self.role_assignments = [
            authorization.RoleAssignment(
                f"{name}-{label}",
                # deterministic GUID: re-running the program never asks for a second assignment
                role_assignment_name=str(
                    uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{cfg.stack}|{role}")
                ),
                principal_id=identity.principal_id,
                principal_type="ServicePrincipal",
                role_definition_id=_role_definition(scope, role),
                scope=scope,
                opts=child,
            )
            for label, scope, role in (
                ("acr-pull", cfg.registry_id, ACR_PULL),
                ("kv-secrets-user", cfg.key_vault_id, KEY_VAULT_SECRETS_USER),
            )
        ]
        self.resource_group_name = group.name
        self.environment_id = environment.id
        self.identity_id = identity.id
        self.workspace_customer_id = workspace.customer_id
        self.register_outputs(
            {
                "resourceGroupName": group.name,
                "environmentId": environment.id,
                "identityId": identity.id,
                "workspaceCustomerId": workspace.customer_id,
            }
        )
