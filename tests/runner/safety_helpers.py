"""Helpers for the runner's safety tests: run the real CLI as a subprocess, read its tables,
and validate every migration.json it writes against schemas/migration.schema.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import psycopg
from psycopg import sql

from migration.lock import lock_key

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "schemas" / "migration.schema.json"
HISTORY = "gated_release_history"
RUN_LOG = "migration_run_log"
RUNNER_KEY = lock_key("public", HISTORY)
APP_PREFIX = "gated-release-migration"


# -- the artifact's schema ------------------------------------------------------------------

_formats = jsonschema.FormatChecker()


@_formats.checks("date-time", raises=ValueError)  # type: ignore[untyped-decorator]
def _is_date_time(value: object) -> bool:
    # rfc3339-validator is not a dependency; fromisoformat (3.11+) accepts RFC 3339 with "Z"
    # and an explicit offset, and a date-time must carry one.
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None or "T" not in value:
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    return True


@cache
def _validator() -> Any:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=_formats)


def validate_artifact(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "migration.json violates its schema:\n" + "\n".join(
        f"  {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors)
    return doc


# -- running the CLI ------------------------------------------------------------------------

# Variables that would leak from the developer's shell into the runner under test.
_SCRUB = ("DATABASE_URL", "MIGRATE_DB_MIGRATE_ENABLED", "MIGRATE_DB_MIGRATE_RUNNER",
          "DB_MIGRATE_TELEMETRY_ENABLED", "PGPASSWORD", "PGHOST", "PGPORT", "PGUSER",
          "PGDATABASE", "PGSERVICE", "PGAPPNAME", "PGOPTIONS")


def runner_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MIGRATION_") and k not in _SCRUB}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    elapsed_s: float
    artifact_path: Path | None
    artifact: Mapping[str, Any] | None = None

    def __str__(self) -> str:  # shown by pytest when an assertion on the result fails
        return (f"exit {self.code} after {self.elapsed_s:.2f}s\n--- stdout\n{self.stdout}"
                f"\n--- stderr\n{self.stderr}")

    @property
    def error_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip()]


@dataclass
class Runner:
    """Runs ``python -m migration <command>`` against one migrations dir and artifact root."""

    directory: Path
    artifact_root: Path
    database_url: str | None
    release_sha: str = "safety"
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, command: str, *args: str, url: str | None = None,
             artifact_root: Path | None = None) -> list[str]:
        argv = [sys.executable, "-m", "migration", command, "--dir", str(self.directory)]
        db = url if url is not None else self.database_url
        if db:  # "" leaves the URL to the environment (DATABASE_URL)
            argv += ["--database-url", db]
        if command == "up":
            argv += ["--release-sha", self.release_sha,
                     "--artifact-dir", str(artifact_root or self.artifact_root)]
        return [*argv, *args]

    def artifact_file(self, artifact_root: Path | None = None) -> Path:
        return (artifact_root or self.artifact_root) / self.release_sha / "migration.json"

    def popen(self, command: str, *args: str, url: str | None = None,
              artifact_root: Path | None = None, env: Mapping[str, str] | None = None,
              **kw: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(command, *args, url=url, artifact_root=artifact_root),
            cwd=self.directory.parent, env=runner_env({**self.env, **(env or {})}),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)

    def run(self, command: str, *args: str, url: str | None = None,
            artifact_root: Path | None = None, env: Mapping[str, str] | None = None,
            timeout: float = 60) -> Result:
        path = self.artifact_file(artifact_root)
        if command == "up" and path.exists():
            path.unlink()  # so that a stale artifact is never mistaken for this run's
        t0 = time.monotonic()
        proc = subprocess.run(
            self.argv(command, *args, url=url, artifact_root=artifact_root),
            cwd=self.directory.parent, env=runner_env({**self.env, **(env or {})}),
            capture_output=True, text=True, timeout=timeout)
        return finish(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0,
                      path if command == "up" else None)

    def up(self, *args: str, **kw: Any) -> Result:
        return self.run("up", *args, **kw)


def finish(code: int, stdout: str, stderr: str, elapsed: float,
           artifact_path: Path | None) -> Result:
    res = Result(code, stdout, stderr, elapsed, artifact_path)
    if artifact_path is not None and artifact_path.exists():
        res.artifact = validate_artifact(json.loads(artifact_path.read_text(encoding="utf-8")))
    return res


def write_migrations(directory: Path, files: Mapping[str, str | bytes]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body, encoding="utf-8", newline="")


# -- reading the database -------------------------------------------------------------------

def query(url: str, statement: str | sql.Composable,
          params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def table_exists(url: str, name: str, schema: str = "public") -> bool:
    rows = query(url, "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL",
                 (schema, name))
    return bool(rows[0][0])


def history(url: str) -> list[str]:
    if not table_exists(url, HISTORY):
        return []
    return [r[0] for r in query(url, sql.SQL("SELECT name FROM {} ORDER BY name").format(
        sql.Identifier(HISTORY)))]


@dataclass
class RunRow:
    id: int
    run_id: str
    attempt: int
    status: str
    sqlstate: str | None
    message: str | None
    migration: str | None
    backend_pid: int | None
    blockers: list[dict[str, Any]] | None
    finished: bool


def run_log(url: str) -> list[RunRow]:
    if not table_exists(url, RUN_LOG):
        return []
    rows = query(url, sql.SQL(
        "SELECT id, run_id::text, attempt, status, sqlstate, message, migration, backend_pid,"
        " blockers, finished_at IS NOT NULL FROM {} ORDER BY id").format(sql.Identifier(RUN_LOG)))
    return [RunRow(*r) for r in rows]


def text_columns(url: str, tables: Iterable[str]) -> list[str]:
    """Every value of every column of the given tables, as text (jsonb included)."""
    out: list[str] = []
    for t in tables:
        if not table_exists(url, t):
            continue
        for row in query(url, sql.SQL("SELECT to_jsonb(x)::text FROM {} x").format(
                sql.Identifier(t))):
            out.append(row[0])
    return out


def runner_sessions(url: str) -> list[tuple[int, str]]:
    """Backends of this database that belong to a runner (by application_name)."""
    return [(r[0], r[1]) for r in query(
        url, "SELECT pid, application_name FROM pg_stat_activity"
             " WHERE datname = current_database() AND application_name LIKE %s"
             " AND pid <> pg_backend_pid()", (APP_PREFIX + "%",))]


def advisory_holders(url: str, key: int = RUNNER_KEY) -> list[int]:
    return [r[0] for r in query(
        url, "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
             " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
             " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s AND l.objsubid = 1",
        (key,))]


def try_runner_lock(url: str, key: int = RUNNER_KEY) -> bool:
    """Can another session take the runner's lock right now? (Released again at once.)"""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        got = bool(row and row[0])
        if got:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        return got


def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
