"""Each tool's files read as its tool reads them: identity, order, the up part only, and the
refusals (mixed formats, foreign markers, Go migrations), through the real CLI against the
embedded PostgreSQL. Problems are asserted by class and stable code, never by message text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migration.checker import check
from migration.errors import CheckError, Problem
from migration.formats import detect, discover
from tests.runner.safety_helpers import (
    Result,
    Runner,
    history,
    query,
    table_exists,
    write_migrations,
)

USERS = "CREATE TABLE users (id int PRIMARY KEY, email text);\n"
DROP = "DROP TABLE users;\n"

# One set per tool, written the way the tool writes it, each with a down part that drops
# what the up part made. (name -> text); the table `users` must survive `up`.
SETS: dict[str, dict[str, str]] = {
    "dbmate": {
        "20240101000000_users.sql": f"-- migrate:up\n{USERS}\n-- migrate:down\n{DROP}",
        "20240102000000_posts.sql": "-- migrate:up\nCREATE TABLE posts (id int);\n\n"
                                    "-- migrate:down\nDROP TABLE posts;\nDROP TABLE users;\n",
    },
    "goose": {
        "00001_users.sql": f"-- +goose Up\n-- +goose StatementBegin\n{USERS}"
                           "-- +goose StatementEnd\n\n-- +goose Down\n"
                           f"-- +goose StatementBegin\n{DROP}-- +goose StatementEnd\n",
        "00002_fn.sql": "-- +goose Up\nCREATE TABLE posts (id int);\n"
                        "-- +goose StatementBegin\nCREATE FUNCTION one() RETURNS "
                        "int LANGUAGE plpgsql AS $$\nBEGIN\n  RETURN 1;\nEND;\n$$;\n"
                        "-- +goose StatementEnd\n-- +goose Down\nDROP FUNCTION one();\n"
                        f"{DROP}",
    },
    "node-pg-migrate": {
        "1700000000000_users.sql": f"-- Up Migration\n{USERS}\n-- Down Migration\n{DROP}",
        "1700000000001_posts.up.sql": "CREATE TABLE posts (id int);\n",
        "1700000000001_posts.down.sql": f"DROP TABLE posts;\n{DROP}",
    },
    "golang-migrate": {
        "1_users.up.sql": USERS,
        "1_users.down.sql": DROP,
        "2_posts.up.sql": "CREATE TABLE posts (id int);\n",
        "2_posts.down.sql": f"DROP TABLE posts;\n{DROP}",
    },
    "flyway": {
        "V1__users.sql": USERS,
        "U1__users.sql": DROP,
        "V1_1__posts.sql": "CREATE TABLE posts (id int);\n",
        "R__user_emails.sql": "CREATE OR REPLACE VIEW user_emails AS SELECT email FROM users;\n",
    },
}


@pytest.fixture
def runner(tmp_path: Path, database_url: str) -> Runner:
    return Runner(tmp_path / "migrations", tmp_path / "artifacts", database_url)


def check_json(runner: Runner, *args: str) -> tuple[Result, dict[str, object]]:
    res = runner.run("check", "--json", *args)
    return res, json.loads(res.stdout)


def codes(doc: dict[str, object]) -> list[str]:
    problems = doc["problems"]
    assert isinstance(problems, list)
    return [str(p["code"]) for p in problems]


@pytest.mark.parametrize("tool", sorted(SETS))
def test_down_part_never_runs(tool: str, runner: Runner, database_url: str) -> None:
    write_migrations(runner.directory, SETS[tool])
    assert detect(runner.directory).name == tool
    plan = runner.run("plan")
    assert plan.code == 0, str(plan)
    res = runner.up()
    assert res.code == 0, str(res)
    assert table_exists(database_url, "users"), f"{tool}: the down part ran"
    assert table_exists(database_url, "posts")
    files = discover(runner.directory)
    assert history(database_url) == sorted(f.name for f in files)
    # Nothing pending, and a second `up` changes nothing.
    again = runner.up()
    assert again.code == 0 and "nothing pending" in again.stdout, str(again)
    assert table_exists(database_url, "users")


@pytest.mark.parametrize("layout", ["up-then-down", "down-then-up", "up-only"])
def test_node_pg_migrate_never_runs_what_precedes_its_up_marker(
        layout: str, runner: Runner, database_url: str) -> None:
    # node-pg-migrate's up part starts at its marker (sqlMigration.ts: content.slice(upStart,
    # ...)): a header above it runs in neither direction, so the runner must not run it either.
    header = "CREATE TABLE header_only (id int);\n"
    up = f"-- Up Migration\n{USERS}"
    down = "-- Down Migration\nDROP TABLE users;\n"
    body = {"up-then-down": header + up + down, "down-then-up": header + down + up,
            "up-only": header + up}[layout]
    write_migrations(runner.directory, {"1700000000000_users.sql": body,
                                        "1700000000001_posts.sql": "-- Up Migration\n"
                                        "CREATE TABLE posts (id int);\n"})
    res = runner.up("--format", "node-pg-migrate")
    assert res.code == 0, str(res)
    assert table_exists(database_url, "users") and table_exists(database_url, "posts")
    assert not table_exists(database_url, "header_only"), layout


@pytest.mark.parametrize("tool", ["dbmate", "goose", "node-pg-migrate"])
def test_plan_shows_the_down_part_as_ignored(tool: str, runner: Runner) -> None:
    write_migrations(runner.directory, SETS[tool])
    res = runner.run("plan", "--json")
    assert res.code == 0, str(res)
    first = json.loads(res.stdout)["pending"][0]
    assert first["format"] == tool
    [span] = first["ignored"]
    assert span["label"] == "down"
    text = (runner.directory / first["file"]).read_text().split("\n")
    ignored = "\n".join(text[span["startLine"] - 1:span["endLine"]])
    assert "DROP TABLE users" in ignored and "CREATE TABLE users" not in ignored
    assert all("DROP" not in st["sql"] for st in first["statements"])
    human = runner.run("plan")
    assert f"lines {span['startLine']}-{span['endLine']}  ignored: the down part" in human.stdout


def test_golang_migrate_down_file_is_never_a_migration(tmp_path: Path) -> None:
    write_migrations(tmp_path, SETS["golang-migrate"])
    assert [f.name for f in discover(tmp_path)] == ["1_users.up.sql", "2_posts.up.sql"]
    assert [f.tool_key for f in discover(tmp_path)] == ["1", "2"]


def test_plain_directory_refuses_a_down_file(tmp_path: Path) -> None:
    write_migrations(tmp_path, {"0001_users.sql": USERS, "0002_x.sql": "SELECT 1;\n",
                                "0003_x.down.sql": DROP})
    with pytest.raises(CheckError) as e:
        discover(tmp_path, "plain")
    [p] = e.value.problems
    assert isinstance(p, Problem) and p.code == "down-part-present"
    assert p.location is not None and p.location.file == "0003_x.down.sql"


def test_plain_file_carrying_dbmate_markers_is_refused(runner: Runner, database_url: str) -> None:
    write_migrations(runner.directory, {
        "0001_a.sql": USERS,
        "0002_b.sql": "CREATE TABLE b (id int);\n",
        "0003_c.sql": "-- migrate:up\nCREATE TABLE c (id int);\n-- migrate:down\nDROP TABLE c;\n",
    })
    res, doc = check_json(runner)
    assert res.code == 3, str(res)
    assert codes(doc) == ["down-part-present"]
    [p] = doc["problems"]  # type: ignore[misc]
    assert p["file"] == "0003_c.sql" and p["line"] == 3
    up = runner.up()
    assert up.code == 3 and up.artifact is not None
    assert up.artifact["executionSummary"]["failing"]["file"] == "0003_c.sql"
    assert not table_exists(database_url, "users")  # nothing applied


def test_a_directory_mixing_two_tools_is_refused(tmp_path: Path) -> None:
    write_migrations(tmp_path, {
        "20240101_a.sql": "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\n",
        "20240102_b.sql": "-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\n",
    })
    with pytest.raises(CheckError) as e:
        detect(tmp_path)
    assert [p.code for p in e.value.problems] == ["mixed-formats"]


def test_goose_file_in_a_dbmate_directory_is_refused_naming_its_marker(tmp_path: Path) -> None:
    write_migrations(tmp_path, {
        "20240101_a.sql": "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\n",
        "20240102_b.sql": "-- migrate:up\nCREATE TABLE b (id int);\n-- migrate:down\n",
        "20240103_c.sql": "-- +goose Up\nCREATE TABLE c (id int);\n-- +goose Down\nDROP TABLE c;\n",
    })
    files = discover(tmp_path)
    assert files[0].format == "dbmate"
    problems = check(files).problems
    assert {p.code for p in problems} >= {"down-part-present"}
    assert all(p.location and p.location.file == "20240103_c.sql" for p in problems)


def test_goose_go_migration_is_refused(runner: Runner) -> None:
    write_migrations(runner.directory, {
        "00001_users.sql": SETS["goose"]["00001_users.sql"],
        "00002_backfill.go": "package migrations\n",
    })
    res, doc = check_json(runner)
    assert res.code == 3 and codes(doc) == ["go-migration"]
    assert doc["problems"][0]["file"] == "00002_backfill.go"  # type: ignore[index]


def test_format_flag_forces_a_format(runner: Runner) -> None:
    write_migrations(runner.directory, {"0001_a.sql": "-- migrate:up\nSELECT 1;\n-- migrate:down\n"})
    assert detect(runner.directory).name == "dbmate"
    res, doc = check_json(runner, "--format", "plain")
    assert res.code == 3 and codes(doc) == ["down-part-present"]
    res, doc = check_json(runner, "--format", "dbmate")
    assert res.code == 0 and doc["format"] == "dbmate"
    bad = runner.run("check", "--format", "liquibase")
    assert bad.code == 2


def test_dbmate_transaction_false_one_statement_runs_outside(runner: Runner,
                                                             database_url: str) -> None:
    write_migrations(runner.directory, {
        "20240101_users.sql": f"-- migrate:up\n{USERS}-- migrate:down\n{DROP}",
        "20240102_idx.sql": "-- migrate:up transaction:false\n"
                            "CREATE INDEX CONCURRENTLY users_email ON users (email);\n"
                            "-- migrate:down\nDROP INDEX users_email;\n",
    })
    res = runner.up()
    assert res.code == 0, str(res)
    assert "outside a transaction" in res.stdout
    assert query(database_url, "SELECT indisvalid FROM pg_index WHERE indexrelid = "
                               "'users_email'::regclass") == [(True,)]


def test_flyway_order_and_repeatable_reapplied_when_changed(runner: Runner,
                                                            database_url: str) -> None:
    write_migrations(runner.directory, {
        "V1__users.sql": USERS,
        "V2__b.sql": "ALTER TABLE users ADD COLUMN b int;\n",
        "V10__c.sql": "ALTER TABLE users ADD COLUMN c int;\n",
        "sub/V1_5__a.sql": "ALTER TABLE users ADD COLUMN a int;\n",
        "R__cols.sql": "CREATE OR REPLACE VIEW cols AS SELECT a, b, c FROM users;\n",
    })
    (runner.directory / "sub").mkdir(exist_ok=True)
    files = discover(runner.directory)
    assert [f.name for f in files] == ["V1__users.sql", "sub/V1_5__a.sql", "V2__b.sql",
                                       "V10__c.sql", "R__cols.sql"]
    assert [f.tool_key for f in files] == ["1", "1.5", "2", "10", "cols"]
    assert runner.up().code == 0
    cols = "SELECT attname FROM pg_attribute WHERE attrelid = 'cols'::regclass AND attnum > 0"
    assert sorted(r[0] for r in query(database_url, cols)) == ["a", "b", "c"]
    assert "nothing pending" in runner.up().stdout
    write_migrations(runner.directory, {
        "R__cols.sql": "CREATE OR REPLACE VIEW cols AS SELECT a, b, c, email FROM users;\n"})
    res = runner.up()
    assert res.code == 0 and res.artifact is not None, str(res)
    assert [a["file"] for a in res.artifact["executionSummary"]["applied"]] == ["R__cols.sql"]
    assert sorted(r[0] for r in query(database_url, cols)) == ["a", "b", "c", "email"]


def test_flyway_duplicate_version_is_refused(tmp_path: Path) -> None:
    write_migrations(tmp_path, {"V1__a.sql": "SELECT 1;\n", "V1_0__b.sql": "SELECT 1;\n"})
    with pytest.raises(CheckError) as e:
        discover(tmp_path)
    assert [p.code for p in e.value.problems] == ["duplicate-identity"]


def _journal(tags: list[str]) -> str:
    return json.dumps({"version": "7", "dialect": "postgresql", "entries": [
        {"idx": i, "version": "7", "when": 1700000000000 + i, "tag": t, "breakpoints": True}
        for i, t in enumerate(tags)]})


def test_drizzle_journal_is_the_list_and_the_order(runner: Runner, database_url: str) -> None:
    # Journal order differs from name order; a .sql outside the journal is never applied.
    write_migrations(runner.directory, {
        "meta/_journal.json": _journal(["0001_users", "0000_posts"]),
        "0001_users.sql": 'CREATE TABLE "users" ("id" serial PRIMARY KEY);\n'
                          "--> statement-breakpoint\n"
                          'CREATE TABLE "orgs" ("id" serial PRIMARY KEY);\n',
        "0000_posts.sql": 'CREATE TABLE "posts" ("id" serial PRIMARY KEY, "user_id" integer '
                          'REFERENCES "users"("id"));\n',
        "0002_stray.sql": "DROP TABLE users;\n",
    })
    (runner.directory / "meta").mkdir(exist_ok=True)
    files = discover(runner.directory)
    assert [f.name for f in files] == ["0001_users.sql", "0000_posts.sql"]
    assert files[0].meta["when"] == 1700000000000
    res = runner.up()
    assert res.code == 0, str(res)
    assert "0002_stray.sql is not in meta/_journal.json" in res.stdout
    assert table_exists(database_url, "users") and table_exists(database_url, "orgs")
    assert "0002_stray.sql" not in history(database_url)


def test_drizzle_journal_entry_without_file_is_refused(tmp_path: Path) -> None:
    write_migrations(tmp_path, {"meta/_journal.json": _journal(["0000_a"])})
    with pytest.raises(CheckError) as e:
        discover(tmp_path)
    assert [p.code for p in e.value.problems] == ["journal-invalid"]


def test_prisma_order_is_directory_name_order(runner: Runner, database_url: str) -> None:
    # Numerically 202101011200 < 20210101120000, so the old numeric order ran the ALTER first.
    write_migrations(runner.directory, {
        "migration_lock.toml": 'provider = "postgresql"\n',
        "20210101120000_init/migration.sql": 'CREATE TABLE "User" ("id" SERIAL PRIMARY KEY);\n',
        "202101011200_add_name/migration.sql": 'ALTER TABLE "User" ADD COLUMN "name" TEXT;\n',
    })
    files = discover(runner.directory)
    assert [f.tool_key for f in files] == ["20210101120000_init", "202101011200_add_name"]
    res = runner.up()
    assert res.code == 0, str(res)
    assert history(database_url) == ["20210101120000_init/migration.sql",
                                     "202101011200_add_name/migration.sql"]


PRISMA_ENUM_CHANGE = """-- AlterTable
ALTER TABLE "User" ADD COLUMN "nickname" TEXT;

-- AlterEnum
BEGIN;
CREATE TYPE "Role_new" AS ENUM ('USER', 'ADMIN');
ALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT;
ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role_new" USING ("role"::text::"Role_new");
ALTER TYPE "Role" RENAME TO "Role_old";
ALTER TYPE "Role_new" RENAME TO "Role";
DROP TYPE "Role_old";
ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT 'USER';
COMMIT;

-- CreateIndex
CREATE UNIQUE INDEX "User_nickname_key" ON "User"("nickname");
"""


def test_prisma_mid_file_begin_commit_runs_in_the_migration_transaction(
        runner: Runner, database_url: str) -> None:
    write_migrations(runner.directory, {
        "migration_lock.toml": 'provider = "postgresql"\n',
        "20240101000000_init/migration.sql":
            "CREATE TYPE \"Role\" AS ENUM ('USER', 'ADMIN', 'GUEST');\n"
            "CREATE TABLE \"User\" (\"id\" SERIAL PRIMARY KEY, \"role\" \"Role\" NOT NULL "
            "DEFAULT 'USER');\nINSERT INTO \"User\" (\"role\") VALUES ('ADMIN');\n",
        "20240102000000_drop_guest/migration.sql": PRISMA_ENUM_CHANGE,
    })
    plan = runner.run("plan", "--json")
    assert plan.code == 0, str(plan)
    second = json.loads(plan.stdout)["pending"][1]
    replaced = [st for st in second["statements"] if st["replacedByRunner"]]
    assert [st["kind"] for st in replaced] == ["TransactionStmt", "TransactionStmt"]
    assert second["txMode"] == "transaction"
    res = runner.up()
    assert res.code == 0, str(res)
    labels = query(database_url, "SELECT enumlabel FROM pg_enum WHERE enumtypid = "
                                 "'\"Role\"'::regtype ORDER BY enumsortorder")
    assert labels == [("USER",), ("ADMIN",)]
    assert query(database_url, 'SELECT role::text FROM "User"') == [("ADMIN",)]


def test_prisma_failure_after_the_block_rolls_the_block_back(runner: Runner,
                                                             database_url: str) -> None:
    # The file's own COMMIT is replaced: a later failure undoes the block too.
    write_migrations(runner.directory, {
        "migration_lock.toml": 'provider = "postgresql"\n',
        "20240101000000_init/migration.sql": "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n"
                                             "CREATE TABLE a (id int);\n",
    })
    res = runner.up()
    assert res.code == 1, str(res)
    assert not table_exists(database_url, "a")


def test_enum_label_added_to_two_types_in_one_file_is_fine(runner: Runner) -> None:
    write_migrations(runner.directory, {
        "0001_types.sql": "CREATE TYPE a AS ENUM ('x');\nCREATE TYPE b AS ENUM ('y');\n",
        "0002_add.sql": "ALTER TYPE a ADD VALUE 'admin';\nALTER TYPE b ADD VALUE 'admin';\n",
    })
    res, doc = check_json(runner)
    assert res.code == 0, str(res)
    assert runner.up().code == 0


def test_enum_label_added_and_used_in_one_transaction_is_refused(runner: Runner) -> None:
    write_migrations(runner.directory, {
        "0001_types.sql": "CREATE TYPE a AS ENUM ('x');\nCREATE TABLE t (v a);\n",
        "0002_add.sql": "ALTER TYPE a ADD VALUE 'admin';\nINSERT INTO t VALUES ('admin');\n",
    })
    res, doc = check_json(runner)
    assert res.code == 3 and codes(doc) == ["enum-added-and-used"]
    assert doc["problems"][0]["line"] == 2  # type: ignore[index]
    assert doc["problems"][0]["sqlstate"] == "55P04"  # type: ignore[index]


@pytest.mark.parametrize(("files", "code"), [
    ({"notes.sql": "SELECT 1;\n"}, "name-invalid"),
    ({"0001_a.sql": "CREATE TABLE (;\n"}, "syntax-error"),
    ({"0001_a.sql": "-- nothing\n"}, "empty-file"),
    ({"0001_a.sql": b"SELECT '\xff';\n"}, "not-utf8"),
    ({"0001_a.sql": "COPY t FROM STDIN;\n"}, "copy-stdin"),
    ({"0001_a.sql": "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY i ON t (id);\n"},
     "non-transactional-mixed"),
    ({"0001_a.sql": "CREATE TABLE t (id int);\nCOMMIT;\n"}, "transaction-control"),
    ({"0001_a.sql": "SELECT 1;\n", "0001_A.sql": "SELECT 2;\n"}, "duplicate-identity"),
])
def test_check_json_reports_each_problem_by_its_code(files: dict[str, str | bytes], code: str,
                                                     runner: Runner) -> None:
    write_migrations(runner.directory, files)
    res, doc = check_json(runner, "--format", "plain")
    assert res.code == 3, str(res)
    assert code in codes(doc)


def test_check_json_reports_history_problems_by_code(runner: Runner) -> None:
    write_migrations(runner.directory, {"0002_b.sql": "CREATE TABLE b (id int);\n"})
    assert runner.up().code == 0
    write_migrations(runner.directory, {"0001_a.sql": "CREATE TABLE a (id int);\n",
                                        "0002_b.sql": "CREATE TABLE b (id bigint);\n"})
    res, doc = check_json(runner)
    assert res.code == 3
    assert sorted(codes(doc)) == ["edited-after-apply", "out-of-order"]
    up = runner.up()
    assert up.code == 3 and up.artifact is not None
    assert up.artifact["executionSummary"]["failing"]["code"] in ("edited-after-apply",
                                                                  "out-of-order")


def test_a_files_own_block_is_one_step_of_a_per_statement_run(tmp_path: Path) -> None:
    from migration.analysis import analyze

    write_migrations(tmp_path, {"00001_a.sql": (
        "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE TABLE a (id int);\n"
        "BEGIN;\nINSERT INTO a VALUES (1);\nINSERT INTO a VALUES (2);\nCOMMIT;\n"
        "CREATE INDEX CONCURRENTLY a_id ON a (id);\n-- +goose Down\nDROP TABLE a;\n")})
    [f] = discover(tmp_path)
    a = analyze(f)
    assert a.tx_mode == "per-statement"
    assert [[st.kind for st in step] for step in a.steps] == [
        ["CreateStmt"], ["InsertStmt", "InsertStmt"], ["IndexStmt"]]
    assert [sp.label for sp in f.ignored] == ["down"]


def test_plain_no_transaction_header_still_means_one_statement(tmp_path: Path) -> None:
    write_migrations(tmp_path, {"0001_a.sql": "-- migration: no-transaction\n"
                                              "CREATE TABLE a (id int);\nSELECT 1;\n"})
    [p] = check(discover(tmp_path)).problems
    assert isinstance(p, Problem) and p.code == "non-transactional-mixed"
