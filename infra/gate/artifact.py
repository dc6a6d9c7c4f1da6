"""Builds the gate's ``migration.json`` (schemas/migration.schema.json) as a run unfolds.

The runner inside the job writes the same file in its own container, which the gate cannot read;
the runner's ``--json`` output line reaches the console logs, though, so when the logs carry it
the gate copies the runner's execution summary, lock wait and blockers (checked field by field,
since an artifact that fails its schema is worse than a thinner one). Limits and names are the
runner's own (:mod:`migration.contract`). A written artifact can be loaded back
(:meth:`ArtifactBuilder.load`) so the logs collected after a succeeded run land in the same file;
``gate-followup.json`` next to it says where to collect them from.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from migration.contract import (
    ARTIFACT_FILE,
    BLOCKERS_MAX,
    BOUNDARY_REASONS,
    EXECUTION_STATUSES,
    LOG_LINE_MAX,
    LOG_TAIL,
    REASON_MAX,
    SCHEMA_VERSION,
    SUMMARY_KEYS,
)

__all__ = ["FOLLOWUP_FILE", "ArtifactBuilder"]

FOLLOWUP_FILE = "gate-followup.json"
_SQLSTATE = re.compile(r"^[0-9A-Z]{5}$")


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _position(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)


def _empty_summary() -> dict[str, Any]:
    return {"applied": [], "pending": [], "skipped": [], "failing": None}


def _valid_summary(value: Any) -> bool:
    if not isinstance(value, dict) or set(value) - SUMMARY_KEYS:
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
        and len(failing["message"]) <= REASON_MAX
        and all(_position(failing.get(k)) for k in ("line", "column"))
        and (failing["sqlstate"] is None or bool(_SQLSTATE.match(str(failing["sqlstate"]))))
    )
    boundaries = value.get("boundaries", [])
    boundaries_ok = isinstance(boundaries, list) and all(
        isinstance(b, dict)
        and isinstance(b.get("before"), str)
        and set(b) <= {"before", "reason", "detail"}
        and b.get("reason") in BOUNDARY_REASONS
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
        tail = lines[-LOG_TAIL:]
        self.logs = [line[:LOG_LINE_MAX] for line in tail]
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
        if not isinstance(doc, dict) or doc.get("schemaVersion") != SCHEMA_VERSION:
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
            self.blockers = [{k: v for k, v in b.items() if k in allowed} for b in blockers[:BLOCKERS_MAX]]
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
            "reason": reason[:REASON_MAX] if reason else None,
            "finishedAt": _iso(at),
            "elapsedMs": max(elapsed_ms, 0),
        }
        if not self.logs:
            self.logs = self.status_lines()[-LOG_TAIL:]

    def document(self) -> dict[str, Any]:
        return {
            "schemaVersion": SCHEMA_VERSION,
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
        return _write_json(artifact_dir / self.release_sha / ARTIFACT_FILE, self.document())

    @classmethod
    def load(cls, path: Path) -> ArtifactBuilder:
        """A builder holding a written artifact, to add what was learnt afterwards (the logs)."""
        doc = json.loads(path.read_text(encoding="utf-8"))
        builder = cls(doc["releaseSha"], doc.get("stack"),
                      started_at=datetime.fromisoformat(doc["startedAt"].replace("Z", "+00:00")))
        builder.execution_name = doc.get("executionName")
        builder.timeline = list(doc.get("statusTimeline") or [])
        builder.logs = list(doc.get("logs") or [])
        builder.logs_source = doc.get("logsSource") or "job-execution"
        builder.summary = doc.get("executionSummary") or _empty_summary()
        builder.lock_wait_ms = int(doc.get("lockWaitMs") or 0)
        builder.blockers = list(doc.get("blockers") or [])
        builder._final = {k: doc.get(k) for k in
                          ("executionStatus", "reasonCode", "reason", "finishedAt", "elapsedMs")}
        return builder

    def write_followup(self, artifact_dir: Path, where: dict[str, Any]) -> Path:
        """Leave ``gate-followup.json``: where ``python -m infra.gate logs`` finds the logs."""
        doc = {"releaseSha": self.release_sha, "executionName": self.execution_name, **where}
        return _write_json(artifact_dir / self.release_sha / FOLLOWUP_FILE, doc)

    def clear_followup(self, artifact_dir: Path) -> None:
        (artifact_dir / self.release_sha / FOLLOWUP_FILE).unlink(missing_ok=True)


def _write_json(target: Path, doc: dict[str, Any]) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, target)
    return target
