"""The migration gate: start one execution of the migration job, await it, record what happened.

Plain Azure SDK code with no Pulumi in it; :mod:`infra.gate_provider` adapts it to a Pulumi
resource. :func:`run_gate` lists the job's executions, starts one with ``jobs.begin_start`` and no
template override (the Job resource already carries the release image and env, including
``MIGRATION_RELEASE_SHA``; an override would run a template no policy checked), identifies the new
execution by a name that did not exist before (never an older run of the same release), polls
``job_execution`` with exponential backoff until a terminal status (Succeeded, Failed, Stopped,
Degraded; Running, Processing and Unknown keep polling) or the deadline, fetches the execution's
console logs from Log Analytics when a workspace is given, and writes
``<artifact_dir>/<sha>/migration.json`` (schema: ``schemas/migration.schema.json``) whatever the
outcome. Anything but Succeeded raises :class:`~infra.errors.GateError` whose code is the
artifact's ``reasonCode``.

Deadline: the job's ``replicaTimeout`` (``deadline_seconds``) plus ``start_allowance_seconds``.
The gate's clock starts before ``begin_start``, ACA's when the replica starts, so the allowance
lets ACA's own timeout fire first. When the gate gives up anyway (deadline, an API error after the
start, or an abort such as Ctrl-C) it stops the execution with ``jobs.begin_stop_execution``
(best effort, bounded by ``stop_wait_seconds``) and records that in the timeline, so the next
``pulumi up`` never runs a second migration next to a forgotten one.

Transient ARM answers (429 with Retry-After, 5xx) are retried by the SDK's ``RetryPolicy``; pass
``retry_total``/``retry_backoff_factor`` in ``client_options`` to tune it. A status read that still
fails with a transient error (429, 5xx, connection) is retried by the gate until the deadline.
Tests point the real client at a local server: ``arm_endpoint="http://127.0.0.1:<port>"``.
azure-core refuses to send a bearer token over plain HTTP; :class:`LoopbackBearerPolicy` lifts that
refusal for loopback hosts only (it sets the documented ``enforce_https=False`` request option),
never for a remote host.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import BearerTokenCredentialPolicy
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy

from infra._gate_artifact import ArtifactBuilder
from infra.errors import GateError

__all__ = [
    "FAILED_STATUSES",
    "KEEP_POLLING",
    "SUCCEEDED",
    "GateRequest",
    "GateResult",
    "LoopbackBearerPolicy",
    "LoopbackLogsBearerPolicy",
    "parse_job_id",
    "request_from_props",
    "result_json",
    "run_gate",
]

log = logging.getLogger(__name__)

SUCCEEDED = "Succeeded"
FAILED_STATUSES: Mapping[str, str] = {
    "Failed": "execution-failed",
    "Stopped": "execution-stopped",
    "Degraded": "execution-degraded",
}
KEEP_POLLING = frozenset({"Running", "Processing", "Unknown"})
DEFAULT_START_ALLOWANCE_SECONDS = 120.0
_JOB_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.App/jobs/(?P<job>[^/]+)$",
    re.IGNORECASE,
)
# ACA execution and job names: lowercase alphanumerics and dashes. Checked before they are put
# into a KQL query, so a name can never change the query's meaning.
_KQL_SAFE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_TRANSIENT_HTTP = frozenset({408, 429, 500, 502, 503, 504})


def parse_job_id(job_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, job name) of an ACA job resource ID; GateError if not one."""
    m = _JOB_ID.match(job_id)
    if m is None:
        raise GateError(
            "start-failed",
            f"not an ACA job resource ID: {job_id!r} (expected /subscriptions/<sub>/"
            "resourceGroups/<rg>/providers/Microsoft.App/jobs/<job>)",
        )
    return m["sub"], m["rg"], m["job"]


@dataclass(frozen=True)
class GateRequest:
    """Everything one gate run needs; all plain values (it crosses the Pulumi boundary).

    ``deadline_seconds`` is the job's replicaTimeout; the gate waits that plus
    ``start_allowance_seconds``. ``image`` is informational (the Job resource decides what runs).
    """

    job_id: str
    release_sha: str
    stack: str | None
    deadline_seconds: float
    artifact_dir: Path
    start_allowance_seconds: float = DEFAULT_START_ALLOWANCE_SECONDS
    image: str | None = None
    workspace_id: str | None = None
    arm_endpoint: str = "https://management.azure.com"
    logs_endpoint: str = "https://api.loganalytics.io"
    poll_initial_seconds: float = 5.0
    poll_max_seconds: float = 30.0
    logs_wait_seconds: float = 90.0
    appear_wait_seconds: float = 60.0
    stop_wait_seconds: float = 60.0

    @property
    def job(self) -> tuple[str, str, str]:
        """(subscription, resource group, job name) parsed from ``job_id``."""
        return parse_job_id(self.job_id)

    @property
    def total_seconds(self) -> float:
        return self.deadline_seconds + self.start_allowance_seconds


@dataclass(frozen=True)
class GateResult:
    """A succeeded gate run."""

    execution_name: str
    status: str
    artifact_path: Path
    elapsed_ms: int
    logs_source: str


@dataclass
class _Clock:
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in _LOOPBACK


class LoopbackBearerPolicy(ARMChallengeAuthenticationPolicy):
    """ARM bearer policy that also allows ``http://`` to a loopback host (local test servers)."""

    def on_request(self, request: PipelineRequest[Any]) -> None:
        if _is_loopback(request.http_request.url):
            request.context["enforce_https"] = False
        super().on_request(request)


class LoopbackLogsBearerPolicy(BearerTokenCredentialPolicy):  # type: ignore[type-arg]
    """Log Analytics bearer policy with the same loopback-only exception."""

    def on_request(self, request: PipelineRequest[Any]) -> None:
        if _is_loopback(request.http_request.url):
            request.context["enforce_https"] = False
        super().on_request(request)


def _arm_client(req: GateRequest, credential: TokenCredential, options: Mapping[str, Any]) -> Any:
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

    subscription, _, _ = req.job
    scope = "https://management.azure.com/.default"
    # The token's audience follows the endpoint (sovereign clouds), not the public default.
    kwargs: dict[str, Any] = {"polling_interval": req.poll_initial_seconds,
                              "credential_scopes": [req.arm_endpoint.rstrip("/") + "/.default"],
                              **options}
    if _is_loopback(req.arm_endpoint):
        kwargs.setdefault("authentication_policy", LoopbackBearerPolicy(credential, scope))
    return ContainerAppsAPIClient(credential, subscription, base_url=req.arm_endpoint, **kwargs)


def _describe(exc: BaseException) -> str:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    text = (
        str(getattr(exc, "message", None) or exc).splitlines()[0]
        if str(exc)
        else type(exc).__name__
    )
    return f"{type(exc).__name__}{f' (HTTP {status})' if status else ''}: {text}"


def _is_transient(exc: BaseException) -> bool:
    """Worth another read: throttling, a server error, or no answer at all."""
    if isinstance(exc, ServiceRequestError | ServiceResponseError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, HttpResponseError):
        return exc.status_code is None or exc.status_code in _TRANSIENT_HTTP
    return False


def _execution_names(client: Any, req: GateRequest) -> set[str]:
    return set(_executions(client, req))


def _executions(client: Any, req: GateRequest) -> dict[str, str]:
    """Every execution of the job: name -> status."""
    _, rg, job = req.job
    return {str(e.name): _status_of(e) for e in client.jobs_executions.list(rg, job) if e.name}


def _status_of(execution: Any) -> str:
    props = getattr(execution, "properties", None)
    raw = getattr(props, "status", None) if props is not None else None
    # the SDK returns a str-enum for known statuses and a plain str for new ones
    return str(getattr(raw, "value", raw) or "Unknown")


def _start(client: Any, req: GateRequest, remaining: float) -> str | None:
    """Start one execution (no template override); its name when ARM said it, else None."""
    _, rg, job = req.job
    poller = client.jobs.begin_start(rg, job, polling_interval=req.poll_initial_seconds)
    result = poller.result(timeout=max(remaining, 0.0))
    name = getattr(result, "name", None) if result is not None else None
    return str(name) if name else None


def _new_execution(
    client: Any, req: GateRequest, before: set[str], clock: _Clock, wait: float
) -> tuple[str | None, set[str]]:
    """The one execution not listed before the start, waiting up to ``wait`` for it to appear.

    Returns (name, new names); name is None when none, or more than one, appeared (someone else
    started the job too, so which one is ours cannot be told: fail closed).
    """
    deadline = clock.monotonic() + max(wait, 0.0)
    delay = max(req.poll_initial_seconds, 0.0)
    while True:
        new = _execution_names(client, req) - before
        if len(new) == 1:
            return next(iter(new)), new
        if new or clock.monotonic() + delay > deadline:
            return None, new
        clock.sleep(delay)
        delay = min(delay * 2 or 1.0, req.poll_max_seconds)


def _stop(
    client: Any, req: GateRequest, execution: str, artifact: ArtifactBuilder, clock: _Clock
) -> str:
    """Ask ACA to stop the execution (best effort, bounded); a phrase for the failure reason."""
    _, rg, job = req.job
    wait = max(req.stop_wait_seconds, 0.0)
    artifact.event("StopRequested", clock.now(), execution)
    try:
        # per-call bounds, so a sick ARM cannot hold the failing gate for long
        io_timeout = min(max(wait, 1.0), 30.0)
        poller = client.jobs.begin_stop_execution(
            rg,
            job,
            execution,
            polling_interval=req.poll_initial_seconds,
            retry_total=2,
            connection_timeout=io_timeout,
            read_timeout=io_timeout,
        )
        poller.result(timeout=wait)
    except Exception as exc:
        detail = _describe(exc)
        log.warning("stopping execution %s failed: %s", execution, detail)
        artifact.event("StopFailed", clock.now(), detail)
        return f"; stopping the execution failed ({detail}), stop it by hand"
    if not poller.done():
        artifact.event("StopPending", clock.now(), f"not confirmed within {wait:.0f}s")
        return "; stop requested, not yet confirmed"
    artifact.event("StopAccepted", clock.now(), execution)
    return "; the execution was stopped"


def _fetch_logs(
    req: GateRequest,
    execution: str,
    credential: TokenCredential,
    clock: _Clock,
    options: Mapping[str, Any],
) -> list[str] | None:
    """Console log lines of the execution from Log Analytics, or None when unavailable.

    Container logs reach the workspace with a delay of a minute or two, so an empty answer is
    retried within ``logs_wait_seconds``.
    """
    _, _, job = req.job
    if not req.workspace_id or not (_KQL_SAFE.match(execution) and _KQL_SAFE.match(job)):
        return None
    from azure.monitor.query import LogsQueryClient, LogsQueryStatus

    kwargs: dict[str, Any] = dict(options)
    if _is_loopback(req.logs_endpoint):
        scope = req.logs_endpoint.rstrip("/") + "/.default"
        kwargs.setdefault("authentication_policy", LoopbackLogsBearerPolicy(credential, scope))
    client = LogsQueryClient(credential, endpoint=req.logs_endpoint, **kwargs)
    query = (
        "ContainerAppConsoleLogs_CL"
        f" | where ContainerJobName_s == '{job}' and ContainerGroupName_s startswith '{execution}'"
        # The newest 200 (the runner's JSON summary is its last line), put back in order below.
        " | project TimeGenerated, Log_s | order by TimeGenerated desc | take 200"
    )
    deadline = clock.monotonic() + req.logs_wait_seconds
    delay = max(req.poll_initial_seconds, 0.0)
    while True:
        try:
            response = client.query_workspace(req.workspace_id, query, timespan=timedelta(days=1))
        except Exception as exc:
            log.warning("log analytics query failed: %s", _describe(exc))
            return None
        if response.status == LogsQueryStatus.SUCCESS:
            lines = [str(row[1]) for table in response.tables for row in table.rows]
            if lines:
                return lines[::-1]
        if clock.monotonic() + delay > deadline:
            return None
        clock.sleep(delay)
        delay = min(delay * 2 or 1.0, req.poll_max_seconds)


@dataclass
class _Run:
    """State of one gate run shared by its phases."""

    req: GateRequest
    clock: _Clock
    artifact: ArtifactBuilder
    t0: float
    client: Any = None
    execution: str | None = None
    status: str | None = None

    def remaining(self) -> float:
        return self.req.total_seconds - (self.clock.monotonic() - self.t0)

    def elapsed_ms(self) -> int:
        return int((self.clock.monotonic() - self.t0) * 1000)

    def fail(self, code: str, status: str, reason: str) -> GateError:
        """Write the artifact for a failure and build the error to raise."""
        self.artifact.finish(status, code, reason, self.clock.now(), self.elapsed_ms())
        path = self.artifact.write(self.req.artifact_dir)
        where = f" (execution {self.execution})" if self.execution else ""
        return GateError(
            code,
            f"{reason}{where}; diagnostics: {path}",
            artifact=str(path),
            execution=self.execution,
        )

    def stop(self) -> str:
        if self.client is None or self.execution is None:
            return ""
        return _stop(self.client, self.req, self.execution, self.artifact, self.clock)


def _begin(run: _Run, credential: TokenCredential, options: Mapping[str, Any]) -> None:
    """Validate, list, start, identify: sets ``run.execution`` or raises (artifact written)."""
    req, clock = run.req, run.clock
    try:
        _, _, job = parse_job_id(req.job_id)
    except GateError as exc:
        raise run.fail("start-failed", "Unknown", exc.message) from exc
    run.artifact.event("Starting", clock.now(), f"job {job}, image {req.image or 'of the job'}")
    try:
        run.client = _arm_client(req, credential, options)
        existing = _executions(run.client, req)
    except Exception as exc:
        raise run.fail(
            "start-failed", "Unknown", f"listing the job's executions failed: {_describe(exc)}"
        ) from exc
    before = set(existing)
    # An execution still running (a CI run cancelled or killed mid-gate, whose provider host
    # could not stop it, or a manual start) must finish or be stopped first: never a second
    # migration next to it.
    running = sorted(n for n, status in existing.items() if status in KEEP_POLLING)
    if running:
        raise run.fail(
            "start-failed", "Unknown",
            f"execution(s) {', '.join(running)} of the migration job are still running; wait "
            "for them or stop them (az containerapp job stop), then rerun `pulumi up`")
    try:
        named = _start(run.client, req, run.remaining())
    except BaseException as exc:
        reason = f"starting the migration job failed: {_describe(exc)}"
        # the POST may have been accepted before the failure or abort: stop what it started
        try:
            orphan, _ = _new_execution(run.client, req, before, clock,
                                       min(req.appear_wait_seconds, req.stop_wait_seconds))
        except Exception:
            orphan = None
        if orphan is not None:
            run.execution = orphan
            reason += run.stop()
        error = run.fail("start-failed", "Unknown", reason)
        if not isinstance(exc, Exception):
            raise  # Ctrl-C and friends stay what they are; the artifact is written
        raise error from exc
    if named is not None and named not in before:
        run.execution = named
    elif named is not None:
        raise run.fail(
            "start-failed", "Unknown", f"ARM named {named!r}, an execution that existed before"
        )
    else:
        try:
            wait = min(req.appear_wait_seconds, max(run.remaining(), 0.0))
            run.execution, new = _new_execution(run.client, req, before, clock, wait)
        except Exception as exc:
            raise run.fail(
                "start-failed", "Unknown", f"finding the new execution failed: {_describe(exc)}"
            ) from exc
        if run.execution is None:
            raise run.fail(
                "start-failed",
                "Unknown",
                f"ARM accepted the start but {len(new)} new executions appeared within "
                f"{wait:.0f}s (expected exactly one; never adopting an older run)",
            )
    run.artifact.execution_name = run.execution
    run.artifact.event("Started", clock.now(), run.execution)


def _await(run: _Run) -> tuple[str | None, BaseException | None]:
    """Poll until a terminal status or the deadline: (last status, last read error if any)."""
    req, clock, artifact = run.req, run.clock, run.artifact
    _, rg, job = req.job
    delay = req.poll_initial_seconds
    failing: BaseException | None = None
    while True:
        try:
            current = run.client.job_execution(rg, job, run.execution)
        except Exception as exc:
            if not _is_transient(exc):
                raise
            if failing is None:
                artifact.event("ReadRetry", clock.now(), _describe(exc))
            failing = exc
        else:
            failing = None
            props = current.properties
            raw_status = props.status if props else None
            # the SDK returns a str-enum for known statuses and a plain str for new ones
            new_status = str(getattr(raw_status, "value", raw_status) or "Unknown")
            if new_status != run.status:
                run.status = new_status
                artifact.event(new_status, clock.now(), props.message if props else None)
                if props and props.start_time:
                    artifact.started_at = props.start_time
            if run.status == SUCCEEDED or run.status in FAILED_STATUSES:
                return run.status, None
        if run.remaining() <= 0:
            return run.status, failing
        clock.sleep(max(min(delay, run.remaining()), 0.0))
        delay = min(delay * 2, req.poll_max_seconds)


def run_gate(
    req: GateRequest,
    *,
    credential: TokenCredential,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] | None = None,
    client_options: Mapping[str, Any] | None = None,
    logs_client_options: Mapping[str, Any] | None = None,
) -> GateResult:
    """Run the migration job once for ``req.release_sha`` and wait; raise GateError on failure."""
    clock = _Clock(sleep, monotonic, now or (lambda: datetime.now(UTC)))
    run = _Run(
        req,
        clock,
        ArtifactBuilder(req.release_sha, req.stack, started_at=clock.now()),
        clock.monotonic(),
    )
    _begin(run, credential, client_options or {})
    execution = run.execution
    assert execution is not None  # _begin raised otherwise
    try:
        status, read_error = _await(run)
    except Exception as exc:
        reason = f"reading the job execution failed: {_describe(exc)}"
        raise run.fail("azure-api-error", run.status or "Unknown", reason + run.stop()) from exc
    except BaseException as exc:
        # aborted (Ctrl-C, cancel): the migration must not keep running unattended
        reason = f"the gate was aborted ({type(exc).__name__}) while the execution ran"
        run.fail("execution-unknown", run.status or "Unknown", reason + run.stop())
        raise

    try:
        logs = _fetch_logs(req, execution, credential, clock, logs_client_options or {})
    except Exception as exc:  # the verdict stands without logs; the artifact must be written
        log.warning("fetching the execution's logs failed: %s", _describe(exc))
        logs = None
    if logs is not None:
        run.artifact.set_logs(logs, "log-analytics")
    else:
        run.artifact.set_logs(run.artifact.status_lines(), "job-execution")

    if status == SUCCEEDED:
        elapsed = run.elapsed_ms()
        run.artifact.finish(SUCCEEDED, None, None, clock.now(), elapsed)
        path = run.artifact.write(req.artifact_dir)
        return GateResult(execution, SUCCEEDED, path, elapsed, run.artifact.logs_source)
    if status is not None and status in FAILED_STATUSES:
        detail = run.artifact.runner_reason()
        raise run.fail(
            FAILED_STATUSES[status], status, f"migration job execution ended {status}{detail}"
        )
    limit = (
        f"{req.total_seconds:.0f}s (replicaTimeout {req.deadline_seconds:.0f}s"
        f" + start allowance {req.start_allowance_seconds:.0f}s)"
    )
    if read_error is not None:
        reason = f"reading the job execution kept failing for {limit}: {_describe(read_error)}"
        raise run.fail("azure-api-error", status or "Unknown", reason + run.stop())
    reason = f"migration job execution still {status} after {limit}"
    raise run.fail("execution-timeout", "TimedOut", reason + run.stop())


def request_from_props(props: Mapping[str, Any]) -> GateRequest:
    """Build a request from the Pulumi resource's (camelCase, JSON-like) properties."""
    allowance = props.get("startAllowanceSeconds")
    return GateRequest(
        job_id=str(props["jobId"]),
        release_sha=str(props["releaseSha"]),
        stack=props.get("stack"),
        deadline_seconds=float(props["deadlineSeconds"]),
        start_allowance_seconds=(
            DEFAULT_START_ALLOWANCE_SECONDS if allowance is None else float(allowance)
        ),
        artifact_dir=Path(str(props["artifactDir"])),
        image=str(props["image"]) if props.get("image") else None,
        workspace_id=props.get("workspaceId") or None,
        arm_endpoint=str(props.get("armEndpoint") or "https://management.azure.com"),
    )


def result_json(result: GateResult) -> str:
    """A compact, log-friendly summary of a succeeded run."""
    return json.dumps(
        {
            "execution": result.execution_name,
            "status": result.status,
            "elapsedMs": result.elapsed_ms,
            "artifact": str(result.artifact_path),
        }
    )
