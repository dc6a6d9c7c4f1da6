"""Adopting databases that Prisma, goose, golang-migrate and Flyway migrated.

No registry here ships those tools, so each test applies the up parts as the tool does
(golang-migrate: the `.up.sql` file as one Exec; Prisma: `migration.sql` as written; goose:
the part after `-- +goose Up`; Flyway: versioned files in version order, then repeatables) and
fills the tool's history table with the rows its source writes, by hand, independently of
the runner's adapters. Then: `up` refuses, `adopt` records, `up` applies the rest and keeps
the tool's table current, and the schema equals the tool's own.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import psycopg
import pytest

from tests.adoption.helpers import (
    CORPORA,
    copy_set,
    execute,
    psql_text,
    rows,
    runner,
    runner_json,
    schema,
)
from tests.conftest import PgServer


def _args(url: str, mig: Path) -> list[str]:
    return ["--dir", str(mig), "--database-url", url]


def _up(url: str, mig: Path, art: Path, *extra: str) -> tuple[int, dict[str, object]]:
    res = runner("up", *_args(url, mig), "--artifact-dir", str(art), "--release-sha", "ad",
                 *extra)
    return res.returncode, json.loads((art / "ad" / "migration.json").read_text())


def _applied(doc: dict[str, object]) -> list[str]:
    return [a["file"] for a in doc["executionSummary"]["applied"]]  # type: ignore[index]


def _flyway_crc(raw: bytes) -> int:
    c = zlib.crc32(raw.removeprefix(b"\xef\xbb\xbf").replace(b"\r", b"").replace(b"\n", b""))
    return c - (1 << 32) if c >= 1 << 31 else c


# -- golang-migrate ---------------------------------------------------------------------------
GM = CORPORA / "golang-migrate" / "migrations"
GM_UP = sorted(p.name for p in GM.glob("*.up.sql"))


def _golang_migrate(pg: PgServer, db: str, upto: int, *, dirty: bool = False) -> None:
    for name in GM_UP[:upto]:
        psql_text(pg, db, (GM / name).read_text())
    psql_text(pg, db, "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint not null"
                      " primary key, dirty boolean not null)")
    execute(pg.url(db), "INSERT INTO schema_migrations VALUES (%s, %s)", (upto, dirty))


def test_golang_migrate_adopt_then_up_keeps_its_row(pg: PgServer, dbname: str,
                                                    database_url: str, tmp_path: Path) -> None:
    mig = copy_set(GM, tmp_path / "m", [p.name for p in GM.iterdir()
                                        if not p.name.startswith("000004")])
    _golang_migrate(pg, dbname, 3)
    code, doc = _up(database_url, mig, tmp_path / "a0")
    assert (code, doc["reasonCode"]) == (3, "adoption-required")
    code, out = runner_json("adopt", "--from", "golang-migrate", *_args(database_url, mig))
    assert code == 0 and [r["file"] for r in out["recorded"]] == GM_UP[:3]
    assert any("highest version" in w for w in out["warnings"])
    copy_set(GM, mig)
    code, doc = _up(database_url, mig, tmp_path / "a1")
    assert code == 0 and _applied(doc) == GM_UP[3:], doc["reason"]
    # What `migrate version` reads: one row, the new version, clean.
    assert rows(database_url, "SELECT version, dirty FROM schema_migrations") == [(4, False)]
    ref = pg.create_database()
    try:
        _golang_migrate(pg, ref, 4)
        assert schema(pg, dbname) == schema(pg, ref)
    finally:
        pg.drop_database(ref)


def test_golang_migrate_dirty_row_is_refused(pg: PgServer, dbname: str, database_url: str,
                                             tmp_path: Path) -> None:
    mig = copy_set(GM, tmp_path / "m")
    _golang_migrate(pg, dbname, 2, dirty=True)
    code, out = runner_json("adopt", "--from", "golang-migrate", *_args(database_url, mig))
    assert code == 3 and out["ok"] is False
    assert [(p["code"], p["file"]) for p in out["problems"]] == [
        ("dirty-history", "000002_add_mood_to_users.up.sql")]
    assert "version=2 dirty=true" in out["problems"][0]["message"]
    assert rows(database_url, "SELECT to_regclass('gated_release_history') IS NULL") == [(True,)]


# -- Prisma -----------------------------------------------------------------------------------
PR = CORPORA / "prisma" / "prisma" / "migrations"
PR_DIRS = sorted(p.name for p in PR.iterdir() if p.is_dir())  # Prisma's order: name order


def _prisma(pg: PgServer, db: str, dirs: list[str], failed: str | None = None) -> None:
    psql_text(pg, db, """CREATE TABLE "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL,
    "finished_at" TIMESTAMPTZ, "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT,
    "rolled_back_at" TIMESTAMPTZ, "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0);""")
    for i, d in enumerate(dirs):
        raw = (PR / d / "migration.sql").read_bytes()
        done = d != failed
        if done:
            psql_text(pg, db, raw.decode())
        execute(pg.url(db), "INSERT INTO _prisma_migrations (id, checksum, finished_at,"
                " migration_name, applied_steps_count) VALUES (%s, %s,"
                " CASE WHEN %s THEN now() END, %s, %s)",
                (f"id-{i}", hashlib.sha256(raw).hexdigest(), done, d, 1 if done else 0))


def test_prisma_adopt_then_up_in_directory_name_order(pg: PgServer, dbname: str,
                                                      database_url: str, tmp_path: Path) -> None:
    # 14-digit 20230104000000_posts sorts before 12-digit 202301051200_posts_published by name
    # (Prisma's order), after it by number; the second alters the table the first creates.
    assert PR_DIRS.index("20230104000000_posts") < PR_DIRS.index("202301051200_posts_published")
    mig = copy_set(PR, tmp_path / "m", [*PR_DIRS[:2], "migration_lock.toml"])
    _prisma(pg, dbname, PR_DIRS[:2])
    code, out = runner_json("adopt", "--from", "auto", *_args(database_url, mig))
    assert code == 0 and out["tool"] == "prisma"
    assert [r["file"] for r in out["recorded"]] == [f"{d}/migration.sql" for d in PR_DIRS[:2]]
    copy_set(PR, mig)
    code, doc = _up(database_url, mig, tmp_path / "a")
    assert code == 0, doc["reason"]
    assert _applied(doc) == [f"{d}/migration.sql" for d in PR_DIRS[2:]]
    # `prisma migrate status` would read these: every directory finished, checksums its own.
    got = rows(database_url, "SELECT migration_name, checksum, finished_at IS NOT NULL,"
                             " rolled_back_at IS NULL, applied_steps_count FROM"
                             " _prisma_migrations ORDER BY migration_name")
    assert got == [(d, hashlib.sha256((PR / d / "migration.sql").read_bytes()).hexdigest(),
                    True, True, 1) for d in PR_DIRS]
    ref = pg.create_database()
    try:
        _prisma(pg, ref, PR_DIRS)
        assert schema(pg, dbname) == schema(pg, ref)
    finally:
        pg.drop_database(ref)


def test_prisma_failed_row_is_refused(pg: PgServer, dbname: str, database_url: str,
                                      tmp_path: Path) -> None:
    mig = copy_set(PR, tmp_path / "m")
    _prisma(pg, dbname, PR_DIRS[:3], failed=PR_DIRS[2])
    code, out = runner_json("adopt", "--from", "prisma", *_args(database_url, mig))
    assert code == 3
    assert [(p["code"], p["file"]) for p in out["problems"]] == [
        ("failed-migration", f"{PR_DIRS[2]}/migration.sql")]
    assert "migrate resolve" in out["problems"][0]["hint"]


def test_prisma_changed_checksum_is_refused(pg: PgServer, dbname: str, database_url: str,
                                            tmp_path: Path) -> None:
    mig = copy_set(PR, tmp_path / "m")
    _prisma(pg, dbname, PR_DIRS[:2])
    with (mig / PR_DIRS[1] / "migration.sql").open("a") as f:
        f.write("-- edited after deploy\n")
    code, out = runner_json("adopt", "--from", "prisma", *_args(database_url, mig), "--dry-run")
    assert code == 3
    assert [(p["code"], p["file"]) for p in out["problems"]] == [
        ("checksum-mismatch", f"{PR_DIRS[1]}/migration.sql")]


# -- goose ------------------------------------------------------------------------------------
GO = CORPORA / "goose" / "migrations"
GO_FILES = sorted(p.name for p in GO.iterdir())


def _goose(pg: PgServer, db: str, versions: list[int]) -> None:
    psql_text(pg, db, "CREATE TABLE goose_db_version (id integer PRIMARY KEY GENERATED BY"
                      " DEFAULT AS IDENTITY, version_id bigint NOT NULL, is_applied boolean NOT"
                      " NULL, tstamp timestamp NOT NULL DEFAULT now());"
                      " INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true);")
    for v in versions:
        text = (GO / GO_FILES[v - 1]).read_text()
        up = text.split("-- +goose Up", 1)[1].split("-- +goose Down", 1)[0]
        up = "\n".join(ln for ln in up.splitlines() if "+goose" not in ln)
        psql_text(pg, db, up)
        execute(pg.url(db), "INSERT INTO goose_db_version (version_id, is_applied)"
                " VALUES (%s, true)", (v,))


def test_goose_gap_is_refused_then_allowed(pg: PgServer, dbname: str, database_url: str,
                                           tmp_path: Path) -> None:
    mig = copy_set(GO, tmp_path / "m")
    _goose(pg, dbname, [1, 2, 4])  # 3 (NO TRANSACTION) was never applied
    code, out = runner_json("adopt", "--from", "goose", *_args(database_url, mig))
    assert code == 3
    assert [(p["code"], p["file"]) for p in out["problems"]] == [("out-of-order", GO_FILES[2])]
    code, out = runner_json("adopt", "--from", "goose", *_args(database_url, mig),
                            "--allow-gaps")
    assert code == 0 and [r["file"] for r in out["recorded"]] == [GO_FILES[i] for i in (0, 1, 3)]
    assert out["leftPending"] == [GO_FILES[2]]
    code, doc = _up(database_url, mig, tmp_path / "a", "--no-check-order")
    assert code == 0 and _applied(doc) == [GO_FILES[2]], doc["reason"]
    newest = rows(database_url, "SELECT DISTINCT ON (version_id) version_id, is_applied FROM"
                                " goose_db_version ORDER BY version_id, id DESC")
    assert newest == [(0, True), (1, True), (2, True), (3, True), (4, True)]
    ref = pg.create_database()
    try:
        _goose(pg, ref, [1, 2, 3, 4])
        assert schema(pg, dbname) == schema(pg, ref)
    finally:
        pg.drop_database(ref)


# -- Flyway -----------------------------------------------------------------------------------
FW = CORPORA / "flyway" / "src" / "main" / "resources" / "db" / "migration"
FW_VERSIONED = ["V1__Create_person_table.sql", "V1_1__Populate_table.sql", "V2__Add_email.sql",
                "V10__Create_address.sql"]


def _flyway(pg: PgServer, db: str, scripts: list[str], *, crc_delta: int = 0) -> None:
    psql_text(pg, db, """CREATE TABLE flyway_schema_history (installed_rank INT NOT NULL,
    version VARCHAR(50), description VARCHAR(200) NOT NULL, type VARCHAR(20) NOT NULL,
    script VARCHAR(1000) NOT NULL, checksum INTEGER, installed_by VARCHAR(100) NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT now(), execution_time INTEGER NOT NULL,
    success BOOLEAN NOT NULL);
    ALTER TABLE flyway_schema_history ADD CONSTRAINT flyway_schema_history_pk
    PRIMARY KEY (installed_rank);
    CREATE INDEX flyway_schema_history_s_idx ON flyway_schema_history (success);""")
    for rank, script in enumerate(scripts, 1):
        raw = (FW / script).read_bytes()
        psql_text(pg, db, raw.decode())
        version = None if script.startswith("R__") else \
            script[1:].split("__")[0].replace("_", ".")
        execute(pg.url(db), "INSERT INTO flyway_schema_history VALUES (%s, %s, 'd', 'SQL', %s,"
                " %s, 'me', now(), 1, true)", (rank, version, script,
                                               _flyway_crc(raw) + crc_delta))


def test_flyway_adopt_then_up_versioned_then_repeatable(
        pg: PgServer, dbname: str, database_url: str, tmp_path: Path) -> None:
    mig = copy_set(FW, tmp_path / "m", [*FW_VERSIONED[:3], "R__person_names_view.sql",
                                        "U10__Create_address.sql"])
    _flyway(pg, dbname, [*FW_VERSIONED[:3], "R__person_names_view.sql"])
    code, out = runner_json("adopt", "--from", "flyway", *_args(database_url, mig))
    assert code == 0
    assert [r["file"] for r in out["recorded"]] == [*FW_VERSIONED[:3], "R__person_names_view.sql"]
    copy_set(FW, mig)
    code, doc = _up(database_url, mig, tmp_path / "a")
    assert code == 0 and _applied(doc) == ["V10__Create_address.sql"], doc["reason"]
    got = rows(database_url, "SELECT installed_rank, version, script, checksum, success FROM"
                             " flyway_schema_history ORDER BY installed_rank")
    assert got[-1] == (5, "10", "V10__Create_address.sql",
                       _flyway_crc((FW / "V10__Create_address.sql").read_bytes()), True)
    assert "U10__Create_address.sql" not in str(rows(database_url,
                                                      "SELECT name FROM gated_release_history"))
    ref = pg.create_database()
    try:
        _flyway(pg, ref, [*FW_VERSIONED, "R__person_names_view.sql"])
        assert schema(pg, dbname) == schema(pg, ref)
    finally:
        pg.drop_database(ref)


@pytest.mark.parametrize("crlf", [False, True])
def test_flyway_checksum_mismatch_is_refused_line_endings_are_not(
        pg: PgServer, dbname: str, database_url: str, tmp_path: Path, crlf: bool) -> None:
    mig = copy_set(FW, tmp_path / "m")
    _flyway(pg, dbname, FW_VERSIONED[:2], crc_delta=0 if crlf else 1)
    if crlf:  # a checkout with other line endings: Flyway's checksum does not change
        p = mig / FW_VERSIONED[0]
        p.write_bytes(p.read_bytes().replace(b"\n", b"\r\n"))
    code, out = runner_json("adopt", "--from", "flyway", *_args(database_url, mig), "--dry-run")
    if crlf:
        assert code == 0 and [r["file"] for r in out["recorded"]] == FW_VERSIONED[:2]
    else:
        assert code == 3, out
        assert [p["code"] for p in out["problems"]] == ["checksum-mismatch"] * 2, out


def test_adopt_with_no_tool_history_is_a_usage_error(database_url: str, tmp_path: Path) -> None:
    res = runner("adopt", "--from", "flyway", *_args(database_url, copy_set(FW, tmp_path / "m")))
    assert res.returncode == 2 and "no flyway history" in res.stderr


def test_up_with_no_tool_history_leaves_the_tools_table_alone(
        pg: PgServer, dbname: str, database_url: str, tmp_path: Path) -> None:
    mig = copy_set(GM, tmp_path / "m")
    code, doc = _up(database_url, mig, tmp_path / "a", "--no-tool-history")
    assert code == 0, doc["reason"]
    assert rows(database_url, "SELECT to_regclass('schema_migrations') IS NULL") == [(True,)]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM gated_release_history").fetchone() == (4,)


def test_up_refuses_when_the_tool_failed_part_way_since(pg: PgServer, dbname: str,
                                                        database_url: str,
                                                        tmp_path: Path) -> None:
    mig = copy_set(GM, tmp_path / "m", [p.name for p in GM.iterdir()
                                        if not p.name.startswith("000004")])
    code, doc = _up(database_url, mig, tmp_path / "a1")
    assert code == 0, doc["reason"]
    # Someone ran `migrate up` with a new file and it failed half-way.
    execute(database_url, "UPDATE schema_migrations SET version = 4, dirty = true")
    copy_set(GM, mig)
    code, doc = _up(database_url, mig, tmp_path / "a2")
    assert (code, doc["reasonCode"]) == (3, "check-failed")
    failing = doc["executionSummary"]["failing"]  # type: ignore[index]
    assert (failing["code"], failing["file"]) == ("dirty-history",
                                                  "000004_sessions_user_agent.up.sql")
