"""Adoption: taking over a database another tool (or a person) migrated, and going back.

Three entry points. ``guard`` runs in every `up` before the runner creates or writes anything:
it resolves the history table's name (a database this runner migrated under the old default
``schema_migrations`` keeps working), and refuses (``adoption-required``) when the runner's
own history is empty but the database holds another tool's history or objects of its own, or
when the tool's history holds migrations the runner has not recorded. ``adopt`` records, in
one transaction under the runner lock, every migration the tool's history marks applied,
after refusing what cannot be trusted (a dirty or failed row, a row without a file, a changed
checksum, a gap). ``baseline`` records every file up to a version for a hand-built database.
``ToolHistoryKeeper`` is the executor's ``extra_history`` hook that keeps the tool's own
table current (reversibility) unless ``--no-tool-history``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from psycopg import sql

from . import toolhistory
from .errors import CheckError, ConfigError, Location, MigrationError, Problem
from .settings import DEFAULTS, Settings
from .tables import HISTORY_COLUMNS, Tables
from .toolhistory.base import ToolHistory, ToolState, table_columns

Echo = Callable[[str], None]
LEGACY_HISTORY = "schema_migrations"
"""The runner's history default before it was renamed: dbmate's and golang-migrate's name."""
_MAX_LISTED = 8


# -- the history table's name --------------------------------------------------------------
def resolve_tables(conn: Any, tables: Tables, echo: Echo | None = None) -> Tables:
    """``tables`` with the legacy history name when that is where this runner's rows are.

    Only when the default name is in use and absent, and ``<schema>.schema_migrations`` has
    the runner's own columns (so it is not dbmate's or golang-migrate's table).
    """
    default = DEFAULTS["history_table"][1]
    if tables.history != default or table_columns(conn, tables.schema, tables.history):
        return tables
    if HISTORY_COLUMNS <= table_columns(conn, tables.schema, LEGACY_HISTORY):
        if echo is not None:
            echo(f"warning: using {tables.schema}.{LEGACY_HISTORY}, this runner's history under "
                 f"its old default name; rename it (ALTER TABLE {tables.schema}."
                 f"{LEGACY_HISTORY} RENAME TO {default}) or set MIGRATION_HISTORY_TABLE="
                 f"{LEGACY_HISTORY} to silence this")
        return replace(tables, history=LEGACY_HISTORY)
    return tables


def recorded_names(conn: Any, tables: Tables) -> set[str] | None:
    """Names in the runner's history; None when the table does not exist."""
    if not table_columns(conn, tables.schema, tables.history):
        return None
    return {str(r[0]) for r in conn.execute(
        sql.SQL("SELECT name FROM {}").format(tables.history_id)).fetchall()}


# -- what else is in the database ---------------------------------------------------------
def found_tools(conn: Any, directory: Any, *, with_rows: bool = True) -> list[ToolHistory]:
    """Every other tool whose history table (at its default place) exists (and has rows)."""
    found = []
    for cls in toolhistory.TOOLS.values():
        adapter = cls(directory)
        if not adapter.exists(conn):
            continue
        if with_rows and conn.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(
                adapter.ident)).fetchone()[0]:
            continue
        found.append(adapter)
    return found


_OBJECTS = """
WITH ns AS (
  SELECT oid, nspname FROM pg_namespace
  WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%%'
), ext AS (
  SELECT classid, objid FROM pg_depend WHERE deptype = 'e'
)
SELECT kind, name FROM (
  SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
         WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE 'table' END AS kind,
         format('%%I.%%I', ns.nspname, c.relname) AS name
  FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    AND NOT (ns.nspname = %(schema)s AND c.relname = ANY(%(own)s))
    AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_class'::regclass
                    AND ext.objid = c.oid)
    -- a sequence owned by a column belongs to its table, which is listed itself
    AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid =
             'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
  UNION ALL
  SELECT CASE t.typtype WHEN 'e' THEN 'enum type' WHEN 'd' THEN 'domain' ELSE 'type' END,
         format('%%I.%%I', ns.nspname, t.typname)
  FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
  WHERE (t.typtype IN ('e', 'd', 'r', 'm') OR (t.typtype = 'c' AND EXISTS (
         SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c')))
    AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_type'::regclass
                    AND ext.objid = t.oid)
  UNION ALL
  SELECT 'function', format('%%I.%%I', ns.nspname, p.proname)
  FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
  WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_proc'::regclass
                    AND ext.objid = p.oid)
) o ORDER BY name LIMIT 50
"""


def schema_objects(conn: Any, tables: Tables, directory: Any) -> list[tuple[str, str]]:
    """Objects outside the runner's and other tools' tables, extension members excluded."""
    own = [tables.history, tables.progress, tables.run_log, f"{tables.run_log}_id_seq"]
    rows = conn.execute(_OBJECTS, {"schema": tables.schema, "own": own}).fetchall()
    # Tool tables are named plainly, so format('%I.%I') prints them as schema.table.
    skip = {a.qualified for a in found_tools(conn, directory, with_rows=False)}
    return [(str(k), str(n)) for k, n in rows if n not in skip]


# -- the guard in `up` ---------------------------------------------------------------------
def _command(s: Settings, sub: str) -> str:
    parts = ["python -m migration", sub]
    if str(s.dir) != DEFAULTS["dir"][1]:
        parts.append(f"--dir {s.dir}")
    return " ".join(parts)


def _listing(items: list[str]) -> str:
    more = f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return ", ".join(items[:_MAX_LISTED]) + more


def _has_rows(conn: Any, ident: sql.Identifier) -> bool:
    row = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(ident)).fetchone()
    return bool(row and row[0])


def guard(conn: Any, tables: Tables, files: list[Any], s: Settings, echo: Echo | None = None,
          keeper: Any = None) -> Tables:
    """The history tables to use; raises Problem ``adoption-required``. Changes nothing.

    The common path (the runner's history exists and has rows, plain format) costs two small
    queries; the tool's history is read only for a tool's format.
    """
    tables = resolve_tables(conn, tables, echo)
    fmt = files[0].format if files else "plain"
    adapter = toolhistory.for_format(fmt, s.dir)
    if isinstance(keeper, ToolHistoryKeeper):
        keeper.prepare(conn, adapter)
    has_history = bool(table_columns(conn, tables.schema, tables.history))
    if has_history and _has_rows(conn, tables.history_id):
        if adapter is not None and adapter.exists(conn):
            state = adapter.state(conn, files)
            for p in state.problems:
                # Someone ran the tool and it failed part-way: the schema may be half-changed.
                if p.code in ("dirty-history", "failed-migration"):
                    raise CheckError([Problem(
                        p.code, f"{p.message} [{state.table}: {p.row}]",
                        location=Location(p.file) if p.file else None, hint=p.hint)])
            recorded = recorded_names(conn, tables) or set()
            behind = [f.name for f in state.applied if f.name not in recorded]
            if behind:
                raise Problem(
                    "adoption-required",
                    f"{adapter.tool} applied {len(behind)} migration(s) that gated-release has "
                    f"not recorded ({_listing(behind)}): `up` would apply them again",
                    location=Location(behind[0]),
                    hint=f"record them with `{_command(s, f'adopt --from {adapter.tool}')}` "
                         "(add --dry-run to see what it records), then run up")
        return tables
    if table_columns(conn, tables.schema, tables.progress) and _has_rows(conn,
                                                                         tables.progress_id):
        return tables  # a partly applied first migration: `up` reports partially-applied
    tools = found_tools(conn, s.dir)
    if tools:
        names = ", ".join(f"{a.tool} ({a.qualified})" for a in tools)
        mine = [a.tool for a in tools if adapter is not None and a.tool == adapter.tool]
        tool = mine[0] if mine else tools[0].tool
        raise Problem(
            "adoption-required",
            f"the database holds another tool's migration history, {names}, and gated-release "
            "has recorded nothing: `up` would apply every migration again",
            hint=f"run `{_command(s, f'adopt --from {tool}')}` (add --dry-run to see what it "
                 "records), then up; nothing was changed")
    objects = schema_objects(conn, tables, s.dir)
    if objects and s.allow_unrecorded_objects:
        if echo is not None:
            echo(f"warning: the database holds {len(objects)} object(s) gated-release did not "
                 "record; applying anyway (--allow-unrecorded-objects)")
    elif objects:
        listed = [f"{k} {n}" for k, n in objects]
        raise Problem(
            "adoption-required",
            f"the database already holds objects ({_listing(listed)}) but gated-release has "
            "recorded no migration: `up` would run every migration against them",
            hint=f"if your migrations built them, record the files up to the version the "
                 f"database is at with `{_command(s, 'baseline --through VERSION')}` (add "
                 "--dry-run first); if they are not from these migrations, pass "
                 "--allow-unrecorded-objects; nothing was changed")
    return tables


# -- keeping the tool's table current (D) --------------------------------------------------
@dataclass
class ToolHistoryKeeper:
    """The executor's ``extra_history`` hook: the tool's own row next to the runner's."""

    enabled: bool = True
    adapter: ToolHistory | None = None
    missing: bool = False

    def prepare(self, conn: Any, adapter: ToolHistory | None) -> None:
        self.adapter = adapter if self.enabled else None
        self.missing = self.adapter is not None and not self.adapter.exists(conn)

    def __call__(self, mf: Any) -> list[sql.Composed]:
        if self.adapter is None or getattr(mf, "format", None) != self.adapter.tool:
            return []
        # The DDL is idempotent; it travels with each migration of a run that found no table,
        # so a rolled-back or retried first migration leaves nothing half-created.
        return (self.adapter.create() if self.missing else []) + self.adapter.record(mf)


# -- adopt and baseline --------------------------------------------------------------------
@dataclass
class Outcome:
    command: str
    dry_run: bool
    history: str
    tool: str | None = None
    table: str | None = None
    recorded: list[Any] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    left_pending: list[str] = field(default_factory=list)
    tool_rows: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": True, "command": self.command, "dryRun": self.dry_run,
            "historyTable": self.history, "tool": self.tool, "toolTable": self.table,
            "recorded": [{"file": f.name, "version": f.version, "toolKey": f.tool_key}
                         for f in self.recorded],
            "alreadyRecorded": self.already, "leftPending": self.left_pending,
            "toolRowsWritten": self.tool_rows, "warnings": self.warnings,
        }

    def lines(self) -> list[str]:
        verb = "would record" if self.dry_run else "recorded"
        src = f" from {self.tool} ({self.table})" if self.tool else ""
        out = [f"{self.command}{src}: {verb} {len(self.recorded)} migration(s) in "
               f"{self.history}" + (" (dry run: nothing changed)" if self.dry_run else "")]
        out += [f"  {f.name}" for f in self.recorded]
        if self.already:
            out.append(f"already recorded: {len(self.already)}")
        if self.left_pending:
            out.append("left pending (a gap; `up --no-check-order` applies them): "
                       + ", ".join(self.left_pending))
        if self.tool_rows:
            out.append(f"{'would write' if self.dry_run else 'wrote'} {len(self.tool_rows)} "
                       f"row(s) in {self.table} too")
        out += [f"warning: {w}" for w in self.warnings]
        return out


def _problems(state: ToolState, *, allow_gaps: bool) -> list[MigrationError]:
    out: list[MigrationError] = []
    for p in state.problems:
        if p.code == "out-of-order" and allow_gaps:
            continue
        where = f" [{state.table}: {p.row}]" if p.row else ""
        out.append(Problem(p.code, p.message + where, hint=p.hint,
                           location=Location(p.file) if p.file else None))
    flagged = {p.file for p in state.problems if p.code == "out-of-order"}
    if not allow_gaps:
        last = state.applied[-1].name if state.applied else "?"
        for f in state.gaps:
            if f.name in flagged:
                continue
            out.append(Problem(
                "out-of-order",
                f"{state.tool} has not applied this migration although it applied {last}, "
                "which comes after it",
                location=Location(f.name),
                hint="check whether its changes are in the schema: --allow-gaps records only "
                     "what the tool applied and leaves it pending (up --no-check-order then "
                     "applies it); if it is in the schema, baseline it"))
    return out


class _Session:
    """One connection (autocommit), the resolved tables and the runner lock when asked."""

    def __init__(self, s: Settings, *, take_lock: bool) -> None:
        from . import lock
        from .connection import connect, embedded_url
        from .redact import Redactor, password_of

        url = s.database_url or embedded_url(s.embedded_dir)
        self.conn = connect(url, Redactor(password_of(url)), autocommit=True,
                            purpose="adopt")
        try:
            self.tables = resolve_tables(self.conn, Tables(s.schema, s.history_table,
                                                           s.run_log_table))
            if take_lock and s.lock:
                key = lock.lock_key(self.tables.schema, self.tables.history)
                lock.acquire(self.conn, key, time.monotonic() + s.timeout_s)
        except BaseException:
            self.conn.close()
            raise

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()  # the session lock goes with the connection


def _discover(s: Settings, tool: str | None) -> list[Any]:
    from .formats import discover

    fmt = s.format
    if tool is not None:
        if fmt not in ("auto", tool):
            raise ConfigError(f"--from {tool} but --format {fmt}",
                              hint="adopting a tool's database reads its files in its format: "
                                   "drop --format or make it the same tool")
        fmt = tool
    return discover(s.dir, fmt)


def _pick_tool(conn: Any, s: Settings, tool: str) -> str:
    if tool != "auto":
        if tool not in toolhistory.TOOLS:
            raise ConfigError(f"--from: unknown tool {tool!r}",
                              hint="one of: auto, " + ", ".join(toolhistory.TOOLS))
        return tool
    from .formats import detect

    detected = detect(s.dir).name if s.format == "auto" else s.format
    if detected in toolhistory.TOOLS:
        return detected
    found = found_tools(conn, s.dir, with_rows=False)
    if len(found) == 1:
        return found[0].tool
    raise ConfigError(
        "--from auto: " + ("no other tool's history table found" if not found else
                           "several tools' history tables found: " +
                           ", ".join(f"{a.tool} ({a.qualified})" for a in found)),
        hint="name the tool: --from " + "|".join(toolhistory.TOOLS))


def _insert(tables: Tables, f: Any, *, origin: str, release_sha: str) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {t} (name, version, checksum, duration_ms, release_sha, transactional,"
        " origin) VALUES ({name}, {version}, {checksum}, 0, {sha}, {tx}, {origin})"
        " ON CONFLICT (name) DO NOTHING"
    ).format(t=tables.history_id, name=sql.Literal(f.name), version=sql.Literal(f.version),
             checksum=sql.Literal(f.checksum), sha=sql.Literal(release_sha),
             tx=sql.Literal(not f.declared_no_transaction), origin=sql.Literal(origin))


def _write(conn: Any, s: Settings, tables: Tables, rows: list[sql.Composed]) -> None:
    from .runlog import ensure_tables

    ensure_tables(conn, tables, run_log=s.telemetry)
    with conn.transaction():
        if "origin" not in table_columns(conn, tables.schema, tables.history):
            # Marks adopted and baselined rows; tables from before adoption lack it.
            conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS origin text").format(
                tables.history_id))
        for q in rows:
            conn.execute(q)


def adopt(s: Settings, tool: str = "auto", *, dry_run: bool = False,
          allow_gaps: bool = False) -> Outcome:
    """Record what ``tool``'s history marks applied; raises CheckError naming what it refuses."""
    with _Session(s, take_lock=not dry_run) as sess:
        conn, tables = sess.conn, sess.tables
        name = _pick_tool(conn, s, tool)
        files = _discover(s, name)
        adapter = toolhistory.TOOLS[name](s.dir)
        if not adapter.exists(conn):
            raise ConfigError(f"no {name} history in this database ({adapter.qualified} is "
                              "missing or is not the tool's table)",
                              hint="check --database-url, or pick the tool with --from")
        state = adapter.state(conn, files)
        problems = _problems(state, allow_gaps=allow_gaps)
        if problems:
            raise CheckError(problems)
        recorded = recorded_names(conn, tables) or set()
        out = Outcome("adopt", dry_run, f"{tables.schema}.{tables.history}", name,
                      adapter.qualified, warnings=list(state.warnings))
        out.recorded = [f for f in state.applied if f.name not in recorded]
        out.already = [f.name for f in state.applied if f.name in recorded]
        out.left_pending = [f.name for f in state.gaps]
        if out.recorded and not dry_run:
            _write(conn, s, tables, [_insert(tables, f, origin=f"adopted:{name}",
                                             release_sha=s.release_sha)
                                     for f in out.recorded])
        return out


def baseline(s: Settings, through: str, *, dry_run: bool = False) -> Outcome:
    """Record every file up to ``through`` (a version, tool key or file name) as applied."""
    with _Session(s, take_lock=not dry_run) as sess:
        conn, tables = sess.conn, sess.tables
        files = _discover(s, None)
        hits = [i for i, f in enumerate(files) if through in (f.version, f.tool_key, f.name)]
        if not hits:
            near = ", ".join(f.version or f.name for f in files[-5:]) or "none"
            raise ConfigError(f"--through {through!r} is no migration's version, tool key or "
                              f"file name", hint=f"the last versions are: {near}")
        upto = files[:hits[-1] + 1]
        recorded = recorded_names(conn, tables) or set()
        if not recorded:
            tools = found_tools(conn, s.dir)
            if tools:
                raise ConfigError(
                    f"the database holds {tools[0].tool}'s history ({tools[0].qualified})",
                    hint=f"adopt it instead: `{_command(s, f'adopt --from {tools[0].tool}')}`")
        out = Outcome("baseline", dry_run, f"{tables.schema}.{tables.history}")
        out.recorded = [f for f in upto if f.name not in recorded]
        out.already = [f.name for f in upto if f.name in recorded]
        rows = [_insert(tables, f, origin="baseline", release_sha=s.release_sha)
                for f in out.recorded]
        adapter = toolhistory.for_format(files[0].format, s.dir) if files else None
        if adapter is not None and s.tool_history:
            # Reversible: the tool's own table learns the baseline too.
            out.tool, out.table = adapter.tool, adapter.qualified
            exists = adapter.exists(conn)
            have = {f.name for f in adapter.state(conn, files).applied} if exists else set()
            todo = [f for f in upto if f.name not in have]
            out.tool_rows = [f.name for f in todo]
            if todo and not exists:
                rows += adapter.create()
            for f in todo:
                rows += adapter.record(f)
        if rows and not dry_run:
            _write(conn, s, tables, rows)
        return out
