"""First deploy: the workload identity's role assignments must take effect before ACA checks them.

ACA validates a Key Vault secret reference and the registry pull with the identity the moment the
Job (or an app) is created; role assignments made seconds earlier are not yet effective there, so
a first ``pulumi up`` fails with "Unable to get value using Managed identity ... for secret"
(microsoft/azure-container-apps#722, #1174), and the next one succeeds. ``IdentityPropagation`` is
created after the assignments and before the Job: it waits until ARM shows every assignment
(bounded by ``visible_wait_seconds``), then a settle time for Entra and the data planes to catch
up (``settle_seconds``), and reports both in its outputs. It waits only when the identity or its
assignments change (``diff``), so later deploys pay nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import TokenCredential

from infra.errors import GateError
from infra.gate.transport import LoopbackBearerPolicy, is_loopback

__all__ = ["ROLE_ASSIGNMENT_API", "PropagationReport", "await_role_assignments"]

ROLE_ASSIGNMENT_API = "2022-04-01"


@dataclass(frozen=True)
class PropagationReport:
    visible_after_seconds: float
    settled_seconds: float
    polls: int


def await_role_assignments(
    assignment_ids: Sequence[str],
    *,
    arm_endpoint: str,
    credential: TokenCredential,
    visible_wait_seconds: float = 300.0,
    settle_seconds: float = 60.0,
    poll_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    client_options: Mapping[str, Any] | None = None,
) -> PropagationReport:
    """Wait until ARM reads every assignment (404 means not yet), then settle; GateError if not."""
    from azure.core import PipelineClient
    from azure.core.pipeline.policies import BearerTokenCredentialPolicy, RetryPolicy
    from azure.core.rest import HttpRequest

    base = arm_endpoint.rstrip("/")
    scope = "https://management.azure.com/.default" if is_loopback(base) else base + "/.default"
    auth: Any = (LoopbackBearerPolicy(credential, scope) if is_loopback(base)
                 else BearerTokenCredentialPolicy(credential, scope))
    options = dict(client_options or {})
    client: Any = PipelineClient(base, policies=[RetryPolicy(**options), auth])
    t0 = monotonic()
    pending = list(assignment_ids)
    polls = 0
    while pending:
        polls += 1
        still = []
        for rid in pending:
            response = client.send_request(
                HttpRequest("GET", f"{base}{rid}", params={"api-version": ROLE_ASSIGNMENT_API}))
            if response.status_code == 404:
                still.append(rid)
            elif response.status_code >= 400:
                raise GateError("start-failed",
                                f"reading role assignment {rid} failed: HTTP "
                                f"{response.status_code} {response.text()[:300]}")
        pending = still
        if not pending:
            break
        if monotonic() - t0 + poll_seconds > visible_wait_seconds:
            raise GateError(
                "start-failed",
                f"role assignment(s) {', '.join(pending)} not visible in ARM after "
                f"{visible_wait_seconds:.0f}s; the migration job would fail to read its Key "
                "Vault secret or pull its image; check the deploying identity's RBAC "
                "Administrator role, then rerun `pulumi up`")
        sleep(poll_seconds)
    visible = monotonic() - t0
    sleep(max(settle_seconds, 0.0))
    return PropagationReport(round(visible, 3), settle_seconds, polls)
