"""The gate's Azure credential: GitHub OIDC directly in Actions, the default chain elsewhere.

In GitHub Actions ``azure/login`` exchanges ONE GitHub OIDC token (valid about 10 minutes, not
renewable) for a CLI session, so ``DefaultAzureCredential`` falling back to that session loses ARM
and Log Analytics as soon as a migration outlives it. When the job may request OIDC tokens
(``ACTIONS_ID_TOKEN_REQUEST_URL`` and ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``, present with
``permissions: id-token: write``), the gate uses ``ClientAssertionCredential`` with a callback that
fetches a FRESH GitHub token (audience ``api://AzureADTokenExchange``) for every Azure token it
needs, so it keeps working for as long as its deadline. The app registration is named by
``AZURE_CLIENT_ID`` and ``AZURE_TENANT_ID`` (azure-identity's names; not ``ARM_*``, which only the
azure-native provider reads). The authority follows the cloud of ``armEndpoint``
(:mod:`infra.gate.clouds`) unless ``AZURE_AUTHORITY_HOST`` names one. Anywhere else:
``DefaultAzureCredential`` (environment, workload identity, managed identity, Azure CLI).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError

from infra.errors import GateError
from infra.gate.clouds import cloud_of

__all__ = ["GITHUB_AUDIENCE", "GitHubOidcAssertion", "gate_credential"]

GITHUB_AUDIENCE = "api://AzureADTokenExchange"
_REQUEST_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
_REQUEST_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"


class GitHubOidcAssertion:
    """A client-assertion callback: each call asks GitHub for a new OIDC token."""

    def __init__(self, request_url: str, request_token: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(request_url)
        query = f"{parts.query}&" if parts.query else ""
        self._url = parts._replace(query=query + urlencode({"audience": GITHUB_AUDIENCE})).geturl()
        self._token = request_token
        self._timeout = timeout
        self.fetched = 0

    def __call__(self) -> str:
        request = urllib.request.Request(
            self._url, headers={"Authorization": f"bearer {self._token}",
                                "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                body = json.loads(response.read().decode("utf-8"))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            # an auth failure: never retried as transient (see infra.gate.transport)
            raise ClientAuthenticationError(
                f"fetching a GitHub OIDC token failed: {exc}; the workflow job needs "
                "`permissions: id-token: write`") from exc
        value = body.get("value") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise ClientAuthenticationError("GitHub's OIDC endpoint answered without a token")
        self.fetched += 1
        return value


def gate_credential(
    arm_endpoint: str, env: Mapping[str, str] | None = None, **kwargs: Any
) -> TokenCredential:
    """The credential for ``arm_endpoint``'s cloud, from the environment (the edge)."""
    env = os.environ if env is None else env
    authority = env.get("AZURE_AUTHORITY_HOST") or cloud_of(arm_endpoint).authority
    if env.get(_REQUEST_URL) and env.get(_REQUEST_TOKEN):
        from azure.identity import ClientAssertionCredential

        missing = [k for k in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID") if not env.get(k)]
        if missing:
            raise GateError(
                "start-failed",
                f"GitHub OIDC is available but {' and '.join(missing)} is not set: set "
                "AZURE_TENANT_ID and AZURE_CLIENT_ID (the app registration with a federated "
                "credential for this repository) in the workflow's env",
            )
        return ClientAssertionCredential(
            env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"],
            GitHubOidcAssertion(env[_REQUEST_URL], env[_REQUEST_TOKEN]),
            authority=authority, **kwargs)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(authority=authority, **kwargs)
