"""Per-statement migrations (goose NO TRANSACTION, dbmate transaction:false with several
statements): each statement commits with its progress mark; a crash part-way (a real SIGKILL)
leaves a named state that `up` refuses until `resolve` records a decision, and no committed
statement ever runs twice."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import psycopg
import pytest

from .safety_helpers import Runner, history, query, table_exists, write_migrations

GATE = 4242  # an advisory lock the test holds to stop the runner inside statement 3

GOOSE = ("-- +goose NO TRANSACTION\n"
         "-- +goose Up\n"
         "CREATE TABLE a (id int);\n"                      # statement 1 (line 3)
         "INSERT INTO a VALUES (1);\n"                     # statement 2 (line 4)
         f"SELECT pg_advisory_xact_lock({GATE});\n"        # statement 3 (line 5)
         "CREATE INDEX CONCURRENTLY a_id ON a (id);\n"     # statement 4 (line 6)
         "INSERT INTO a VALUES (2);\n"                     # statement 5 (line 7)
         "-- +goose Down\n"
         "DROP TABLE a;\n")


@pytest.fixture
def runner(tmp_path: Path, database_url: str) -> Runner:
    return Runner(tmp_path / "migrations", tmp_path / "artifacts", database_url)


def progress(url: str) -> list[tuple[object, ...]]:
    if not table_exists(url, "gated_release_history_progress"):
        return []
    return query(url, "SELECT name, statements, reached, in_flight, resume_from"
                      " FROM gated_release_history_progress ORDER BY name")


def test_goose_no_transaction_runs_statement_by_statement(runner: Runner,
                                                          database_url: str) -> None:
    write_migrations(runner.directory, {
        "00001_a.sql": GOOSE.replace(f"SELECT pg_advisory_xact_lock({GATE});\n", "")})
    plan = runner.run("plan", "--json")
    assert json.loads(plan.stdout)["pending"][0]["txMode"] == "per-statement"
    res = runner.up()
    assert res.code == 0, str(res)
    assert "statement 4 of 4" in res.stdout
    assert query(database_url, "SELECT id FROM a ORDER BY id") == [(1,), (2,)]
    assert query(database_url, "SELECT indisvalid FROM pg_index WHERE indexrelid = "
                               "'a_id'::regclass") == [(True,)]
    assert history(database_url) == ["00001_a.sql"]
    assert progress(database_url) == []  # cleared with the history row
    assert res.artifact is not None
    assert res.artifact["executionSummary"]["applied"][0]["transactional"] is False


def test_an_enum_label_added_then_used_is_fine_per_statement(runner: Runner,
                                                             database_url: str) -> None:
    write_migrations(runner.directory, {
        "00001_t.sql": "-- +goose Up\nCREATE TYPE mood AS ENUM ('ok');\n"
                       "CREATE TABLE m (v mood);\n",
        "00002_add.sql": "-- +goose NO TRANSACTION\n-- +goose Up\n"
                         "ALTER TYPE mood ADD VALUE 'happy';\nINSERT INTO m VALUES ('happy');\n",
    })
    res = runner.up()
    assert res.code == 0, str(res)
    assert query(database_url, "SELECT v::text FROM m") == [("happy",)]


def wait_for_gate_waiter(url: str, timeout: float = 20, *, gone: bool = False) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = query(url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                          " AND objid = %s AND NOT granted", (GATE,))
        if bool(rows[0][0]) != gone:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.timeout(120)
def test_sigkill_mid_file_leaves_a_named_state_that_up_refuses_until_resolved(
        runner: Runner, database_url: str) -> None:
    write_migrations(runner.directory, {"00001_a.sql": GOOSE})
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (GATE,))
        proc = runner.popen("up", "--lock-timeout", "60s")
        try:
            assert wait_for_gate_waiter(database_url), "the runner never reached statement 3"
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
        # The server notices the dead client (client_connection_check_interval) and rolls
        # statement 3 back; released earlier, the server would finish the message and commit
        # statement 3 with its mark (reached=3), which is just as exact.
        assert wait_for_gate_waiter(database_url, gone=True)
        holder.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
    assert proc.returncode == -signal.SIGKILL
    # Statements 1 and 2 committed, each with its mark; the file is not recorded as applied.
    assert query(database_url, "SELECT id FROM a") == [(1,)]
    assert progress(database_url) == [("00001_a.sql", 5, 2, False, None)]
    assert history(database_url) == []

    # The next `up` (once the killed session is gone) refuses, naming file and statement.
    deadline = time.monotonic() + 15
    while True:
        res = runner.up()
        if res.code != 4 or time.monotonic() > deadline:  # 4: killed runner's lock not freed yet
            break
    assert res.code == 3, str(res)
    assert res.artifact is not None and res.artifact["reasonCode"] == "partially-applied"
    failing = res.artifact["executionSummary"]["failing"]
    assert failing["file"] == "00001_a.sql" and failing["line"] == 5
    assert failing["code"] == "partially-applied"
    assert "resolve 00001_a.sql --continue-from 3" in res.stderr
    check = runner.run("check", "--json")
    assert check.code == 3
    assert [p["code"] for p in json.loads(check.stdout)["problems"]] == ["partially-applied"]
    assert query(database_url, "SELECT id FROM a") == [(1,)]  # nothing re-run

    bad = runner.run("resolve", "00001_a.sql", "--continue-from", "9")
    assert bad.code == 2, str(bad)
    ok = runner.run("resolve", "00001_a.sql", "--continue-from", "3", "--json")
    assert ok.code == 0, str(ok)
    assert json.loads(ok.stdout)["decision"].endswith("from statement 3")

    res = runner.up()
    assert res.code == 0, str(res)
    # Statement 2 ran exactly once; 3..5 ran now.
    assert query(database_url, "SELECT id FROM a ORDER BY id") == [(1,), (2,)]
    assert history(database_url) == ["00001_a.sql"]
    assert progress(database_url) == []


def test_a_failed_statement_blocks_until_resolved(runner: Runner, database_url: str) -> None:
    write_migrations(runner.directory, {
        "20240101_a.sql": "-- migrate:up transaction:false\n"
                          "CREATE TABLE a (id int);\n"
                          "INSERT INTO later VALUES (1);\n"
                          "CREATE INDEX CONCURRENTLY a_id ON a (id);\n"
                          "-- migrate:down\nDROP TABLE a;\n"})
    res = runner.up()
    assert res.code == 1, str(res)
    assert res.artifact is not None
    assert res.artifact["executionSummary"]["failing"]["line"] == 3
    assert progress(database_url) == [("20240101_a.sql", 3, 1, False, None)]
    again = runner.up()
    assert again.code == 3 and "partially-applied" in again.stdout + again.stderr + \
        json.dumps(again.artifact)
    # The operator fixes what was missing, then continues at the failed statement.
    query(database_url, "CREATE TABLE later (id int)")
    assert runner.run("resolve", "20240101_a.sql", "--continue-from", "2").code == 0
    res = runner.up()
    assert res.code == 0, str(res)
    assert query(database_url, "SELECT id FROM later") == [(1,)]
    assert history(database_url) == ["20240101_a.sql"]


def test_resolve_rolled_back_and_applied(runner: Runner, database_url: str) -> None:
    write_migrations(runner.directory, {
        # A history with a row: the database is this runner's (no adoption question).
        "20240100_base.sql": "-- migrate:up\nCREATE TABLE base (id int);\n-- migrate:down\n",
        "20240101_a.sql": "-- migrate:up transaction:false\n"
                          "CREATE TABLE a (id int);\nINSERT INTO missing VALUES (1);\n"
                          "-- migrate:down\n",
        "20240102_b.sql": "-- migrate:up transaction:false\n"
                          "CREATE TABLE b (id int);\nINSERT INTO missing2 VALUES (1);\n"
                          "-- migrate:down\n"})
    assert runner.up().code == 1
    # --rolled-back: the operator undid statement 1; the next `up` runs the file from 1.
    query(database_url, "DROP TABLE a")
    query(database_url, "CREATE TABLE missing (id int)")
    assert runner.run("resolve", "20240101_a.sql", "--rolled-back").code == 0
    assert runner.up().code == 1  # a ran whole; b fails at its statement 2
    assert history(database_url) == ["20240100_base.sql", "20240101_a.sql"]
    # --applied: the operator completed b by hand.
    query(database_url, "CREATE TABLE missing2 (id int)")
    query(database_url, "INSERT INTO missing2 VALUES (1)")
    assert runner.run("resolve", "20240102_b.sql", "--applied").code == 0
    res = runner.up()
    assert res.code == 0 and "nothing pending" in res.stdout, str(res)
    assert history(database_url) == ["20240100_base.sql", "20240101_a.sql", "20240102_b.sql"]
    # dbmate's own table is kept current through it all, `resolve --applied` included.
    assert query(database_url, "SELECT version FROM schema_migrations ORDER BY 1") == [
        ("20240100",), ("20240101",), ("20240102",)]
    assert query(database_url, "SELECT count(*) FROM missing2") == [(1,)]
    nothing = runner.run("resolve", "20240102_b.sql", "--applied")
    assert nothing.code == 2
