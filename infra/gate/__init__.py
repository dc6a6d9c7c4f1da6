"""The migration gate: one awaited execution of the migration job per release.

Modules: :mod:`~infra.gate.request` (what a run is asked, every default), :mod:`~infra.gate.arm`
(start, await, stop: the ARM logic), :mod:`~infra.gate.executions` (ARM's JSON, independent of the
SDK's model layout), :mod:`~infra.gate.logs` (Log Analytics, waited for until complete),
:mod:`~infra.gate.artifact` (``migration.json``), :mod:`~infra.gate.credentials` (GitHub OIDC in
Actions), :mod:`~infra.gate.clouds` (endpoints per cloud), :mod:`~infra.gate.transport` (HTTP
details), :mod:`~infra.gate.followup` (``python -m infra.gate logs``) and
:mod:`~infra.gate.propagation` (the first deploy's wait for role assignments) and
:mod:`~infra.gate.provider` (the Pulumi resources). Values shared with the runner come from
:mod:`migration.contract`.
"""

from infra.gate.arm import run_gate
from infra.gate.executions import FAILED_STATUSES, SUCCEEDED
from infra.gate.request import (
    DEFAULT_START_ALLOWANCE_SECONDS,
    MAX_POLL_SECONDS,
    GateRequest,
    GateResult,
    parse_job_id,
    request_from_props,
    result_json,
)
from infra.gate.transport import LoopbackBearerPolicy, LoopbackLogsBearerPolicy

__all__ = [
    "DEFAULT_START_ALLOWANCE_SECONDS",
    "FAILED_STATUSES",
    "MAX_POLL_SECONDS",
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
