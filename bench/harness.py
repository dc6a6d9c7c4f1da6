"""One benchmark run: corpora, server, every tool on a fresh database, repeated and checked.

Two corpora: the seeded 500-file one (every tool, plus the no-op runs) and a Prisma-shaped
one (bench/prisma.py; apply by psql, dbmate and the runner). node-pg-migrate's no-op ``up``
runs against the runner's database once its own table lists every file (``up --fake``).

Per repetition the tools run in a rotated order, so drift on a shared machine (another job,
a checkpoint, a warm cache) is spread over all of them rather than charged to one. After
each full apply the schema the tool built is compared with psql's: a tool that skipped a
file would otherwise look fast.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import commands
from .corpus import DEFAULT_SEED, Corpus, generate
from .errors import BenchError
from .prisma import DEFAULT_PRISMA_COUNT, generate_prisma
from .report import MEASUREMENTS, summarize
from .server import BenchServer

# The tools' bookkeeping tables, left out of the schema comparison.
_TOOL_TABLES = ("schema_migrations", "gated_release_history",
                "gated_release_history_progress", "migration_run_log", "pgmigrations")
TOOLS = ("psql", "dbmate", "runner", "runner-grouped")
PRISMA_TOOLS = ("psql", "dbmate", "runner")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    count: int = 500
    check_count: int = 1000
    repeat: int = 5
    seed: int = DEFAULT_SEED
    workdir: Path | None = None
    keep: bool = False
    dbmate: str | None = None
    prisma_count: int = DEFAULT_PRISMA_COUNT
    node_pg_migrate: str | None = None


class Harness:
    def __init__(self, options: Options, progress: Progress) -> None:
        self.o = options
        self.progress = progress
        self.samples: dict[str, list[commands.Timing]] = {k: [] for k in MEASUREMENTS}
        self.references: dict[str, dict[str, int]] = {}

    def run(self) -> dict[str, Any]:
        o = self.o
        if o.count < 1 or o.check_count < 1 or o.repeat < 1 or o.prisma_count < 1:
            raise BenchError("usage", "--count, --check-count, --prisma-count and --repeat "
                             "must be at least 1")
        dbmate = commands.find_dbmate(o.dbmate)
        npm_tool = commands.find_node_pg_migrate(o.node_pg_migrate)
        root = o.workdir or Path(tempfile.mkdtemp(prefix="gr-bench-"))
        root.mkdir(parents=True, exist_ok=True)
        server: BenchServer | None = None
        try:
            self.progress(f"generating {o.count} + {o.check_count} migrations under {root}")
            corpus = generate(root / "corpus", o.count, seed=o.seed)
            check = generate(root / "check", o.check_count, seed=o.seed + 1, dbmate=False)
            prisma = generate_prisma(root / "prisma", o.prisma_count, seed=o.seed)
            self.progress("starting the embedded PostgreSQL")
            server = BenchServer(root / "pgdata")
            load_before = _load()
            for rep in range(o.repeat):
                order = TOOLS[rep % len(TOOLS):] + TOOLS[:rep % len(TOOLS)]
                for tool in order:
                    self._measure(tool, server, dbmate, npm_tool, corpus, root)
                order = PRISMA_TOOLS[rep % 3:] + PRISMA_TOOLS[:rep % 3]
                for tool in order:
                    self._measure_prisma(tool, server, dbmate, prisma, root)
                self.samples["runner_check"].append(
                    commands.runner_check(check.sql_dir, root).timed())
                self.samples["runner_help"].append(commands.runner_help(root).timed())
                self.progress(f"repetition {rep + 1}/{o.repeat}: " + ", ".join(
                    f"{k} {v[-1].wall_s:.3f}s" for k, v in self.samples.items() if v))
            meta = {
                "corpus": {"count": o.count, "checkCount": o.check_count, "seed": o.seed,
                           "kinds": dict(sorted(corpus.kinds.items()))},
                "prismaCorpus": {"count": prisma.count,
                                 "kinds": dict(sorted(prisma.kinds.items()))},
                "repeat": o.repeat,
                "postgres": server.version,
                "psql": commands.version_of([str(server.psql), "--version"]),
                "dbmate": commands.version_of([str(dbmate), "--version"]),
                "nodePgMigrate": commands.node_pg_migrate_version(npm_tool),
                "python": sys.version.split()[0],
                "machine": {"system": platform.system(), "machine": platform.machine(),
                            "cpus": os.cpu_count(),
                            # Other jobs on the machine inflate wall time: read it with this.
                            "loadAverage1mBefore": load_before, "loadAverage1mAfter": _load()},
                "schemaFingerprint": self.references.get("corpus"),
                "prismaSchemaFingerprint": self.references.get("prisma"),
            }
            return summarize(self.samples, meta)
        finally:
            if server is not None:
                server.close()
            if not o.keep and o.workdir is None:
                shutil.rmtree(root, ignore_errors=True)

    def _measure(self, tool: str, server: BenchServer, dbmate: Path, npm_tool: Path,
                 corpus: Corpus, root: Path) -> None:
        db = server.create_database(f"bench_{tool}")
        try:
            if tool == "psql":
                cmd = commands.psql_apply(server, db, corpus.psql_script, root)
                self.samples["psql_apply"].append(cmd.timed())
            elif tool == "dbmate":
                cmd = commands.dbmate_up(dbmate, server, db, corpus.dbmate_dir, root)
                self.samples["dbmate_apply"].append(cmd.timed())
                self._verify(server, db, tool, corpus.count)
                self.samples["dbmate_noop"].append(cmd.timed())
            elif tool == "runner":
                cmd = commands.runner_up(server, db, corpus.sql_dir, root / "artifacts", root)
                self.samples["runner_apply"].append(cmd.timed())
                self._verify(server, db, tool, corpus.count)
                self.samples["runner_noop"].append(cmd.timed())
                # node-pg-migrate's no-op against the same database and files: its own
                # table first lists every file (its documented --fake), untimed.
                commands.node_pg_migrate_up(npm_tool, server, db, corpus.sql_dir, root,
                                            fake=True).timed()
                npm = commands.node_pg_migrate_up(npm_tool, server, db, corpus.sql_dir, root)
                self.samples["nodepg_noop"].append(npm.timed())
                if server.count_rows(db, "pgmigrations") != corpus.count:
                    raise BenchError("schema-mismatch", "node-pg-migrate did not record "
                                     f"every one of the {corpus.count} files")
            elif tool == "runner-grouped":
                cmd = commands.runner_up(server, db, corpus.sql_dir, root / "artifacts", root,
                                         single_transaction=True)
                self.samples["runner_apply_grouped"].append(cmd.timed())
                self._verify(server, db, tool, corpus.count)
            self._verify(server, db, tool, None)
        finally:
            server.drop_database(db)

    def _measure_prisma(self, tool: str, server: BenchServer, dbmate: Path, corpus: Corpus,
                        root: Path) -> None:
        db = server.create_database(f"prisma_{tool}")
        try:
            if tool == "psql":
                cmd = commands.psql_apply(server, db, corpus.psql_script, root)
            elif tool == "dbmate":
                cmd = commands.dbmate_up(dbmate, server, db, corpus.dbmate_dir, root)
            else:
                cmd = commands.runner_up(server, db, corpus.sql_dir, root / "artifacts", root)
            self.samples[f"prisma_{tool}_apply"].append(cmd.timed())
            self._verify(server, db, tool, None if tool == "psql" else corpus.count,
                         corpus="prisma")
        finally:
            server.drop_database(db)

    def _verify(self, server: BenchServer, db: str, tool: str, history: int | None, *,
                corpus: str = "corpus") -> None:
        if history is not None:
            table = "schema_migrations" if tool == "dbmate" else "gated_release_history"
            rows = server.count_rows(db, table)
            if rows != history:
                raise BenchError("schema-mismatch",
                                 f"{tool} recorded {rows} of {history} migrations ({corpus})")
        found = server.fingerprint(db, _TOOL_TABLES)
        reference = self.references.setdefault(corpus, found)
        if found != reference:
            raise BenchError("schema-mismatch",
                             f"{tool} built a different {corpus} schema: {found} != {reference}",
                             hint="a tool skipped or altered a migration; the timing is void")


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not on every platform
        return None
