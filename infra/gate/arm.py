"""The migration gate: start one execution of the migration job, await it, record what happened.

Plain Azure SDK code with no Pulumi in it; :mod:`infra.gate.provider` adapts it to a Pulumi
resource. :func:`run_gate` lists the job's executions, starts one with ``jobs.begin_start`` and no
template override (the Job resource already carries the release image and env, including
``MIGRATION_RELEASE_SHA``; an override would run a template no policy checked), identifies the new
execution by a name that did not exist before (never an older run of the same release), reads
``job_execution`` every second, backing off to at most :data:`~infra.gate.request.MAX_POLL_SECONDS`
(so a terminal state is noticed within 5 s; a throttled read waits what ARM's ``Retry-After``
asks) until Succeeded, Failed, Stopped or Degraded (any other status, published or not, keeps
polling) or the deadline, and writes ``<artifact_dir>/<sha>/migration.json`` whatever the outcome.
Anything but Succeeded raises :class:`~infra.errors.GateError` whose code is the artifact's
``reasonCode``. Executions are read as ARM's JSON (:mod:`infra.gate.executions`), so any admitted
SDK release works.

Logs: a succeeded run does not wait for Log Analytics (ingestion takes 20 s to minutes and the
rollout must not). It leaves ``gate-followup.json`` next to the artifact, and ``python -m
infra.gate logs --sha <sha>`` (a workflow step after ``pulumi up``) merges the console log into
the same artifact. A failed run waits, bounded by ``logs_wait_seconds``, for a complete log
(:mod:`infra.gate.logs`), because the runner's verdict is what the on-call engineer reads first.

Deadline: the job's ``replicaTimeout`` (``deadline_seconds``) plus ``start_allowance_seconds``.
The gate's clock starts before ``begin_start``, ACA's when the replica starts, so the allowance
lets ACA's own timeout fire first. When the gate gives up anyway (deadline, an API error after the
start, an abort such as Ctrl-C) or the execution ends Degraded (ACA may still run a replica),
it stops the execution with ``jobs.begin_stop_execution`` (best effort, bounded by
``stop_wait_seconds``) and records that in the timeline, so the next ``pulumi up`` never runs a
second migration next to a forgotten one.

Transient ARM answers (429 with Retry-After, 5xx) are retried by the SDK's ``RetryPolicy``; pass
``retry_total``/``retry_backoff_factor`` in ``client_options`` to tune it. A status read that still
fails with a transient error is retried by the gate until the deadline; an authentication error
never is (:func:`~infra.gate.transport.is_transient`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.core.credentials import TokenCredential

from infra.errors import GateError
from infra.gate.artifact import ArtifactBuilder
from infra.gate.executions import (
    FAILED_STATUSES,
    SUCCEEDED,
    Execution,
    execution_of,
    is_terminal,
    raw_body,
    rest_json,
)
from infra.gate.logs import fetch_logs
from infra.gate.request import GateRequest, GateResult, parse_job_id
from infra.gate.transport import (
    LoopbackBearerPolicy,
    describe,
    is_loopback,
    is_transient,
    retry_after,
)

__all__ = ["run_gate"]

log = logging.getLogger(__name__)


@dataclass
class _Clock:
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def _arm_client(req: GateRequest, credential: TokenCredential, options: Mapping[str, Any]) -> Any:
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

    subscription, _, _ = req.job
    scope = "https://management.azure.com/.default"
    # The token's audience follows the endpoint (sovereign clouds), not the public default.
    kwargs: dict[str, Any] = {"polling_interval": req.poll_initial_seconds,
                              "credential_scopes": [req.arm_endpoint.rstrip("/") + "/.default"],
                              **options}
    if is_loopback(req.arm_endpoint):
        kwargs.setdefault("authentication_policy", LoopbackBearerPolicy(credential, scope))
    return ContainerAppsAPIClient(credential, subscription, base_url=req.arm_endpoint, **kwargs)


def _executions(client: Any, req: GateRequest) -> dict[str, Execution]:
    """Every execution of the job (the SDK follows ``nextLink`` pages): name -> execution."""
    _, rg, job = req.job
    found = (execution_of(rest_json(e)) for e in client.jobs_executions.list(rg, job))
    return {e.name: e for e in found if e.name}


def _read(client: Any, req: GateRequest, name: str) -> Execution:
    _, rg, job = req.job
    doc = client.job_execution(rg, job, name, cls=raw_body)
    return execution_of(doc if isinstance(doc, Mapping) else rest_json(doc))


def _start(client: Any, req: GateRequest, remaining: float) -> str | None:
    """Start one execution (no template override); its name when ARM said it, else None.

    ARM answers 202 with a ``Location`` and no body; the SDK's poller follows it, and the final
    answer names the execution (JobExecutionBase) or, in some regions, carries no body either.
    """
    _, rg, job = req.job
    poller = client.jobs.begin_start(rg, job, polling_interval=req.poll_initial_seconds,
                                     cls=raw_body)
    result = poller.result(timeout=max(remaining, 0.0))
    doc = result if isinstance(result, Mapping) else rest_json(result)
    name = doc.get("name")
    return str(name) if isinstance(name, str) and name else None


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
        new = set(_executions(client, req)) - before
        if len(new) == 1:
            return next(iter(new)), new
        if new or clock.monotonic() + delay > deadline:
            return None, new
        clock.sleep(delay)
        delay = min(delay * 2 or 1.0, req.poll_cap)


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
        detail = describe(exc)
        log.warning("stopping execution %s failed: %s", execution, detail)
        artifact.event("StopFailed", clock.now(), detail)
        return f"; stopping the execution failed ({detail}), stop it by hand"
    if not poller.done():
        artifact.event("StopPending", clock.now(), f"not confirmed within {wait:.0f}s")
        return "; stop requested, not yet confirmed"
    artifact.event("StopAccepted", clock.now(), execution)
    return "; the execution was stopped"


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
            "start-failed", "Unknown", f"listing the job's executions failed: {describe(exc)}"
        ) from exc
    before = set(existing)
    # An execution not yet finished (a CI run cancelled or killed mid-gate, whose provider host
    # could not stop it, or a manual start) must finish or be stopped first: never a second
    # migration next to it. A status outside the published enum counts as not finished.
    running = sorted(n for n, e in existing.items() if not is_terminal(e.status))
    if running:
        raise run.fail(
            "start-failed", "Unknown",
            f"execution(s) {', '.join(running)} of the migration job are still running; wait "
            "for them or stop them (az containerapp job stop), then rerun `pulumi up`")
    try:
        named = _start(run.client, req, run.remaining())
    except BaseException as exc:
        reason = f"starting the migration job failed: {describe(exc)}"
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
                "start-failed", "Unknown", f"finding the new execution failed: {describe(exc)}"
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
    assert run.execution is not None
    delay = min(req.poll_initial_seconds, req.poll_cap)
    failing: BaseException | None = None
    while True:
        pause = delay
        try:
            current = _read(run.client, req, run.execution)
        except Exception as exc:
            if not is_transient(exc):
                raise
            if failing is None:
                artifact.event("ReadRetry", clock.now(), describe(exc))
            failing = exc
            # throttled: wait what ARM asked for, even past the usual interval
            pause = max(delay, retry_after(exc) or 0.0)
        else:
            failing = None
            if current.status != run.status:
                run.status = current.status
                artifact.event(current.status, clock.now(), current.message)
                if current.start_time:
                    artifact.started_at = current.start_time
            if is_terminal(run.status):
                return run.status, None
        if run.remaining() <= 0:
            return run.status, failing
        clock.sleep(max(min(pause, run.remaining()), 0.0))
        delay = min(delay * 2 or req.poll_cap, req.poll_cap)


def _leave_followup(run: _Run) -> None:
    """Say where the console log can be collected once ingested (a workspace is configured)."""
    req = run.req
    run.artifact.write_followup(req.artifact_dir, {
        "jobId": req.job_id, "workspaceId": req.workspace_id, "armEndpoint": req.arm_endpoint,
        "logsEndpoint": req.logs_url})


def _collect_failure_logs(run: _Run, credential: TokenCredential,
                          options: Mapping[str, Any]) -> None:
    """After a failure: wait (bounded) for a complete console log, tolerating a new workspace."""
    req, clock = run.req, run.clock
    _, _, job = req.job
    if not req.workspace_id or run.execution is None:
        run.artifact.set_logs(run.artifact.status_lines(), "job-execution")
        return
    try:
        answer = fetch_logs(
            workspace_id=req.workspace_id, job=job, execution=run.execution,
            endpoint=req.logs_url, credential=credential, wait_seconds=req.logs_wait_seconds,
            poll_seconds=req.poll_cap, sleep=clock.sleep, monotonic=clock.monotonic,
            options=options)
    except Exception as exc:  # the verdict stands without logs; the artifact must be written
        log.warning("fetching the execution's logs failed: %s", describe(exc))
        answer = None
    if answer is None:
        run.artifact.set_logs(run.artifact.status_lines(), "job-execution")
        run.artifact.event("LogsUnavailable", clock.now(), "no console lines in the workspace")
        _leave_followup(run)
        return
    run.artifact.set_logs(answer.lines, "log-analytics")
    run.artifact.event("LogsComplete" if answer.complete else "LogsIncomplete", clock.now(),
                       answer.detail)
    if not answer.complete:
        _leave_followup(run)


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
    run.artifact.clear_followup(req.artifact_dir)
    _begin(run, credential, client_options or {})
    execution = run.execution
    assert execution is not None  # _begin raised otherwise
    try:
        status, read_error = _await(run)
    except Exception as exc:
        reason = f"reading the job execution failed: {describe(exc)}"
        raise run.fail("azure-api-error", run.status or "Unknown", reason + run.stop()) from exc
    except BaseException as exc:
        # aborted (Ctrl-C, cancel): the migration must not keep running unattended
        reason = f"the gate was aborted ({type(exc).__name__}) while the execution ran"
        run.fail("execution-unknown", run.status or "Unknown", reason + run.stop())
        raise

    if status == SUCCEEDED:
        # the rollout goes on now; the console log follows (`python -m infra.gate logs`)
        run.artifact.set_logs(run.artifact.status_lines(), "job-execution")
        elapsed = run.elapsed_ms()
        run.artifact.finish(SUCCEEDED, None, None, clock.now(), elapsed)
        path = run.artifact.write(req.artifact_dir)
        if req.workspace_id:
            _leave_followup(run)
        return GateResult(execution, SUCCEEDED, path, elapsed, run.artifact.logs_source)
    if status is not None and status in FAILED_STATUSES:
        # ACA may keep a replica of a Degraded execution alive: never leave it running
        stopped = run.stop() if status == "Degraded" else ""
        _collect_failure_logs(run, credential, logs_client_options or {})
        detail = run.artifact.runner_reason()
        raise run.fail(
            FAILED_STATUSES[status], status,
            f"migration job execution ended {status}{detail}{stopped}")
    limit = (
        f"{req.total_seconds:.0f}s (replicaTimeout {req.deadline_seconds:.0f}s"
        f" + start allowance {req.start_allowance_seconds:.0f}s)"
    )
    # stop first: the logs wait must not let the migration run on unattended
    if read_error is not None:
        reason = f"reading the job execution kept failing for {limit}: {describe(read_error)}"
        code, final = "azure-api-error", status or "Unknown"
    else:
        reason = f"migration job execution still {status} after {limit}"
        code, final = "execution-timeout", "TimedOut"
    reason += run.stop()
    _collect_failure_logs(run, credential, logs_client_options or {})
    raise run.fail(code, final, reason)
