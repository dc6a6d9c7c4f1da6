"""Hardening found in review: foreign tables, least privilege, timeouts, COPY, groups."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.conftest import PgServer
from tests.schema_check import validate_file


def up(url: str, mig: Path, art: Path, *extra: str, env: dict[str, str] | None = None
       ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "migration", "up", "--dir", str(mig), "--database-url", url,
         "--artifact-dir", str(art), "--release-sha", "hard1", *extra],
        capture_output=True, text=True, timeout=120, env=env)


def write(mig: Path, files: dict[str, str]) -> Path:
    mig.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (mig / name).write_text(text, encoding="utf-8")
    return mig


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_a_foreign_schema_migrations_table_is_refused(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        # golang-migrate's shape, under the name the runner is told to use
        conn.execute("CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty bool)")
    mig = write(tmp_path / "m", {"0001_t.sql": "CREATE TABLE t (x int);\n"})
    res = up(database_url, mig, tmp_path / "a", "--history-table", "schema_migrations")
    assert res.returncode == 2
    line = one_error_line(res.stderr)
    assert "public.schema_migrations exists but is not gated-release's" in line
    doc = validate_file(tmp_path / "a" / "hard1" / "migration.json")
    assert (doc["executionStatus"], doc["reasonCode"]) == ("Failed", "config-error")


def test_least_privilege_role_runs_once_tables_exist(pg: PgServer, dbname: str,
                                                     tmp_path: Path) -> None:
    owner_url = pg.url(dbname)
    mig = write(tmp_path / "m", {"0001_t.sql": "CREATE TABLE t (x int);\n"})
    assert up(owner_url, mig, tmp_path / "a").returncode == 0
    role = f"mig_{dbname}"
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("REVOKE CREATE ON DATABASE {} FROM PUBLIC").format(
            sql.Identifier(dbname)))
        conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(
            sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {}")
                     .format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {}").format(
            sql.Identifier(role)))
    role_url = f"postgresql://{role}@/{dbname}?host={pg.socket_dir}"
    write(mig, {"0002_u.sql": "CREATE TABLE u (x int);\n"})
    res = up(role_url, mig, tmp_path / "b")
    assert res.returncode == 0, res.stderr
    # ... and a privilege it lacks is one clear configuration error, not a traceback
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(sql.SQL("REVOKE INSERT ON gated_release_history FROM {}").format(
            sql.Identifier(role)))
    write(mig, {"0003_v.sql": "CREATE TABLE v (x int);\n"})
    res = up(role_url, mig, tmp_path / "c")
    assert res.returncode == 2
    assert "permission denied" in one_error_line(res.stderr)
    with psycopg.connect(owner_url) as conn:
        statuses = [r[0] for r in conn.execute(
            "SELECT status FROM migration_run_log ORDER BY id").fetchall()]
        assert conn.execute("SELECT to_regclass('public.v')").fetchone() == (None,)
    assert "RUNNING" not in statuses and statuses[-1] == "FAILED"


def test_statement_timeout_is_not_mistaken_for_the_deadline(database_url: str,
                                                             tmp_path: Path) -> None:
    # The deadline (10 s) is under twice the statement timeout (2 s + what is left): a 57014
    # from statement_timeout must still be reported as such, exit 1.
    mig = write(tmp_path / "m", {"0001_slow.sql": "SELECT pg_sleep(4);\n"})
    res = up(database_url, mig, tmp_path / "a", "--timeout", "3", "--statement-timeout", "2s")
    assert res.returncode == 1, res.stderr
    doc = validate_file(tmp_path / "a" / "hard1" / "migration.json")
    assert doc["reasonCode"] == "statement-timeout"
    assert doc["executionSummary"]["failing"]["sqlstate"] == "57014"


def test_client_copy_is_refused_before_anything_runs(tmp_path: Path) -> None:
    mig = write(tmp_path / "m", {"0001_t.sql": "CREATE TABLE t (x int);\n",
                                 "0002_copy.sql": "INSERT INTO t VALUES (1);\n"
                                                  "  COPY t FROM STDIN;\n"})
    res = subprocess.run([sys.executable, "-m", "migration", "check", "--dir", str(mig)],
                         capture_output=True, text=True)
    assert res.returncode == 3
    assert "0002_copy.sql:2:3: COPY FROM STDIN / TO STDOUT" in res.stderr


@pytest.mark.parametrize(("text", "ok"), [
    ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY;\n", True),
    ("SELECT 1;\nALTER TABLE p DETACH PARTITION c CONCURRENTLY;\n", False),
    ("REINDEX DATABASE app;\n", True),
])
def test_more_non_transactional_statements(tmp_path: Path, text: str, ok: bool) -> None:
    mig = write(tmp_path / "m", {"0001_x.sql": text})
    res = subprocess.run([sys.executable, "-m", "migration", "check", "--dir", str(mig),
                          "--json"], capture_output=True, text=True)
    doc = json.loads(res.stdout)
    assert doc["ok"] is ok
    if ok:
        assert doc["nonTransactional"] == ["0001_x.sql"]
    else:
        assert "cannot run inside a transaction block" in doc["problems"][0]["message"]


def test_a_failure_late_in_a_group_rolls_back_the_whole_group(database_url: str,
                                                                tmp_path: Path) -> None:
    mig = write(tmp_path / "m", {
        "0001_a.sql": "CREATE TABLE a (x int);\n",
        "0002_b.sql": "CREATE TABLE b (x int);\n",
        "0003_bad.sql": "INSERT INTO a VALUES (1);\nINSERT INTO nope VALUES (1);\n",
    })
    res = up(database_url, mig, tmp_path / "art", "--single-transaction")
    assert res.returncode == 1
    assert "0003_bad.sql:2:13" in res.stderr and "42P01" in res.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM gated_release_history").fetchone() == (0,)
        assert conn.execute("SELECT to_regclass('public.a'), to_regclass('public.b')"
                            ).fetchone() == (None, None)
    doc = validate_file(tmp_path / "art" / "hard1" / "migration.json")
    assert doc["executionSummary"]["applied"] == []
    assert doc["executionSummary"]["pending"] == ["0001_a.sql", "0002_b.sql", "0003_bad.sql"]


def test_disabled_runner_skips_even_without_a_migrations_directory(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "migration", "up", "--dir", str(tmp_path / "missing"),
         "--artifact-dir", str(tmp_path / "a"), "--database-url",
         "postgresql://u@127.0.0.1:1/db"],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "MIGRATE_DB_MIGRATE_ENABLED": "0",
             "DB_MIGRATE_TELEMETRY_ENABLED": "0"})
    assert res.returncode == 0, res.stderr
    doc = validate_file(tmp_path / "a" / "local" / "migration.json")
    assert (doc["executionStatus"], doc["reasonCode"]) == ("Skipped", "migration-disabled")


def test_password_literals_in_sql_are_redacted() -> None:
    from migration.redact import Redactor

    text = "ALTER ROLE app PASSWORD 'hunter2-long' VALID UNTIL 'infinity'"
    assert Redactor()(text) == "ALTER ROLE app PASSWORD '***' VALID UNTIL 'infinity'"


def test_a_lock_timeout_retries_the_whole_group_from_its_start(database_url: str,
                                                                tmp_path: Path) -> None:
    import threading
    import time

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE busy (x int)")
    mig = write(tmp_path / "m", {
        "0001_a.sql": "CREATE TABLE a (x int);\nINSERT INTO a VALUES (1);\n",
        "0002_busy.sql": "ALTER TABLE busy ADD COLUMN y int;\n",
    })
    holder = psycopg.connect(database_url)
    holder.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
    def release_after_a_lock_timeout() -> None:
        # Not a fixed delay: on a loaded machine the runner may reach 0002 only after it.
        with psycopg.connect(database_url, autocommit=True) as watch:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                seen = watch.execute(
                    "SELECT to_regclass('migration_run_log') IS NOT NULL AND EXISTS (SELECT 1"
                    " FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE '%busy%')").fetchone()
                if seen and seen[0]:
                    break
                time.sleep(0.05)
        time.sleep(0.4)  # past the 300 ms lock_timeout: the attempt fails, a retry follows
        holder.rollback()

    release = threading.Thread(target=release_after_a_lock_timeout)
    release.start()
    try:
        t0 = time.monotonic()
        # `busy` is not from these migrations: the runner is told so.
        res = up(database_url, mig, tmp_path / "art", "--single-transaction",
                 "--lock-timeout", "300ms", "--max-retries", "8", "--allow-unrecorded-objects")
        took = time.monotonic() - t0
    finally:
        release.join()
        holder.close()
    assert res.returncode == 0, res.stderr
    with psycopg.connect(database_url) as conn:
        # the group restarted from BEGIN: 0001's row was inserted once, not once per attempt
        assert conn.execute("SELECT count(*) FROM a").fetchone() == (1,)
        assert conn.execute("SELECT name FROM gated_release_history ORDER BY name").fetchall() == [
            ("0001_a.sql",), ("0002_busy.sql",)]
        attempts = conn.execute("SELECT attempt, status FROM migration_run_log ORDER BY id"
                                ).fetchall()
    assert attempts[-1][1] == "SUCCESS" and attempts[-1][0] > 1
    assert all(s == "LOCK_TIMEOUT" for _, s in attempts[:-1])
    assert took < 30


def _runner_backend(url: str, purpose: str = "migrate", wait_s: float = 10.0) -> int:
    import time

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        with psycopg.connect(url, autocommit=True) as conn:
            # In the migration's own statement (every test here sleeps), not in the runner's
            # lock or bookkeeping queries, which are briefly active too.
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND state = "
                "'active' AND query LIKE %s", (f"gated-release-migration:{purpose}",
                                               "%pg_sleep%")).fetchone()
        if row:
            return int(row[0])
        time.sleep(0.05)
    raise AssertionError("the runner's backend never became active")


def test_a_committed_non_transactional_statement_is_never_run_twice(
        database_url: str, tmp_path: Path) -> None:
    import threading

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE counters (n int)")
        conn.execute("INSERT INTO counters VALUES (0)")
    mig = write(tmp_path / "m", {"0001_t.sql": "CREATE TABLE t (x int);\n"})
    assert up(database_url, mig, tmp_path / "a", "--allow-unrecorded-objects").returncode == 0
    write(mig, {"0002_bump.sql": "-- migration: no-transaction\n"
                                 "UPDATE counters SET n = n + 1;\n"})
    # Another session blocks the history row's insert for longer than --lock-timeout.
    holder = psycopg.connect(database_url)
    holder.execute("LOCK gated_release_history IN SHARE MODE")
    release = threading.Timer(2.0, holder.rollback)
    release.start()
    try:
        res = up(database_url, mig, tmp_path / "b", "--lock-timeout", "500ms")
    finally:
        release.join()
        holder.close()
    assert res.returncode == 0, res.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT n FROM counters").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM gated_release_history WHERE name ="
                            " '0002_bump.sql'").fetchone() == (1,)


def test_sigterm_records_the_run_and_exits_143(database_url: str, tmp_path: Path) -> None:
    import signal

    mig = write(tmp_path / "m", {"0001_slow.sql": "CREATE TABLE s (x int);\n"
                                                  "SELECT pg_sleep(20);\n"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "migration", "up", "--dir", str(mig), "--database-url",
         database_url, "--artifact-dir", str(tmp_path / "a"), "--release-sha", "term1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _runner_backend(database_url)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    doc = validate_file(tmp_path / "a" / "term1" / "migration.json")
    assert (doc["executionStatus"], doc["reasonCode"]) == ("Failed", "interrupted")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('public.s')").fetchone() == (None,)
        statuses = [r[0] for r in conn.execute("SELECT status FROM migration_run_log")]
    assert statuses == ["FAILED"]


def test_a_cancel_from_another_session_is_not_a_timeout(database_url: str,
                                                        tmp_path: Path) -> None:
    mig = write(tmp_path / "m", {"0001_slow.sql": "SELECT pg_sleep(20);\n"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "migration", "up", "--dir", str(mig), "--database-url",
         database_url, "--artifact-dir", str(tmp_path / "a"), "--release-sha", "cancel1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid = _runner_backend(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_cancel_backend(%s)", (pid,))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert "another session cancelled the statement" in err
    doc = validate_file(tmp_path / "a" / "cancel1" / "migration.json")
    assert doc["reasonCode"] == "sql-failed"


def test_the_client_enforces_the_deadline_on_a_stalled_server(database_url: str,
                                                              tmp_path: Path) -> None:
    import os
    import signal
    import time

    mig = write(tmp_path / "m", {"0001_slow.sql": "SELECT pg_sleep(30);\n"})
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "migration", "up", "--dir", str(mig), "--database-url",
         database_url, "--artifact-dir", str(tmp_path / "a"), "--release-sha", "stall1",
         "--timeout", "3", "--statement-timeout", "60s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid = _runner_backend(database_url)
    os.kill(pid, signal.SIGSTOP)  # the server stops answering, cancel requests included
    try:
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        os.kill(pid, signal.SIGCONT)
    assert proc.returncode == 6, err
    assert took < 3 + 5 + 4  # deadline + cancel grace + start-up slack
    doc = validate_file(tmp_path / "a" / "stall1" / "migration.json")
    assert doc["reasonCode"] == "deadline-exceeded"
