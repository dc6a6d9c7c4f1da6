"""The migration gate as a Pulumi resource: ``MigrationRun``, backed by a dynamic provider.

How it behaves in the engine's lifecycle:

- ``pulumi preview`` calls only ``check`` and ``diff``; both are pure. Nothing here contacts Azure
  at construction time or during a preview (``create``/``update`` run only on ``pulumi up``).
- ``diff`` reports a change only when a trigger field changes (:data:`TRIGGERS`: release SHA,
  image, job ID, migrations checksum), never for a timeout, the workspace or a new version of this
  code, so a migration runs once per release and an unrelated update does not re-run it.
- The execution runs the Job resource's template as deployed (no override); the gate depends on
  the Job, so it runs the release image and env the policy pack checked.
- ``create``/``update`` run the gate (:func:`infra.gate.arm.run_gate`) and raise
  :class:`~infra.errors.GateError` on failure: the engine then does not update the apps, which all
  ``depends_on`` this resource (fail closed). A failed update leaves the old state, so the next
  ``pulumi up`` runs the gate again.
- ``read`` and ``delete`` are no-ops: refreshing or destroying the stack must never start a
  migration.

Dynamic providers are pickled with dill and unpickled in the provider host; the class is kept
small, holds no state (no credential is ever pickled), and imports the Azure code inside its
methods. The host runs with the project's virtualenv, where ``infra`` is importable. Stacks
deployed before the gate became a package hold ``infra.gate_provider.MigrationRunProvider`` in
their state; that module remains as an alias, so their refresh and destroy still unpickle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)
from pulumi.dynamic import Resource as DynamicResource

__all__ = [
    "PROPAGATION_TRIGGERS",
    "TRIGGERS",
    "IdentityPropagation",
    "IdentityPropagationArgs",
    "IdentityPropagationProvider",
    "MigrationRun",
    "MigrationRunArgs",
    "MigrationRunProvider",
    "changed_triggers",
]

TRIGGERS = ("releaseSha", "image", "jobId", "migrationsChecksum")
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_SIG_KEY = "4dabf18193072939515e22adb298388d"


def _plain(value: Any) -> Any:
    # state may hold a value as a secret envelope; compare what it wraps
    if isinstance(value, dict) and value.get(_SIG_KEY) == _SECRET_SIG:
        return value.get("value")
    return value


def changed_triggers(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """The trigger fields whose value differs (an unknown new value counts as a change)."""
    return [k for k in TRIGGERS if _plain(olds.get(k)) != _plain(news.get(k))]


def _outputs(props: Mapping[str, Any], result: Any) -> dict[str, Any]:
    outs = {k: v for k, v in props.items() if k != "__provider"}
    outs.update(
        status=result.status,
        executionName=result.execution_name,
        artifactPath=str(result.artifact_path),
        elapsedMs=result.elapsed_ms,
        logsSource=result.logs_source,
    )
    return outs


class MigrationRunProvider(ResourceProvider):
    """CRUD of a migration run; see the module docstring for the lifecycle."""

    serialize_as_secret_always = False

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        from infra.gate.provider import changed_triggers

        changed = changed_triggers(olds, news)
        return DiffResult(
            changes=bool(changed), replaces=[], stables=[], delete_before_replace=False
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        from infra.gate.provider import _outputs, run_for_props

        result = run_for_props(props)
        return CreateResult(
            f"{props['releaseSha']}/{result.execution_name}", _outputs(props, result)
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        from infra.gate.provider import _outputs, run_for_props

        return UpdateResult(_outputs(news, run_for_props(news)))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


def run_for_props(props: Mapping[str, Any]) -> Any:
    """Run the gate for the resource's properties with the ambient credential (OIDC in CI)."""
    from infra import gate
    from infra.gate.credentials import gate_credential

    req = gate.request_from_props(props)
    return gate.run_gate(req, credential=gate_credential(req.arm_endpoint))


@dataclass(frozen=True)
class MigrationRunArgs:
    """Inputs of a migration run.

    The execution runs the Job resource's own template (no override), so what the policies
    checked is what runs; ``release_sha`` and ``image`` are trigger fields for ``diff``.
    ``deadline_seconds`` is the job's replicaTimeout; the gate waits that plus
    ``start_allowance_seconds``.
    """

    job_id: pulumi.Input[str]
    release_sha: pulumi.Input[str]
    image: pulumi.Input[str]
    deadline_seconds: pulumi.Input[int]
    artifact_dir: pulumi.Input[str]
    stack: pulumi.Input[str]
    start_allowance_seconds: pulumi.Input[int] = 120
    migrations_checksum: pulumi.Input[str] = ""
    workspace_id: pulumi.Input[str] | None = None
    arm_endpoint: pulumi.Input[str] = "https://management.azure.com"


class MigrationRun(DynamicResource, module="gate", name="MigrationRun"):
    """One awaited execution of the migration job per release (the gate)."""

    status: pulumi.Output[str]
    executionName: pulumi.Output[str]
    artifactPath: pulumi.Output[str]

    def __init__(
        self, name: str, args: MigrationRunArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props: dict[str, Any] = {
            "jobId": args.job_id,
            "releaseSha": args.release_sha,
            "image": args.image,
            "deadlineSeconds": args.deadline_seconds,
            "startAllowanceSeconds": args.start_allowance_seconds,
            "artifactDir": args.artifact_dir,
            "stack": args.stack,
            "migrationsChecksum": args.migrations_checksum,
            "workspaceId": args.workspace_id,
            "armEndpoint": args.arm_endpoint,
            # outputs, filled by create/update
            "status": None,
            "executionName": None,
            "artifactPath": None,
            "elapsedMs": None,
            "logsSource": None,
        }
        super().__init__(MigrationRunProvider(), name, props, opts)


PROPAGATION_TRIGGERS = ("principalId", "roleAssignmentIds")


class IdentityPropagationProvider(ResourceProvider):
    """Waits (create, or a changed identity) until role assignments are effective; see
    :mod:`infra.gate.propagation`. Pure ``check``/``diff``; ``read``/``delete`` do nothing."""

    serialize_as_secret_always = False

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in PROPAGATION_TRIGGERS if _plain(olds.get(k)) != _plain(news.get(k))]
        return DiffResult(changes=bool(changed), replaces=[], stables=[],
                          delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        from infra.gate.provider import propagate

        return CreateResult(f"propagation/{props['principalId']}", propagate(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        from infra.gate.provider import propagate

        return UpdateResult(propagate(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


def propagate(props: Mapping[str, Any]) -> dict[str, Any]:
    """Wait for the role assignments of ``props``; the outputs report how long it took."""
    from infra.gate.credentials import gate_credential
    from infra.gate.propagation import await_role_assignments

    arm = str(props.get("armEndpoint") or "https://management.azure.com")
    report = await_role_assignments(
        [str(i) for i in props["roleAssignmentIds"]], arm_endpoint=arm,
        credential=gate_credential(arm), settle_seconds=float(props["settleSeconds"]))
    outs = {k: v for k, v in props.items() if k != "__provider"}
    outs.update(visibleAfterSeconds=report.visible_after_seconds,
                settledSeconds=report.settled_seconds)
    return outs


@dataclass(frozen=True)
class IdentityPropagationArgs:
    """The workload identity and its role assignments (AcrPull, Key Vault Secrets User)."""

    principal_id: pulumi.Input[str]
    role_assignment_ids: Sequence[pulumi.Input[str]]
    arm_endpoint: pulumi.Input[str] = "https://management.azure.com"
    settle_seconds: pulumi.Input[int] = 60


class IdentityPropagation(DynamicResource, module="gate", name="IdentityPropagation"):
    """Created after the role assignments, before the Job and apps that use the identity."""

    def __init__(self, name: str, args: IdentityPropagationArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {
            "principalId": args.principal_id,
            "roleAssignmentIds": list(args.role_assignment_ids),
            "armEndpoint": args.arm_endpoint,
            "settleSeconds": args.settle_seconds,
            "visibleAfterSeconds": None,
            "settledSeconds": None,
        }
        super().__init__(IdentityPropagationProvider(), name, props, opts)
