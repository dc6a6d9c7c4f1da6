"""The diagnostics artifact `.artifacts/deploy/<sha>/migration.json` (schema version 1).

Its JSON Schema is `schemas/migration.schema.json`; the Pulumi migration gate writes the
same file from the job execution's status and logs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .contract import LOG_LINE_MAX, LOG_TAIL, SCHEMA_VERSION


def now() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z") if dt else None


@dataclass
class Report:
    release_sha: str
    stack: str | None = None
    started_at: datetime = field(default_factory=now)
    finished_at: datetime | None = None
    status: str = "Running"
    reason_code: str | None = None
    reason: str | None = None
    applied: list[dict[str, Any]] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    boundaries: list[dict[str, Any]] = field(default_factory=list)
    failing: dict[str, Any] | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    lock_wait_ms: int = 0
    attempts: int = 0
    blockers: list[dict[str, Any]] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    logs_source: str = "runner"

    def mark(self, status: str, detail: str | None = None) -> None:
        self.timeline.append({"status": status, "at": iso(now()), "detail": detail})

    def log(self, line: str) -> None:
        self.logs.append(line[:LOG_LINE_MAX])
        if len(self.logs) > LOG_TAIL:
            del self.logs[: len(self.logs) - LOG_TAIL]

    def to_json(self) -> dict[str, Any]:
        finished = self.finished_at or now()
        return {
            "schemaVersion": SCHEMA_VERSION,
            "releaseSha": self.release_sha,
            "stack": self.stack,
            "executionStatus": self.status,
            "reasonCode": self.reason_code,
            "reason": self.reason[:4000] if self.reason else None,
            "executionSummary": {
                "applied": self.applied,
                "pending": self.pending,
                "skipped": self.skipped,
                "boundaries": self.boundaries,
                "failing": self.failing,
            },
            "statusTimeline": self.timeline,
            "startedAt": iso(self.started_at),
            "finishedAt": iso(self.finished_at),
            "elapsedMs": max(0, int((finished - self.started_at).total_seconds() * 1000)),
            "lockWaitMs": self.lock_wait_ms,
            "attempts": self.attempts,
            "blockers": self.blockers[:50],
            "logs": self.logs[-LOG_TAIL:],
            "logsSource": self.logs_source,
        }


def write(report: Report, artifact_dir: Path) -> Path:
    """Write atomically (temp file + rename) so a reader never sees half a file."""
    target_dir = artifact_dir / report.release_sha
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / "migration.json"
    tmp = target.with_suffix(f".json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target
