"""`resolve FILE`: decide what happened to a per-statement migration that stopped part-way.

A migration run statement by statement (``migration/stepwise.py``) that failed or was killed
leaves a progress row: which statements committed, and whether one was in flight. `up` refuses
to go on (``partially-applied``) until a person looks at the database and records one decision,
under the runner lock, in one transaction:

* ``--continue-from N``: statements before N are in effect; the next `up` runs N onwards;
* ``--applied``: the whole file is in effect; record it as applied;
* ``--rolled-back``: nothing of it is in effect any more (you undid it); the next `up` runs it
  from its first statement.
"""

from __future__ import annotations

import argparse
import json
import time

from .errors import ConfigError, Location, Problem
from .settings import Settings

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Any

DESCRIPTION = """\
A migration that its tool runs statement by statement (goose NO TRANSACTION, dbmate
transaction:false, Flyway executeInTransaction=false, with several statements) commits each
statement on its own. If it stops part-way, `up` refuses to continue (exit 3,
partially-applied) and names the file and the statements that committed. Look at the
database, then record what is true with exactly one of the options below.
"""

EPILOG = """\
examples:
  python -m migration up                      # refuses: 00042_idx.sql stopped part-way ...
  python -m migration resolve 00042_idx.sql --continue-from 3
  python -m migration resolve 00042_idx.sql --rolled-back
  python -m migration resolve 00042_idx.sql --applied --json
"""


def register(sub: Any, add_common: Any) -> None:
    p = sub.add_parser("resolve", help="decide what happened to a migration stopped part-way",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="the migration, as `up` names it (e.g. 00042_idx.sql)")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--continue-from", type=int, metavar="N",
                     help="statements 1..N-1 are in effect: the next `up` runs N onwards")
    how.add_argument("--applied", action="store_true",
                     help="every statement is in effect: record the file as applied")
    how.add_argument("--rolled-back", action="store_true",
                     help="nothing of it is in effect: the next `up` runs it from statement 1")
    add_common(p)
    p.set_defaults(handler=cmd_resolve)


def cmd_resolve(s: Settings, args: argparse.Namespace) -> int:
    # Here, not at module level: `--help` builds this command's parser without a driver.
    from psycopg import sql

    from . import history, lock
    from .connection import connect, embedded_url
    from .formats import discover
    from .redact import Redactor, password_of
    from .tables import Tables

    files = {f.name: f for f in discover(s.dir, s.format)}
    url = s.database_url or embedded_url(s.embedded_dir)
    tables = Tables(s.schema, s.history_table, s.run_log_table)
    with connect(url, Redactor(password_of(url)), autocommit=True, purpose="resolve") as conn:
        try:
            from .adoption import resolve_tables

            tables = resolve_tables(conn, tables)
        except ImportError:  # pragma: no cover - adoption ships with the package
            pass
        lock.acquire(conn, lock.lock_key(tables.schema, tables.history),
                     time.monotonic() + min(s.timeout_s, 60))
        applied, progress = history.read_state(conn, tables)
        row = next((p for p in progress if p.name == args.file), None)
        if row is None:
            names = ", ".join(p.name for p in progress) or "none"
            raise ConfigError(f"{args.file} has no unfinished per-statement run to resolve",
                              hint=f"unfinished: {names}")
        mf = files.get(args.file)
        if mf is None and not args.rolled_back:
            raise ConfigError(f"{args.file} is not in {s.dir}", hint="pass --dir / --format")
        if mf is not None and mf.checksum != row.checksum and not args.rolled_back:
            raise Problem("edited-after-apply",
                          f"{args.file} changed since statements of it were committed",
                          location=Location(args.file),
                          hint="restore the text that ran, then resolve")
        with conn.transaction():
            if args.continue_from is not None:
                n = args.continue_from
                if not 1 <= n <= row.statements:
                    raise ConfigError(f"--continue-from: {n} is outside 1..{row.statements}")
                conn.execute(history.progress_resume(tables, row.name, n))
                decision = f"the next `up` runs {row.name} from statement {n}"
            elif args.applied:
                assert mf is not None
                if row.name not in applied:
                    conn.execute(history.insert_row(
                        tables, mf, duration_ms=sql.Literal(0), release_sha=s.release_sha,
                        transactional=False, run_id=row.run_id, on_conflict_nothing=True))
                    # The tool's own row too, as `up` would have written it (reversible).
                    from . import toolhistory
                    from .adoption import ToolHistoryKeeper

                    keeper = ToolHistoryKeeper(enabled=s.tool_history)
                    keeper.prepare(conn, toolhistory.for_format(mf.format, s.dir))
                    for q in keeper(mf):
                        conn.execute(q)
                conn.execute(history.progress_clear(tables, row.name))
                decision = f"{row.name} is recorded as applied"
            else:
                conn.execute(history.progress_clear(tables, row.name))
                decision = f"the next `up` runs {row.name} from statement 1"
    if s.json:
        print(json.dumps({"ok": True, "file": row.name, "was": row.describe(),
                          "decision": decision}))
    else:
        print(f"{row.name} ({row.describe()}): {decision}")
    return 0
