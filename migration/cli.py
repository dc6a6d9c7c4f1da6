"""`python -m migration`: the command line. Flags default to None so that each one's
environment twin (see settings.DEFAULTS) applies when the flag is not given."""

from __future__ import annotations

import argparse
import gc
import json
import re
import sys
from collections.abc import Sequence

from . import errors
from .errors import CheckError, ConfigError, MigrationError
from .settings import DEFAULTS, Settings, resolve

# Every command imports this module first: what only some commands use is imported inside
# them (the runner and psycopg by up/plan/status, datetime by new), and typing not at all.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Any, NoReturn

DESCRIPTION = """\
Apply PostgreSQL migrations safely: one runner at a time (advisory lock), each migration
with its history row in one transaction, bounded lock/statement timeouts and one overall
deadline, a run log that survives failures, and a diagnostics artifact per release.

Without a database URL, `up`, `plan` and `status` use an embedded PostgreSQL under
--embedded-dir (the embedded default), and `check` checks the files alone.
"""

EPILOG = """\
exit codes: 0 ok, 1 migration failed, 2 usage/config error, 3 check failed,
4 runner lock not acquired, 5 DDL lock timeout, 6 deadline exceeded,
7 database unreachable or pooler, 8 critical status (alerts --strict),
143 terminated (SIGTERM) part-way

examples:
  python -m migration check
  python -m migration plan --database-url postgresql://app@db:5432/app
  DATABASE_URL=... python -m migration up --single-transaction --release-sha $GITHUB_SHA
  python -m migration new add_users_email_index
"""


def _env(key: str) -> str:
    env, default = DEFAULTS[key]
    return f"env {env}" + (f", default {default!r}" if default is not None else "")


def _add_common(p: argparse.ArgumentParser, *, database: bool = True) -> None:
    g = p.add_argument_group("common")
    g.add_argument("--dir", help=f"migrations directory ({_env('dir')})")
    g.add_argument("--format", help="layout of the directory: auto (detected from layout and "
                   "markers), plain, prisma, drizzle, dbmate, node-pg-migrate, goose, "
                   f"golang-migrate, flyway ({_env('format')})")
    if database:
        g.add_argument("--database-url", help="PostgreSQL URL (env DATABASE_URL; unset: the "
                       "embedded default). The password is never printed")
        g.add_argument("--embedded-dir", help=f"embedded cluster directory ({_env('embedded_dir')})")
        g.add_argument("--schema", help=f"schema of the runner's tables ({_env('schema')})")
        g.add_argument("--history-table", help=f"({_env('history_table')})")
        g.add_argument("--run-log-table", help=f"({_env('run_log_table')})")
    g.add_argument("--json", action="store_const", const=True,
                   help="machine-readable output on stdout, no progress (env MIGRATION_JSON)")


def _bool_pair(p: argparse.ArgumentParser, name: str, help_: str) -> None:
    dest = name.replace("-", "_")
    p.add_argument(f"--{name}", dest=dest, action="store_const", const=True,
                   help=f"{help_} ({_env(dest)})")
    p.add_argument(f"--no-{name}", dest=dest, action="store_const", const=False,
                   help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m migration", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("check", help="validate files (and applied checksums/order with a URL)",
                       description="Check migrations without changing anything: names, UTF-8, "
                       "syntax (PostgreSQL's parser), non-transactional statements outside "
                       "dedicated migrations; with a database URL also applied checksums and "
                       "order. Every problem is reported with file:line:column.")
    _add_common(p)
    _bool_pair(p, "check-order", "refuse pending migrations older than the newest applied")

    p = sub.add_parser("plan", help="what `up` would run: statements, transactions, locks",
                       description="For each pending migration: its statements, whether it "
                       "runs in a transaction, and the table lock each statement takes.")
    _add_common(p)
    _bool_pair(p, "single-transaction", "group transactional migrations")

    p = sub.add_parser("up", help="apply pending migrations", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Check, take the runner lock, and apply pending migrations "
                       "within one deadline. Writes <artifact-dir>/<release-sha>/migration.json.")
    _add_common(p)
    _bool_pair(p, "check-order", "refuse pending migrations older than the newest applied "
                                 "(--no-check-order to allow)")
    _bool_pair(p, "lock", "take the runner's session advisory lock (--no-lock to skip)")
    _bool_pair(p, "single-transaction", "apply pending transactional migrations in one "
                                        "transaction, with declared boundaries")
    p.add_argument("--lock-timeout", help=f"PostgreSQL lock_timeout per attempt "
                   f"({_env('lock_timeout')})")
    p.add_argument("--statement-timeout", help=f"PostgreSQL statement_timeout "
                   f"({_env('statement_timeout')})")
    p.add_argument("--timeout", help=f"seconds for the whole run: lock wait, attempts, retries "
                   f"({_env('timeout')})")
    p.add_argument("--max-retries", help=f"retries on 55P03/40P01 ({_env('max_retries')})")
    p.add_argument("--release-sha", help=f"release id recorded everywhere ({_env('release_sha')})")
    p.add_argument("--stack", help="stack name recorded in the artifact (env MIGRATION_STACK)")
    p.add_argument("--artifact-dir", help=f"artifact root ({_env('artifact_dir')}); '' disables")
    p.add_argument("--no-tool-history", dest="tool_history", action="store_const", const=False,
                   help="with another tool's format, do NOT keep the tool's own history table "
                        "current (by default its row is written in the same transaction as "
                        "the runner's, so you can go back to the tool; env "
                        "MIGRATION_TOOL_HISTORY=0)")
    p.add_argument("--tool-history", dest="tool_history", action="store_const", const=True,
                   help=argparse.SUPPRESS)
    p.add_argument("--allow-unrecorded-objects", dest="allow_unrecorded_objects",
                   action="store_const", const=True,
                   help="apply migrations to a database gated-release has recorded nothing in "
                        "although it holds objects (they are not from these migrations); "
                        f"without it `up` refuses (adoption-required) "
                        f"({_env('allow_unrecorded_objects')})")

    p = sub.add_parser(
        "adopt", help="record what another tool applied (dbmate, Prisma, Drizzle, ...)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Take over a database another tool migrated: read the tool's own history\n"
        "table and record, under the runner lock and in ONE transaction, every migration it\n"
        "marks applied in gated-release's history (nothing is executed). Refuses, naming the\n"
        "row and the file (exit 3): a dirty golang-migrate row, a failed Prisma or Flyway row,\n"
        "an applied row whose file is missing, a checksum that differs (Prisma, Flyway), and\n"
        "an unapplied migration older than an applied one (unless --allow-gaps).",
        epilog="examples:\n  python -m migration adopt --from dbmate --dir db/migrations "
        "--dry-run\n  python -m migration adopt --from auto --json\n\ntools: node-pg-migrate, "
        "drizzle, prisma, dbmate, golang-migrate, goose, flyway (auto: from the directory's "
        "format, else the one history table found)")
    _add_common(p)
    p.add_argument("--from", dest="adopt_from", metavar="TOOL",
                   help=f"the tool whose history to adopt, or auto ({_env('adopt_from')})")
    p.add_argument("--dry-run", dest="dry_run", action="store_const", const=True,
                   help=f"print exactly what would be recorded; change nothing "
                        f"({_env('dry_run')})")
    p.add_argument("--allow-gaps", dest="allow_gaps", action="store_const", const=True,
                   help="record what the tool applied even when it skipped an older file; "
                        f"the skipped files stay pending ({_env('allow_gaps')})")
    p.add_argument("--release-sha", help=f"release id recorded in the rows "
                   f"({_env('release_sha')})")
    p.add_argument("--timeout", help=f"seconds to wait for the runner lock ({_env('timeout')})")

    p = sub.add_parser(
        "baseline", help="record files up to a version as applied (a hand-built database)",
        description="For a database built by hand (or restored from a dump): record every "
        "migration up to and including --through as applied, marked `baseline`, without "
        "executing it, under the runner lock and in one transaction. When the directory is "
        "in another tool's format, the tool's own history table gets the same rows (unless "
        "--no-tool-history).")
    _add_common(p)
    p.add_argument("--through", metavar="VERSION",
                   help="the last migration the database already has: its version, its "
                        f"tool's key or its file name ({_env('through')})")
    p.add_argument("--dry-run", dest="dry_run", action="store_const", const=True,
                   help=f"print exactly what would be recorded; change nothing "
                        f"({_env('dry_run')})")
    p.add_argument("--no-tool-history", dest="tool_history", action="store_const",
                   const=False, help="do not write the tool's own history table "
                   "(env MIGRATION_TOOL_HISTORY=0)")
    p.add_argument("--release-sha", help=f"release id recorded in the rows "
                   f"({_env('release_sha')})")
    p.add_argument("--timeout", help=f"seconds to wait for the runner lock ({_env('timeout')})")

    p = sub.add_parser("new", help="create a new migration file",
                       description="Create <dir>/<UTC YYYYMMDDHHMMSS>_<name>.sql.")
    p.add_argument("name", help="what the migration does, e.g. add_users_email")
    p.add_argument("--no-transaction", action="store_true",
                   help="mark it as a dedicated non-transactional migration")
    _add_common(p, database=False)

    p = sub.add_parser("embedded", help="manage the embedded PostgreSQL",
                       description="Print the embedded default's URL (starting it), or stop it.")
    p.add_argument("--stop", action="store_true", help="stop the embedded server")
    _add_common(p)

    try:
        from . import ops
    except ImportError:  # pragma: no cover - ops ships with the package
        ops = None  # type: ignore[assignment]
    if ops is not None:
        ops.register(sub, _add_common)
    from . import resolution

    resolution.register(sub, _add_common)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    flags = {k: v for k, v in vars(args).items() if k in DEFAULTS}
    return resolve(flags)


def _print_error(e: MigrationError, as_json: bool) -> None:
    problems: list[MigrationError] = e.problems if isinstance(e, CheckError) else [e]
    if as_json:
        print(json.dumps({"ok": False, "error": e.as_dict(),
                          "problems": [p.as_dict() for p in problems]}, indent=2))
    for p in problems:
        print(f"error: {p}", file=sys.stderr)


def cmd_check(s: Settings, args: argparse.Namespace) -> int:
    from .checker import check
    from .formats import warnings_of
    from .source import discover

    files = discover(s.dir, s.format)
    applied = None
    stuck: list[MigrationError] = []
    if s.database_url:
        applied, stuck = _read_state(s, files)
    result = check(files, applied, check_order=s.check_order, parse_applied=True)
    result.problems[:0] = stuck
    result.warnings[:0] = warnings_of(s.dir, files)
    if s.json:
        print(json.dumps({
            "ok": not result.problems, "files": len(files),
            "format": files[0].format if files else None,
            "pending": [f.name for f in result.pending],
            "nonTransactional": [n for n, a in result.analyses.items() if not a.transactional],
            "perStatement": [n for n, a in result.analyses.items()
                             if a.tx_mode == "per-statement"],
            "ignored": {f.name: [{"label": sp.label, "startLine": sp.start_line,
                                  "endLine": sp.end_line} for sp in f.ignored]
                        for f in files if f.name in result.analyses and f.ignored},
            "problems": [p.as_dict() for p in result.problems],
            "warnings": result.warnings}, indent=2))
    else:
        for w in result.warnings:
            print(f"warning: {w}", file=sys.stderr)
        for p in result.problems:
            print(f"error: [{p.code}] {p}", file=sys.stderr)
        if not result.problems:
            fmt = f" ({files[0].format})" if files else ""
            print(f"ok: {len(files)} migration(s){fmt}, {len(result.pending)} pending")
    return errors.EXIT_CHECK_FAILED if result.problems else errors.EXIT_OK


def _read_state(s: Settings, files: list[Any]) -> tuple[dict[str, Any], list[MigrationError]]:
    """The history, and the refusal of per-statement migrations stopped part-way."""
    from .connection import connect, embedded_url
    from .history import read_state
    from .redact import Redactor, password_of
    from .runner import partially_applied
    from .tables import Tables

    url = s.database_url or embedded_url(s.embedded_dir)
    with connect(url, Redactor(password_of(url)), autocommit=True, purpose="check") as conn:
        from .adoption import resolve_tables

        applied, progress = read_state(conn, resolve_tables(
            conn, Tables(s.schema, s.history_table, s.run_log_table)))
    by_name = {f.name: f for f in files}
    stuck = [p for p in progress if p.name not in applied and p.resume_from is None
             and (p.reached or p.in_flight)]
    return applied, partially_applied(stuck, by_name).problems if stuck else []


def _read_applied(s: Settings) -> dict[str, Any]:
    from .connection import connect, embedded_url
    from .history import read_applied
    from .redact import Redactor, password_of
    from .tables import Tables

    url = s.database_url or embedded_url(s.embedded_dir)
    with connect(url, Redactor(password_of(url)), autocommit=True, purpose="check") as conn:
        from .adoption import resolve_tables

        # A history kept under the old default name (schema_migrations) is still ours.
        return read_applied(conn, resolve_tables(conn, Tables(s.schema, s.history_table,
                                                              s.run_log_table)))


def cmd_plan(s: Settings, args: argparse.Namespace) -> int:
    from .checker import check
    from .groups import plan_groups
    from .source import discover

    files = discover(s.dir, s.format)
    applied, stuck = _read_state(s, files)
    result = check(files, applied, check_order=s.check_order)
    result.problems[:0] = stuck
    result.raise_for_problems()
    pending = [result.analyses[f.name] for f in result.pending]
    groups, boundaries = plan_groups(pending, s.single_transaction)
    out: list[dict[str, Any]] = []
    for a in pending:
        body = {id(st) for st in a.body}
        out.append({
            "file": a.file.name, "format": a.file.format, "transactional": a.transactional,
            "txMode": a.tx_mode,
            "selfWrapped": a.self_wrapped, "nonTransactionalFrom": a.detected_from,
            "ignored": [{"label": sp.label, "startLine": sp.start_line, "endLine": sp.end_line}
                        for sp in a.file.ignored],
            "statements": [{"line": st.line, "kind": st.kind, "lock": st.lock,
                            "target": st.target, "nonTransactional": st.non_transactional,
                            "replacedByRunner": id(st) not in body,
                            "sql": st.sql[:500]} for st in a.statements]})
    if s.json:
        print(json.dumps({"pending": out, "groups": [[a.file.name for a in g.migrations]
                                                       for g in groups],
                          "boundaries": boundaries}, indent=2))
        return 0
    if not out:
        print(f"nothing pending ({len(files)} migration(s) applied)")
        return 0
    for m in out:
        tx = {"transaction": "in a transaction", "no-transaction": "OUTSIDE a transaction",
              "per-statement": "STATEMENT BY STATEMENT, each committed, progress recorded"
              }[str(m["txMode"])]
        print(f"{m['file']}  ({tx})")
        for sp in m["ignored"]:
            print(f"    lines {sp['startLine']}-{sp['endLine']}  ignored: the {sp['label']} "
                  "part (never run)")
        for st in m["statements"]:
            first = " ".join(str(st["sql"]).split())[:70]
            if st["replacedByRunner"]:
                print(f"    line {st['line']:>4}  (the file's own {first}: the runner's "
                      "transaction replaces it)")
                continue
            if st["lock"] != "NONE":
                lock_ = st["lock"] + (f" on {st['target']}" if st["target"] else "")
            elif st["kind"] == "CreateStmt":
                lock_ = f"new table {st['target']}"
            else:
                lock_ = "no table lock"
            mark = "  !" if st["lock"] == "ACCESS EXCLUSIVE" else "   "
            print(f"{mark} line {st['line']:>4}  {lock_}: {first}")
    for b in boundaries:
        print(f"boundary before {b['before']}: {b['reason']}")
    return 0


class _Terminated(BaseException):
    """Raised in the main thread on SIGTERM so the run records how it ended."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated("SIGTERM")


def cmd_up(s: Settings, args: argparse.Namespace) -> int:
    import signal

    from .runner import up

    # ACA stops a job (and ends a replica at its timeout) with SIGTERM: finish the run log
    # and the artifact instead of vanishing.
    signal.signal(signal.SIGTERM, _on_sigterm)

    def echo(line: str) -> None:
        if not s.json:
            print(line, flush=True)

    try:
        report, err = up(s, echo)
    except _Terminated:
        print("error: terminated (SIGTERM); the run log and the artifact record it",
              file=sys.stderr)
        return errors.EXIT_INTERRUPTED
    if s.json:
        # One line: in the ACA job it is one console-log record the gate can adopt.
        print(json.dumps(report.to_json(), separators=(",", ":")), flush=True)
    if err is not None:
        problems = err.problems if isinstance(err, CheckError) else [err]
        for p in problems:
            print(f"error: {report_redact(s, str(p))}", file=sys.stderr)
        return err.exit_code
    return errors.EXIT_OK


def report_redact(s: Settings, text: str) -> str:
    from .redact import Redactor, password_of

    return Redactor(password_of(s.database_url))(text)


_SLUG = re.compile(r"[^A-Za-z0-9]+")


def cmd_new(s: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    slug = _SLUG.sub("_", args.name).strip("_").lower()
    if not slug:
        raise ConfigError(f"migration name {args.name!r} has no letters or digits")
    s.dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    path = s.dir / f"{stamp}_{slug}.sql"
    if path.exists():
        raise ConfigError(f"{path} already exists", hint="wait a second or pick another name")
    header = "-- migration: no-transaction\n" if args.no_transaction else ""
    path.write_text(f"{header}-- {args.name}\n-- Forward-only: a fix is a new migration.\n\n",
                    encoding="utf-8")
    print(json.dumps({"path": str(path)}) if s.json else f"created {path}")
    return 0


def cmd_embedded(s: Settings, args: argparse.Namespace) -> int:
    from .embedded import ensure_server, stop_server

    if args.stop:
        stopped = stop_server(s.embedded_dir)
        print("stopped" if stopped else "not running")
        return 0
    print(ensure_server(s.embedded_dir))
    return 0


def _print_outcome(s: Settings, out: Any) -> None:
    if s.json:
        print(json.dumps(out.as_json(), indent=2))
        return
    for line in out.lines():
        print(line)


def cmd_adopt(s: Settings, args: argparse.Namespace) -> int:
    from .adoption import adopt

    _print_outcome(s, adopt(s, s.adopt_from, dry_run=s.dry_run, allow_gaps=s.allow_gaps))
    return errors.EXIT_OK


def cmd_baseline(s: Settings, args: argparse.Namespace) -> int:
    from .adoption import baseline

    if not s.through:
        raise ConfigError("baseline needs --through VERSION (env MIGRATION_BASELINE_THROUGH)",
                          hint="the version of the last migration the database already has")
    _print_outcome(s, baseline(s, s.through, dry_run=s.dry_run))
    return errors.EXIT_OK


COMMANDS = {"check": cmd_check, "plan": cmd_plan, "up": cmd_up, "new": cmd_new,
            "embedded": cmd_embedded, "adopt": cmd_adopt, "baseline": cmd_baseline}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    as_json = bool(getattr(args, "json", False))
    try:
        s = _settings(args)
        as_json = s.json
        handler = COMMANDS.get(args.command) or getattr(args, "handler", None)
        if handler is None:  # pragma: no cover - argparse requires a command
            parser.error(f"unknown command {args.command}")
        return int(handler(s, args))
    except MigrationError as e:
        _print_error(e, as_json)
        return e.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def entry() -> NoReturn:
    """The process entry point (``python -m migration``, ``gated-migrate``): run, then exit.

    Whatever is alive when the command returns lives until exit, so it is moved out of the
    cyclic collector's reach first: otherwise the interpreter's shutdown collects every
    module's objects (psycopg's included), which costs more than a no-op ``up`` itself
    (measured in docs/bench.md). Objects are still freed by reference counting; only the
    collector's final scans are skipped. Not done in ``main``, which tests call in-process.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
