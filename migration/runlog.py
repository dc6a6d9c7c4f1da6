"""The run log, written on its own autocommit connection so failures outlive rollbacks."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg

from .errors import ConfigError
from .redact import Redactor
from .tables import HISTORY_COLUMNS, RUN_LOG_COLUMNS, Tables, exists

_SETUP_LOCK = 0x6772_7365_7475_70  # serializes CREATE TABLE IF NOT EXISTS between runners


def ensure_tables(conn: psycopg.Connection[Any], tables: Tables, *, run_log: bool) -> None:
    """Create the runner's tables when missing, and refuse a same-named foreign table.

    Nothing is created when the tables exist, so a role without CREATE on the database (the
    usual least-privilege migration role) runs once an owner created them. Creation takes a
    transaction-level advisory lock: concurrent runners would race on pg_type otherwise.
    """
    wanted = [(tables.history, HISTORY_COLUMNS)] + ([(tables.run_log, RUN_LOG_COLUMNS)]
                                                     if run_log else [])
    if not all(exists(conn, tables.schema, name) for name, _ in wanted):
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK,))
            row = conn.execute("SELECT to_regnamespace(%s) IS NULL", (tables.schema,)).fetchone()
            if row and row[0]:
                conn.execute(tables.create_schema())
            conn.execute(tables.create_history())
            if run_log:
                conn.execute(tables.create_run_log())
    for name, columns in wanted:
        have = {r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(format('%%I.%%I',"
            " %s::text, %s::text)) AND attnum > 0 AND NOT attisdropped",
            (tables.schema, name)).fetchall()}
        missing = sorted(columns - have)
        if missing:
            raise ConfigError(
                f"table {tables.schema}.{name} exists but is not gated-release's (missing "
                f"columns: {', '.join(missing)})",
                hint="another tool owns it: set --history-table / MIGRATION_HISTORY_TABLE "
                     "(or --run-log-table) to a name of our own",
            )


class RunLog:
    """One row per attempt; ``enabled=False`` (DB_MIGRATE_TELEMETRY_ENABLED=0) writes nothing."""

    def __init__(
        self,
        conn: psycopg.Connection[Any] | None,
        tables: Tables,
        redactor: Redactor,
        *,
        release_sha: str,
        host: str,
        runner: str,
        enabled: bool = True,
    ) -> None:
        self.conn = conn
        self.tables = tables
        self.redact = redactor
        self.enabled = enabled and conn is not None
        self.run_id = uuid.uuid4()
        self.release_sha = release_sha
        self.host = host
        self.runner = runner
        self.attempt = 0
        self.row_id: int | None = None

    def start(self, *, backend_pid: int | None, lock_wait_ms: int | None,
              message: str | None = None) -> None:
        self.attempt += 1
        if not self.enabled:
            return
        assert self.conn is not None
        row = self.conn.execute(
            self.tables.insert_run(),
            (self.run_id, self.attempt, "RUNNING", lock_wait_ms, self.release_sha, self.host,
             self.runner, backend_pid, message),
        ).fetchone()
        self.row_id = row[0] if row else None

    def finish(
        self,
        status: str,
        *,
        lock_wait_ms: int | None = None,
        sqlstate: str | None = None,
        message: str | None = None,
        migration: str | None = None,
        blockers: list[dict[str, Any]] | None = None,
    ) -> None:
        if not self.enabled or self.row_id is None:
            return
        assert self.conn is not None
        self.conn.execute(
            self.tables.finish_run(),
            (status, lock_wait_ms, sqlstate, self.redact(message) if message else None,
             migration, json.dumps(blockers) if blockers else None, self.row_id),
        )
        self.row_id = None

    def record(self, status: str, **kw: Any) -> None:
        """A one-shot row (SKIPPED, or a failure before any attempt started)."""
        self.start(backend_pid=kw.pop("backend_pid", None), lock_wait_ms=kw.get("lock_wait_ms"))
        self.finish(status, **kw)

    def reconcile_stale(self) -> int:
        if not self.enabled:
            return 0
        assert self.conn is not None
        own = [self.row_id] if self.row_id is not None else []
        rows = self.conn.execute(
            self.tables.reconcile_stale(),
            (f"[reconciled by run {self.run_id}: the runner exited without finishing]", own),
        ).fetchall()
        return len(rows)
