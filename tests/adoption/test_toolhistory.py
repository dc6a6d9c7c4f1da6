"""Each tool's history adapter against a real PostgreSQL: what it calls applied, what it refuses,
and that the rows it writes are read back as the tool reads them."""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path
from typing import Any

import psycopg
import pytest

from migration.formats.base import MigrationFile
from migration.toolhistory import TOOLS, ToolHistory
from migration.toolhistory.flyway import checksum as flyway_checksum
from migration.toolhistory.flyway import parse_name, version_key


def mf(directory: Path, name: str, tool_key: str, fmt: str, text: str = "SELECT 1;\n",
       version: str | None = None, repeatable: bool = False) -> MigrationFile:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(text.encode())
    return MigrationFile(name=name, version=version if version is not None else tool_key,
                         path=path, tool_key=tool_key, format=fmt, repeatable=repeatable)


def files_for(tool: str, d: Path) -> list[MigrationFile]:
    if tool == "dbmate":
        return [mf(d, f"2023010{i}_x{i}.sql", f"2023010{i}", tool) for i in range(1, 4)]
    if tool == "node-pg-migrate":
        return [mf(d, f"167253120000{i}_x{i}.sql", f"167253120000{i}_x{i}", tool,
                   version=f"167253120000{i}") for i in range(1, 4)]
    if tool == "goose" or tool == "golang-migrate":
        suffix = ".up.sql" if tool == "golang-migrate" else ".sql"
        return [mf(d, f"0000{i}_x{i}{suffix}", str(i), tool) for i in range(1, 4)]
    if tool == "flyway":
        return [mf(d, "V1__a.sql", "1", tool), mf(d, "V1_1__b.sql", "1.1", tool),
                mf(d, "V2__c.sql", "2", tool)]
    if tool == "prisma":
        return [mf(d, f"2023010{i}000000_x{i}/migration.sql", f"2023010{i}000000_x{i}", tool,
                   version=f"2023010{i}000000") for i in range(1, 4)]
    assert tool == "drizzle"
    entries = [{"idx": i, "version": "7", "when": 1700000000000 + i, "tag": f"000{i}_x{i}",
                "breakpoints": True} for i in range(3)]
    (d / "meta").mkdir(parents=True, exist_ok=True)
    (d / "meta" / "_journal.json").write_text(json.dumps({"entries": entries}))
    return [mf(d, f"000{i}_x{i}.sql", f"000{i}_x{i}", tool, f"SELECT {i};\n", version=str(i))
            for i in range(3)]


def write(conn: psycopg.Connection[Any], adapter: ToolHistory, files: list[Any],
          *, create: bool = True) -> None:
    with conn.transaction():
        for q in (adapter.create() if create else []):
            conn.execute(q)
        for f in files:
            for q in adapter.record(f):
                conn.execute(q)


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_rows_written_are_read_back_applied(tool: str, database_url: str, tmp_path: Path) -> None:
    adapter = TOOLS[tool](tmp_path)
    files = files_for(tool, tmp_path)
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert not adapter.exists(conn)
        write(conn, adapter, files[:2])
        # The DDL is idempotent: a retried or second migration of the same run sends it again.
        write(conn, adapter, files[2:])
        st = adapter.state(conn, files)
    assert st.exists and st.problems == [] and st.gaps == []
    assert [f.name for f in st.applied] == [f.name for f in files]


@pytest.mark.parametrize("tool", ["dbmate", "node-pg-migrate", "goose", "flyway", "prisma"])
def test_an_unapplied_older_file_is_a_gap(tool: str, database_url: str, tmp_path: Path) -> None:
    adapter = TOOLS[tool](tmp_path)
    files = files_for(tool, tmp_path)
    with psycopg.connect(database_url, autocommit=True) as conn:
        write(conn, adapter, [files[0], files[2]])
        st = adapter.state(conn, files)
    assert [f.name for f in st.applied] == [files[0].name, files[2].name]
    assert [f.name for f in st.gaps] == [files[1].name]


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_an_applied_row_without_its_file_is_refused(tool: str, database_url: str,
                                                    tmp_path: Path) -> None:
    adapter = TOOLS[tool](tmp_path)
    files = files_for(tool, tmp_path)
    with psycopg.connect(database_url, autocommit=True) as conn:
        write(conn, adapter, files)
        st = adapter.state(conn, files[:2])
    assert [p.code for p in st.problems] == ["applied-file-missing"], st.problems
    assert st.problems[0].row


def test_golang_migrate_dirty_row_is_refused(database_url: str, tmp_path: Path) -> None:
    adapter = TOOLS["golang-migrate"](tmp_path)
    files = files_for("golang-migrate", tmp_path)
    with psycopg.connect(database_url, autocommit=True) as conn:
        write(conn, adapter, [])
        conn.execute("INSERT INTO schema_migrations (version, dirty) VALUES (2, true)")
        st = adapter.state(conn, files)
    assert [(p.code, p.file) for p in st.problems] == [("dirty-history", files[1].name)]
    assert "migrate force" in st.problems[0].hint and st.problems[0].row == "version=2 dirty=true"


def test_golang_migrate_mark_never_goes_down(database_url: str, tmp_path: Path) -> None:
    adapter = TOOLS["golang-migrate"](tmp_path)
    files = files_for("golang-migrate", tmp_path)
    with psycopg.connect(database_url, autocommit=True) as conn:
        write(conn, adapter, [files[2], files[0]])  # the older one applied out of order
        assert conn.execute("SELECT version, dirty FROM schema_migrations").fetchall() == [
            (3, False)]


def test_prisma_failed_row_and_changed_checksum_are_refused(database_url: str,
                                                            tmp_path: Path) -> None:
    adapter = TOOLS["prisma"](tmp_path)
    files = files_for("prisma", tmp_path)
    with psycopg.connect(database_url, autocommit=True) as conn:
        write(conn, adapter, files[:1])
        conn.execute("INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at)"
                     " VALUES ('f1', 'x', %s, now())", (files[1].tool_key,))
        # a rolled-back attempt is not a failure
        conn.execute("INSERT INTO _prisma_migrations (id, checksum, migration_name,"
                     " rolled_back_at) VALUES ('r1', 'x', %s, now())", (files[2].tool_key,))
        files[0].path.write_text("SELECT 2;\n")  # edited after it was applied
        fresh = [MigrationFile(f.name, f.version, f.path, f.tool_key, "prisma") for f in files]
        st = adapter.state(conn, fresh)
    assert sorted((p.code, p.file) for p in st.problems) == [
        ("checksum-mismatch", files[0].name), ("failed-migration", files[1].name)]
    assert st.applied == []


def test_prisma_accepts_the_file_with_other_line_endings(database_url: str,
                                                         tmp_path: Path) -> None:
    adapter = TOOLS["prisma"](tmp_path)
    f = mf(tmp_path, "20230101000000_a/migration.sql", "20230101000000_a", "prisma",
           "CREATE TABLE a (x int);\r\nCREATE TABLE b (y int);\r\n")
    lf = hashlib.sha256(f.raw.replace(b"\r\n", b"\n")).hexdigest()
    with psycopg.connect(database_url, autocommit=True) as conn:
        write(conn, adapter, [])
        conn.execute("INSERT INTO _prisma_migrations (id, checksum, migration_name, finished_at,"
                     " applied_steps_count) VALUES ('a', %s, %s, now(), 1)", (lf, f.tool_key))
        st = adapter.state(conn, [f])
    assert st.problems == [] and [x.name for x in st.applied] == [f.name]


def test_flyway_checksum_is_crc32_of_the_lines_signed() -> None:
    # CRC-32's published check value: crc32(b"123456789") = 0xCBF43926 (= -873187034 signed).
    assert zlib.crc32(b"123456789") == 0xCBF43926
    assert flyway_checksum(b"123456789") == -873187034
    # Line endings (LF, CRLF, CR) and a UTF-8 BOM do not count, as in ChecksumCalculator.java.
    for raw in (b"123\n456\n789\n", b"123\r\n456\r\n789", b"\xef\xbb\xbf123\r456\n789\r\n"):
        assert flyway_checksum(raw) == -873187034
    assert flyway_checksum(b"") == 0
    assert flyway_checksum("CREATE TABLE é;\n".encode()) == \
        zlib.crc32("CREATE TABLE é;".encode()) - (1 << 32 if zlib.crc32(
            "CREATE TABLE é;".encode()) >= 1 << 31 else 0)


def test_flyway_versions_compare_as_flyway_does() -> None:
    names = ["V10__d.sql", "V1_1__b.sql", "V2__c.sql", "V1__a.sql"]
    ordered = sorted(names, key=lambda n: version_key(parse_name(n)[0] or ""))
    assert ordered == ["V1__a.sql", "V1_1__b.sql", "V2__c.sql", "V10__d.sql"]
    assert version_key("1.0") == version_key("1") and version_key("1.0.1") > version_key("1")
    assert parse_name("V1_1__Populate_table.sql") == ("1.1", "Populate table")
    assert parse_name("R__person_names_view.sql") == (None, "person names view")


def test_flyway_failed_row_changed_checksum_baseline_and_repeatables(
        database_url: str, tmp_path: Path) -> None:
    adapter = TOOLS["flyway"](tmp_path)
    files = files_for("flyway", tmp_path)
    view = mf(tmp_path, "R__view.sql", "view", "flyway", "CREATE VIEW v AS SELECT 1;\n",
              version="", repeatable=True)
    with psycopg.connect(database_url, autocommit=True) as conn:
        write(conn, adapter, [files[0], view])
        conn.execute("INSERT INTO flyway_schema_history VALUES (3, '1.1', 'b', 'SQL',"
                     " 'V1_1__b.sql', 5, 'me', now(), 1, false)")
        st = adapter.state(conn, [*files, view])
        assert [(p.code, p.file) for p in st.problems] == [("failed-migration", files[1].name)]
        conn.execute("DELETE FROM flyway_schema_history WHERE installed_rank = 3")
        # A BASELINE row at 1.1 covers 1 and 1.1; a changed repeatable is pending again.
        conn.execute("INSERT INTO flyway_schema_history VALUES (3, '1.1', '<< Flyway Baseline"
                     " >>', 'BASELINE', '<< Flyway Baseline >>', NULL, 'me', now(), 0, true)")
        view.path.write_text("CREATE VIEW v AS SELECT 2;\n")
        fresh = MigrationFile(view.name, "", view.path, "view", "flyway", repeatable=True)
        st = adapter.state(conn, [*files, fresh])
        assert st.problems == []
        assert [f.name for f in st.applied] == [files[0].name, files[1].name]
        conn.execute("UPDATE flyway_schema_history SET checksum = checksum + 1"
                     " WHERE script = 'V1__a.sql'")
        st = adapter.state(conn, files)
    assert [(p.code, p.file) for p in st.problems] == [("checksum-mismatch", files[0].name)]


def test_drizzle_entry_below_the_mark_without_a_row_is_a_gap(database_url: str,
                                                            tmp_path: Path) -> None:
    adapter = TOOLS["drizzle"](tmp_path)
    files = files_for("drizzle", tmp_path)
    with psycopg.connect(database_url, autocommit=True) as conn:
        write(conn, adapter, [files[0], files[2]])  # Drizzle would now skip files[1] forever
        st = adapter.state(conn, files)
    assert [f.name for f in st.applied] == [files[0].name, files[2].name]
    assert [(p.code, p.file) for p in st.problems] == [("out-of-order", files[1].name)]
    assert [f.name for f in st.gaps] == [files[1].name]


def test_goose_newest_row_decides(database_url: str, tmp_path: Path) -> None:
    adapter = TOOLS["goose"](tmp_path)
    files = files_for("goose", tmp_path)
    with psycopg.connect(database_url, autocommit=True) as conn:
        write(conn, adapter, files)
        conn.execute("INSERT INTO goose_db_version (version_id, is_applied) VALUES (3, false)")
        st = adapter.state(conn, files)
        assert conn.execute("SELECT count(*) FROM goose_db_version WHERE version_id = 0"
                            ).fetchone() == (1,)
    assert [f.name for f in st.applied] == [files[0].name, files[1].name]


def test_toolhistory_public_surface() -> None:
    import migration.toolhistory as th

    submodules = {"base", "dbmate", "drizzle", "flyway", "golangmigrate", "goose",
                  "nodepgmigrate", "prisma"}
    public = sorted(n for n in vars(th) if not n.startswith("_") and n not in submodules
                    and n != "annotations" and n != "Path")
    assert sorted(th.__all__) == public
    assert sorted(TOOLS) == ["dbmate", "drizzle", "flyway", "golang-migrate", "goose",
                             "node-pg-migrate", "prisma"]
