"""Migration status for operators: pending files, the run log, and one alert summary.

``read_status`` gathers facts (files on disk, the history table, the run log) and
``evaluate`` turns them into an alert level with reasons. ``evaluate`` is a pure function
of its inputs so the rules can be tested without a database; everything time-related is
measured against the database's clock (``now()``) to avoid skew between hosts.

Alert rules (highest level wins):

* critical: the database is unreachable; the migration files cannot be read; a migration
  is pending; a run whose final attempt is ``FAILED`` or ``LOCK_TIMEOUT`` started within
  the lookback window.
* warning: a failed run was followed by a successful one and nothing is pending (fixed
  forward); an attempt failed but the same run later succeeded (a retry recovered); a
  ``RUNNING`` row is stale (its backend is gone, or it is older than the runner's deadline);
  an applied file is missing from the directory or was edited after it was applied; the
  run log is not readable while telemetry is enabled.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from .checker import applied_drift
from .connection import connect, embedded_url
from .errors import MigrationError
from .history import read_applied
from .redact import Redactor, password_of

# The bounds live in settings (the CLI's parser needs them without this module's driver);
# re-exported here, where the dashboard and the endpoint have always found them.
from .settings import LOOKBACK_BOUNDS as LOOKBACK_BOUNDS
from .settings import LOOKBACK_DEFAULT as LOOKBACK_DEFAULT
from .settings import RECENT_RUNS_BOUNDS as RECENT_RUNS_BOUNDS
from .settings import RECENT_RUNS_DEFAULT as RECENT_RUNS_DEFAULT
from .settings import Settings
from .source import MigrationFile, discover
from .tables import Tables, exists

SCHEMA_VERSION = 1
WINDOW_ROWS_MAX = 1_000  # failures inside the lookback examined per request, at most
MESSAGE_MAX = 500
STALE_MARGIN_S = 60  # beyond the runner's own deadline
QUERY_TIMEOUT_MS = 5_000
CONNECT_TIMEOUT_S = 5

LEVELS = ("ok", "warning", "critical")
FAILED_STATUSES = ("FAILED", "LOCK_TIMEOUT")


@dataclass(frozen=True)
class Reason:
    code: str
    level: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "level": self.level, "message": self.message}


@dataclass(frozen=True)
class Alert:
    level: str
    reasons: tuple[Reason, ...] = ()

    @property
    def critical(self) -> bool:
        return self.level == "critical"

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "reasons": [r.to_json() for r in self.reasons]}


@dataclass(frozen=True)
class RunRow:
    """One run-log row (one attempt of a run)."""

    id: int
    run_id: str
    attempt: int
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    lock_wait_ms: int | None = None
    sqlstate: str | None = None
    message: str | None = None
    migration: str | None = None
    release_sha: str | None = None
    host: str | None = None
    runner: str | None = None
    backend_alive: bool | None = None

    def duration_ms(self, now: datetime) -> int | None:
        end = self.finished_at or (now if self.status == "RUNNING" else None)
        if end is None:
            return None
        return max(0, int((end - self.started_at).total_seconds() * 1000))

    def to_json(self, now: datetime, *, stale: bool, in_lookback: bool) -> dict[str, Any]:
        msg = self.message
        if msg is not None and len(msg) > MESSAGE_MAX:
            msg = msg[: MESSAGE_MAX - 1] + "…"
        return {
            "id": self.id, "runId": self.run_id, "attempt": self.attempt, "status": self.status,
            "startedAt": _iso(self.started_at), "finishedAt": _iso(self.finished_at),
            "durationMs": self.duration_ms(now), "lockWaitMs": self.lock_wait_ms,
            "sqlstate": self.sqlstate, "message": msg, "migration": self.migration,
            "releaseSha": self.release_sha, "host": self.host, "runner": self.runner,
            "stale": stale, "inLookback": in_lookback,
        }


@dataclass(frozen=True)
class Telemetry:
    available: bool
    enabled: bool
    table: str
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"available": self.available, "enabled": self.enabled, "table": self.table,
                "reason": self.reason}


@dataclass(frozen=True)
class Facts:
    """What ``read_status`` found; the input of ``evaluate``."""

    now: datetime
    database_reachable: bool = True
    files_error: str | None = None
    pending: tuple[MigrationFile, ...] = ()
    applied_count: int = 0
    missing_files: tuple[str, ...] = ()
    edited_files: tuple[str, ...] = ()
    telemetry: Telemetry = field(
        default_factory=lambda: Telemetry(False, True, "public.migration_run_log", "not read"))
    recent: tuple[RunRow, ...] = ()
    window: tuple[RunRow, ...] = ()
    """Every row (bounded) started inside the lookback window."""
    query_error: str | None = None
    """A query failed (e.g. permission denied on the history table)."""


@dataclass(frozen=True)
class Status:
    """The answer of `status`, `alerts` and ``GET /api/ops/migrations``."""

    facts: Facts
    alert: Alert
    lookback_minutes: int
    stale_after_s: int
    diagnostic: str | None = None
    """Redacted detail for the operator's terminal; never sent over HTTP."""

    @property
    def database(self) -> str:
        return "reachable" if self.facts.database_reachable else "unreachable"

    def stale_ids(self) -> set[int]:
        return {r.id for r in self.facts.recent + self.facts.window
                if is_stale(r, self.facts.now, self.stale_after_s)}

    def to_json(self) -> dict[str, Any]:
        f = self.facts
        since = f.now - timedelta(minutes=self.lookback_minutes)
        stale = self.stale_ids()
        known = f.database_reachable and f.files_error is None and f.query_error is None
        return {
            "schemaVersion": SCHEMA_VERSION,
            "checkedAt": _iso(f.now),
            "database": self.database,
            "lookbackMinutes": self.lookback_minutes,
            "alert": self.alert.to_json(),
            "pending": [{"name": m.name, "version": m.version} for m in f.pending]
            if known else None,
            "applied": {"count": f.applied_count, "missingFiles": list(f.missing_files),
                        "editedFiles": list(f.edited_files)} if known else None,
            "telemetry": f.telemetry.to_json(),
            "recentRuns": [r.to_json(f.now, stale=r.id in stale, in_lookback=r.started_at >= since)
                           for r in f.recent],
        }


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_stale(row: RunRow, now: datetime, stale_after_s: int) -> bool:
    if row.status != "RUNNING":
        return False
    if row.backend_alive is False:
        return True
    return (now - row.started_at).total_seconds() > stale_after_s


def _final_attempts(rows: Iterable[RunRow]) -> dict[str, RunRow]:
    last: dict[str, RunRow] = {}
    for r in rows:
        cur = last.get(r.run_id)
        if cur is None or (r.attempt, r.id) > (cur.attempt, cur.id):
            last[r.run_id] = r
    return last


def evaluate(facts: Facts, *, lookback_minutes: int, stale_after_s: int) -> Alert:
    """The alert summary for ``facts``; pure, so the rules are testable without a database."""
    reasons: list[Reason] = []
    if not facts.database_reachable:
        reasons.append(Reason("database-unreachable", "critical",
                              "cannot connect to the database"))
        return _alert(reasons)
    if facts.query_error is not None:
        reasons.append(Reason("status-query-failed", "critical", facts.query_error))
    if facts.files_error is not None:
        reasons.append(Reason("migrations-unreadable", "critical", facts.files_error))
    if facts.pending:
        names = ", ".join(m.name for m in facts.pending[:5])
        more = f" and {len(facts.pending) - 5} more" if len(facts.pending) > 5 else ""
        reasons.append(Reason("pending-migrations", "critical",
                              f"{len(facts.pending)} pending migration(s): {names}{more}"))
    since = facts.now - timedelta(minutes=lookback_minutes)
    window = [r for r in facts.window if r.started_at >= since]
    finals = _final_attempts(window)
    # A failure followed by a successful run, with nothing pending, was fixed forward: the
    # database is where the release expects it, so it no longer pages (it stays a warning
    # for the rest of the lookback). Without this a fix-forward deploy could not pass the
    # strict alert step until the failure aged out of the window.
    # By when the success ended: a runner that gave up waiting for the runner lock records
    # its row after the holder started, and the holder's success still fixes it.
    last_ok = max(((r.finished_at or r.started_at) for r in finals.values()
                   if r.status in ("SUCCESS", "SKIPPED")), default=None)
    for run_id, last in sorted(finals.items(), key=lambda kv: kv[1].started_at):
        if last.status in FAILED_STATUSES:
            code = "run-lock-timeout" if last.status == "LOCK_TIMEOUT" else "run-failed"
            where = f" in {last.migration}" if last.migration else ""
            state = f" (SQLSTATE {last.sqlstate})" if last.sqlstate else ""
            text = (f"run {run_id[:8]} ended {last.status}{where}{state} at "
                    f"{_iso(last.finished_at or last.started_at)}")
            if last_ok is not None and last_ok > last.started_at and not facts.pending:
                reasons.append(Reason("run-failed-fixed", "warning",
                                      text + "; a later run succeeded"))
            else:
                reasons.append(Reason(code, "critical", text))
    recovered = {r.run_id for r in window if r.status in FAILED_STATUSES
                 and finals[r.run_id].status not in FAILED_STATUSES}
    for run_id in sorted(recovered):
        reasons.append(Reason("run-retried", "warning",
                              f"run {run_id[:8]} had failed attempts before "
                              f"{finals[run_id].status}"))
    stale = sorted({r.id: r for r in (*facts.recent, *facts.window)
                    if is_stale(r, facts.now, stale_after_s)}.values(), key=lambda r: r.id)
    for r in stale:
        why = "its backend is gone" if r.backend_alive is False else \
            f"it started more than {stale_after_s} s ago"
        reasons.append(Reason("stale-running", "warning",
                              f"run {r.run_id[:8]} is still RUNNING but {why}; the next `up` "
                              "reconciles it"))
    if facts.missing_files:
        reasons.append(Reason("applied-file-missing", "warning",
                              "applied but missing from the directory: "
                              + ", ".join(facts.missing_files[:5])))
    if facts.edited_files:
        reasons.append(Reason("applied-file-edited", "warning",
                              "edited after being applied (the next `up` refuses): "
                              + ", ".join(facts.edited_files[:5])))
    t = facts.telemetry
    if t.enabled and not t.available:
        reasons.append(Reason("telemetry-unavailable", "warning",
                              f"run log {t.table} is not readable ({t.reason}); failures "
                              "cannot be seen"))
    return _alert(reasons)


def _alert(reasons: Sequence[Reason]) -> Alert:
    level = max((r.level for r in reasons), key=LEVELS.index, default="ok")
    return Alert(level, tuple(reasons))


# -- reading -------------------------------------------------------------------------------

_RUN_COLUMNS = sql.SQL(
    "id, run_id::text, attempt, status, started_at, finished_at, lock_wait_ms, sqlstate, message,"
    " migration, release_sha, host, runner,"
    " CASE WHEN backend_pid IS NULL THEN NULL"
    " ELSE EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = backend_pid) END"
)


def _rows(conn: psycopg.Connection[Any], query: sql.Composed,
          params: Sequence[Any]) -> tuple[RunRow, ...]:
    return tuple(RunRow(*row) for row in conn.execute(query, params).fetchall())


def stale_after(settings: Settings) -> int:
    return settings.timeout_s + STALE_MARGIN_S


def read_status(
    settings: Settings,
    *,
    lookback_minutes: int = LOOKBACK_DEFAULT,
    recent: int = RECENT_RUNS_DEFAULT,
    url: str | None = None,
) -> Status:
    """Gather the facts and evaluate them. Never raises for an unreachable database."""
    redactor = Redactor(password_of(url or settings.database_url))
    files: list[MigrationFile] = []
    files_error: str | None = None
    try:
        files = discover(settings.dir, settings.format)
    except MigrationError as e:
        files_error = redactor(str(e))
    if not url and not settings.database_url:
        try:
            url = embedded_url(settings.embedded_dir)
        except Exception as e:
            return unreachable(settings, lookback_minutes,
                               f"embedded PostgreSQL unavailable: {redactor(str(e))}",
                               files_error=files_error)
    url = url or settings.database_url
    assert url is not None
    redactor.add(password_of(url))
    try:
        conn = connect(url, redactor, autocommit=True, timeout_s=CONNECT_TIMEOUT_S,
                       purpose="status")
    except MigrationError as e:
        facts = Facts(now=datetime.now(UTC), database_reachable=False, files_error=files_error)
        return _status(facts, settings, lookback_minutes, diagnostic=redactor(str(e)))
    try:
        with conn:
            facts = _read(conn, settings, files, files_error, lookback_minutes, recent)
    except psycopg.OperationalError as e:
        facts = Facts(now=datetime.now(UTC), database_reachable=False, files_error=files_error)
        first = next((ln for ln in str(e).splitlines() if ln.strip()), "connection lost")
        return _status(facts, settings, lookback_minutes, diagnostic=redactor(first))
    except psycopg.Error as e:
        # Reachable but refusing (permissions, a table of another shape): say which kind,
        # keep the server's text for the terminal only.
        code = e.sqlstate or "unknown"
        facts = Facts(now=datetime.now(UTC), files_error=files_error,
                      query_error=f"reading the history failed (SQLSTATE {code})")
        return _status(facts, settings, lookback_minutes, diagnostic=redactor(str(e)))
    return _status(facts, settings, lookback_minutes)


def unreachable(settings: Settings, lookback_minutes: int, diagnostic: str, *,
                files_error: str | None = None) -> Status:
    facts = Facts(now=datetime.now(UTC), database_reachable=False, files_error=files_error)
    return _status(facts, settings, lookback_minutes, diagnostic=diagnostic)


def _status(facts: Facts, settings: Settings, lookback: int,
            diagnostic: str | None = None) -> Status:
    stale_s = stale_after(settings)
    return Status(facts, evaluate(facts, lookback_minutes=lookback, stale_after_s=stale_s),
                  lookback, stale_s, diagnostic)


def _read(conn: psycopg.Connection[Any], s: Settings, files: list[MigrationFile],
          files_error: str | None, lookback: int, recent: int) -> Facts:
    from .adoption import resolve_tables

    # A history kept under the old default name (schema_migrations) is still ours.
    t = resolve_tables(conn, Tables(s.schema, s.history_table, s.run_log_table))
    # The ops endpoint only reads; a read-only session makes that a guarantee.
    conn.execute("SET default_transaction_read_only = on")
    conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(QUERY_TIMEOUT_MS)))
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    now: datetime = row[0]

    applied = read_applied(conn, t)
    pending = tuple(f for f in files if f.name not in applied) if files_error is None else ()
    missing_names, edited_errors = applied_drift(files, applied)
    missing = tuple(missing_names) if files_error is None else ()
    edited = list(edited_errors)

    table = f"{s.schema}.{s.run_log_table}"
    recent_rows: tuple[RunRow, ...] = ()
    window_rows: tuple[RunRow, ...] = ()
    if not exists(conn, s.schema, s.run_log_table):
        telemetry = Telemetry(False, s.telemetry, table, "the run-log table does not exist")
    else:
        try:
            recent_rows = _rows(conn, sql.SQL(
                "SELECT {c} FROM {t} ORDER BY started_at DESC, id DESC LIMIT %s"
            ).format(c=_RUN_COLUMNS, t=t.run_log_id), (recent,))
            window_rows = _rows(conn, sql.SQL(
                "SELECT {c} FROM {t} WHERE started_at >= %s ORDER BY started_at DESC, id DESC"
                " LIMIT %s"
            ).format(c=_RUN_COLUMNS, t=t.run_log_id),
                (now - timedelta(minutes=lookback), WINDOW_ROWS_MAX))
            telemetry = Telemetry(True, s.telemetry, table)
        except psycopg.errors.InsufficientPrivilege:
            telemetry = Telemetry(False, s.telemetry, table, "permission denied")
        except psycopg.errors.UndefinedColumn:
            telemetry = Telemetry(False, s.telemetry, table, "unexpected columns")
    return Facts(now=now, files_error=files_error, pending=pending,
                 applied_count=len(applied), missing_files=missing, edited_files=tuple(edited),
                 telemetry=telemetry, recent=recent_rows, window=window_rows)
