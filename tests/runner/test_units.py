"""Settings, redaction, file discovery and the public API, without a database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import migration
from migration.errors import CheckError, ConfigError
from migration.redact import Redactor, password_of, redact_url
from migration.settings import DEFAULTS, parse_duration_ms, resolve
from migration.source import discover


def test_public_api_is_pinned() -> None:
    assert sorted(migration.__all__) == [
        "CheckError", "ConfigError", "ConnectError", "DeadlineError", "ExecutionError",
        "Interrupted", "LockTimeoutError", "MigrationError", "PoolerError", "RunnerLockError",
        "Settings", "StatementTimeoutError", "resolve", "up",
    ]
    codes = {c.__name__: (c.code, c.exit_code) for c in (
        migration.ConfigError, migration.CheckError, migration.ConnectError,
        migration.PoolerError, migration.RunnerLockError, migration.ExecutionError,
        migration.StatementTimeoutError, migration.LockTimeoutError, migration.DeadlineError)}
    assert codes == {
        "ConfigError": ("config-error", 2), "CheckError": ("check-failed", 3),
        "ConnectError": ("database-unreachable", 7), "PoolerError": ("pooler-unsupported", 7),
        "RunnerLockError": ("runner-lock-not-acquired", 4), "ExecutionError": ("sql-failed", 1),
        "StatementTimeoutError": ("statement-timeout", 1),
        "LockTimeoutError": ("lock-timeout", 5), "DeadlineError": ("deadline-exceeded", 6),
    }


def test_reason_codes_are_in_the_artifact_schema() -> None:
    schema = json.loads((Path(__file__).parents[2] / "schemas/migration.schema.json").read_text())
    enum = set(schema["properties"]["reasonCode"]["enum"])
    for cls in (migration.ConfigError, migration.CheckError, migration.ConnectError,
                migration.PoolerError, migration.RunnerLockError, migration.ExecutionError,
                migration.StatementTimeoutError, migration.LockTimeoutError,
                migration.DeadlineError):
        assert cls.code in enum


@pytest.mark.parametrize(("text", "ms"), [("500ms", 500), ("5s", 5000), ("10min", 600_000),
                                          ("1h", 3_600_000), ("250", 250), ("1.5s", 1500)])
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text, name="x") == ms


def test_flag_beats_env_beats_default() -> None:
    assert resolve({}, {}).lock_timeout_ms == 5000
    assert resolve({}, {"MIGRATION_LOCK_TIMEOUT": "2s"}).lock_timeout_ms == 2000
    assert resolve({"lock_timeout": "1s"}, {"MIGRATION_LOCK_TIMEOUT": "2s"}).lock_timeout_ms == 1000
    assert resolve({"lock": False}, {"MIGRATION_LOCK": "1"}).lock is False
    assert resolve({}, {"MIGRATE_DB_MIGRATE_ENABLED": "0"}).enabled is False


def test_every_setting_has_an_env_twin() -> None:
    envs = [env for env, _ in DEFAULTS.values()]
    assert len(envs) == len(set(envs))
    assert "MIGRATION_TIMEOUT_SECONDS" in envs and "DATABASE_URL" in envs


@pytest.mark.parametrize(("env", "needle"), [
    ({"MIGRATION_TIMEOUT_SECONDS": "0"}, "--timeout / MIGRATION_TIMEOUT_SECONDS: 0 is outside"),
    ({"MIGRATION_LOCK_TIMEOUT": "soon"}, "cannot read 'soon' as a duration"),
    ({"MIGRATION_SCHEMA": "a.b"}, "is not a plain identifier"),
    ({"MIGRATION_LOCK": "maybe"}, "expected 1/0"),
    ({"MIGRATION_RELEASE_SHA": "a b"}, "is not a release id"),
])
def test_bad_settings_name_the_knob(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        resolve({}, env)
    assert needle in str(e.value)


def test_redaction() -> None:
    url = "postgresql://app:p%40ss-W0rd@db.example:5432/app"
    assert password_of(url) == "p@ss-W0rd"
    assert redact_url(url) == "postgresql://app:***@db.example:5432/app"
    r = Redactor(password_of(url))
    assert "p@ss-W0rd" not in r("failed for p@ss-W0rd and password=p@ss-W0rd host=x")
    assert r("host=x password='a b' user=y") == "host=x password=*** user=y"


def test_discover_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        discover(tmp_path / "missing")
    (tmp_path / "notes.sql").write_text("select 1;")
    with pytest.raises(CheckError, match="without a numeric prefix"):
        discover(tmp_path)


def test_new_creates_a_timestamped_file(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "migration", "new", "Add users email!",
                          "--dir", str(tmp_path), "--json"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    path = Path(json.loads(res.stdout)["path"])
    assert path.parent == tmp_path and path.name.endswith("_add_users_email.sql")
    assert len(path.name.split("_", 1)[0]) == 14
    assert [f.name for f in discover(tmp_path)] == [path.name]


def test_help_teaches() -> None:
    res = subprocess.run([sys.executable, "-m", "migration", "up", "--help"],
                         capture_output=True, text=True)
    assert res.returncode == 0
    for needle in ("MIGRATION_TIMEOUT_SECONDS", "--single-transaction", "exit codes",
                   "MIGRATION_LOCK_TIMEOUT", "DATABASE_URL"):
        assert needle in res.stdout


def test_analysis_locations_with_non_ascii_text(tmp_path: Path) -> None:
    from migration.analysis import analyze
    from migration.source import MigrationFile

    p = tmp_path / "0001_x.sql"
    p.write_text("-- café\nCREATE TABLE \"é\" (x int);\n  INSERT INTO \"é\" VALUES (1);\n",
                 encoding="utf-8")
    a = analyze(MigrationFile("0001_x.sql", "0001", p))
    assert [(s.line, s.column, s.kind) for s in a.statements] == [
        (2, 1, "CreateStmt"), (3, 3, "InsertStmt")]
    assert a.statements[1].sql.strip() == 'INSERT INTO "é" VALUES (1)'


def test_syntax_error_location_with_non_ascii_text(tmp_path: Path) -> None:
    from migration.analysis import analyze
    from migration.errors import MigrationError
    from migration.source import MigrationFile

    p = tmp_path / "0001_x.sql"
    p.write_text("CREATE TABLE \"é\" (x int);\nSELEC 1;\n", encoding="utf-8")
    with pytest.raises(MigrationError) as e:
        analyze(MigrationFile("0001_x.sql", "0001", p))
    assert str(e.value).startswith("0001_x.sql:2:1: syntax error")


@pytest.mark.parametrize(("url", "needle"), [
    ("postgresql://u@h/db?sslmode=sometimes", "sslmode='sometimes' is not one of"),
    ("mysql://u@h/db", "scheme 'mysql' is not PostgreSQL"),
    ("postgresql://u@h:6432/db", "transaction-pooling PgBouncer"),
])
def test_url_problems_are_config_errors(url: str, needle: str) -> None:
    from migration.connection import check_url
    from migration.errors import MigrationError

    with pytest.raises(MigrationError) as e:
        check_url(url)
    assert needle in str(e.value)


def test_embedded_start_failure_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    res = subprocess.run([sys.executable, "-m", "migration", "up", "--dir", str(tmp_path),
                          "--embedded-dir", str(blocker / "pg"), "--artifact-dir", ""],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "the embedded PostgreSQL under" in lines[0], res.stderr


def test_plan_names_the_locked_tables(tmp_path: Path) -> None:
    from migration.analysis import analyze
    from migration.source import MigrationFile

    p = tmp_path / "0001_x.sql"
    p.write_text("BEGIN;\nCREATE TABLE d (id int, u int REFERENCES app.users (id));\n"
                 "ALTER TABLE d ADD COLUMN x int;\nCOMMIT;\n", encoding="utf-8")
    a = analyze(MigrationFile("0001_x.sql", "0001", p))
    assert a.self_wrapped and [s.kind for s in a.body] == ["CreateStmt", "AlterTableStmt"]
    assert [(s.lock, s.target) for s in a.body] == [
        ("SHARE ROW EXCLUSIVE", "app.users"), ("ACCESS EXCLUSIVE", "d")]
