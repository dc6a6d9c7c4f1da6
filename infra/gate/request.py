"""What one gate run is asked to do (:class:`GateRequest`) and what a succeeded run returns.

All plain values: a request crosses the Pulumi boundary as the resource's camelCase properties
(:func:`request_from_props`). Every default of the gate is a field default here, in one place.
The Log Analytics endpoint follows the cloud of ``arm_endpoint`` unless set explicitly
(a local test server plays both).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.errors import GateError
from infra.gate.clouds import cloud_of

__all__ = [
    "DEFAULT_START_ALLOWANCE_SECONDS",
    "MAX_POLL_SECONDS",
    "GateRequest",
    "GateResult",
    "parse_job_id",
    "request_from_props",
    "result_json",
]

DEFAULT_START_ALLOWANCE_SECONDS = 120.0
# A terminal state is noticed within this many seconds (unless ARM throttles the reads).
MAX_POLL_SECONDS = 5.0
_JOB_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.App/jobs/(?P<job>[^/]+)$",
    re.IGNORECASE,
)


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
    """Everything one gate run needs.

    ``deadline_seconds`` is the job's replicaTimeout; the gate waits that plus
    ``start_allowance_seconds``. ``image`` is informational (the Job resource decides what runs).
    ``logs_wait_seconds`` bounds the wait for a complete console log after a FAILED run; a
    succeeded run never waits for logs (``python -m infra.gate logs`` collects them afterwards).
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
    logs_endpoint: str | None = None
    poll_initial_seconds: float = 1.0
    poll_max_seconds: float = MAX_POLL_SECONDS
    logs_wait_seconds: float = 180.0
    appear_wait_seconds: float = 60.0
    stop_wait_seconds: float = 60.0

    @property
    def job(self) -> tuple[str, str, str]:
        """(subscription, resource group, job name) parsed from ``job_id``."""
        return parse_job_id(self.job_id)

    @property
    def total_seconds(self) -> float:
        return self.deadline_seconds + self.start_allowance_seconds

    @property
    def poll_cap(self) -> float:
        """The longest pause between two status reads: never above :data:`MAX_POLL_SECONDS`."""
        return max(min(self.poll_max_seconds, MAX_POLL_SECONDS), 0.0)

    @property
    def logs_url(self) -> str:
        return (self.logs_endpoint or cloud_of(self.arm_endpoint).logs_endpoint).rstrip("/")


@dataclass(frozen=True)
class GateResult:
    """A succeeded gate run."""

    execution_name: str
    status: str
    artifact_path: Path
    elapsed_ms: int
    logs_source: str


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
