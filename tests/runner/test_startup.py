"""What a process pays before it does anything: each command imports only what its path uses.

Each probe runs in a fresh interpreter (this test process has psycopg loaded already), calls
``migration.cli.main`` as ``python -m migration`` would, and reports which heavy modules it
left in ``sys.modules``. The parser test counts real pglast parses during a real ``up``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from migration.cli import main

REPO = Path(__file__).resolve().parents[2]
# A module that starts with one of these, in sys.modules after the command, counts as loaded.
HEAVY = ("psycopg", "psycopg_binary", "pglast", "asyncio", "importlib.metadata", "ssl",
         "migration.runner", "migration.status", "migration.connection")

_PROBE_MAIN = """
import json, sys
from migration.cli import main
try:
    rc = main(json.loads(sys.argv[1]))
except SystemExit as e:
    rc = e.code
heavy = json.loads(sys.argv[2])
loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))
print("\\n" + json.dumps({"rc": rc, "loaded": loaded}))
"""


def _probe(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE_MAIN, json.dumps(argv), json.dumps(HEAVY)],
        cwd=cwd, capture_output=True, text=True, check=False, timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})})
    assert proc.stdout.strip(), proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _loaded(result: dict[str, Any], prefix: str) -> list[str]:
    return [m for m in result["loaded"] if m == prefix or m.startswith(prefix + ".")]


def test_import_migration_loads_no_driver(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, migration; from migration import Settings, "
         "ConfigError; print(sorted(m for m in sys.modules if m.startswith(('psycopg', "
         "'pglast', 'migration.runner'))))"],
        cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60)
    assert proc.stdout.strip() == "[]"


def test_lazy_exports_resolve_to_the_real_objects() -> None:
    import migration
    from migration import errors, runner, settings

    assert migration.up is runner.up
    assert migration.Settings is settings.Settings
    assert migration.CheckError is errors.CheckError
    assert sorted(migration.__all__) == sorted(migration._EXPORTS)
    assert set(migration.__all__) <= set(dir(migration))
    with pytest.raises(AttributeError, match="no_such_name"):
        migration.no_such_name  # noqa: B018


@pytest.mark.parametrize("argv", [
    ["--help"], ["up", "--help"], ["check", "--help"], ["status", "--help"],
    ["serve", "--help"], ["alerts", "--help"],
])
def test_help_imports_no_driver_no_parser(tmp_path: Path, argv: list[str]) -> None:
    result = _probe(argv, tmp_path)
    assert result["rc"] == 0
    assert result["loaded"] == []


def test_new_imports_no_driver_no_parser(tmp_path: Path) -> None:
    result = _probe(["new", "add_things", "--dir", str(tmp_path / "m")], tmp_path)
    assert result["rc"] == 0
    assert len(list((tmp_path / "m").glob("*_add_things.sql"))) == 1
    assert result["loaded"] == []


def test_file_only_check_imports_the_parser_but_no_driver(tmp_path: Path) -> None:
    d = tmp_path / "m"
    d.mkdir()
    (d / "0001_t.sql").write_text("CREATE TABLE t (id int);\n", encoding="utf-8")
    (d / "0002_i.sql").write_text("CREATE INDEX CONCURRENTLY i ON t (id);\n", encoding="utf-8")
    result = _probe(["check", "--dir", str(d)], tmp_path)
    assert result["rc"] == 0
    assert _loaded(result, "pglast"), "check must really parse the files"
    assert _loaded(result, "psycopg") == [] and _loaded(result, "psycopg_binary") == []
    assert _loaded(result, "asyncio") == [] and _loaded(result, "ssl") == []
    # A syntax error is still found, with its location, without the driver.
    (d / "0003_bad.sql").write_text("CREATE TABLE (;\n", encoding="utf-8")
    result = _probe(["check", "--dir", str(d)], tmp_path)
    assert result["rc"] == 3
    assert _loaded(result, "psycopg") == []


def test_noop_up_never_loads_the_parser(tmp_path: Path, database_url: str) -> None:
    d = tmp_path / "m"
    d.mkdir()
    (d / "0001_t.sql").write_text("CREATE TABLE t (id int);\n", encoding="utf-8")
    args = ["up", "--dir", str(d), "--database-url", database_url, "--artifact-dir", ""]
    first = _probe(args, tmp_path)
    assert first["rc"] == 0 and _loaded(first, "pglast")
    again = _probe(args, tmp_path)
    assert again["rc"] == 0
    assert _loaded(again, "psycopg"), "up connects"
    assert _loaded(again, "pglast") == []


def test_up_parses_each_pending_file_exactly_once(tmp_path: Path, database_url: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from pglast import parser

    real = parser.parse_sql_json
    parsed: list[str] = []

    def counting(text: str) -> str:
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(parser, "parse_sql_json", counting)
    d = tmp_path / "m"
    d.mkdir()
    for i in range(1, 4):
        (d / f"{i:04d}_t{i}.sql").write_text(f"CREATE TABLE t{i} (id int);\n", encoding="utf-8")
    base = ["up", "--dir", str(d), "--database-url", database_url, "--artifact-dir", "",
            "--json"]
    assert main(base) == 0
    assert sorted(parsed) == sorted(f"CREATE TABLE t{i} (id int);\n" for i in range(1, 4))
    # Two new files: only they are parsed, once each; the applied three are verified by
    # checksum alone.
    parsed.clear()
    for i in (4, 5):
        (d / f"{i:04d}_t{i}.sql").write_text(f"CREATE TABLE t{i} (id int);\n", encoding="utf-8")
    assert main(base + ["--single-transaction"]) == 0
    assert sorted(parsed) == [f"CREATE TABLE t{i} (id int);\n" for i in (4, 5)]
    parsed.clear()
    assert main(base) == 0
    assert parsed == []


def test_help_needs_neither_dataclasses_nor_typing(tmp_path: Path) -> None:
    # The two costliest stdlib imports of the old start-up (see migration/value.py).
    proc = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom migration.cli import main\ntry:\n"
         "    main(['--help'])\nexcept SystemExit:\n    pass\n"
         "print(sorted(m for m in ('dataclasses', 'typing', 'inspect', 'datetime') "
         "if m in sys.modules), file=sys.stderr)"],
        cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60)
    assert proc.stderr.strip().splitlines()[-1] == "[]"


def test_frozen_values_behave_like_frozen_dataclasses(tmp_path: Path) -> None:
    import copy
    import pickle

    from migration.errors import Location, MigrationError
    from migration.settings import Settings

    loc = Location("0001_a.sql", 3, 7)
    assert loc == Location("0001_a.sql", line=3, column=7) != Location("0001_a.sql", 3)
    assert hash(loc) == hash(Location("0001_a.sql", 3, 7))
    assert repr(loc) == "Location(file='0001_a.sql', line=3, column=7)"
    assert str(loc) == "0001_a.sql:3:7"
    with pytest.raises(AttributeError, match="frozen"):
        loc.line = 4  # type: ignore[misc]
    with pytest.raises(AttributeError):
        loc.other = 1  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(loc)) == loc and copy.deepcopy(loc) == loc
    err = MigrationError("boom", location=loc, sqlstate="42601")
    assert err.as_dict()["line"] == 3

    s = Settings(dir=tmp_path, database_url="postgresql://u@h/db", release_sha="abc")
    assert s.lock and s.timeout_s == 900 and s.extra == {}
    t = s.with_(lock=False)
    assert (t.lock, t.dir, t.release_sha, s.lock) == (False, tmp_path, "abc", True)
    assert t != s and t.with_(lock=True) == s
    with pytest.raises(TypeError, match="no field"):
        s.with_(no_such=1)
    with pytest.raises(AttributeError, match="frozen"):
        s.lock = False  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(s)) == s
    assert Settings() == Settings() and "release_sha='local'" in repr(Settings())


@pytest.mark.parametrize("name", [
    "0001_plain.sql", "0002_it's quoted.sql", "0003_back\\slash.sql", "0004_ünïcødé ✓.sql",
    "0005_dollar$$and;semi--colon.sql", "dir/0006_prisma/migration.sql",
])
def test_history_row_text_equals_the_composed_literals(database_url: str, name: str) -> None:
    import uuid
    from types import SimpleNamespace

    import psycopg
    from psycopg import sql

    from migration import history
    from migration.tables import Tables

    tables = Tables("public", "gated_release_history", "migration_run_log")
    duration = sql.SQL("(extract(epoch FROM clock_timestamp()) * 0)::integer")

    def mf(version: str, checksum: str, repeatable: bool = False) -> Any:
        return SimpleNamespace(name=name, version=version, checksum=checksum,
                               repeatable=repeatable)

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(tables.create_history())
        for f, sha, tx, run_id in [(mf("20240102153000", "ab" * 32), "sha-1", True,
                                    str(uuid.uuid4())),
                                   (mf("000000000000000000000001", "c'\\"), "x", False, None),
                                   (mf(str(10**20 + 7), "cs", repeatable=True), None, True, None)]:
            for conflict in (False, True):
                fast = history.insert_row_text(conn, tables, f, duration=duration.as_string(conn),
                                               release_sha=sha, transactional=tx, run_id=run_id,
                                               on_conflict_nothing=conflict)
                slow = history.insert_row(tables, f, duration_ms=duration, release_sha=sha,
                                          transactional=tx, run_id=run_id,
                                          on_conflict_nothing=conflict)
                assert fast == slow.as_string(conn)
        # And the server reads back exactly what was written.
        conn.execute(history.insert_row_text(conn, tables, mf("0003", "cs"), duration="7",
                                             release_sha="sha", transactional=True, run_id=None))
        row = conn.execute("SELECT name, version, checksum, duration_ms, transactional "
                           "FROM gated_release_history").fetchone()
        assert row == (name, "0003", "cs", 7, True)
