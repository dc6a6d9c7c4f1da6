"""The runner's safety guarantees against a real PostgreSQL, through the real CLI process:
concurrent runners, DDL lock timeouts with blockers, statement timeouts, the one deadline,
and the enable/telemetry knobs. Every migration.json written is schema-validated (see
safety_helpers.finish)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from .safety_helpers import (
    RUN_LOG,
    RUNNER_KEY,
    Runner,
    RunRow,
    finish,
    history,
    query,
    run_log,
    table_exists,
    validate_artifact,
    write_migrations,
)

BLOCKER_APP = "safety-blocker"
BLOCKER_QUERY = "/* safety-blocker-query */ LOCK TABLE guarded IN ACCESS EXCLUSIVE MODE"


@pytest.fixture
def runner(tmp_path: Path, database_url: str) -> Runner:
    return Runner(tmp_path / "migrations", tmp_path / "artifacts", database_url)


@pytest.fixture
def blocker(runner: Runner, database_url: str) -> Iterator[int]:
    """Applies a table `guarded`, then holds ACCESS EXCLUSIVE on it in an open transaction
    from a recognisable session; yields that session's pid."""
    write_migrations(runner.directory, {"0001_guarded.sql": "CREATE TABLE guarded (id int);\n"})
    assert runner.up().code == 0
    conn = psycopg.connect(database_url, application_name=BLOCKER_APP)
    try:
        conn.execute(BLOCKER_QUERY)
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        # pg_stat_activity shows the session's last statement: make it the LOCK again.
        conn.execute(BLOCKER_QUERY)
        yield int(row[0])
    finally:
        conn.rollback()
        conn.close()


def newest_run(url: str) -> list[RunRow]:
    """Run-log rows of the newest run (the one the test just made)."""
    rows = run_log(url)
    assert rows, "no run-log rows"
    newest = rows[-1].run_id
    return [r for r in rows if r.run_id == newest]


# -- 2. concurrent runners --------------------------------------------------------------------

def _row_corpus(n: int) -> dict[str, str]:
    files = {"0001_marks.sql": "CREATE TABLE marks (k int NOT NULL);\n"}
    for i in range(2, n + 1):
        files[f"{i:04d}_mark_{i}.sql"] = f"SELECT pg_sleep(0.03);\nINSERT INTO marks VALUES ({i});\n"
    return files


@pytest.mark.slow
def test_eight_runners_at_once_apply_each_migration_exactly_once(
        runner: Runner, database_url: str, tmp_path: Path) -> None:
    files = _row_corpus(20)
    write_migrations(runner.directory, files)
    t0 = time.monotonic()
    procs = [runner.popen("up", artifact_root=tmp_path / f"art{i}") for i in range(8)]
    outs = [p.communicate(timeout=60) for p in procs]
    results = [finish(p.returncode, o, e, time.monotonic() - t0,
                      runner.artifact_file(tmp_path / f"art{i}"))
               for i, (p, (o, e)) in enumerate(zip(procs, outs, strict=True))]
    for res in results:
        assert res.code == 0, str(res)
        assert res.artifact is not None and res.artifact["executionStatus"] == "Succeeded"

    assert history(database_url) == sorted(files)
    counts = dict(query(database_url, "SELECT k, count(*) FROM marks GROUP BY k"))
    assert counts == {i: 1 for i in range(2, 21)}

    winners = [r for r in results if r.artifact and r.artifact["executionSummary"]["applied"]]
    assert len(winners) == 1 and winners[0].artifact is not None
    assert [a["file"] for a in winners[0].artifact["executionSummary"]["applied"]] == sorted(files)
    for r in results:
        if r is not winners[0]:
            assert "nothing pending (20 applied)" in r.stdout
    statuses = sorted(r.status for r in run_log(database_url))
    assert statuses == ["SKIPPED"] * 7 + ["SUCCESS"]
    assert len({r.run_id for r in run_log(database_url)}) == 8
    # Losers waited for the lock (the winner held it for the whole run) instead of failing.
    waits = sorted(int(r.artifact["lockWaitMs"]) for r in results if r.artifact)
    assert waits[-1] > 300


@pytest.mark.slow
def test_runners_give_up_on_a_held_runner_lock_within_the_deadline(
        runner: Runner, database_url: str, tmp_path: Path) -> None:
    write_migrations(runner.directory, _row_corpus(3))
    with psycopg.connect(database_url, autocommit=True, application_name="safety-holder") as hold:
        hold.execute("SELECT pg_advisory_lock(%s)", (RUNNER_KEY,))
        holder_pid = hold.info.backend_pid
        t0 = time.monotonic()
        procs = [runner.popen("up", "--timeout", "2", artifact_root=tmp_path / f"art{i}")
                 for i in range(8)]
        outs = [p.communicate(timeout=30) for p in procs]
        wall = time.monotonic() - t0
    results = [finish(p.returncode, o, e, wall, runner.artifact_file(tmp_path / f"art{i}"))
               for i, (p, (o, e)) in enumerate(zip(procs, outs, strict=True))]
    # Each runner's own clock (from its start, after Python's imports) honours the deadline;
    # the batch's wall time also includes 8 interpreters starting at once on a shared CI box.
    assert wall < 2 + 10, f"8 runners took {wall:.1f}s against --timeout 2"
    for res in results:
        assert res.code == 4, str(res)
        assert res.artifact is not None
        assert 1900 <= res.artifact["elapsedMs"] < 2000 + 1000
        assert res.artifact["reasonCode"] == "runner-lock-not-acquired"
        assert f"pid {holder_pid}" in res.stderr
        assert len(res.error_lines) == 1
    assert history(database_url) == []
    assert not table_exists(database_url, "marks")
    assert sorted(r.status for r in run_log(database_url)) == ["LOCK_TIMEOUT"] * 8

    # Released: the next runner applies everything.
    res = runner.up()
    assert res.code == 0, str(res)
    assert len(history(database_url)) == 3


# -- 3. DDL lock timeout, bounded retries, blockers ------------------------------------------

def test_ddl_lock_timeout_retries_then_names_the_blocker(
        runner: Runner, database_url: str, blocker: int) -> None:
    write_migrations(runner.directory, {"0002_add_col.sql": "-- adds a column\n"
                                        "ALTER TABLE guarded ADD COLUMN note text;\n"})
    res = runner.up("--lock-timeout", "200ms", "--max-retries", "2", "--timeout", "30")
    assert res.code == 5, str(res)
    assert len(res.error_lines) == 1 and "0002_add_col.sql:2:1" in res.stderr
    assert f"pid {blocker}" in res.stderr
    art = res.artifact
    assert art is not None and art["executionStatus"] == "Failed"
    assert art["reasonCode"] == "lock-timeout"
    failing = art["executionSummary"]["failing"]
    assert failing["file"] == "0002_add_col.sql" and failing["sqlstate"] == "55P03"
    assert (failing["line"], failing["column"]) == (2, 1)
    assert art["attempts"] == 3
    assert art["executionSummary"]["applied"] == []
    assert art["executionSummary"]["pending"] == ["0002_add_col.sql"]
    mine = [b for b in art["blockers"] if b["pid"] == blocker]
    assert mine and mine[0]["application"] == BLOCKER_APP
    assert mine[0]["query"] == BLOCKER_QUERY
    assert mine[0]["state"] == "idle in transaction"

    rows = newest_run(database_url)
    assert [(r.attempt, r.status, r.sqlstate) for r in rows] == \
        [(1, "LOCK_TIMEOUT", "55P03"), (2, "LOCK_TIMEOUT", "55P03"), (3, "LOCK_TIMEOUT", "55P03")]
    for r in rows:
        assert r.finished and r.migration == "0002_add_col.sql"
        assert r.blockers, f"attempt {r.attempt} recorded no blockers"
        assert any(b["pid"] == blocker and b["query"] == BLOCKER_QUERY
                   and b["application"] == BLOCKER_APP for b in r.blockers)
    # Bounded: 3 attempts of 200 ms plus jittered backoff, far below the 30 s deadline.
    assert res.elapsed_s < 8
    assert history(database_url) == ["0001_guarded.sql"]
    cols = query(database_url, "SELECT column_name FROM information_schema.columns"
                               " WHERE table_name = 'guarded' ORDER BY 1")
    assert cols == [("id",)]


def test_no_retries_means_one_attempt(runner: Runner, database_url: str, blocker: int) -> None:
    write_migrations(runner.directory, {"0002_idx.sql": "CREATE INDEX guarded_id ON guarded (id);\n"})
    res = runner.up("--lock-timeout", "100ms", "--max-retries", "0")
    assert res.code == 5, str(res)
    rows = newest_run(database_url)
    assert [(r.attempt, r.status) for r in rows] == [(1, "LOCK_TIMEOUT")]


# -- 4. statement timeout ---------------------------------------------------------------------

def test_statement_timeout_fails_the_migration_and_applies_none_of_it(
        runner: Runner, database_url: str) -> None:
    write_migrations(runner.directory, {
        "0001_ok.sql": "CREATE TABLE ok (id int);\n",
        "0002_slow.sql": "CREATE TABLE slow (id int);\nINSERT INTO slow VALUES (1);\n"
                         "SELECT pg_sleep(5);\n",
        "0003_after.sql": "CREATE TABLE after (id int);\n",
    })
    res = runner.up("--statement-timeout", "300ms")
    assert res.code == 1, str(res)
    assert len(res.error_lines) == 1 and "0002_slow.sql:3:1" in res.stderr
    assert "57014" in res.stderr
    art = res.artifact
    assert art is not None and art["reasonCode"] == "statement-timeout"
    failing = art["executionSummary"]["failing"]
    assert (failing["file"], failing["line"], failing["sqlstate"]) == ("0002_slow.sql", 3, "57014")
    assert [a["file"] for a in art["executionSummary"]["applied"]] == ["0001_ok.sql"]
    assert res.elapsed_s < 4
    assert history(database_url) == ["0001_ok.sql"]
    assert table_exists(database_url, "ok")
    assert not table_exists(database_url, "slow") and not table_exists(database_url, "after")
    rows = newest_run(database_url)
    assert [(r.status, r.sqlstate, r.migration) for r in rows] == \
        [("FAILED", "57014", "0002_slow.sql")]


# -- 5. the one deadline ----------------------------------------------------------------------

def test_deadline_cuts_a_long_statement(runner: Runner, database_url: str) -> None:
    write_migrations(runner.directory, {
        "0001_ok.sql": "CREATE TABLE ok (id int);\n",
        "0002_sleep.sql": "CREATE TABLE slept (id int);\nSELECT pg_sleep(5);\n",
    })
    t0 = time.monotonic()
    res = runner.up("--timeout", "2")
    wall = time.monotonic() - t0
    assert res.code == 6, str(res)
    assert wall < 2 + 3
    assert len(res.error_lines) == 1 and "MIGRATION_TIMEOUT_SECONDS=2" in res.stderr
    art = res.artifact
    assert art is not None and art["reasonCode"] == "deadline-exceeded"
    assert art["executionSummary"]["failing"]["file"] == "0002_sleep.sql"
    assert history(database_url) == ["0001_ok.sql"]
    assert not table_exists(database_url, "slept")
    assert [r.status for r in newest_run(database_url)] == ["FAILED"]


@pytest.mark.slow
def test_deadline_covers_lock_waits_and_retries(
        runner: Runner, database_url: str, blocker: int) -> None:
    write_migrations(runner.directory, {"0002_add_col.sql":
                                        "ALTER TABLE guarded ADD COLUMN note text;\n"})
    t0 = time.monotonic()
    res = runner.up("--timeout", "3", "--lock-timeout", "400ms", "--max-retries", "20")
    wall = time.monotonic() - t0
    assert res.code == 6, str(res)
    assert wall < 3 + 3
    art = res.artifact
    assert art is not None and art["reasonCode"] == "deadline-exceeded"
    assert art["elapsedMs"] < 3000 + 500
    # The deadline, not the retry budget, ended it; and the artifact still names the
    # migration being retried and why (it used to be null when time ran out in a backoff).
    # The last attempt's lock_timeout and statement_timeout are both clamped to the time
    # left, so either may fire first.
    failing = art["executionSummary"]["failing"]
    assert failing["file"] == "0002_add_col.sql" and failing["sqlstate"] in ("55P03", "57014")
    rows = newest_run(database_url)
    assert 2 <= len(rows) < 20, [(r.attempt, r.status) for r in rows]
    assert art["attempts"] == len(rows)
    assert [r.attempt for r in rows] == list(range(1, len(rows) + 1))
    assert all(r.status == "LOCK_TIMEOUT" and r.sqlstate == "55P03" for r in rows[:-1])
    last = rows[-1]
    assert (last.status, last.migration) == ("FAILED", "0002_add_col.sql")
    assert last.sqlstate == failing["sqlstate"]
    assert last.finished and "MIGRATION_TIMEOUT_SECONDS=3 exceeded" in (last.message or "")
    assert history(database_url) == ["0001_guarded.sql"]


# -- 11. the kept knobs -----------------------------------------------------------------------

def test_disabled_runner_records_skipped_and_applies_nothing(
        runner: Runner, database_url: str) -> None:
    write_migrations(runner.directory, {"0001_t.sql": "CREATE TABLE t (id int);\n"})
    res = runner.up(env={"MIGRATE_DB_MIGRATE_ENABLED": "0"})
    assert res.code == 0, str(res)
    assert res.artifact is not None and res.artifact["executionStatus"] == "Skipped"
    assert res.artifact["reasonCode"] == "migration-disabled"
    assert [r.status for r in run_log(database_url)] == ["SKIPPED"]
    assert history(database_url) == [] and not table_exists(database_url, "t")


def test_telemetry_off_writes_no_run_log(runner: Runner, database_url: str) -> None:
    write_migrations(runner.directory, {"0001_t.sql": "CREATE TABLE t (id int);\n"})
    off = {"DB_MIGRATE_TELEMETRY_ENABLED": "0"}
    assert runner.up(env=off).code == 0
    write_migrations(runner.directory, {"0002_bad.sql": "INSERT INTO missing VALUES (1);\n"})
    res = runner.up(env=off)
    assert res.code == 1, str(res)
    assert res.artifact is not None and res.artifact["reasonCode"] == "sql-failed"
    assert history(database_url) == ["0001_t.sql"]
    assert not table_exists(database_url, RUN_LOG) or run_log(database_url) == []
    # Switching it back on starts logging; nothing was logged while it was off.
    assert runner.up(env={"MIGRATE_DB_MIGRATE_ENABLED": "0"}).code == 0
    assert [r.status for r in run_log(database_url)] == ["SKIPPED"]


def test_the_artifact_validator_is_not_vacuous(runner: Runner) -> None:
    # Every test above relies on safety_helpers.validate_artifact; it must reject bad files.
    write_migrations(runner.directory, {"0001_t.sql": "CREATE TABLE t (id int);\n"})
    res = runner.up()
    assert res.code == 0 and res.artifact is not None
    good = dict(res.artifact)
    for key, bad in (("reasonCode", "made-up"), ("startedAt", "yesterday"),
                     ("startedAt", "2024-01-01T00:00:00"), ("lockWaitMs", -1),
                     ("surprise", 1)):
        with pytest.raises(AssertionError, match="violates its schema"):
            validate_artifact({**good, key: bad})
    with pytest.raises(AssertionError, match="violates its schema"):
        validate_artifact({k: v for k, v in good.items() if k != "blockers"})
