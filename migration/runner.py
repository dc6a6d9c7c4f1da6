"""`up`: apply pending migrations under the runner lock, within one deadline.

One run, in order: check files; connect (the migration connection, plus an autocommit
monitor connection for the run log and the blocker watch); take the runner lock; refuse a
pooler; reconcile stale RUNNING rows; read the history; check again against it; apply the
pending migrations group by group; write the artifact. Every exit path records its status.

Groups. Without ``--single-transaction`` each migration is its own group: its SQL and its
history row commit together. With it, consecutive transactional migrations share one
transaction, and the runner declares a boundary (logged, and listed in the artifact's
``executionSummary.boundaries``) before a non-transactional migration and before a migration
that uses an enum label added earlier in the same group, which PostgreSQL would refuse
(SQLSTATE 55P04, unsafe use of new enum value). The group before a boundary commits first.

Durability. Every group but the last commits with ``synchronous_commit = off``: it does
not wait for its own WAL flush, which would cost one fsync per migration. The last group
commits synchronously, and since WAL is flushed in order, that one flush makes every earlier
commit durable before `up` reports success. A server crash before it can lose only whole
migrations, each with its history row (PostgreSQL guarantees the same state as if those
transactions had aborted), and the next run applies them again.

Retries. A group whose statement fails with 55P03 (lock_timeout) or 40P01 (deadlock) is
rolled back and retried from its start, at most ``max_retries`` times, after a jittered
backoff; every attempt re-applies ``lock_timeout``/``statement_timeout`` (``SET LOCAL``), and
both are clamped to the time left, so the one deadline covers lock wait, attempts and retries.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import pq

from . import artifact, batch, diagnosis, history, lock
from .analysis import Analysis
from .batch import Piece
from .blockers import BlockerWatch, snapshot
from .checker import check
from .connection import connect, embedded_url, host_name, verify_session_pinned
from .diagnosis import Retryable
from .errors import (
    CheckError,
    DeadlineError,
    ExecutionError,
    Interrupted,
    Location,
    LockTimeoutError,
    MigrationError,
    PartiallyAppliedError,
    Problem,
)
from .formats import discover, warnings_of
from .groups import Group, plan_groups
from .history import Applied, ExtraHistory
from .nontx import Driver, NonTransactional
from .redact import Redactor, password_of
from .runlog import RunLog, ensure_tables
from .settings import Settings
from .stepwise import PerStatement
from .tables import Tables

Echo = Callable[[str], None]


class Run:
    def __init__(self, settings: Settings, echo: Echo, *,
                 extra_history: ExtraHistory | None = None) -> None:
        """``extra_history(file)`` returns statements (e.g. the row of the tool's own history
        table, see ``migration/toolhistory/``) that the runner sends in the SAME transaction
        as the file's own history row: in the migration's transaction for a transactional
        file, in the recording transaction right after a non-transactional or per-statement
        one."""
        self.s = settings
        self.extra_history = extra_history
        self.resume: dict[str, int] = {}
        """Files `resolve --continue-from N` set to resume at statement N."""
        self._paths: tuple[NonTransactional, PerStatement] | None = None
        self.redact = Redactor(password_of(settings.database_url))
        self._echo = echo
        self.tables = Tables(settings.schema, settings.history_table, settings.run_log_table)
        self.report = artifact.Report(settings.release_sha, settings.stack)
        self.deadline = time.monotonic() + settings.timeout_s
        self.conn: psycopg.Connection[Any] | None = None
        self.monitor: psycopg.Connection[Any] | None = None
        self.runlog: RunLog | None = None
        self.watch: BlockerWatch | None = None
        self.pid: int | None = None
        self.last_error: MigrationError | None = None
        self._sent_clamped = False
        self._async_commits = False
        self.files: list[Any] | None = None

    # -- output -----------------------------------------------------------------------
    def echo(self, line: str) -> None:
        line = self.redact(line)
        self.report.log(line)
        self._echo(line)

    def remaining_ms(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)

    def check_deadline(self, what: str) -> None:
        if self.remaining_ms() <= 0:
            raise DeadlineError(
                f"MIGRATION_TIMEOUT_SECONDS={self.s.timeout_s} exceeded {what}",
                hint="nothing after the last committed migration was applied; raise the "
                     "timeout or split the migration",
            )

    # -- the run --------------------------------------------------------------------
    def execute(self) -> artifact.Report:
        r = self.report
        r.mark("Running")
        try:
            self._run()
        except MigrationError as e:
            self.last_error = e
            self._fail(e)
        except psycopg.Error as e:
            # The runner's own SQL (tables, lock, history, run log) failed: still one clear
            # error with its SQLSTATE, a finished run-log row and a complete artifact.
            wrapped = diagnosis.own_sql_error(e, self.redact)
            self.last_error = wrapped
            self._fail(wrapped)
        except BaseException as e:
            # SIGTERM (ACA stopping the job), Ctrl-C, or a bug: record it, then let it go on.
            self.last_error = Interrupted(f"the run was interrupted ({type(e).__name__}: {e})",
                                          hint="committed migrations stay applied; rerun")
            self._fail(self.last_error)
            raise
        finally:
            r.finished_at = artifact.now()
            self._flush_async_commits()
            self._close()
            if self.s.artifact_dir is not None:
                path = artifact.write(r, self.s.artifact_dir)
                self._echo(f"artifact: {path}")
        return r

    def _run(self) -> None:
        s, r = self.s, self.report
        if not s.enabled:
            r.status, r.reason_code = "Skipped", "migration-disabled"
            r.reason = "MIGRATE_DB_MIGRATE_ENABLED=0: the runner applies nothing"
            self.echo(r.reason)
            r.mark("Skipped")
            if s.telemetry:
                try:
                    self._open()
                    assert self.runlog is not None
                    self.runlog.record("SKIPPED", message=r.reason, backend_pid=self.pid)
                except MigrationError as e:
                    self.echo(f"warning: SKIPPED not recorded in the run log: {e}")
            return
        files = discover(s.dir, s.format)
        for w in warnings_of(s.dir, files):
            self.echo("warning: " + w)
        self.files = files
        # Pending files are parsed after the history is read (below), still before anything
        # is applied; a no-op run then never loads the SQL parser.
        self._open()
        assert self.conn is not None and self.runlog is not None
        lock_wait = 0
        if s.lock:
            key = lock.lock_key(self.tables.schema, self.tables.history)
            waited_from = time.monotonic()
            try:
                lock_wait = lock.acquire(self.conn, key, self.deadline)
            except MigrationError as e:
                waited = int((time.monotonic() - waited_from) * 1000)
                r.lock_wait_ms = waited
                self.runlog.record("LOCK_TIMEOUT", message=str(e), backend_pid=self.pid,
                                   lock_wait_ms=waited)
                raise
            verify_session_pinned(self.conn, key)
            self.echo(f"runner lock acquired after {lock_wait} ms")
        r.lock_wait_ms = lock_wait
        self.runlog.start(backend_pid=self.pid, lock_wait_ms=lock_wait)
        r.attempts = self.runlog.attempt
        stale = self.runlog.reconcile_stale()
        if stale:
            self.echo(f"reconciled {stale} stale RUNNING run-log row(s) of killed runners")
        applied = self._read_history()
        result = check(files, applied, check_order=s.check_order)
        for w in result.warnings:
            self.echo("warning: " + w)
        result.raise_for_problems()
        pending = [result.analyses[f.name] for f in result.pending]
        r.pending = [a.file.name for a in pending]
        if not pending:
            r.status = "Succeeded"
            r.mark("Succeeded", "nothing pending")
            self.echo(f"nothing pending ({len(applied)} applied)")
            self.runlog.finish("SKIPPED", lock_wait_ms=lock_wait, message="nothing pending")
            return
        groups, boundaries = plan_groups(pending, s.single_transaction)
        r.boundaries = boundaries
        self.echo(f"{len(pending)} pending migration(s) in {len(groups)} transaction group(s)")
        for b in boundaries:
            self.echo(f"boundary before {b['before']}: {b['reason']} ({b['detail']})")
        for g in groups:
            g.durable = g is groups[-1]
            self._apply_group(g)
            done = {m.file.name for m in g.migrations}
            r.pending = [p for p in r.pending if p not in done]
        r.status = "Succeeded"
        r.mark("Succeeded")
        total = sum(int(a["durationMs"]) for a in r.applied)
        self.echo(f"applied {len(r.applied)} migration(s) in {total} ms")
        self.runlog.finish("SUCCESS", lock_wait_ms=lock_wait, migration=r.applied[-1]["file"])

    def _open(self) -> None:
        s = self.s
        url = s.database_url or embedded_url(s.embedded_dir)
        self.redact.add(password_of(url))
        timeout = max(1.0, min(10.0, self.remaining_ms() / 1000))
        # Autocommit: the runner writes BEGIN/COMMIT into its batches itself.
        self.conn = connect(url, self.redact, autocommit=True, timeout_s=timeout,
                            purpose="migrate")
        self.monitor = connect(url, self.redact, autocommit=True, timeout_s=timeout,
                               purpose="monitor")
        # The monitor's queries are small; a stalled server must not hold the run past its
        # deadline through them.
        self.monitor.execute("SET statement_timeout = '10s'")
        row = self.conn.execute("SELECT pg_backend_pid()").fetchone()
        self.pid = int(row[0]) if row else None
        try:
            # A killed runner's statement is cancelled within a second (PostgreSQL 14+).
            self.conn.execute("SET client_connection_check_interval = '1s'")
        except psycopg.Error:
            pass
        if self.files is not None:
            # Before anything is created or written: the history's name (a legacy default
            # keeps working) and the refusal of a database another tool or a person migrated.
            from .adoption import guard

            self.tables = guard(self.monitor, self.tables, self.files, s, self.echo,
                                keeper=self.extra_history)
        ensure_tables(self.monitor, self.tables, run_log=s.telemetry)
        self.runlog = RunLog(self.monitor, self.tables, self.redact, release_sha=s.release_sha,
                             host=host_name(), runner=s.runner, enabled=s.telemetry)
        interval = max(0.02, min(0.25, s.lock_timeout_ms / 4000))
        assert self.pid is not None
        self.watch = BlockerWatch(self.monitor, self.pid, self.redact, interval)

    def _flush_async_commits(self) -> None:
        """After a failure, make the groups committed without a WAL flush durable too.

        Any synchronous commit flushes the WAL up to its own record, which follows theirs.
        """
        if not self._async_commits or self.monitor is None:
            return
        try:
            with self.monitor.transaction():
                self.monitor.execute("SET LOCAL synchronous_commit = on")
                self.monitor.execute("SELECT pg_current_xact_id()")
        except psycopg.Error:
            pass  # the server is gone: nothing more can be made durable from here

    def _close(self) -> None:
        if self.watch is not None:
            self.watch.close()
        for c in (self.conn, self.monitor):
            if c is not None:
                try:
                    c.close()
                except psycopg.Error:
                    pass

    def _read_history(self) -> dict[str, Applied]:
        """The applied migrations; refuses a per-statement migration stopped part-way."""
        assert self.conn is not None
        applied, progress = history.read_state(self.conn, self.tables)
        self.resume = {}
        by_name = {f.name: f for f in self.files or []}
        stuck = []
        for p in progress:
            if p.name in applied:
                continue
            if p.resume_from is not None and p.name in by_name and \
                    by_name[p.name].checksum == p.checksum:
                self.resume[p.name] = p.resume_from
            elif p.reached == 0 and not p.in_flight:
                continue  # claimed, nothing committed: running it from the start is safe
            else:
                stuck.append(p)
        if stuck:
            raise partially_applied(stuck, by_name)
        return applied

    def _outside(self) -> tuple[NonTransactional, PerStatement]:
        """The paths outside a transaction, composed from the runner's collaborators."""
        if self._paths is None:
            assert self.conn is not None and self.watch is not None
            d = Driver(self.conn, self.watch, self.redact, self.deadline, self.echo, self._batch,
                       lambda local: self._timeout_pieces(local), self._history_pieces,
                       self._rollback, self._sql_error)
            nontx = NonTransactional(d)
            self._paths = (nontx, PerStatement(
                d, nontx, self.tables, str(self.runlog.run_id) if self.runlog else None))
        return self._paths

    # -- applying -------------------------------------------------------------------
    def _timeouts(self) -> tuple[int, int, bool]:
        left = self.remaining_ms()
        stmt = min(self.s.statement_timeout_ms, left) if self.s.statement_timeout_ms else left
        lk = min(self.s.lock_timeout_ms, left) if self.s.lock_timeout_ms else left
        return max(1, lk), max(1, stmt), stmt < self.s.statement_timeout_ms or not \
            self.s.statement_timeout_ms

    def _apply_group(self, g: Group) -> None:
        assert self.runlog is not None
        attempt = 0
        while True:
            self.check_deadline(f"before {g.migrations[0].file.name}")
            try:
                done = self._attempt(g)
            except Retryable as e:
                attempt += 1
                err = e.error
                out_of_time = self.remaining_ms() <= 0
                if not out_of_time and attempt <= self.s.max_retries:
                    backoff = random.uniform(0, min(0.2 * 2 ** attempt, 5.0))
                    backoff = min(backoff, max(0.0, self.remaining_ms() / 1000))
                    self.echo(f"{err.sqlstate} on attempt {attempt}: retrying in "
                              f"{int(backoff * 1000)} ms")
                    time.sleep(backoff)
                    # The deadline can pass during the backoff: then this attempt's row (still
                    # open) records the deadline with the migration and SQLSTATE being retried,
                    # instead of a new attempt that never ran and names nothing.
                    out_of_time = self.remaining_ms() <= 0
                    if not out_of_time:
                        status = "LOCK_TIMEOUT" if err.sqlstate == "55P03" else "FAILED"
                        self.runlog.finish(
                            status, sqlstate=err.sqlstate,
                            message=f"{err} (retry {attempt} of {self.s.max_retries})",
                            migration=err.location.file if err.location else None,
                            blockers=self.report.blockers)
                        self.runlog.start(backend_pid=self.pid,
                                          lock_wait_ms=self.report.lock_wait_ms,
                                          message=f"retry {attempt} after {err.sqlstate}")
                        self.report.attempts = self.runlog.attempt
                        continue
                if out_of_time:
                    raise DeadlineError(
                        f"MIGRATION_TIMEOUT_SECONDS={self.s.timeout_s} exceeded while "
                        f"retrying {err.location.file if err.location else 'a migration'}",
                        location=err.location, sqlstate=err.sqlstate,
                    ) from None
                raise err from None
            self.report.applied.extend(done)
            return

    def _timeout_pieces(self, local: bool) -> list[Piece]:
        lk, st, clamped = self._timeouts()
        # What the server enforces from now on: a 57014 is classified against these values,
        # not against the time left when the error arrives.
        self._sent_clamped = clamped
        scope = "true" if local else "false"
        # Integers we computed ourselves: no quoting question arises.
        return [Piece(f"SELECT set_config('lock_timeout', '{lk}ms', {scope}),"
                      f" set_config('statement_timeout', '{st}ms', {scope})")]

    def _history_pieces(self, a: Analysis, duration_ms: int | None = None, *,
                        on_conflict_nothing: bool = False) -> list[Piece]:
        """The history row, then the ``extra_history`` statements; its duration measured by the server from ``gated_release.t0``
        (set at the start of the migration's message) unless given."""
        from psycopg import sql

        assert self.conn is not None
        duration: sql.Composable = sql.SQL(
            "(extract(epoch FROM clock_timestamp() - current_setting('gated_release.t0')"
            "::timestamptz) * 1000)::integer") if duration_ms is None else sql.Literal(duration_ms)
        row = history.insert_row_text(
            self.conn, self.tables, a.file, duration=duration.as_string(self.conn),
            release_sha=self.s.release_sha, transactional=a.transactional,
            run_id=str(self.runlog.run_id) if self.runlog else None,
            on_conflict_nothing=on_conflict_nothing)
        extra = self.extra_history(a.file) if self.extra_history else []
        # One piece per statement: batch maps the i-th result to the i-th piece.
        return [Piece(row), *(Piece(q.as_string(self.conn)) for q in extra)]

    def _attempt(self, g: Group) -> list[dict[str, Any]]:
        assert self.conn is not None and self.watch is not None
        if not g.transactional:
            a = g.migrations[0]
            nontx, stepwise = self._outside()
            if a.tx_mode == "per-statement":
                return [stepwise.apply(a, self.resume.get(a.file.name))]
            return [nontx.apply(a)]
        done: list[dict[str, Any]] = []
        single = len(g.migrations) == 1
        self.watch.arm()
        try:
            for i, a in enumerate(g.migrations):
                pieces = [Piece("BEGIN")] if i == 0 else []
                if i == 0 and not g.durable:
                    pieces.append(Piece("SET LOCAL synchronous_commit = off"))
                pieces += self._timeout_pieces(local=True)
                pieces.append(Piece("SELECT set_config('gated_release.t0',"
                                    " clock_timestamp()::text, true)"))
                pieces += [Piece(st.sql, st) for st in a.body]
                pieces += self._history_pieces(a)
                if single:
                    # One file: its COMMIT travels with it (a COMMIT-time error is its own).
                    pieces += self._commit_pieces(g)
                t0 = time.monotonic()
                self._batch(a, pieces)
                ms = int((time.monotonic() - t0) * 1000)
                done.append({"file": a.file.name, "durationMs": ms, "transactional": True})
                if single:
                    self.echo(f"  applied {a.file.name} ({ms} ms)")
                else:
                    self.echo(f"  ran {a.file.name} ({ms} ms, commits with its group)")
            if not single:
                # Alone, so a deferred constraint failing at COMMIT blames the group, not
                # whichever file happened to be last.
                try:
                    batch.run(self.conn, self._commit_pieces(g), deadline=self.deadline)
                except batch.BatchFailure as f:
                    names = ", ".join(m.file.name for m in g.migrations)
                    raise ExecutionError(
                        f"the group's COMMIT failed: {self.redact(f.message)}",
                        location=Location(g.migrations[0].file.name), sqlstate=f.sqlstate,
                        hint=f"nothing of the group ({names}) was committed; a deferred "
                             "constraint or trigger of one of them failed") from None
        except BaseException:
            self._rollback()
            raise
        finally:
            self.watch.disarm()
        if not g.durable:
            self._async_commits = True
        return done

    @staticmethod
    def _commit_pieces(g: Group) -> list[Piece]:
        # The durable commit is synchronous whatever the role, database or a migration set
        # (a migration's own SET synchronous_commit would otherwise carry over).
        return ([Piece("SET LOCAL synchronous_commit = on")] if g.durable else []) + \
            [Piece("COMMIT")]

    def _rollback(self) -> None:
        assert self.conn is not None
        try:
            if self.conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                self.conn.execute("ROLLBACK")
        except psycopg.Error:
            pass  # the connection is gone: the server rolled back already

    def _batch(self, a: Analysis, pieces: list[Piece]) -> None:
        assert self.conn is not None
        try:
            batch.run(self.conn, pieces, deadline=self.deadline)
        except batch.BatchFailure as f:
            raise self._sql_error(a, f) from None

    def _sql_error(self, a: Analysis, f: batch.BatchFailure) -> Exception:
        def blockers() -> list[dict[str, Any]]:
            seen = self.watch.last if self.watch else []
            if not seen and self.monitor is not None and self.pid is not None:
                seen = snapshot(self.monitor, self.pid, self.redact)
            self.report.blockers = seen
            return seen

        return diagnosis.classify(f, a, self.redact, timeout_s=self.s.timeout_s,
                                  sent_clamped=self._sent_clamped,
                                  remaining_ms=self.remaining_ms(), blockers=blockers)

    def _fail(self, e: MigrationError) -> None:
        r = self.report
        r.status = "Failed"
        r.reason_code = e.code
        r.reason = self.redact(str(e))
        problems = e.problems if isinstance(e, CheckError) else [e]
        first = problems[0]
        if first.location is not None:
            r.failing = {"file": first.location.file, "line": first.location.line,
                         "column": first.location.column, "sqlstate": first.sqlstate,
                         "message": self.redact(first.message)[:4000], "code": first.code}
        done = {a["file"] for a in r.applied}
        r.pending = [p for p in r.pending if p not in done]
        r.mark("Failed", e.code)
        if self.runlog is not None and self.runlog.row_id is not None:
            status = "LOCK_TIMEOUT" if isinstance(e, LockTimeoutError) else "FAILED"
            try:
                self.runlog.finish(status, lock_wait_ms=r.lock_wait_ms, sqlstate=e.sqlstate,
                                   message=str(e),
                                   migration=e.location.file if e.location else None,
                                   blockers=r.blockers)
            except psycopg.Error:
                pass


def partially_applied(stuck: list[history.Progress], files: dict[str, Any]
                      ) -> PartiallyAppliedError:
    problems: list[MigrationError] = []
    for p in stuck:
        mf = files.get(p.name)
        nxt = p.reached + 1
        where = Location(p.name)
        if mf is not None:
            try:
                from .analysis import analyze

                steps = analyze(mf).steps
                if nxt <= len(steps):
                    where = Location(p.name, steps[nxt - 1][0].line, steps[nxt - 1][0].column)
            except MigrationError:
                pass
        first = f"--continue-from {nxt}" if not p.in_flight else \
            f"--continue-from {nxt} (if statement {nxt} did NOT take effect) or " \
            f"--continue-from {nxt + 1} (if it did)"
        problems.append(Problem(
            "partially-applied",
            f"{p.name} stopped part-way: {p.describe()}; nothing runs until this is resolved",
            location=where,
            hint=f"inspect the database, then `python -m migration resolve {p.name} {first}`, "
                 "or `--rolled-back` once you have undone statements 1.."
                 f"{p.reached}, or `--applied` if the file's effects are complete"))
    return PartiallyAppliedError(problems)


def up(settings: Settings, echo: Echo) -> tuple[artifact.Report, MigrationError | None]:
    from .adoption import ToolHistoryKeeper

    # Another tool's format: its own history row travels with ours (--no-tool-history: not).
    run = Run(settings, echo, extra_history=ToolHistoryKeeper(enabled=settings.tool_history))
    rep = run.execute()
    return rep, run.last_error

