"""Builds the gate's ``migration.json`` (schemas/migration.schema.json) as a run unfolds.

The runner inside the job writes the same file in its own container, which the gate cannot read;
the runner's ``--json`` output line reaches the console logs, though, so when the logs carry it
the gate copies the runner's execution summary, lock wait and blockers (checked field by field,
since an artifact that fails its schema is worse than a thinner one).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["ArtifactBuilder"]

MAX_LOG_LINES = 200
MAX_LINE = 2000
MAX_REASON = 4000
_SQLSTATE = re.compile(r"^[0-9A-Z]{5}$")

# schemas/migration.schema.json, executionStatus
EXECUTION_STATUSES = frozenset({"Succeeded", "Failed", "Stopped", "Degraded", "Unknown",
                                "Running", "Processing", "TimedOut", "Skipped"})


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _position(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)


def _empty_summary() -> dict[str, Any]:
    return {"applied": [], "pending": [], "skipped": [], "failing": None}


def _valid_summary(value: Any) -> bool:
    if not isinstance(value, dict) or set(value) - {
        "applied",
        "pending",
        "skipped",
        "failing",
        "boundaries",
    }:
        return False
    lists_ok = all(isinstance(value.get(k), list) for k in ("applied", "pending", "skipped"))
    applied_ok = lists_ok and all(
        isinstance(a, dict)
        and isinstance(a.get("file"), str)
        and isinstance(a.get("durationMs"), int)
        and a["durationMs"] >= 0
        and isinstance(a.get("transactional"), bool)
        and set(a) <= {"file", "durationMs", "transactional"}
        for a in value["applied"]
    )
    names_ok = lists_ok and all(
        isinstance(n, str) for k in ("pending", "skipped") for n in value[k]
    )
    failing = value.get("failing", "missing")
    failing_ok = failing is None or (
        isinstance(failing, dict)
        and {"file", "line", "sqlstate", "message"} <= set(failing)
        and set(failing) <= {"file", "line", "column", "sqlstate", "message", "code"}
        and isinstance(failing["file"], str)
        and isinstance(failing["message"], str)
        and len(failing["message"]) <= MAX_REASON
        and all(_position(failing.get(k)) for k in ("line", "column"))
        and (failing["sqlstate"] is None or bool(_SQLSTATE.match(str(failing["sqlstate"]))))
    )
    boundaries = value.get("boundaries", [])
    boundaries_ok = isinstance(boundaries, list) and all(
        isinstance(b, dict)
        and isinstance(b.get("before"), str)
        and set(b) <= {"before", "reason", "detail"}
        and b.get("reason") in ("non-transactional", "enum-value-used-later")
        for b in boundaries
    )
    return applied_ok and names_ok and failing_ok and boundaries_ok


class ArtifactBuilder:
    """Accumulates the gate's observations; ``write`` renders the schema's document."""

    def __init__(self, release_sha: str, stack: str | None, *, started_at: datetime) -> None:
        self.release_sha = release_sha
        self.stack = stack
        self.execution_name: str | None = None
        self.started_at: datetime = started_at
        self.timeline: list[dict[str, Any]] = []
        self.logs: list[str] = []
        self.logs_source = "job-execution"
        self.summary: dict[str, Any] = _empty_summary()
        self.lock_wait_ms = 0
        self.blockers: list[dict[str, Any]] = []
        self.runner_reason_code: str | None = None
        self.runner_message: str | None = None
        self._final: dict[str, Any] = {}

    def event(self, status: str, at: datetime, detail: str | None = None) -> None:
        self.timeline.append({"status": status, "at": _iso(at), "detail": detail})

    def status_lines(self) -> list[str]:
        """Logs when no workspace answers: the status timeline as readable lines."""
        return [
            f"{e['at']} {e['status']}" + (f": {e['detail']}" if e.get("detail") else "")
            for e in self.timeline
        ]

    def set_logs(self, lines: list[str], source: str) -> None:
        tail = lines[-MAX_LOG_LINES:]
        self.logs = [line[:MAX_LINE] for line in tail]
        self.logs_source = source
        for line in lines:
            self._adopt_runner_json(line)

    def _adopt_runner_json(self, line: str) -> None:
        text = line.strip()
        if not (text.startswith("{") and '"schemaVersion"' in text):
            return
        try:
            doc = json.loads(text)
        except ValueError:
            return
        if not isinstance(doc, dict) or doc.get("schemaVersion") != 1:
            return
        if _valid_summary(doc.get("executionSummary")):
            self.summary = doc["executionSummary"]
        if isinstance(doc.get("lockWaitMs"), int) and doc["lockWaitMs"] >= 0:
            self.lock_wait_ms = doc["lockWaitMs"]
        blockers = doc.get("blockers")
        keys = {"pid", "application", "state", "xactAgeMs", "query"}
        if isinstance(blockers, list) and all(
            isinstance(b, dict) and keys <= set(b) and isinstance(b["pid"], int) for b in blockers
        ):
            allowed = keys | {"user", "waitEvent"}
            self.blockers = [{k: v for k, v in b.items() if k in allowed} for b in blockers[:50]]
        if isinstance(doc.get("reasonCode"), str):
            self.runner_reason_code = doc["reasonCode"]
            self.runner_message = doc.get("reason") if isinstance(doc.get("reason"), str) else None

    def runner_reason(self) -> str:
        """`` (runner: <code>: <message>)`` when the runner's own verdict was in the logs."""
        if not self.runner_reason_code:
            return ""
        msg = f": {self.runner_message}" if self.runner_message else ""
        return f" (runner: {self.runner_reason_code}{msg})"

    def finish(
        self, status: str, code: str | None, reason: str | None, at: datetime, elapsed_ms: int
    ) -> None:
        if not self.timeline or self.timeline[-1]["status"] != status:
            self.event(status, at, reason)
        # ARM may report a status the schema does not list (e.g. Pending): the timeline keeps
        # the raw one, the summary field stays within the schema.
        self._final = {
            "executionStatus": status if status in EXECUTION_STATUSES else "Unknown",
            "reasonCode": code,
            "reason": reason[:MAX_REASON] if reason else None,
            "finishedAt": _iso(at),
            "elapsedMs": max(elapsed_ms, 0),
        }
        if not self.logs:
            self.logs = self.status_lines()[-MAX_LOG_LINES:]

    def document(self) -> dict[str, Any]:
        return {
            "schemaVersion": 1,
            "releaseSha": self.release_sha,
            "stack": self.stack,
            "executionName": self.execution_name,
            **{k: self._final[k] for k in ("executionStatus", "reasonCode", "reason")},
            "executionSummary": self.summary,
            "statusTimeline": self.timeline,
            "startedAt": _iso(self.started_at),
            "finishedAt": self._final["finishedAt"],
            "elapsedMs": self._final["elapsedMs"],
            "lockWaitMs": self.lock_wait_ms,
            "blockers": self.blockers,
            "logs": self.logs,
            "logsSource": self.logs_source,
        }

    def write(self, artifact_dir: Path) -> Path:
        """Write ``<artifact_dir>/<sha>/migration.json`` atomically (readers never see half)."""
        target = artifact_dir / self.release_sha / "migration.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".migration.", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.document(), fh, indent=2)
            fh.write("\n")
        os.replace(tmp, target)
        return target
