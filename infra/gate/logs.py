"""The execution's console logs from Log Analytics, waited for until they are complete.

Container logs reach ``ContainerAppConsoleLogs_CL`` in batches, 20 seconds to minutes after they
were written, so the first non-empty answer is often a prefix without the runner's final JSON
line. A log counts as complete when that summary line (``{"schemaVersion": ...}``, the last line
of ``python -m migration up --json``) is present, or when two answers in a row, one poll apart,
return the same non-zero number of lines; otherwise the wait is bounded. In a workspace that
never received a container log the table does not exist yet and Log Analytics answers 400
("Failed to resolve table"): that is "no lines yet", not a failure. Authentication errors end
the wait at once (retrying them cannot help).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from infra.gate.transport import LoopbackLogsBearerPolicy, describe, is_loopback

__all__ = ["LogAnswer", "fetch_logs", "has_summary", "query_text"]

log = logging.getLogger(__name__)

TABLE = "ContainerAppConsoleLogs_CL"
# ACA execution and job names: lowercase alphanumerics and dashes. Checked before they are put
# into a KQL query, so a name can never change the query's meaning.
_KQL_SAFE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class LogAnswer:
    """What the wait ended with: the lines (oldest first) and whether they are complete."""

    lines: list[str]
    complete: bool
    detail: str


def query_text(job: str, execution: str) -> str | None:
    """The KQL for one execution's console lines; None when a name is not KQL-safe."""
    if not (_KQL_SAFE.match(execution) and _KQL_SAFE.match(job)):
        return None
    return (
        f"{TABLE}"
        f" | where ContainerJobName_s == '{job}' and ContainerGroupName_s startswith '{execution}'"
        # The newest 200 (the runner's JSON summary is its last line), put back in order below.
        " | project TimeGenerated, Log_s | order by TimeGenerated desc | take 200"
    )


def has_summary(lines: list[str]) -> bool:
    """True when the runner's one-line JSON report is among the lines."""
    for line in reversed(lines):
        text = line.strip()
        if text.startswith("{") and '"schemaVersion"' in text:
            try:
                doc = json.loads(text)
            except ValueError:
                continue
            if isinstance(doc, dict) and "schemaVersion" in doc:
                return True
    return False


def _missing_table(exc: HttpResponseError) -> bool:
    text = str(exc)
    return exc.status_code == 400 and (TABLE in text or "resolve table" in text.lower())


def fetch_logs(
    *,
    workspace_id: str,
    job: str,
    execution: str,
    endpoint: str,
    credential: TokenCredential,
    wait_seconds: float,
    poll_seconds: float,
    sleep: Callable[[float], None],
    monotonic: Callable[[], float],
    options: Mapping[str, Any] | None = None,
) -> LogAnswer | None:
    """Query until the log is complete or ``wait_seconds`` passed; None when unavailable."""
    query = query_text(job, execution)
    if query is None:
        return None
    from azure.monitor.query import LogsQueryClient, LogsQueryStatus

    kwargs: dict[str, Any] = dict(options or {})
    # the token's audience is the cloud's Log Analytics endpoint (sovereign clouds differ)
    kwargs.setdefault("audience", endpoint)
    if is_loopback(endpoint):
        kwargs.setdefault("authentication_policy",
                          LoopbackLogsBearerPolicy(credential, endpoint + "/.default"))
    client = LogsQueryClient(credential, endpoint=endpoint + "/v1", **kwargs)
    deadline = monotonic() + max(wait_seconds, 0.0)
    lines: list[str] = []
    previous: int | None = None
    detail = "no console lines yet"
    while True:
        try:
            response = client.query_workspace(workspace_id, query, timespan=timedelta(days=1))
        except ClientAuthenticationError as exc:
            log.warning("log analytics refused the credential: %s", describe(exc))
            return LogAnswer(lines, False, f"authentication failed: {describe(exc)}") if lines \
                else None
        except HttpResponseError as exc:
            if exc.status_code in (401, 403):
                log.warning("log analytics refused the query: %s", describe(exc))
                return LogAnswer(lines, False, describe(exc)) if lines else None
            detail = f"{TABLE} does not exist yet" if _missing_table(exc) else describe(exc)
        except Exception as exc:  # connection errors: the next poll may get through
            detail = describe(exc)
        else:
            if response.status in (LogsQueryStatus.SUCCESS, LogsQueryStatus.PARTIAL):
                tables = getattr(response, "tables", None) or getattr(response, "partial_data", [])
                lines = [str(row[1]) for table in tables for row in table.rows][::-1]
                if has_summary(lines):
                    return LogAnswer(lines, True, "the runner's summary line is present")
                if lines and previous == len(lines):
                    return LogAnswer(lines, True, f"{len(lines)} lines, stable over two polls")
                previous = len(lines)
                detail = f"{len(lines)} lines so far, no summary line"
        if monotonic() + poll_seconds > deadline:
            log.info("console logs incomplete after %.0fs: %s", wait_seconds, detail)
            return LogAnswer(lines, False, detail) if lines else None
        sleep(poll_seconds)
