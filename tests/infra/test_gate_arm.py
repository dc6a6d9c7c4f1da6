"""The migration gate through the real azure-mgmt-appcontainers client and a local fake ARM."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from infra.errors import GateError
from infra.gate import ContainerSpec, EnvVar, GateRequest, run_gate
from tests.infra.fake_arm_server import API_VERSION, FakeArm, Scenario
from tests.schema_check import validate_file

SUB = "3f2c9a6e-5b1d-4c8e-9a7f-2d6b8e4c1a90"
JOB_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-gr-dev-app/providers/Microsoft.App/jobs/gr-dev-migrate"
)
SHA = "2f22765d04931a078909145ca628d2264c852d7d"
IMAGE = "myregistry.azurecr.io/gated-release/app@sha256:" + "ab" * 32
FAST = {"retry_backoff_factor": 0.01, "retry_backoff_max": 0.05, "retry_total": 3}


class FakeCredential:
    """A TokenCredential that hands out a fixed token and remembers the scopes asked for."""

    token = "fake-arm-token-0123"

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


class FakeClock:
    """Monotonic time that advances only when the gate sleeps: deadlines without waiting."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def request(fake: FakeArm, tmp_path: Path, **changes: Any) -> GateRequest:
    base = GateRequest(
        job_id=JOB_ID,
        release_sha=SHA,
        stack="dev",
        container=ContainerSpec(
            name="migrate",
            image=IMAGE,
            command=("python", "-m", "migration", "up", "--check-order", "--lock"),
            env=(
                EnvVar("MIGRATION_RELEASE_SHA", SHA),
                EnvVar("DATABASE_URL", secret_ref="database-url"),
            ),
            cpu=0.25,
            memory="0.5Gi",
        ),
        deadline_seconds=600,
        artifact_dir=tmp_path / "deploy",
        arm_endpoint=fake.url,
        logs_endpoint=fake.url,
        poll_initial_seconds=0.01,
        poll_max_seconds=5.0,
        logs_wait_seconds=0,
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def credential() -> FakeCredential:
    return FakeCredential()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_fake(**scenario: Any) -> Iterator[FakeArm]:
    with FakeArm(Scenario(**scenario)) as fake:
        yield fake


def gate(req: GateRequest, credential: FakeCredential, clock: FakeClock) -> Any:
    return run_gate(
        req,
        credential=credential,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        client_options=FAST,
        logs_client_options=FAST,
    )


def artifact(tmp_path: Path) -> dict[str, Any]:
    return validate_file(tmp_path / "deploy" / SHA / "migration.json")


def test_success_starts_one_execution_with_the_release_and_records_it(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    with FakeArm(Scenario(statuses=["Processing", "Running", "Running", "Succeeded"])) as fake:
        result = gate(request(fake, tmp_path), credential, clock)
    assert result.status == "Succeeded" and result.execution_name == "gr-dev-migrate-0000001"
    [start] = [r for r in fake.requests if r.route == "start"]
    container = start.body["containers"][0]
    assert container["image"] == IMAGE
    assert {"name": "MIGRATION_RELEASE_SHA", "value": SHA} in container["env"]
    assert {"name": "DATABASE_URL", "secretRef": "database-url"} in container["env"]
    assert fake.count("operation") == 2  # the SDK's LRO poller followed Location to the end
    assert fake.count("execution") == 4
    # every ARM request authenticated with the credential's token and the pinned api-version
    arm = [r for r in fake.requests if r.route != "query"]
    assert all(r.headers["authorization"] == f"Bearer {FakeCredential.token}" for r in arm)
    assert all(r.query["api-version"] == [API_VERSION] for r in arm)
    assert credential.scopes[0] == ("https://management.azure.com/.default",)
    # exponential backoff between polls, capped
    assert clock.sleeps == [0.01, 0.02, 0.04]
    doc = artifact(tmp_path)
    assert doc["executionStatus"] == "Succeeded" and doc["reasonCode"] is None
    assert doc["executionName"] == result.execution_name and doc["logsSource"] == "job-execution"
    assert [e["status"] for e in doc["statusTimeline"]] == [
        "Starting",
        "Started",
        "Processing",
        "Running",
        "Succeeded",
    ]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("Failed", "execution-failed"),
        ("Stopped", "execution-stopped"),
        ("Degraded", "execution-degraded"),
    ],
)
def test_terminal_failures_raise_with_their_reason_code(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock, status: str, code: str
) -> None:
    scenario = Scenario(statuses=["Running", status], message="replica exited with code 5")
    with FakeArm(scenario) as fake, pytest.raises(GateError) as info:
        gate(request(fake, tmp_path), credential, clock)
    assert info.value.code == code
    doc = artifact(tmp_path)
    assert doc["executionStatus"] == status and doc["reasonCode"] == code
    assert doc["statusTimeline"][-1]["detail"] == "replica exited with code 5"
    assert str(tmp_path / "deploy" / SHA / "migration.json") in str(info.value)


def test_never_finishing_execution_hits_the_deadline(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    with FakeArm(Scenario(statuses=["Running"])) as fake, pytest.raises(GateError) as info:
        gate(request(fake, tmp_path, deadline_seconds=120), credential, clock)
    assert info.value.code == "execution-timeout"
    assert sum(clock.sleeps) == pytest.approx(120, abs=0.01)  # bounded by the deadline, not more
    assert max(clock.sleeps) <= 5.0
    doc = artifact(tmp_path)
    assert doc["executionStatus"] == "TimedOut" and doc["reasonCode"] == "execution-timeout"
    assert doc["elapsedMs"] >= 120_000


def test_throttling_and_server_errors_are_retried(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    with FakeArm(Scenario(statuses=["Succeeded"])) as fake:
        fake.fault("start", 429, {"Retry-After": "1"})
        fake.fault("execution", 503)
        fake.fault("execution", 500)
        started = time.monotonic()
        result = gate(request(fake, tmp_path), credential, clock)
        waited = time.monotonic() - started
    assert result.status == "Succeeded"
    assert fake.count("start") == 2 and fake.count("execution") == 3
    assert waited >= 0.9  # the SDK honoured Retry-After: 1
    assert artifact(tmp_path)["reasonCode"] is None


def test_persistent_server_errors_while_polling_are_an_azure_api_error(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    with FakeArm(Scenario(statuses=["Succeeded"])) as fake, pytest.raises(GateError) as info:
        fake.fault("execution", 500, times=10)
        gate(request(fake, tmp_path), credential, clock)
    assert info.value.code == "azure-api-error"
    assert fake.count("execution") == 1 + FAST["retry_total"]
    assert artifact(tmp_path)["reasonCode"] == "azure-api-error"


def test_rejected_start_is_start_failed(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    with FakeArm() as fake, pytest.raises(GateError) as info:
        fake.fault("start", 404)
        gate(request(fake, tmp_path), credential, clock)
    assert info.value.code == "start-failed"
    doc = artifact(tmp_path)
    assert doc["executionName"] is None and "HTTP 404" in doc["reason"]
    assert fake.count("execution") == 0


def test_execution_found_by_listing_when_start_does_not_name_it(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    with FakeArm(Scenario(statuses=["Succeeded"], start_body_has_name=False)) as fake:
        result = gate(request(fake, tmp_path), credential, clock)
    assert result.execution_name == "gr-dev-migrate-0000001"
    assert fake.count("executions") == 1


def test_console_logs_from_log_analytics(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    runner = {
        "schemaVersion": 1,
        "releaseSha": SHA,
        "reasonCode": "lock-timeout",
        "reason": "55P03 on users",
        "executionSummary": {
            "applied": [{"file": "0001_init.sql", "durationMs": 12, "transactional": True}],
            "pending": ["0002_users.sql"],
            "skipped": [],
            "failing": {
                "file": "0002_users.sql",
                "line": 3,
                "sqlstate": "55P03",
                "message": "lock timeout",
            },
        },
        "lockWaitMs": 5000,
        "blockers": [],
    }
    lines = ["starting migration run", json.dumps(runner)]
    with (
        FakeArm(Scenario(statuses=["Failed"], log_lines=lines)) as fake,
        pytest.raises(GateError) as info,
    ):
        gate(
            request(fake, tmp_path, workspace_id="6a1f0f8e-0000-4000-8000-000000000001"),
            credential,
            clock,
        )
    assert info.value.code == "execution-failed"
    assert "runner: lock-timeout" in str(info.value)
    [query] = [r for r in fake.requests if r.route == "query"]
    assert "ContainerAppConsoleLogs_CL" in query.body["query"]
    assert "startswith 'gr-dev-migrate-0000001'" in query.body["query"]
    assert query.headers["authorization"] == f"Bearer {FakeCredential.token}"
    doc = artifact(tmp_path)
    assert doc["logsSource"] == "log-analytics" and doc["logs"][0] == "starting migration run"
    assert doc["executionSummary"]["failing"]["sqlstate"] == "55P03"
    assert doc["lockWaitMs"] == 5000


def test_bearer_token_over_http_is_refused_for_a_remote_host(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    # the loopback exception must not leak: a non-loopback http endpoint keeps azure-core's refusal
    with FakeArm() as fake, pytest.raises(GateError) as info:
        gate(request(fake, tmp_path, arm_endpoint="http://gate.invalid:1"), credential, clock)
    assert info.value.code == "start-failed"
    assert "non-TLS" in str(info.value)
    assert fake.requests == []
