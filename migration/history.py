"""The runner's own revision store: which migrations are applied, and how far a partly run one got.

One module reads and writes it (the executor, ``check``, ``status`` and ``resolve`` all go
through here). Two tables, both named from the settings and quoted with ``sql.Identifier``:

* history (``<history-table>``): one row per applied migration, written in the migration's
  own transaction (for a non-transactional one, durably right after it).
* progress (``<history-table>_progress``): one row per migration run statement by statement
  that has not finished: the statement index reached, and whether a statement was in flight.
  It is created the first time such a migration runs; a row left by a crash blocks `up`
  (``partially-applied``) until `resolve` records a decision.

Tool history rows (another tool's table, kept current by ``migration/toolhistory/``) are not
written here; the executor asks its ``extra_history`` hook for them and sends them in the same
transaction as this module's row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

if TYPE_CHECKING:
    from .formats.base import MigrationFile
    from .tables import Tables

ExtraHistory = Callable[["MigrationFile"], list[sql.Composed]]
"""Statements to run in the same transaction as a migration's history row (9B: tool history)."""


@dataclass(frozen=True)
class Applied:
    name: str
    version: str
    checksum: str
    duration_ms: int = 0
    release_sha: str | None = None
    transactional: bool = True

    @property
    def order_key(self) -> tuple[int, str]:
        return (int(self.version) if self.version.isdigit() else 0, self.name)


@dataclass(frozen=True)
class Progress:
    """A migration run statement by statement that has not finished."""

    name: str
    checksum: str
    statements: int
    """How many statements the up part has."""
    reached: int
    """How many statements are committed (the next one to run is ``reached + 1``, 1-based)."""
    in_flight: bool
    """A non-transactional statement ``reached + 1`` was sent and its outcome is unknown."""
    resume_from: int | None
    """Set by ``resolve --continue-from N``: the next `up` runs statements N.. (1-based)."""
    run_id: str | None = None

    def describe(self) -> str:
        if self.in_flight:
            return (f"statements 1..{self.reached} of {self.statements} committed, statement "
                    f"{self.reached + 1} was running (it may or may not have committed)")
        return f"statements 1..{self.reached} of {self.statements} committed"


def create_history(tables: Tables) -> sql.Composed:
    return sql.SQL(
        """CREATE TABLE IF NOT EXISTS {t} (
    name text PRIMARY KEY,
    version text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL,
    release_sha text,
    transactional boolean NOT NULL DEFAULT true,
    run_id uuid,
    origin text
)"""
    ).format(t=tables.history_id)


def create_progress(tables: Tables) -> sql.Composed:
    return sql.SQL(
        """CREATE TABLE IF NOT EXISTS {t} (
    name text PRIMARY KEY,
    checksum text NOT NULL,
    statements integer NOT NULL,
    reached integer NOT NULL DEFAULT 0,
    in_flight boolean NOT NULL DEFAULT false,
    resume_from integer,
    run_id uuid,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
)"""
    ).format(t=tables.progress_id)


def read_applied(conn: Any, tables: Tables) -> dict[str, Applied]:
    """The history rows by name ({} when the table does not exist yet)."""
    return read_state(conn, tables)[0]


def read_state(conn: Any, tables: Tables) -> tuple[dict[str, Applied], list[Progress]]:
    """History rows by name and unfinished per-statement migrations, in two queries at most
    when nothing is unfinished (the no-op path pays one existence probe for both tables)."""
    row = conn.execute(
        "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL,"
        " to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL",
        (tables.schema, tables.history, tables.schema, tables.progress)).fetchone()
    has_history, has_progress = (bool(row[0]), bool(row[1])) if row else (False, False)
    applied: dict[str, Applied] = {}
    if has_history:
        applied = {r[0]: Applied(*r) for r in conn.execute(select_applied(tables)).fetchall()}
    progress: list[Progress] = []
    if has_progress:
        progress = [Progress(r[0], r[1], int(r[2]), int(r[3]), bool(r[4]),
                             None if r[5] is None else int(r[5]),
                             None if r[6] is None else str(r[6]))
                    for r in conn.execute(sql.SQL(
                        "SELECT name, checksum, statements, reached, in_flight, resume_from,"
                        " run_id FROM {t} ORDER BY started_at, name").format(
                            t=tables.progress_id)).fetchall()]
    return applied, progress


def select_applied(tables: Tables) -> sql.Composed:
    return sql.SQL(
        "SELECT name, version, checksum, duration_ms, release_sha, transactional"
        " FROM {t} ORDER BY applied_at, name"
    ).format(t=tables.history_id)


def insert_row(tables: Tables, mf: MigrationFile, *, duration_ms: sql.Composable,
               release_sha: str | None, transactional: bool, run_id: str | None,
               on_conflict_nothing: bool = False) -> sql.Composed:
    """The history row of ``mf`` as literals, to travel in the migration's own message.

    A Flyway repeatable is applied again when its checksum changes: its row is replaced.
    """
    conflict = _conflict(mf, on_conflict_nothing)
    return sql.SQL(
        "INSERT INTO {t} (name, version, checksum, duration_ms, release_sha, transactional,"
        " run_id) VALUES ({name}, {version}, {checksum}, {duration}, {sha}, {tx},"
        " {run_id}::uuid){conflict}"
    ).format(conflict=conflict, t=tables.history_id, name=sql.Literal(mf.name),
             version=sql.Literal(mf.version), checksum=sql.Literal(mf.checksum),
             duration=duration_ms, sha=sql.Literal(release_sha), tx=sql.Literal(transactional),
             run_id=sql.Literal(run_id))


def insert_row_text(conn: Any, tables: Tables, mf: MigrationFile, *, duration: str,
                    release_sha: str | None, transactional: bool, run_id: str | None,
                    on_conflict_nothing: bool = False) -> str:
    """``insert_row(...).as_string(conn)`` at a twentieth of the cost (the apply hot path).

    The table still comes from sql.Identifier and the conflict clause from sql.SQL; each text
    value is quoted by libpq's PQescapeLiteral on this connection, which is what sql.Literal
    does for a ``str`` (psycopg's Dumper.quote), without building an adapter per value:
    composing the literals was the largest client cost of applying many small migrations.
    ``duration`` is SQL text the runner composed itself.
    """
    from psycopg import pq

    esc = pq.Escaping(conn.pgconn)

    def literal(v: str | None) -> str:
        if v is None:
            return "NULL"
        return bytes(esc.escape_literal(v.encode("utf-8"))).decode("utf-8")

    head = sql.SQL(
        "INSERT INTO {t} (name, version, checksum, duration_ms, release_sha, transactional,"
        " run_id) VALUES ("
    ).format(t=tables.history_id).as_string(conn)
    conflict = _conflict(mf, on_conflict_nothing).as_string(conn)
    tx = "true" if transactional else "false"
    return (f"{head}{literal(mf.name)}, {literal(mf.version)}, {literal(mf.checksum)}, "
            f"{duration}, {literal(release_sha)}, {tx}, {literal(run_id)}::uuid){conflict}")


def _conflict(mf: MigrationFile, on_conflict_nothing: bool) -> sql.SQL:
    if mf.repeatable:
        return sql.SQL(" ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum,"
                       " applied_at = now(), duration_ms = EXCLUDED.duration_ms,"
                       " release_sha = EXCLUDED.release_sha, run_id = EXCLUDED.run_id")
    return sql.SQL(" ON CONFLICT (name) DO NOTHING" if on_conflict_nothing else "")


def progress_begin(tables: Tables, mf: MigrationFile, statements: int,
                   run_id: str | None) -> sql.Composed:
    """Claim ``mf`` for a statement-by-statement run (keeps a resolved row's decision)."""
    return sql.SQL(
        "INSERT INTO {t} (name, checksum, statements, run_id) VALUES ({n}, {c}, {k}, {r}::uuid)"
        " ON CONFLICT (name) DO UPDATE SET run_id = EXCLUDED.run_id, updated_at = now()"
    ).format(t=tables.progress_id, n=sql.Literal(mf.name), c=sql.Literal(mf.checksum),
             k=sql.Literal(statements), r=sql.Literal(run_id))


def progress_mark(tables: Tables, name: str, *, reached: int, in_flight: bool) -> sql.Composed:
    return sql.SQL(
        "UPDATE {t} SET reached = {r}, in_flight = {f}, resume_from = NULL, updated_at = now()"
        " WHERE name = {n}"
    ).format(t=tables.progress_id, r=sql.Literal(reached), f=sql.Literal(in_flight),
             n=sql.Literal(name))


def progress_resume(tables: Tables, name: str, resume_from: int) -> sql.Composed:
    return sql.SQL(
        "UPDATE {t} SET resume_from = {s}, in_flight = false, updated_at = now() WHERE name = {n}"
    ).format(t=tables.progress_id, s=sql.Literal(resume_from), n=sql.Literal(name))


def progress_clear(tables: Tables, name: str) -> sql.Composed:
    return sql.SQL("DELETE FROM {t} WHERE name = {n}").format(
        t=tables.progress_id, n=sql.Literal(name))
