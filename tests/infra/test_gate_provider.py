"""The MigrationRun adapter: what triggers a run, what never runs, and the provider's lifecycle."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dill
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc

import infra.gate
from infra.errors import GateError
from infra.gate_provider import TRIGGERS, MigrationRunProvider, changed_triggers
from tests.infra.fake_arm_server import FakeArm, Scenario
from tests.infra.program_harness import run_program, stack_config
from tests.infra.test_gate_arm import FAST, IMAGE, JOB_ID, SHA, FakeClock, FakeCredential
from tests.schema_check import validate_file

GATE = "pulumi-python:dynamic/gate:MigrationRun"
SECRET = {rpc._special_sig_key: rpc._special_secret_sig}


def props(**changes: Any) -> dict[str, Any]:
    base = {
        "jobId": JOB_ID,
        "releaseSha": SHA,
        "image": IMAGE,
        "migrationsChecksum": "c" * 64,
        "container": {
            "name": "migrate",
            "command": ["python", "-m", "migration", "up"],
            "env": [{"name": "MIGRATION_RELEASE_SHA", "value": SHA}],
            "cpu": 0.25,
            "memory": "0.5Gi",
        },
        "deadlineSeconds": 1020,
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
        {"workspaceId": "6a1f0f8e-0000-4000-8000-000000000001"},
        {"armEndpoint": "https://management.usgovcloudapi.net"},
        {"artifactDir": "/elsewhere"},
        {"__provider": "serialized-v2"},  # a new version of this code does not re-run migrations
        {
            "container": {
                "name": "migrate",
                "command": ["python"],
                "env": [],
                "cpu": 1,
                "memory": "2Gi",
            }
        },
    ],
)
def test_other_fields_do_not_rerun_the_migration(changes: dict[str, Any]) -> None:
    diff = MigrationRunProvider().diff("id", props(), props(**changes))
    assert diff.changes is False


def test_secret_wrapped_state_compares_by_value_and_unknown_is_a_change() -> None:
    olds = props(releaseSha={**SECRET, "value": SHA})
    assert MigrationRunProvider().diff("id", olds, props()).changes is False
    assert MigrationRunProvider().diff("id", props(), props(jobId=rpc.UNKNOWN)).changes is True


def test_provider_pickles_small_and_without_azure_state() -> None:
    blob = base64.b64decode(serialize_provider(MigrationRunProvider()))
    assert len(blob) < 4096
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
    monkeypatch.setattr("azure.identity.DefaultAzureCredential", lambda: None)
    yield calls


@pytest.mark.parametrize("preview", [True, False])
def test_running_the_program_never_starts_a_migration(preview: bool, gate_calls: list[Any]) -> None:
    with FakeArm() as fake:
        run = run_program("dev", stack_config("dev", armEndpoint=fake.url), preview=preview)
        assert run.error is None, run.error
        gate = run.one(GATE)
        assert gate.inputs["armEndpoint"] == fake.url  # it would have called this server
    assert fake.requests == [] and gate_calls == []


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
