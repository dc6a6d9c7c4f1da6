"""The MigrationRun adapter: what triggers a run, what never runs, and the provider's lifecycle."""

from __future__ import annotations

import base64
import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dill
import grpc
import pytest
from google.protobuf import struct_pb2
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

import infra.gate
from infra.errors import GateError
from infra.gate.provider import TRIGGERS, MigrationRunProvider, changed_triggers
from tests.infra.fake_arm_server import FakeArm, Scenario
from tests.infra.test_gate_arm import FAST, IMAGE, JOB_ID, SHA, FakeClock, FakeCredential
from tests.schema_check import validate_file

ROOT = Path(__file__).resolve().parents[2]

GATE = "pulumi-python:dynamic/gate:MigrationRun"
SECRET = {rpc._special_sig_key: rpc._special_secret_sig}


def props(**changes: Any) -> dict[str, Any]:
    base = {
        "jobId": JOB_ID,
        "releaseSha": SHA,
        "image": IMAGE,
        "migrationsChecksum": "c" * 64,
        "deadlineSeconds": 1020,
        "startAllowanceSeconds": 120,
        "artifactDir": "/tmp/none",
        "stack": "dev",
        "workspaceId": None,
        "armEndpoint": "https://management.azure.com",
        "__provider": "serialized-v1",
    }
    base.update(changes)
    return base


@pytest.mark.parametrize("field", TRIGGERS)
def test_each_trigger_field_causes_an_update(field: str) -> None:
    olds, news = props(), props(**{field: "changed"})
    diff = MigrationRunProvider().diff("id", olds, news)
    assert diff.changes is True and not diff.replaces
    assert changed_triggers(olds, news) == [field]


@pytest.mark.parametrize(
    "changes",
    [
        {"deadlineSeconds": 7320},
        {"startAllowanceSeconds": 300},
        {"workspaceId": "6a1f0f8e-0000-4000-8000-000000000001"},
        {"armEndpoint": "https://management.usgovcloudapi.net"},
        {"artifactDir": "/elsewhere"},
        {"__provider": "serialized-v2"},  # a new version of this code does not re-run migrations
    ],
)
def test_other_fields_do_not_rerun_the_migration(changes: dict[str, Any]) -> None:
    diff = MigrationRunProvider().diff("id", props(), props(**changes))
    assert diff.changes is False


def test_secret_wrapped_state_compares_by_value_and_unknown_is_a_change() -> None:
    olds = props(releaseSha={**SECRET, "value": SHA})
    assert MigrationRunProvider().diff("id", olds, props()).changes is False
    assert MigrationRunProvider().diff("id", props(), props(jobId=rpc.UNKNOWN)).changes is True


def test_provider_pickles_by_reference_and_without_azure_state() -> None:
    import pickletools

    blob = base64.b64decode(serialize_provider(MigrationRunProvider()))
    # By reference: the provider host imports infra.gate.provider (installed with the project)
    # instead of unpickling a copy of its code, so nothing of the program leaks into state.
    globals_ = [arg for op, arg, _ in pickletools.genops(blob)
                if op.name in ("GLOBAL", "STACK_GLOBAL") or (op.name.endswith("UNICODE")
                                                                and isinstance(arg, str))]
    assert "infra.gate.provider" in globals_ and "MigrationRunProvider" in globals_
    assert len(blob) < 512
    assert b"azure" not in blob and b"credential" not in blob.lower()
    assert isinstance(dill.loads(blob), MigrationRunProvider)


@pytest.fixture
def gate_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Run the real gate from the provider, with a fake credential and clock."""
    calls: list[Any] = []
    real = infra.gate.run_gate
    clock = FakeClock()

    def fast_gate(req: infra.gate.GateRequest, **_: Any) -> Any:
        calls.append(req)
        req = dataclasses.replace(
            req, poll_initial_seconds=0.01
        )  # the SDK's LRO poll sleeps for real
        return real(
            req,
            credential=FakeCredential(),
            sleep=clock.sleep,
            monotonic=clock.monotonic,
            client_options=FAST,
        )

    monkeypatch.setattr(infra.gate, "run_gate", fast_gate)
    monkeypatch.setattr("infra.gate.credentials.gate_credential", lambda *a, **k: None)
    yield calls


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


@pytest.fixture
def provider_host() -> Iterator[Any]:
    """The SDK's dynamic provider host (``python -m pulumi.dynamic``), as the engine starts it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PULUMI_PROJECT": "gated-release"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pulumi.dynamic"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield provider_pb2_grpc.ResourceProviderStub(channel)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _preview_inputs(url: str, tmp_path: Path) -> dict[str, Any]:
    """Inputs as the engine sends them in a preview: the job's ID and the workspace are not
    known yet (the job is being created), optional inputs may be null."""
    return props(
        jobId=rpc.UNKNOWN,
        workspaceId=rpc.UNKNOWN,
        migrationsChecksum=None,
        stack=None,
        armEndpoint=url,
        artifactDir=str(tmp_path),
        __provider=serialize_provider(MigrationRunProvider()),
    )


def test_preview_steps_of_the_provider_host_never_reach_azure(
    tmp_path: Path, provider_host: Any
) -> None:
    """What `pulumi preview` asks the provider host over gRPC: Configure, Check, Diff.

    The engine calls Create during a preview only for a provider that answers
    ``supportsPreview``; the dynamic host does not. A live fake ARM records every request.
    """
    urn = "urn:pulumi:dev::gated-release::pulumi-python:dynamic/gate:MigrationRun::migrate-gate"
    with FakeArm() as fake:
        news = _preview_inputs(fake.url, tmp_path)
        configured = provider_host.Configure(provider_pb2.ConfigureRequest(args=_struct({})))
        assert configured.supportsPreview is False
        # a new gate: Check with no olds
        checked = provider_host.Check(
            provider_pb2.CheckRequest(urn=urn, olds=_struct({}), news=_struct(news))
        )
        assert not checked.failures
        # an existing gate and a new release: Check and Diff against the old state
        olds = {**props(armEndpoint=fake.url, artifactDir=str(tmp_path))}
        olds |= {"__provider": news["__provider"], "status": "Succeeded"}
        news_release = {**news, "releaseSha": "1" * 40}
        provider_host.Check(
            provider_pb2.CheckRequest(urn=urn, olds=_struct(olds), news=_struct(news_release))
        )
        diffed = provider_host.Diff(
            provider_pb2.DiffRequest(
                id=f"{SHA}/gr-dev-migrate-0000001",
                urn=urn,
                olds=_struct(olds),
                news=_struct(news_release),
            )
        )
        assert diffed.changes == provider_pb2.DiffResponse.DIFF_SOME
        unchanged = provider_host.Diff(
            provider_pb2.DiffRequest(
                id="x", urn=urn, olds=_struct(olds), news=_struct({**olds, "workspaceId": None})
            )
        )
        assert unchanged.changes == provider_pb2.DiffResponse.DIFF_NONE
    assert fake.requests == []
    assert not list(tmp_path.iterdir())  # no gate ran, not even one that failed early


def test_provider_check_and_diff_with_unknowns_never_reach_azure(
    tmp_path: Path, gate_calls: list[Any]
) -> None:
    provider = MigrationRunProvider()
    with FakeArm() as fake:
        news = _preview_inputs(fake.url, tmp_path)
        olds = props(armEndpoint=fake.url, artifactDir=str(tmp_path))
        assert provider.check({}, news).inputs == news
        assert provider.check(olds, news).inputs == news
        assert provider.diff("id", olds, news).changes is True  # an unknown jobId is a change
        assert provider.diff("id", olds, {**olds, "workspaceId": None}).changes is False
    assert fake.requests == [] and gate_calls == []
    assert not list(tmp_path.iterdir())


def test_create_starts_exactly_one_execution(tmp_path: Path, gate_calls: list[Any]) -> None:
    with FakeArm(Scenario(statuses=["Running", "Succeeded"])) as fake:
        created = MigrationRunProvider().create(
            props(armEndpoint=fake.url, artifactDir=str(tmp_path))
        )
    assert fake.count("start") == 1 and fake.count("stop") == 0
    assert len(gate_calls) == 1 and created.outs["status"] == "Succeeded"
    [start] = [r for r in fake.requests if r.route == "start"]
    assert start.body is None  # the job's own template runs


def test_create_and_update_run_the_gate_read_and_delete_do_not(
    tmp_path: Path, gate_calls: list[Any]
) -> None:
    provider = MigrationRunProvider()
    with FakeArm(Scenario(statuses=["Running", "Succeeded"])) as fake:
        p = props(armEndpoint=fake.url, artifactDir=str(tmp_path))
        created = provider.create(p)
        assert created.id == f"{SHA}/gr-dev-migrate-0000001"
        assert created.outs["status"] == "Succeeded" and "__provider" not in created.outs
        assert validate_file(Path(created.outs["artifactPath"]))["executionStatus"] == "Succeeded"
        updated = provider.update(created.id, created.outs, {**p, "releaseSha": "1" * 40})
        assert updated.outs["executionName"] == "gr-dev-migrate-0000002"
        before = len(fake.requests)
        provider.read(created.id, created.outs)
        provider.delete(created.id, created.outs)
        assert len(fake.requests) == before
    assert [c.release_sha for c in gate_calls] == [SHA, "1" * 40]


def test_failed_gate_fails_the_create_with_its_reason_code(
    tmp_path: Path, gate_calls: list[Any]
) -> None:
    with FakeArm(Scenario(statuses=["Failed"])) as fake, pytest.raises(GateError) as info:
        MigrationRunProvider().create(props(armEndpoint=fake.url, artifactDir=str(tmp_path)))
    assert info.value.code == "execution-failed"
    assert validate_file(tmp_path / SHA / "migration.json")["reasonCode"] == "execution-failed"


# -- first deploy: role assignments effective before the Job (issue 11) --------------------------

RA = [f"/subscriptions/{'0' * 8}-0000-0000-0000-{'0' * 12}/resourceGroups/rg/providers/"
      f"Microsoft.KeyVault/vaults/kv/providers/Microsoft.Authorization/roleAssignments/{g}"
      for g in ("6f2b0d1e-1111-4a4a-8b8b-000000000001", "6f2b0d1e-1111-4a4a-8b8b-000000000002")]


def test_the_job_waits_until_arm_shows_the_role_assignments_then_settles() -> None:
    from infra.gate.propagation import ROLE_ASSIGNMENT_API, await_role_assignments

    clock = FakeClock()
    with FakeArm(Scenario(role_assignment_lag=3)) as fake:
        report = await_role_assignments(
            RA, arm_endpoint=fake.url, credential=FakeCredential(), settle_seconds=45,
            poll_seconds=5, sleep=clock.sleep, monotonic=clock.monotonic)
    reads = [r for r in fake.requests if r.route == "roleassignment"]
    assert len(reads) == 2 * 4  # each read until it answered 200
    assert all(r.query["api-version"] == [ROLE_ASSIGNMENT_API] for r in reads)
    assert all(r.headers["authorization"] == f"Bearer {FakeCredential.token}" for r in reads)
    assert clock.sleeps == [5, 5, 5, 45]  # bounded polling, then the settle time
    assert report.visible_after_seconds == 15 and report.settled_seconds == 45


def test_role_assignments_never_visible_fail_the_create_within_the_bound() -> None:
    from infra.gate.propagation import await_role_assignments

    clock = FakeClock()
    with FakeArm(Scenario(role_assignment_lag=10**6)) as fake, \
            pytest.raises(GateError) as info:
        await_role_assignments(RA, arm_endpoint=fake.url, credential=FakeCredential(),
                               visible_wait_seconds=60, poll_seconds=5, sleep=clock.sleep,
                               monotonic=clock.monotonic)
    assert info.value.code == "start-failed" and "not visible" in info.value.message
    assert sum(clock.sleeps) <= 60


def test_the_propagation_wait_reruns_only_when_the_identity_changes() -> None:
    from infra.gate.provider import IdentityPropagationProvider

    olds = {"principalId": "p1", "roleAssignmentIds": RA, "settleSeconds": 60,
            "armEndpoint": "https://management.azure.com"}
    provider = IdentityPropagationProvider()
    assert provider.diff("id", olds, {**olds, "settleSeconds": 90}).changes is False
    assert provider.diff("id", olds, {**olds, "principalId": "p2"}).changes is True
    assert provider.diff("id", olds, {**olds, "roleAssignmentIds": RA[:1]}).changes is True


def test_the_program_creates_the_job_and_apps_after_the_propagation_wait() -> None:
    from tests.infra.program_harness import run_program

    run = run_program("dev")
    assert run.error is None, run.error
    wait = run.one("pulumi-python:dynamic/gate:IdentityPropagation")
    assignments = run.of_type("azure-native:authorization:RoleAssignment")
    assert {a.urn for a in assignments} <= set(wait.dependencies) and len(assignments) == 2
    assert len(wait.inputs["roleAssignmentIds"]) == 2
    job = run.one("azure-native:app:Job")
    assert wait.urn in job.dependencies
    for app in run.of_type("azure-native:app:ContainerApp"):
        assert wait.urn in app.dependencies, app.urn
