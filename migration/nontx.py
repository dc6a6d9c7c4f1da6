"""Non-transactional migrations: one statement in autocommit, then its history row.

Such a statement (``CREATE INDEX CONCURRENTLY``, ``VACUUM``, ...) commits on its own, before
its history row can be written, so the two cannot be atomic. The rules that keep that safe:
an INVALID index left by an earlier failed build is dropped before the rebuild; the new index
is verified valid; once the statement has committed nothing retries it, and the history row is
written durably with short retries of its own; if that still fails the error says the
migration was APPLIED but NOT recorded and gives the exact INSERT to record it.

The runner holds a :class:`NonTransactional` built from a :class:`Driver`: its collaborators
(connection, blocker watch, batch sender, timeouts, history rows) passed explicitly, so this
path depends on no runner internals. ``migration/stepwise.py`` reuses it for the
non-transactional statements of a per-statement migration.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from . import batch
from .analysis import Analysis, location_of
from .batch import Piece
from .diagnosis import RETRYABLE, Retryable
from .errors import ExecutionError, Location, MigrationError

if TYPE_CHECKING:
    from .blockers import BlockerWatch
    from .redact import Redactor


@dataclass(frozen=True)
class Driver:
    """What the paths outside a transaction need from the runner, passed explicitly."""

    conn: psycopg.Connection[Any]
    watch: BlockerWatch
    redact: Redactor
    deadline: float
    echo: Callable[[str], None]
    run: Callable[[Analysis, list[Piece]], None]
    """Send pieces as one message; a failure comes back classified (diagnosis)."""
    timeouts: Callable[[bool], list[Piece]]
    """The SET of lock/statement timeouts (``True``: transaction-local)."""
    history: Callable[..., list[Piece]]
    """The history row of a file (and the ``extra_history`` statements)."""
    rollback: Callable[[], None]
    sql_error: Callable[[Analysis, batch.BatchFailure], Exception]


class NonTransactional:
    """A dedicated non-transactional migration: its one statement, then its history row."""

    def __init__(self, driver: Driver) -> None:
        self.d = driver

    def apply(self, a: Analysis) -> dict[str, Any]:
        return self._apply_non_tx(a)

    def _apply_non_tx(self, a: Analysis) -> dict[str, Any]:
        stmt = a.body[0]
        self.d.run(a, self.d.timeouts(False))
        if stmt.index_name:
            self._drop_invalid_index(a, stmt.index_name)
        t0 = time.monotonic()
        self.d.watch.arm()
        try:
            # Alone in its message: PostgreSQL treats a multi-statement message as a
            # transaction block, where CONCURRENTLY is refused.
            self.d.run(a, [Piece(stmt.sql, stmt)])
        finally:
            self.d.watch.disarm()
        ms = int((time.monotonic() - t0) * 1000)
        # The statement has committed. Nothing from here on may retry it: errors are
        # reported as "applied but not recorded", never as retryable.
        valid = None
        try:
            if stmt.index_name and stmt.non_transactional != "DROP INDEX CONCURRENTLY":
                valid = self._index_valid(a, stmt.index_name)
            if valid is not False:
                self._record_non_tx(a, ms)
        except Retryable as e:
            raise self._unrecorded(a, e.error) from None
        except MigrationError as e:
            raise self._unrecorded(a, e) from None
        if valid is False:
            # Not recorded on purpose: the next run drops the INVALID index and builds again.
            raise ExecutionError(
                f"index {stmt.index_name} was built INVALID",
                location=location_of(a.file, stmt.start),
                hint=f"DROP INDEX CONCURRENTLY {stmt.index_name}; then rerun",
            )
        self.d.echo(f"  applied {a.file.name} ({ms} ms, outside a transaction: "
                  f"{stmt.non_transactional or 'declared'})")
        return {"file": a.file.name, "durationMs": ms, "transactional": False}

    def _record_non_tx(self, a: Analysis, ms: int) -> None:
        """The history row of a committed non-transactional migration, durably, a few tries.

        Its own short timeouts, not the run's deadline: giving up here would leave an applied
        migration unrecorded, which the next run would apply again.
        """
        pieces = [Piece("BEGIN"), Piece("SET LOCAL synchronous_commit = on"),
                  Piece("SET LOCAL lock_timeout = '5s'"),
                  Piece("SET LOCAL statement_timeout = '30s'"),
                  *self.d.history(a, ms, on_conflict_nothing=True), Piece("COMMIT"),
                  Piece("RESET lock_timeout"), Piece("RESET statement_timeout")]
        for attempt in range(3):
            try:
                batch.run(self.d.conn, pieces)
                return
            except batch.BatchFailure as f:
                self.d.rollback()
                if f.lost_connection or f.sqlstate not in RETRYABLE or attempt == 2:
                    raise ExecutionError(self.d.redact(f.message), location=Location(a.file.name),
                                         sqlstate=f.sqlstate) from None
                time.sleep(0.2 * (attempt + 1))

    def _unrecorded(self, a: Analysis, e: MigrationError) -> ExecutionError:
        row = "; ".join(p.sql for p in self.d.history(a, 0, on_conflict_nothing=True))
        return ExecutionError(
            f"{a.file.name} was APPLIED but is NOT recorded in the history: {e.message}",
            location=Location(a.file.name), sqlstate=e.sqlstate,
            hint=f"record it before rerunning, or it runs again: {row}")

    def _index_valid(self, a: Analysis, name: str) -> bool | None:
        from psycopg import sql

        schema, _, ident = name.rpartition(".")
        target = sql.Identifier(schema, ident) if schema else sql.Identifier(ident)
        query = sql.SQL("SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = "
                        "to_regclass({})").format(sql.Literal(target.as_string(self.d.conn)))
        rows = self._query(a, query.as_string(self.d.conn))
        return None if not rows else rows[0][0] == "t"

    def _drop_invalid_index(self, a: Analysis, name: str) -> None:
        # A killed or failed concurrent build leaves an INVALID index behind; IF NOT EXISTS
        # would skip it silently and leave the table without a usable index.
        if self._index_valid(a, name) is False:
            from psycopg import sql

            self.d.echo(f"  dropping INVALID index {name} left by an earlier failed build")
            self._query(a, sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                sql.Identifier(*name.split("."))).as_string(self.d.conn))

    def _query(self, a: Analysis, text: str) -> list[tuple[Any, ...]]:
        """One statement of the runner's own, classified and bounded like a migration's."""
        try:
            return batch.run(self.d.conn, [Piece(text)], deadline=self.d.deadline)[0]
        except batch.BatchFailure as f:
            raise self.d.sql_error(a, f) from None

