"""The migration gate: start one execution of the migration job, await it, record what happened.

Plain Azure SDK code with no Pulumi in it; :mod:`infra.gate_provider` adapts it to a Pulumi
resource. :func:`run_gate` starts an execution with ``jobs.begin_start`` (the release SHA in the
container env), polls ``job_execution`` with exponential backoff until a terminal status
(Succeeded, Failed, Stopped, Degraded; Running, Processing and Unknown keep polling) or the deadline
(the migration timeout plus its margin, which is also the job's ``replicaTimeout``, so ACA stops a
replica the gate gave up on), fetches the execution's console logs from Log Analytics when a
workspace is given, and writes ``<artifact_dir>/<sha>/migration.json`` (schema:
``schemas/migration.schema.json``) whatever the outcome. Anything but Succeeded raises
:class:`~infra.errors.GateError` whose code is the artifact's ``reasonCode``.

Transient ARM answers (429 with Retry-After, 5xx) are retried by the SDK's ``RetryPolicy``; pass
``retry_total``/``retry_backoff_factor`` in ``client_options`` to tune it. Tests point the real
client at a local server: ``arm_endpoint="http://127.0.0.1:<port>"``. azure-core refuses to send a
bearer token over plain HTTP; :class:`LoopbackBearerPolicy` lifts that refusal for loopback hosts
only (it sets the documented ``enforce_https=False`` request option), never for a remote host.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import BearerTokenCredentialPolicy
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy

from infra._gate_artifact import ArtifactBuilder
from infra.errors import GateError

__all__ = [
    "FAILED_STATUSES",
    "KEEP_POLLING",
    "SUCCEEDED",
    "ContainerSpec",
    "EnvVar",
    "GateRequest",
    "GateResult",
    "LoopbackBearerPolicy",
    "LoopbackLogsBearerPolicy",
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
_JOB_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.App/jobs/(?P<job>[^/]+)$",
    re.IGNORECASE,
)
# ACA execution and job names: lowercase alphanumerics and dashes. Checked before they are put
# into a KQL query, so a name can never change the query's meaning.
_KQL_SAFE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class EnvVar:
    """A container env var: a plain value or a reference to a secret of the job."""

    name: str
    value: str | None = None
    secret_ref: str | None = None

    def as_arm(self) -> dict[str, str]:
        if self.secret_ref is not None:
            return {"name": self.name, "secretRef": self.secret_ref}
        return {"name": self.name, "value": self.value or ""}


@dataclass(frozen=True)
class ContainerSpec:
    """The migration container of the execution (it replaces the job's template for one run)."""

    name: str
    image: str
    command: tuple[str, ...]
    env: tuple[EnvVar, ...]
    cpu: float
    memory: str

    def as_arm(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image": self.image,
            "command": list(self.command),
            "env": [e.as_arm() for e in self.env],
            "resources": {"cpu": self.cpu, "memory": self.memory},
        }


@dataclass(frozen=True)
class GateRequest:
    """Everything one gate run needs; all plain values (it crosses the Pulumi boundary)."""

    job_id: str
    release_sha: str
    stack: str | None
    container: ContainerSpec
    deadline_seconds: float
    artifact_dir: Path
    workspace_id: str | None = None
    arm_endpoint: str = "https://management.azure.com"
    logs_endpoint: str = "https://api.loganalytics.io"
    poll_initial_seconds: float = 5.0
    poll_max_seconds: float = 30.0
    logs_wait_seconds: float = 90.0

    @property
    def job(self) -> tuple[str, str, str]:
        """(subscription, resource group, job name) parsed from ``job_id``."""
        m = _JOB_ID.match(self.job_id)
        if m is None:
            raise GateError("start-failed", f"not an ACA job resource ID: {self.job_id!r}")
        return m["sub"], m["rg"], m["job"]


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
    kwargs: dict[str, Any] = {"polling_interval": req.poll_initial_seconds, **options}
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


def _start(client: Any, req: GateRequest, remaining: float) -> str | None:
    """Start one execution; its name, or None when ARM did not say (found by listing)."""
    _, rg, job = req.job
    poller = client.jobs.begin_start(
        rg,
        job,
        template={"containers": [req.container.as_arm()]},
        polling_interval=req.poll_initial_seconds,
    )
    result = poller.result(timeout=max(remaining, 0.0))
    name = getattr(result, "name", None) if result is not None else None
    if name:
        return str(name)
    return _find_execution(client, req)


def _find_execution(client: Any, req: GateRequest) -> str | None:
    """The newest execution of the job that carries this release's SHA in its env."""
    _, rg, job = req.job
    best: tuple[str, str] | None = None
    for execution in client.jobs_executions.list(rg, job):
        props = execution.properties
        containers = (props.template.containers if props and props.template else None) or []
        shas = {
            e.value for c in containers for e in (c.env or []) if e.name == "MIGRATION_RELEASE_SHA"
        }
        if req.release_sha in shas and execution.name:
            started = props.start_time.isoformat() if props.start_time else ""
            if best is None or started > best[0]:
                best = (started, execution.name)
    return best[1] if best else None


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
        " | project TimeGenerated, Log_s | order by TimeGenerated asc | take 200"
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
                return lines
        if clock.monotonic() + delay > deadline:
            return None
        clock.sleep(delay)
        delay = min(delay * 2 or 1.0, req.poll_max_seconds)


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
    t0 = clock.monotonic()
    artifact = ArtifactBuilder(req.release_sha, req.stack, started_at=clock.now())

    def remaining() -> float:
        return req.deadline_seconds - (clock.monotonic() - t0)

    def fail(code: str, status: str, reason: str, execution: str | None = None) -> GateError:
        elapsed = int((clock.monotonic() - t0) * 1000)
        artifact.finish(status, code, reason, clock.now(), elapsed)
        path = artifact.write(req.artifact_dir)
        where = f" (execution {execution})" if execution else ""
        return GateError(
            code, f"{reason}{where}; diagnostics: {path}", artifact=str(path), execution=execution
        )

    client = _arm_client(req, credential, client_options or {})
    artifact.event("Starting", clock.now(), f"job {req.job[2]}, image {req.container.image}")
    try:
        execution = _start(client, req, remaining())
    except GateError:
        raise
    except Exception as exc:
        raise fail(
            "start-failed", "Unknown", f"starting the migration job failed: {_describe(exc)}"
        ) from exc
    if execution is None:
        if remaining() <= 0:
            raise fail(
                "execution-timeout",
                "TimedOut",
                "the job start did not complete before the deadline",
            )
        raise fail(
            "start-failed",
            "Unknown",
            "ARM accepted the start but no execution carries this release",
        )
    artifact.execution_name = execution
    artifact.event("Started", clock.now(), execution)

    _, rg, job = req.job
    status: str | None = None
    delay = req.poll_initial_seconds
    while True:
        try:
            current = client.job_execution(rg, job, execution)
        except Exception as exc:
            raise fail(
                "azure-api-error",
                status or "Unknown",
                f"reading the job execution failed: {_describe(exc)}",
                execution,
            ) from exc
        props = current.properties
        raw_status = props.status if props else None
        # the SDK returns a str-enum for known statuses and a plain str for new ones
        new_status = str(getattr(raw_status, "value", raw_status) or "Unknown")
        if new_status != status:
            status = new_status
            artifact.event(status, clock.now(), props.message if props else None)
            if props and props.start_time:
                artifact.started_at = props.start_time
        if status == SUCCEEDED or status in FAILED_STATUSES:
            break
        if remaining() <= 0:
            break
        clock.sleep(max(min(delay, remaining()), 0.0))
        delay = min(delay * 2, req.poll_max_seconds)

    logs = _fetch_logs(req, execution, credential, clock, logs_client_options or {})
    if logs is not None:
        artifact.set_logs(logs, "log-analytics")
    else:
        artifact.set_logs(artifact.status_lines(), "job-execution")

    if status == SUCCEEDED:
        elapsed = int((clock.monotonic() - t0) * 1000)
        artifact.finish(SUCCEEDED, None, None, clock.now(), elapsed)
        path = artifact.write(req.artifact_dir)
        return GateResult(execution, SUCCEEDED, path, elapsed, artifact.logs_source)
    if status in FAILED_STATUSES:
        detail = artifact.runner_reason()
        raise fail(
            FAILED_STATUSES[status],
            status,
            f"migration job execution ended {status}{detail}",
            execution,
        )
    raise fail(
        "execution-timeout",
        "TimedOut",
        f"migration job execution still {status} after {req.deadline_seconds:.0f}s",
        execution,
    )


def request_from_props(props: Mapping[str, Any]) -> GateRequest:
    """Build a request from the Pulumi resource's (camelCase, JSON-like) properties."""
    c = props["container"]
    env: Sequence[Mapping[str, Any]] = c.get("env") or []
    return GateRequest(
        job_id=str(props["jobId"]),
        release_sha=str(props["releaseSha"]),
        stack=props.get("stack"),
        container=ContainerSpec(
            name=str(c["name"]),
            image=str(props["image"]),
            command=tuple(str(x) for x in c["command"]),
            env=tuple(EnvVar(str(e["name"]), e.get("value"), e.get("secretRef")) for e in env),
            cpu=float(c["cpu"]),
            memory=str(c["memory"]),
        ),
        deadline_seconds=float(props["deadlineSeconds"]),
        artifact_dir=Path(str(props["artifactDir"])),
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
