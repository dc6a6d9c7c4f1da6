"""What a failure means: the error, exit code and advice for a statement that failed.

A failed statement arrives as a :class:`~migration.batch.BatchFailure` (SQLSTATE, message,
offset, and whether the client cancelled it at the deadline or lost the connection); this
module turns it into one :mod:`~migration.errors` exception pointing at file, line and column,
or into :class:`Retryable` for the SQLSTATEs the runner retries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from .analysis import Analysis, Statement, location_of
from .batch import BatchFailure
from .errors import (
    ConfigError,
    ConnectError,
    DeadlineError,
    ExecutionError,
    Location,
    LockTimeoutError,
    MigrationError,
    StatementTimeoutError,
)
from .redact import Redactor

RETRYABLE = ("55P03", "40P01")
_ROLLED_BACK = ("the migration's transaction rolled back; raise the timeout or make the "
                "migration faster")
_GRANT = "grant the migration role the privilege named above (see docs/runner.md, Tables)"


class Retryable(Exception):
    """A lock timeout or deadlock: the group is rolled back and may be tried again."""

    def __init__(self, error: MigrationError) -> None:
        super().__init__(str(error))
        self.error = error


def classify(
    f: BatchFailure,
    a: Analysis,
    redact: Redactor,
    *,
    timeout_s: int,
    sent_clamped: bool,
    remaining_ms: int,
    blockers: Callable[[], list[dict[str, Any]]],
) -> MigrationError | Retryable:
    """The error for ``f``, a failure while running migration ``a``.

    ``sent_clamped`` says the statement_timeout in force was cut to the time left, so a
    statement timeout is the deadline; ``blockers`` is called only for lock conflicts.
    """
    state = f.sqlstate
    stmt = f.piece.origin if isinstance(f.piece.origin, Statement) else None
    loc = location_of(a.file, stmt.start + (f.offset or 0)) if stmt else Location(a.file.name)
    msg = redact(f.message)
    if f.deadline_exceeded:
        return DeadlineError(f"MIGRATION_TIMEOUT_SECONDS={timeout_s} exceeded: the statement "
                             "was cancelled at the deadline", location=loc, sqlstate="57014",
                             hint=_ROLLED_BACK)
    if f.lost_connection:
        return ConnectError("lost the database connection: " + msg, location=loc)
    if stmt is None and state == "42501":
        # The runner's own statement (its history row): a grant is missing, not a bug in
        # the migration.
        return ConfigError(f"permission denied: {msg}", location=loc, sqlstate=state,
                           hint=_GRANT)
    if state in RETRYABLE:
        seen = blockers()
        who = ", ".join(f"pid {b['pid']} ({b['application'] or '?'}: "
                        f"{(b['query'] or '')[:80]!r})" for b in seen[:3])
        if state == "55P03":
            return Retryable(LockTimeoutError(
                msg + (f"; blocked by {who}" if who else ""), location=loc, sqlstate=state,
                hint="find the long transaction holding the lock, or raise "
                     "MIGRATION_LOCK_TIMEOUT"))
        return Retryable(ExecutionError(
            msg, location=loc, sqlstate=state,
            hint="a deadlock persisted through the retries; look for a job that locks the "
                 "same tables in another order"))
    if state == "57014" and "statement timeout" not in f.message:
        return ExecutionError(msg, location=loc, sqlstate=state,
                              hint="another session cancelled the statement "
                                   "(pg_cancel_backend); its transaction rolled back")
    if state == "57014":
        if sent_clamped or remaining_ms <= 50:
            return DeadlineError(f"MIGRATION_TIMEOUT_SECONDS={timeout_s} exceeded during a "
                                 "statement", location=loc, sqlstate=state, hint=_ROLLED_BACK)
        return StatementTimeoutError(
            msg, location=loc, sqlstate=state,
            hint="the statement exceeded MIGRATION_STATEMENT_TIMEOUT; its transaction rolled "
                 "back")
    if not a.transactional and state == "42P07":
        return ExecutionError(msg, location=loc, sqlstate=state,
                              hint="an earlier run may have built it and died before recording "
                                   "it: if it is this migration's, drop it (DROP INDEX "
                                   "CONCURRENTLY) and rerun; write IF NOT EXISTS to make such a "
                                   "migration rerunnable")
    return ExecutionError(msg, location=loc, sqlstate=state,
                          hint="the migration's transaction rolled back; fix forward with a "
                               "corrected file or a new migration")


def own_sql_error(e: psycopg.Error, redact: Redactor) -> MigrationError:
    """The error for a failure of the runner's own SQL (tables, lock, history, run log)."""
    primary = e.diag.message_primary if e.diag else None
    msg = redact(primary or (str(e).splitlines()[0] if str(e) else type(e).__name__))
    if isinstance(e, psycopg.OperationalError) and e.sqlstate is None:
        return ConnectError("lost the database connection: " + msg,
                            hint="check the database and rerun; committed migrations stay "
                                 "applied")
    if e.sqlstate == "42501":
        return ConfigError(f"permission denied: {msg}", sqlstate=e.sqlstate, hint=_GRANT)
    return ExecutionError(f"the runner's own SQL failed: {msg}", sqlstate=e.sqlstate,
                          hint="nothing of the pending migration was committed; fix the cause "
                               "and rerun")
