"""Per-statement migrations: a file its tool runs statement by statement, with durable progress.

goose ``NO TRANSACTION``, dbmate ``transaction:false`` or a Flyway ``executeInTransaction=false``
file with several statements cannot be one transaction. Each statement (a file's own
``BEGIN; ... COMMIT;`` block counts as one) then commits on its own, and the runner's progress
table (``migration/history.py``) records how far the file got:

* a transactional statement commits TOGETHER with its progress mark, so the mark is exact;
* a non-transactional one (``CREATE INDEX CONCURRENTLY``) is marked *in flight* before it is
  sent and *done* after, so a crash in between is recorded as "outcome unknown";
* the last step records the history row (and the tool's) and clears the progress row in one
  transaction.

A failure part-way stops the run; a later `up` refuses (``partially-applied``) until
``python -m migration resolve FILE`` records a decision. Within one run a retry after a lock
timeout resumes at the failed statement: what committed before it is known exactly.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from . import batch, history
from .batch import Piece
from .diagnosis import RETRYABLE, Retryable
from .errors import ExecutionError, Location, MigrationError

if TYPE_CHECKING:
    from .analysis import Analysis, Statement
    from .nontx import Driver, NonTransactional
    from .tables import Tables


class PerStatement:
    def __init__(self, driver: Driver, nontx: NonTransactional, tables: Tables,
                 run_id: str | None) -> None:
        self.d = driver
        self.nontx = nontx
        self.tables = tables
        self.run_id = run_id
        self.reached: dict[str, int] = {}
        """Steps committed in THIS run, per file: a retry resumes after them."""
        self._table_ready = False

    def apply(self, a: Analysis, resume_from: int | None = None) -> dict[str, Any]:
        """Run the steps of ``a`` from ``resume_from`` (1-based; None: the start)."""
        name = a.file.name
        steps = a.steps
        start = self.reached.get(name, (resume_from or 1) - 1)
        self._own(self._begin(a, len(steps)))
        t0 = time.monotonic()
        for k in range(start, len(steps)):
            step = steps[k]
            self.d.echo(f"  {name}: statement {k + 1} of {len(steps)} (line {step[0].line})")
            if len(step) == 1 and step[0].non_transactional:
                self._outside(a, k, step[0])
            else:
                self._inside(a, k, step)
            self.reached[name] = k + 1
        ms = int((time.monotonic() - t0) * 1000)
        try:
            self._own([Piece("BEGIN"), Piece("SET LOCAL synchronous_commit = on"),
                       *self.d.history(a, ms, on_conflict_nothing=True),
                       Piece(history.progress_clear(self.tables, name).as_string(self.d.conn)),
                       Piece("COMMIT")])
        except MigrationError as e:
            raise ExecutionError(
                f"{name}: every statement committed but the history row failed: {e.message}",
                location=Location(name), sqlstate=e.sqlstate,
                hint=f"run `python -m migration resolve {name} --applied` to record it") from None
        self.d.echo(f"  applied {name} ({ms} ms, {len(steps)} statements, each committed)")
        return {"file": name, "durationMs": ms, "transactional": False}

    def _begin(self, a: Analysis, statements: int) -> list[Piece]:
        pieces = []
        if not self._table_ready:
            pieces.append(Piece(history.create_progress(self.tables).as_string(self.d.conn)))
            self._table_ready = True
        pieces.append(Piece(history.progress_begin(self.tables, a.file, statements, self.run_id)
                            .as_string(self.d.conn)))
        return pieces

    def _mark(self, name: str, reached: int, in_flight: bool) -> Piece:
        return Piece(history.progress_mark(self.tables, name, reached=reached, in_flight=in_flight)
                     .as_string(self.d.conn))

    def _inside(self, a: Analysis, k: int, step: list[Statement]) -> None:
        pieces = [Piece("BEGIN"), Piece("SET LOCAL synchronous_commit = on"),
                  *self.d.timeouts(True), *(Piece(st.sql, st) for st in step),
                  self._mark(a.file.name, k + 1, False), Piece("COMMIT")]
        self.d.watch.arm()
        try:
            self.d.run(a, pieces)
        except BaseException:
            self.d.rollback()
            raise
        finally:
            self.d.watch.disarm()

    def _outside(self, a: Analysis, k: int, st: Statement) -> None:
        name = a.file.name
        if st.index_name:
            self.nontx._drop_invalid_index(a, st.index_name)
        self._own([self._mark(name, k, True)])
        self.d.run(a, self.d.timeouts(False))
        self.d.watch.arm()
        try:
            self.d.run(a, [Piece(st.sql, st)])
        except (Retryable, MigrationError):
            if not (self.d.conn.closed or self.d.conn.broken):
                # PostgreSQL answered with an error: the statement did not commit.
                self._own([self._mark(name, k, False)])
            raise
        finally:
            self.d.watch.disarm()
        if st.index_name and st.non_transactional != "DROP INDEX CONCURRENTLY" and \
                self.nontx._index_valid(a, st.index_name) is False:
            raise ExecutionError(
                f"index {st.index_name} was built INVALID", location=Location(name, st.line),
                hint=f"`python -m migration resolve {name} --continue-from {k + 1}` rebuilds it "
                     "(the runner drops the INVALID index first)")
        self._own([self._mark(name, k + 1, False)])

    def _own(self, pieces: list[Piece]) -> None:
        """The runner's own bookkeeping, in autocommit, durably, a few tries."""
        wrapped = pieces if pieces[0].sql == "BEGIN" else \
            [Piece("BEGIN"), Piece("SET LOCAL synchronous_commit = on"),
             Piece("SET LOCAL lock_timeout = '5s'"), *pieces, Piece("COMMIT")]
        for attempt in range(3):
            try:
                batch.run(self.d.conn, wrapped)
                return
            except batch.BatchFailure as f:
                self.d.rollback()
                if f.lost_connection or f.sqlstate not in RETRYABLE or attempt == 2:
                    raise ExecutionError(self.d.redact(f.message), sqlstate=f.sqlstate) from None
                time.sleep(0.2 * (attempt + 1))
