"""The runner's tables, named by settings and always quoted with sql.Identifier.

* history (and its progress table): the revision store, SQL in ``migration/history.py``.
* run log: one row per attempt of a run, written on a separate autocommit connection so
  that a failure is recorded even though the migration's transaction rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

RUN_STATUSES = ("RUNNING", "SUCCESS", "LOCK_TIMEOUT", "FAILED", "SKIPPED")
HISTORY_COLUMNS = frozenset({"name", "version", "checksum", "applied_at", "duration_ms",
                             "release_sha", "transactional", "run_id"})
RUN_LOG_COLUMNS = frozenset({"id", "run_id", "attempt", "status", "started_at", "finished_at",
                             "lock_wait_ms", "sqlstate", "message", "migration", "release_sha",
                             "host", "runner", "backend_pid", "blockers"})


@dataclass(frozen=True)
class Tables:
    schema: str = "public"
    history: str = "gated_release_history"
    run_log: str = "migration_run_log"

    @property
    def history_id(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.history)

    @property
    def progress(self) -> str:
        """Per-statement progress of unfinished migrations (63 bytes at most, as PostgreSQL)."""
        return f"{self.history[:54]}_progress"

    @property
    def progress_id(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.progress)

    @property
    def run_log_id(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.run_log)

    def create_schema(self) -> sql.Composed:
        return sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))

    def create_history(self) -> sql.Composed:
        from .history import create_history

        return create_history(self)

    def create_run_log(self) -> sql.Composed:
        statuses = sql.SQL(", ").join(sql.Literal(s) for s in RUN_STATUSES)
        return sql.SQL(
            """CREATE TABLE IF NOT EXISTS {t} (
    id bigserial PRIMARY KEY,
    run_id uuid NOT NULL,
    attempt integer NOT NULL,
    status text NOT NULL CHECK (status IN ({statuses})),
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    lock_wait_ms integer,
    sqlstate text,
    message text,
    migration text,
    release_sha text,
    host text,
    runner text,
    backend_pid integer,
    blockers jsonb
);
CREATE INDEX IF NOT EXISTS {idx} ON {t} (started_at DESC)"""
        ).format(
            t=self.run_log_id,
            statuses=statuses,
            idx=sql.Identifier(f"{self.run_log}_started_at_idx"),
        )

    def insert_run(self) -> sql.Composed:
        return sql.SQL(
            "INSERT INTO {t} (run_id, attempt, status, lock_wait_ms, release_sha, host, runner,"
            " backend_pid, message) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
        ).format(t=self.run_log_id)

    def finish_run(self) -> sql.Composed:
        return sql.SQL(
            "UPDATE {t} SET status = %s, finished_at = now(), lock_wait_ms = %s, sqlstate = %s,"
            " message = %s, migration = %s, blockers = %s WHERE id = %s"
        ).format(t=self.run_log_id)

    def reconcile_stale(self) -> sql.Composed:
        # A RUNNING row whose backend is gone belongs to a runner that was killed.
        return sql.SQL(
            "UPDATE {t} SET status = 'FAILED', finished_at = now(),"
            " message = coalesce(message || ' ', '') || %s"
            " WHERE status = 'RUNNING' AND id <> ALL(%s)"
            " AND (backend_pid IS NULL OR backend_pid NOT IN"
            " (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL))"
            " RETURNING id, run_id"
        ).format(t=self.run_log_id)


def exists(conn: Any, schema: str, table: str) -> bool:
    row = conn.execute(
        "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL", (schema, table)
    ).fetchone()
    return bool(row and row[0])
