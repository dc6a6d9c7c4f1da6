"""Engine answers for running the program under Pulumi's mock monitor (tests, offline preview).

:class:`ProgramMocks` plays the engine and Azure just enough for ``infra.program.build`` to run
without the CLI: ARM-shaped IDs (the gate parses the job's), names from the name inputs, the
outputs a real provider computes (workspace customer ID, identity principal ID, app FQDN), the
shared-keys invoke, and stack references answering with the ledgers given (``{stack: [...]}``;
a stack not given has no outputs, like a stack never deployed). The ``MigrationRun`` answers with
``status`` = ``gate_status``: what its provider returns after a successful ``create`` — the
provider itself never runs here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

__all__ = ["MOCK_SUBSCRIPTION", "ProgramMocks"]

MOCK_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"

# type token -> (name input, ARM provider path); None: handled specially
_ARM: Mapping[str, tuple[str, str]] = {
    "azure-native:app:Job": ("jobName", "Microsoft.App/jobs"),
    "azure-native:app:ContainerApp": ("containerAppName", "Microsoft.App/containerApps"),
    "azure-native:app:ManagedEnvironment": ("environmentName", "Microsoft.App/managedEnvironments"),
    "azure-native:operationalinsights:Workspace": (
        "workspaceName",
        "Microsoft.OperationalInsights/workspaces",
    ),
    "azure-native:managedidentity:UserAssignedIdentity": (
        "resourceName",
        "Microsoft.ManagedIdentity/userAssignedIdentities",
    ),
}


def _guid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(parts)))


class ProgramMocks(pulumi.runtime.Mocks):
    """Mock engine for the gated-release program."""

    def __init__(
        self,
        ledgers: Mapping[str, Sequence[Mapping[str, str]]] | None = None,
        gate_status: str = "Succeeded",
    ) -> None:
        self.ledgers = dict(ledgers or {})
        self.gate_status = gate_status
        self.calls: list[str] = []

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            name = str(inputs.get("name") or args.resource_id or args.name)
            stack = name.rsplit("/", 1)[-1]
            outputs = (
                {"acceptedReleases": list(self.ledgers[stack])} if stack in self.ledgers else {}
            )
            return name, {"name": name, "outputs": outputs, "secretOutputNames": []}
        if args.typ.startswith("pulumi-python:dynamic"):
            execution = f"mock-{str(inputs.get('releaseSha', ''))[:12]}"
            return f"{inputs.get('releaseSha')}/{execution}", {
                **inputs,
                "status": self.gate_status,
                "executionName": execution,
            }
        group = str(inputs.get("resourceGroupName") or "rg-mock")
        rg_id = f"/subscriptions/{MOCK_SUBSCRIPTION}/resourceGroups/{group}"
        if args.typ == "azure-native:resources:ResourceGroup":
            return rg_id, {**inputs, "name": group}
        if args.typ == "azure-native:authorization:RoleAssignment":
            name = str(inputs.get("roleAssignmentName") or _guid(args.name))
            scope = str(inputs.get("scope") or rg_id)
            return f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}", {
                **inputs,
                "name": name,
            }
        name_key, path = _ARM.get(args.typ, ("", ""))
        name = str(inputs.get(name_key) or args.name)
        arm_id = f"{rg_id}/providers/{path}/{name}" if path else f"{rg_id}/mock/{args.name}"
        state: dict[str, Any] = {**inputs, "name": name}
        identity = inputs.get("identity")
        if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), list):
            # inputs list identity IDs; the provider's output maps each ID to its principal
            state["identity"] = {
                **identity,
                "userAssignedIdentities": {
                    str(i): {
                        "principalId": _guid("principal", str(i)),
                        "clientId": _guid("client", str(i)),
                    }
                    for i in identity["userAssignedIdentities"]
                },
            }
        if args.typ == "azure-native:operationalinsights:Workspace":
            state["customerId"] = _guid("workspace", name)
        elif args.typ == "azure-native:managedidentity:UserAssignedIdentity":
            state["principalId"] = _guid("principal", name)
            state["clientId"] = _guid("client", name)
        elif args.typ == "azure-native:app:ContainerApp":
            state["latestRevisionFqdn"] = (
                f"{name}.mock.{inputs.get('location', 'westeurope')}.azurecontainerapps.io"
            )
        return arm_id, state

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.calls.append(args.token)
        if args.token == "azure-native:operationalinsights:getSharedKeys":
            return {
                "primarySharedKey": "mock-shared-key",
                "secondarySharedKey": "mock-shared-key-2",
            }, []
        if args.token == "azure-native:authorization:getClientConfig":
            return {
                "subscriptionId": MOCK_SUBSCRIPTION,
                "tenantId": MOCK_SUBSCRIPTION,
                "clientId": MOCK_SUBSCRIPTION,
                "objectId": MOCK_SUBSCRIPTION,
            }, []
        return {}, []
