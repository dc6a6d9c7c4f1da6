"""`up` on a database it did not migrate refuses and changes nothing; `baseline` covers a
database built by hand; a database this runner migrated under the old default name keeps
working."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from tests.adoption.helpers import psql_file, rows, runner, runner_json, schema
from tests.conftest import PgServer
from tests.schema_check import validate_migration_artifact

FILES = {
    "0001_users.sql": "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);\n",
    "0002_posts.sql": "CREATE TABLE posts (id serial PRIMARY KEY, user_id int REFERENCES users);\n",
    "0003_posts_title.sql": "ALTER TABLE posts ADD COLUMN title text;\n",
}


def write(d: Path, files: dict[str, str] = FILES) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for n, t in files.items():
        (d / n).write_text(t)
    return d


def up(url: str, mig: Path, art: Path, *extra: str) -> tuple[int, dict[str, object], str]:
    res = runner("up", "--dir", str(mig), "--database-url", url, "--artifact-dir", str(art),
                 "--release-sha", "g1", *extra)
    doc = json.loads((art / "g1" / "migration.json").read_text())
    validate_migration_artifact(doc)
    return res.returncode, doc, res.stdout


def relations(url: str) -> list[tuple[str]]:
    return rows(url, "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON"
                     " n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog',"
                     " 'information_schema', 'pg_toast') ORDER BY 1")


def test_up_on_a_hand_built_database_refuses_and_changes_nothing(
        database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL)")
        conn.execute("CREATE TYPE mood AS ENUM ('ok')")
    before = relations(database_url)
    code, doc, _ = up(database_url, write(tmp_path / "m"), tmp_path / "a")
    assert (code, doc["reasonCode"], doc["executionStatus"]) == (3, "adoption-required", "Failed")
    reason = str(doc["reason"])
    assert "table public.users" in reason and "enum type public.mood" in reason
    assert "baseline --through VERSION" in reason
    # Nothing created, nothing written: not even the history or the run log.
    assert relations(database_url) == before


def test_up_on_a_database_holding_another_tools_history_refuses(
        database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY,"
                     " dirty boolean NOT NULL)")
        conn.execute("INSERT INTO schema_migrations VALUES (3, false)")
    before = relations(database_url)
    code, doc, _ = up(database_url, write(tmp_path / "m"), tmp_path / "a")
    assert (code, doc["reasonCode"]) == (3, "adoption-required")
    assert "golang-migrate (public.schema_migrations)" in str(doc["reason"])
    assert "adopt --from golang-migrate" in str(doc["reason"])
    assert relations(database_url) == before


def test_extension_objects_do_not_count(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # types and functions in public
    code, doc, _ = up(database_url, write(tmp_path / "m"), tmp_path / "a")
    assert code == 0, doc["reason"]


def test_baseline_then_up(pg: PgServer, dbname: str, database_url: str, tmp_path: Path) -> None:
    mig = write(tmp_path / "m")
    for n in ("0001_users.sql", "0002_posts.sql"):
        psql_file(pg, dbname, mig / n)
    args = ["--dir", str(mig), "--database-url", database_url]
    code, dry = runner_json("baseline", "--through", "0002", *args, "--dry-run")
    assert code == 0 and [r["file"] for r in dry["recorded"]] == ["0001_users.sql",
                                                                   "0002_posts.sql"]
    assert rows(database_url, "SELECT to_regclass('gated_release_history') IS NULL") == [(True,)]
    code, done = runner_json("baseline", "--through", "0002", *args)
    assert code == 0 and done["recorded"] == dry["recorded"]
    assert rows(database_url, "SELECT name, origin, duration_ms FROM gated_release_history"
                              " ORDER BY name") == [("0001_users.sql", "baseline", 0),
                                                    ("0002_posts.sql", "baseline", 0)]
    code, doc, _ = up(database_url, mig, tmp_path / "a")
    assert code == 0, doc["reason"]
    assert [a["file"] for a in doc["executionSummary"]["applied"]] == ["0003_posts_title.sql"]  # type: ignore[index]
    ref = pg.create_database()
    try:
        for n in FILES:
            psql_file(pg, ref, mig / n)
        assert schema(pg, dbname) == schema(pg, ref)
    finally:
        pg.drop_database(ref)


def test_baseline_through_an_unknown_version_is_a_usage_error(database_url: str,
                                                              tmp_path: Path) -> None:
    res = runner("baseline", "--through", "0009", "--dir", str(write(tmp_path / "m")),
                 "--database-url", database_url)
    assert res.returncode == 2 and "0009" in res.stderr and "0003" in res.stderr


def test_history_under_the_old_default_name_keeps_working(database_url: str,
                                                          tmp_path: Path) -> None:
    mig = write(tmp_path / "m", {n: t for n, t in FILES.items() if n != "0003_posts_title.sql"})
    code, doc, _ = up(database_url, mig, tmp_path / "a1", "--history-table",
                      "schema_migrations")
    assert code == 0, doc["reason"]
    write(tmp_path / "m")
    code, doc, out = up(database_url, mig, tmp_path / "a2")  # the new default name
    assert code == 0, doc["reason"]
    assert "using public.schema_migrations" in out and "RENAME TO gated_release_history" in out
    assert [a["file"] for a in doc["executionSummary"]["applied"]] == ["0003_posts_title.sql"]  # type: ignore[index]
    assert rows(database_url, "SELECT to_regclass('gated_release_history') IS NULL") == [(True,)]
    assert rows(database_url, "SELECT count(*) FROM schema_migrations") == [(3,)]
    res = runner("status", "--json", "--dir", str(mig), "--database-url", database_url)
    assert json.loads(res.stdout)["pending"] == [], res.stdout
    res = runner("check", "--json", "--dir", str(mig), "--database-url", database_url)
    assert (res.returncode, json.loads(res.stdout)["pending"]) == (0, []), res.stdout


def test_objects_not_from_these_migrations_can_be_declared(database_url: str,
                                                           tmp_path: Path) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE legacy_app_table (x int)")
    code, doc, out = up(database_url, write(tmp_path / "m"), tmp_path / "a",
                        "--allow-unrecorded-objects")
    assert code == 0, doc["reason"]
    assert "applying anyway" in out
    assert len(doc["executionSummary"]["applied"]) == 3  # type: ignore[arg-type]
