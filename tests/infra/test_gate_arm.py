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
from infra.gate import GateRequest, run_gate
from tests.infra.fake_arm_server import API_VERSION, FakeArm, Scenario
from tests.schema_check import validate_file

SUB = "3f2c9a6e-5b1d-4c8e-9a7f-2d6b8e4c1a90"
JOB_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-gr-dev-app/providers/Microsoft.App/jobs/gr-dev-migrate"
)
SHA = "2f22765d04931a078909145ca628d2264c852d7d"
IMAGE = "myregistry.azurecr.io/gated-release/app@sha256:" + "ab" * 32
OLD_SHA = "0" * 40
# the Job resource's template as deployed: the release image and env, MIGRATION_RELEASE_SHA included
JOB_TEMPLATE = {
    "containers": [
        {
            "name": "migrate",
            "image": IMAGE,
            "command": ["python", "-m", "migration", "up", "--check-order", "--lock"],
            "env": [
                {"name": "MIGRATION_RELEASE_SHA", "value": SHA},
                {"name": "DATABASE_URL", "secretRef": "database-url"},
            ],
        }
    ]
}
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
        image=IMAGE,
        deadline_seconds=600,
        start_allowance_seconds=0,
        artifact_dir=tmp_path / "deploy",
        arm_endpoint=fake.url,
        logs_endpoint=fake.url,
        poll_initial_seconds=0.01,
        poll_max_seconds=5.0,
        logs_wait_seconds=0,
        appear_wait_seconds=30,
        stop_wait_seconds=5,
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


def test_success_starts_one_execution_of_the_job_as_deployed_and_records_it(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    scenario = Scenario(
        statuses=["Processing", "Running", "Running", "Succeeded"], job_template=JOB_TEMPLATE
    )
    with FakeArm(scenario) as fake:
        result = gate(request(fake, tmp_path), credential, clock)
        ran = fake.executions[result.execution_name]["properties"]["template"]
    assert result.status == "Succeeded" and result.execution_name == "gr-dev-migrate-0000001"
    # no template override: the execution runs the Job resource's template, which the policies
    # checked (release image, MIGRATION_RELEASE_SHA), not one the gate assembled itself
    [start] = [r for r in fake.requests if r.route == "start"]
    assert start.body is None and start.headers.get("content-length", "0") == "0"
    assert ran == JOB_TEMPLATE
    assert fake.count("executions") == 1  # listed once before the start
    assert fake.count("stop") == 0
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
    [seen] = [e for e in doc["statusTimeline"] if e["status"] == status][:1]
    assert seen["detail"] == "replica exited with code 5"
    # Degraded may leave a replica running: the gate stops it; a finished run needs no stop
    assert fake.count("stop") == (1 if status == "Degraded" else 0)
    assert str(tmp_path / "deploy" / SHA / "migration.json") in str(info.value)


def test_never_finishing_execution_hits_the_deadline_and_is_stopped(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    with FakeArm(Scenario(statuses=["Running"])) as fake, pytest.raises(GateError) as info:
        req = request(fake, tmp_path, deadline_seconds=120, start_allowance_seconds=30)
        gate(req, credential, clock)
    assert info.value.code == "execution-timeout"
    # replicaTimeout plus the start allowance, so ACA's own timeout fires first; not more
    assert sum(clock.sleeps) == pytest.approx(150, abs=0.01)
    assert max(clock.sleeps) <= 5.0
    # the gate gave up, so the execution must not keep running next to the next `pulumi up`
    [stop] = [r for r in fake.requests if r.route == "stop"]
    assert stop.path.endswith("/jobs/gr-dev-migrate/executions/gr-dev-migrate-0000001/stop")
    assert stop.query["api-version"] == [API_VERSION]
    assert "gr-dev-migrate-0000001" in fake.stopped
    assert "stopped" in str(info.value)
    doc = artifact(tmp_path)
    assert doc["executionStatus"] == "TimedOut" and doc["reasonCode"] == "execution-timeout"
    assert doc["elapsedMs"] >= 150_000
    statuses = [e["status"] for e in doc["statusTimeline"]]
    assert statuses[-3:] == ["StopRequested", "StopAccepted", "TimedOut"]


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


def test_read_errors_beyond_the_sdk_retries_are_retried_until_the_deadline(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    calls_per_read = 1 + FAST["retry_total"]
    with FakeArm(Scenario(statuses=["Running", "Succeeded"])) as fake:
        fake.fault("execution", 503, times=2 * calls_per_read)  # two whole reads fail
        fake.fault("execution", 429, {"Retry-After": "0"}, times=calls_per_read)
        result = gate(request(fake, tmp_path), credential, clock)
    assert result.status == "Succeeded"
    assert fake.count("execution") == 3 * calls_per_read + 2
    assert fake.count("stop") == 0
    doc = artifact(tmp_path)
    assert doc["reasonCode"] is None
    assert [e["status"] for e in doc["statusTimeline"]][2:] == ["ReadRetry", "Running", "Succeeded"]


def test_persistent_server_errors_while_polling_stop_the_execution_at_the_deadline(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    with FakeArm(Scenario(statuses=["Running"])) as fake, pytest.raises(GateError) as info:
        fake.fault("execution", 500, times=10_000)
        gate(request(fake, tmp_path, deadline_seconds=8), credential, clock)
    assert info.value.code == "azure-api-error"
    assert sum(clock.sleeps) == pytest.approx(8, abs=0.01)
    assert fake.count("execution") > 2 * (1 + FAST["retry_total"])  # not the first failure
    assert fake.count("stop") == 1
    doc = artifact(tmp_path)
    assert doc["reasonCode"] == "azure-api-error" and "HTTP 500" in doc["reason"]
    assert "StopAccepted" in [e["status"] for e in doc["statusTimeline"]]


def test_non_transient_read_error_fails_at_once_and_stops_the_execution(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    with FakeArm(Scenario(statuses=["Running"])) as fake, pytest.raises(GateError) as info:
        fake.fault("execution", 403)
        gate(request(fake, tmp_path), credential, clock)
    assert info.value.code == "azure-api-error"
    assert fake.count("execution") == 1 and fake.count("stop") == 1
    assert clock.sleeps == []
    assert artifact(tmp_path)["reasonCode"] == "azure-api-error"


def test_failed_stop_is_recorded_and_the_gate_still_fails_closed(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    with FakeArm(Scenario(statuses=["Running"])) as fake, pytest.raises(GateError) as info:
        fake.fault("stop", 409, times=5)
        gate(request(fake, tmp_path, deadline_seconds=10), credential, clock)
    assert info.value.code == "execution-timeout"
    assert "stop it by hand" in str(info.value)
    doc = artifact(tmp_path)
    assert "StopFailed" in [e["status"] for e in doc["statusTimeline"]]


def test_aborted_gate_stops_the_execution_and_writes_the_artifact(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt  # Ctrl-C / cancel while waiting between polls

    with FakeArm(Scenario(statuses=["Running"])) as fake, pytest.raises(KeyboardInterrupt):
        run_gate(
            request(fake, tmp_path),
            credential=credential,
            sleep=interrupted,
            monotonic=clock.monotonic,
            client_options=FAST,
        )
    assert fake.count("stop") == 1
    doc = artifact(tmp_path)
    assert doc["reasonCode"] == "execution-unknown" and "aborted" in doc["reason"]
    assert doc["executionName"] == "gr-dev-migrate-0000001"


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


def old_execution(name: str, status: str, start: str) -> dict[str, Any]:
    """An execution of an earlier run of the same release (a retried `pulumi up`)."""
    return {
        "id": f"{JOB_ID}/executions/{name}",
        "name": name,
        "type": "Microsoft.App/jobs/executions",
        "properties": {
            "status": status,
            "startTime": start,
            "endTime": start,
            "template": JOB_TEMPLATE,
        },
    }


def test_execution_found_by_listing_is_the_new_one_never_an_older_run(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    # an older execution of the same release succeeded; the new one has no startTime yet
    scenario = Scenario(
        statuses=["Running", "Failed"],
        start_body_has_name=False,
        job_template=JOB_TEMPLATE,
        existing=[old_execution("gr-dev-migrate-old0001", "Succeeded", "2029-12-31T00:00:00Z")],
        new_start_time=None,
        list_lag=2,  # the new execution shows up on the third listing after the start
    )
    with FakeArm(scenario) as fake, pytest.raises(GateError) as info:
        gate(request(fake, tmp_path), credential, clock)
    assert info.value.code == "execution-failed"  # the new run's verdict, not the old success
    doc = artifact(tmp_path)
    assert doc["executionName"] == "gr-dev-migrate-0000001"
    assert fake.count("executions") == 1 + 3
    assert not any("old0001" in r.path for r in fake.requests if r.route == "execution")


def test_no_new_execution_within_the_bounded_wait_fails_closed(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    scenario = Scenario(
        start_body_has_name=False,
        existing=[old_execution("gr-dev-migrate-old0001", "Succeeded", "2029-12-31T00:00:00Z")],
        list_lag=10**6,
    )
    with FakeArm(scenario) as fake, pytest.raises(GateError) as info:
        gate(request(fake, tmp_path, appear_wait_seconds=20), credential, clock)
    assert info.value.code == "start-failed"
    assert sum(clock.sleeps) <= 20
    assert fake.count("execution") == 0 and fake.count("stop") == 0
    doc = artifact(tmp_path)
    assert doc["reasonCode"] == "start-failed" and doc["executionName"] is None
    assert "never adopting an older run" in doc["reason"]


@pytest.mark.parametrize(
    "job_id",
    [
        "gr-dev-migrate",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.App/containerApps/api",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.App/jobs/a/b",
        "",
    ],
)
def test_malformed_job_id_fails_closed_with_an_artifact(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock, job_id: str
) -> None:
    with FakeArm() as fake, pytest.raises(GateError) as info:
        gate(request(fake, tmp_path, job_id=job_id), credential, clock)
    assert info.value.code == "start-failed"
    assert fake.requests == []
    doc = artifact(tmp_path)  # schema-validated
    assert doc["reasonCode"] == "start-failed" and doc["executionStatus"] == "Unknown"
    assert "not an ACA job resource ID" in doc["reason"]


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


def test_never_starts_next_to_an_execution_still_running(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    # e.g. a CI run cancelled mid-gate: its provider host was killed and could not stop it
    scenario = Scenario(existing=[old_execution("gr-dev-migrate-left001", "Running",
                                                "2029-12-31T00:00:00Z")])
    with FakeArm(scenario) as fake, pytest.raises(GateError) as info:
        gate(request(fake, tmp_path), credential, clock)
    assert info.value.code == "start-failed"
    assert "gr-dev-migrate-left001" in str(info.value)
    assert fake.count("start") == 0
    assert artifact(tmp_path)["reasonCode"] == "start-failed"


def test_the_log_tail_is_kept_and_the_runner_summary_adopted(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    summary = {"schemaVersion": 1, "releaseSha": SHA, "reasonCode": None, "reason": None,
               "executionSummary": {"applied": [], "pending": [], "skipped": [],
                                    "failing": None},
               "lockWaitMs": 42, "blockers": []}
    lines = [f"  applied {i:04d}_m.sql (1 ms)" for i in range(500)] + [json.dumps(summary)]
    with FakeArm(Scenario(statuses=["Failed"], log_lines=lines)) as fake, pytest.raises(GateError):
        gate(request(fake, tmp_path, workspace_id="6a1f0f8e-0000-4000-8000-000000000001"),
             credential, clock)
    doc = artifact(tmp_path)
    assert doc["logs"][-1] == json.dumps(summary) and len(doc["logs"]) == 200
    assert doc["logs"][0] == "  applied 0301_m.sql (1 ms)"
    assert doc["lockWaitMs"] == 42


def test_a_status_outside_the_schema_still_writes_a_valid_artifact(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from infra.gate.artifact import ArtifactBuilder

    now = datetime(2030, 1, 1, tzinfo=UTC)
    builder = ArtifactBuilder(SHA, "dev", started_at=now)
    builder.event("Pending", now)  # a status ARM may add that the schema does not list
    builder.finish("Pending", "azure-api-error", "reading the job execution failed", now, 10)
    doc = validate_file(builder.write(tmp_path))
    assert doc["executionStatus"] == "Unknown"
    assert [e["status"] for e in doc["statusTimeline"]] == ["Pending"]


# -- production shapes and latency (issue 11) ----------------------------------------------------

WORKSPACE = "6a1f0f8e-0000-4000-8000-000000000001"


def runner_summary(code: str | None) -> str:
    return json.dumps({"schemaVersion": 1, "releaseSha": SHA, "reasonCode": code,
                       "reason": "boom" if code else None,
                       "executionSummary": {"applied": [], "pending": ["0002_x.sql"],
                                            "skipped": [], "failing": None},
                       "lockWaitMs": 7, "blockers": []})


def test_start_is_202_with_location_and_no_body_and_the_name_comes_from_the_location(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    with FakeArm(Scenario(statuses=["Running", "Succeeded"])) as fake:
        result = gate(request(fake, tmp_path), credential, clock)
    assert result.execution_name == "gr-dev-migrate-0000001"
    assert fake.count("operation") == 2  # 202 then the final state at the Location
    assert fake.count("executions") == 1  # named by the final state: no listing needed


def test_executions_are_read_across_nextlink_pages_and_a_status_outside_the_enum_blocks(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    # five earlier executions, two per page; the one on the last page is in a state ARM added
    # after the SDK's enum (not finished): no second migration may start next to it
    existing = [old_execution(f"gr-dev-migrate-old000{i}", "Succeeded", "2029-12-31T00:00:00Z")
                for i in range(4)]
    existing.append(old_execution("gr-dev-migrate-queued1", "Queued", "2029-12-31T00:00:00Z"))
    with FakeArm(Scenario(existing=existing, page_size=2)) as fake, \
            pytest.raises(GateError) as info:
        gate(request(fake, tmp_path), credential, clock)
    assert info.value.code == "start-failed" and "gr-dev-migrate-queued1" in str(info.value)
    pages = [r for r in fake.requests if r.route == "executions"]
    assert len(pages) == 3 and "$skiptoken" in pages[-1].query
    assert fake.count("start") == 0


def test_a_status_outside_the_enum_keeps_polling_until_a_terminal_one(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    scenario = Scenario(statuses=["Queued", "Scheduling", "Running", "Succeeded"])
    with FakeArm(scenario) as fake:
        result = gate(request(fake, tmp_path), credential, clock)
    assert result.status == "Succeeded" and fake.count("stop") == 0
    timeline = [e["status"] for e in artifact(tmp_path)["statusTimeline"]]
    assert timeline[2:] == ["Queued", "Scheduling", "Running", "Succeeded"]


def test_a_terminal_state_is_noticed_within_five_seconds_whatever_the_configured_backoff(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    # a ten-minute migration: 120 reads "Running", then "Succeeded"
    scenario = Scenario(statuses=["Running"] * 120 + ["Succeeded"])
    with FakeArm(scenario) as fake:
        gate(request(fake, tmp_path, poll_initial_seconds=1, poll_max_seconds=30), credential,
             clock)
    assert max(clock.sleeps) <= 5.0
    assert fake.count("execution") == 121


def test_the_gate_waits_what_retry_after_asks_when_reads_stay_throttled(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    calls_per_read = 1 + FAST["retry_total"]
    with FakeArm(Scenario(statuses=["Running", "Succeeded"])) as fake:
        fake.fault("execution", 429, {"Retry-After": "0"}, times=calls_per_read - 1)
        fake.fault("execution", 429, {"Retry-After": "17"})  # the answer the gate sees
        gate(request(fake, tmp_path), credential, clock)
    assert 17 in clock.sleeps  # ARM's wait, not the 5 s poll interval


class ExpiringCredential(FakeCredential):
    """Tokens that expire at once (every request asks again); from the sixth on, refused."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        from azure.core.exceptions import ClientAuthenticationError

        self.scopes.append(scopes)
        if len(self.scopes) > 5:
            raise ClientAuthenticationError("AADSTS700024: client assertion is not within "
                                            "its valid time range")
        return AccessToken(self.token, int(time.time()) + 1)


def test_an_authentication_error_is_never_retried_as_transient(
    tmp_path: Path, clock: FakeClock
) -> None:
    with FakeArm(Scenario(statuses=["Running"])) as fake, pytest.raises(GateError) as info:
        gate(request(fake, tmp_path, deadline_seconds=3600), ExpiringCredential(), clock)
    assert info.value.code == "azure-api-error"
    assert "ClientAuthenticationError" in str(info.value)
    assert sum(clock.sleeps) < 10  # failed at once, not at the one-hour deadline


def test_success_does_not_wait_for_log_ingestion_and_the_followup_fills_the_artifact(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    from infra.gate.followup import collect

    lines = ["starting migration run", runner_summary(None)]
    scenario = Scenario(statuses=["Running", "Succeeded"], log_lines=lines)
    with FakeArm(scenario) as fake:
        result = gate(request(fake, tmp_path, workspace_id=WORKSPACE, logs_wait_seconds=90),
                      credential, clock)
        assert fake.count("query") == 0  # nothing on the rollout's critical path
        assert sum(clock.sleeps) < 5
        assert artifact(tmp_path)["logsSource"] == "job-execution"
        followup = tmp_path / "deploy" / SHA / "gate-followup.json"
        assert json.loads(followup.read_text())["executionName"] == result.execution_name
        outcome = collect(tmp_path / "deploy", SHA, wait_seconds=0, credential=credential,
                          poll_seconds=0)
    assert outcome["collected"] is True and outcome["complete"] is True
    doc = artifact(tmp_path)  # the same file, schema-valid, now with the console log
    assert doc["logsSource"] == "log-analytics" and doc["logs"][-1] == lines[-1]
    assert doc["executionStatus"] == "Succeeded" and doc["lockWaitMs"] == 7
    assert not followup.exists()


def test_failure_waits_for_the_complete_log_through_a_missing_table_and_partial_batches(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    lines = ["starting migration run", "applying 0002_x.sql", runner_summary("sql-failed")]
    # a new workspace: no table for two queries; then ingestion delivers 1, 2, 3 lines
    scenario = Scenario(statuses=["Failed"], log_lines=lines, missing_table_queries=2,
                        log_batches=[0, 0, 1, 2, 3])
    with FakeArm(scenario) as fake, pytest.raises(GateError) as info:
        gate(request(fake, tmp_path, workspace_id=WORKSPACE, logs_wait_seconds=120), credential,
             clock)
    assert info.value.code == "execution-failed" and "runner: sql-failed" in str(info.value)
    assert fake.count("query") == 5
    doc = artifact(tmp_path)
    assert doc["logsSource"] == "log-analytics" and doc["logs"] == lines
    assert "LogsComplete" in [e["status"] for e in doc["statusTimeline"]]


def test_failure_log_wait_is_bounded_and_leaves_a_followup(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    scenario = Scenario(statuses=["Failed"], missing_table_queries=10**6)
    with FakeArm(scenario) as fake, pytest.raises(GateError):
        gate(request(fake, tmp_path, workspace_id=WORKSPACE, logs_wait_seconds=30), credential,
             clock)
    assert sum(clock.sleeps) <= 30 and fake.count("query") >= 2
    assert artifact(tmp_path)["logsSource"] == "job-execution"
    assert (tmp_path / "deploy" / SHA / "gate-followup.json").exists()


def test_stable_counts_complete_a_log_without_a_summary_line(
    tmp_path: Path, credential: FakeCredential, clock: FakeClock
) -> None:
    # the runner was killed (OOM): no summary line will ever come; two equal answers end the wait
    scenario = Scenario(statuses=["Failed"], log_lines=["starting", "applying 0002_x.sql"])
    with FakeArm(scenario) as fake, pytest.raises(GateError):
        gate(request(fake, tmp_path, workspace_id=WORKSPACE, logs_wait_seconds=600), credential,
             clock)
    assert fake.count("query") == 2 and sum(clock.sleeps) <= 5
    assert artifact(tmp_path)["logs"] == ["starting", "applying 0002_x.sql"]


@pytest.mark.parametrize(("arm", "logs", "authority"), [
    ("https://management.azure.com", "https://api.loganalytics.io",
     "https://login.microsoftonline.com"),
    ("https://management.chinacloudapi.cn", "https://api.loganalytics.azure.cn",
     "https://login.chinacloudapi.cn"),
    ("https://management.usgovcloudapi.net/", "https://api.loganalytics.us",
     "https://login.microsoftonline.us"),
])
def test_logs_endpoint_and_authority_follow_the_cloud_of_the_arm_endpoint(
    tmp_path: Path, arm: str, logs: str, authority: str
) -> None:
    from infra.gate.clouds import cloud_of
    from infra.gate.request import request_from_props

    req = request_from_props({"jobId": JOB_ID, "releaseSha": SHA, "deadlineSeconds": 60,
                              "artifactDir": str(tmp_path), "armEndpoint": arm})
    assert req.logs_url == logs
    assert cloud_of(arm).authority == authority
