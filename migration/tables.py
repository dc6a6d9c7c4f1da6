"""The runner's two tables, named by settings and always quoted with sql.Identifier.

* history: one row per applied migration, written in the migration's own transaction.
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
    history: str = "schema_migrations"
    run_log: str = "migration_run_log"

    @property
    def history_id(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.history)

    @property
    def run_log_id(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.run_log)

    def create_schema(self) -> sql.Composed:
        return sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))

    def create_history(self) -> sql.Composed:
        return sql.SQL(
            """CREATE TABLE IF NOT EXISTS {t} (
    name text PRIMARY KEY,
    version text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL,
    release_sha text,
    transactional boolean NOT NULL DEFAULT true,
    run_id uuid
)"""
        ).format(t=self.history_id)

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

    def select_applied(self) -> sql.Composed:
        return sql.SQL(
            "SELECT name, version, checksum, duration_ms, release_sha, transactional"
            " FROM {t} ORDER BY applied_at, name"
        ).format(t=self.history_id)

    def insert_applied_literal(self, values: tuple[object, ...],
                               duration_ms: sql.Composable, *,
                               on_conflict_nothing: bool = False) -> sql.Composed:
        """The history row as literals, to travel in the migration's own message."""
        name, version, checksum, release_sha, transactional, run_id = values
        conflict = sql.SQL(" ON CONFLICT (name) DO NOTHING" if on_conflict_nothing else "")
        return sql.SQL(
            "INSERT INTO {t} (name, version, checksum, duration_ms, release_sha, transactional,"
            " run_id) VALUES ({name}, {version}, {checksum}, {duration}, {sha}, {tx},"
            " {run_id}::uuid){conflict}"
        ).format(conflict=conflict, t=self.history_id, name=sql.Literal(name), version=sql.Literal(version),
                 checksum=sql.Literal(checksum), duration=duration_ms,
                 sha=sql.Literal(release_sha), tx=sql.Literal(transactional),
                 run_id=sql.Literal(run_id))

    def insert_applied_text(self, conn: Any, values: tuple[object, ...], duration: str, *,
                            on_conflict_nothing: bool = False) -> str:
        """``insert_applied_literal(...).as_string(conn)``, at a twentieth of the cost.

        The identifiers still come from sql.Identifier; each text value is quoted by
        libpq's PQescapeLiteral on this connection, which is what sql.Literal does for a
        ``str`` (psycopg's Dumper.quote), without building an adapter per value: composing
        the literals was the largest client cost of applying many small migrations.
        ``duration`` is SQL text the runner composed itself.
        """
        from psycopg import pq

        esc = pq.Escaping(conn.pgconn)

        def literal(v: object) -> str:
            if v is None:
                return "NULL"
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, int):
                return str(v)
            if not isinstance(v, str):
                raise TypeError(f"history value {v!r} is not a str, int, bool or None")
            return bytes(esc.escape_literal(v.encode("utf-8"))).decode("utf-8")

        name, version, checksum, release_sha, transactional, run_id = values
        head = sql.SQL(
            "INSERT INTO {t} (name, version, checksum, duration_ms, release_sha, transactional,"
            " run_id) VALUES ("
        ).format(t=self.history_id).as_string(conn)
        conflict = " ON CONFLICT (name) DO NOTHING" if on_conflict_nothing else ""
        return (f"{head}{literal(name)}, {literal(version)}, {literal(checksum)}, {duration}, "
                f"{literal(release_sha)}, {literal(transactional)}, {literal(run_id)}::uuid)"
                f"{conflict}")

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
