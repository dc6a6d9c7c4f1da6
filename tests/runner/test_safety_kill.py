"""SIGKILL the runner at random points; nothing may be half-applied and the next run recovers.

Each trial gets a fresh database and a seeded kill point: during start-up, or a random
delay after the runner reports progress on a chosen migration (so kills land between and
inside migrations, including the non-transactional ``CREATE INDEX CONCURRENTLY``). After
the kill: every migration's effects match the history exactly, the history is a prefix of
the file order, the runner's backends and advisory lock are gone within a bounded wait,
and the next ``up`` applies the rest and turns the killed run's RUNNING row into FAILED.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from migration.source import discover
from tests.conftest import PgServer

from .safety_helpers import (
    HISTORY,
    Runner,
    advisory_holders,
    finish,
    history,
    query,
    run_log,
    runner_sessions,
    try_runner_lock,
    wait_until,
    write_migrations,
)

SEED = int(os.environ.get("SAFETY_KILL_SEED", "20240611"))
TRIALS = int(os.environ.get("SAFETY_KILL_TRIALS", "20"))
INDEX_FILE = "0016_marks_idx.sql"
LOCK_FREED_WITHIN_S = 5.0


@dataclass(frozen=True)
class Probe:
    """A query returning one row that describes a migration's effects, and that row when the
    migration is applied and when it is not."""

    sql: str
    params: tuple[Any, ...]
    applied: tuple[Any, ...]
    absent: tuple[Any, ...]


# Probes are plain SQL over the catalogs, so they read the transaction's snapshot; to_regclass
# and friends read the syscache, which sees commits made after the snapshot was taken.

# File texts (written to disk, never executed by the test itself) and their probes.
TEMPLATES = {
    "table": ("CREATE TABLE t_{i} (id int);\n{slow}INSERT INTO marks VALUES ({i});\n",
              Probe("SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = %s AND relkind = 'r'),"
                    " (SELECT count(*) FROM marks WHERE k = %s)", (), (True, 1), (False, 0))),
    "column": ("ALTER TABLE notes ADD COLUMN c_{i} int;\n{slow}INSERT INTO marks VALUES ({i});\n",
               Probe("SELECT EXISTS (SELECT 1 FROM information_schema.columns"
                     " WHERE table_name = 'notes' AND column_name = %s),"
                     " (SELECT count(*) FROM marks WHERE k = %s)", (), (True, 1), (False, 0))),
    "row": ("INSERT INTO marks VALUES ({i});\n{slow}INSERT INTO notes (id) VALUES ({i});\n",
            Probe("SELECT (SELECT count(*) FROM marks WHERE k = %s),"
                  " (SELECT count(*) FROM notes WHERE id = %s)", (), (1, 1), (0, 0))),
}


def corpus() -> tuple[dict[str, str], dict[str, Probe]]:
    """30 migrations: tables, columns and rows, a third of them slow, one built concurrently.

    Every transactional migration has two effects, so a half-applied one shows.
    """
    files: dict[str, str] = {
        "0001_marks.sql": "CREATE TABLE marks (k int NOT NULL);\n"
                          "CREATE TABLE notes (id int);\n",
        # Slow per row and IMMUTABLE so it can back an index: makes the concurrent build last
        # long enough for a kill to land inside it.
        "0002_slow_fn.sql": "CREATE FUNCTION slow_id(k int) RETURNS int LANGUAGE plpgsql "
                            "IMMUTABLE AS $$ BEGIN PERFORM pg_sleep(0.005); RETURN k; END $$;\n"
                            "INSERT INTO marks VALUES (2);\n",
        INDEX_FILE: "-- migration: no-transaction\n"
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS marks_slow_idx"
                    " ON marks (slow_id(k));\n",
    }
    probes: dict[str, Probe] = {
        "0001_marks.sql": Probe("SELECT count(*) FROM pg_class WHERE relname IN (%s, %s)"
                                " AND relkind = 'r'", ("marks", "notes"), (2,), (0,)),
        "0002_slow_fn.sql": Probe("SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'slow_id'),"
                                  " (SELECT count(*) FROM marks WHERE k = 2)", (), (True, 1),
                                  (False, 0)),
    }
    for i in range(3, 31):
        if f"{i:04d}_" in INDEX_FILE:
            continue
        kind = ("table", "column", "row")[i % 3]
        text, probe = TEMPLATES[kind]
        name = f"{i:04d}_{kind}_{i}.sql"
        files[name] = text.format(i=i, slow="SELECT pg_sleep(0.03);\n" if i % 3 == 0 else "")
        ident = {"table": f"t_{i}", "column": f"c_{i}", "row": i}[kind]
        probes[name] = Probe(probe.sql, (ident, i), probe.applied, probe.absent)
    return dict(sorted(files.items())), probes


def index_state(target: str | psycopg.Connection[Any]) -> bool | None:
    """None: no index; else whether PostgreSQL considers it valid."""
    q = ("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
         " WHERE c.relname = 'marks_slow_idx'")
    if isinstance(target, str):
        rows = query(target, q)
    else:
        rows = target.execute(q).fetchall()
    return bool(rows[0][0]) if rows else None


def assert_consistent(url: str, names: list[str], probes: dict[str, Probe]) -> list[str]:
    """History and effects agree, read from ONE snapshot: a killed runner's last message may
    still be committing on the server, and two separate reads could straddle that commit."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            row = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = %s)",
                               (HISTORY,)).fetchone()
            applied = [r[0] for r in conn.execute(sql.SQL("SELECT name FROM {} ORDER BY name")
                                                  .format(sql.Identifier(HISTORY)))] \
                if row and row[0] else []
            effects = {name: conn.execute(p.sql, p.params).fetchone()
                       for name, p in probes.items()
                       if name == names[0] or names[0] in applied}
            index = index_state(conn)
    assert len(applied) == len(set(applied))
    # Each migration commits in order (or in ordered groups): the history is a prefix.
    assert applied == names[:len(applied)], f"history is not a prefix of the order: {applied}"
    for name, got in effects.items():
        want = probes[name].applied if name in applied else probes[name].absent
        assert got == want, f"{name}: effects {got} but history says " \
                            f"{'applied' if name in applied else 'not applied'}"
    # The concurrent build cannot be atomic with its history row: the index may exist
    # (even INVALID, when killed mid-build) before the row does, never the other way round.
    if INDEX_FILE in applied:
        assert index is True
    return applied


def read_until(proc: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """Read the runner's stdout until a line contains ``marker`` (or it exits)."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.05)
        if not ready:
            continue
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            break
    return "".join(seen)


def kill_trial(runner: Runner, names: list[str], probes: dict[str, Probe],
               rng: random.Random, single: bool) -> str:
    """One trial on the runner's (fresh) database; returns a one-line account of it."""
    url = runner.database_url
    assert url is not None
    flags = ["--single-transaction"] if single else []
    # Kill point: sometimes during start-up (connect, lock, table setup), else a random delay
    # after the line that reports the migration before the target, so the kill lands in or
    # around the target; the concurrent index build gets extra weight.
    target = rng.choice([None, None, *names, INDEX_FILE, INDEX_FILE])
    proc = runner.popen("up", *flags)
    out = ""
    if target is None:
        delay = rng.uniform(0, 0.3)
    else:
        i = names.index(target)
        # "  applied X (..)" / "  ran X (..)"; the boundary line names X without "(".
        out = read_until(proc, "lock acquired" if i == 0 else f"{names[i - 1]} (", timeout=20)
        delay = rng.uniform(0, 0.35 if target == INDEX_FILE else 0.06)
    time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    rest, err = proc.communicate(timeout=20)
    account = (f"{'single' if single else 'each'} {target or 'startup'}+{int(delay * 1000)}ms "
               f"{'KILLED' if killed else f'exit {proc.returncode}'}")
    if not killed:
        assert proc.returncode == 0, out + rest + err
    # A killed runner leaves no artifact or a whole one (written by atomic rename).
    finish(0, "", "", 0, runner.artifact_file())

    # The kill leaves no half-applied migration: history and effects agree in one snapshot
    # at once, although the server may still be finishing a message the runner sent...
    applied = assert_consistent(url, names, probes)
    index_before = index_state(url)

    # The lock and the runner's sessions go away on their own, within a bound.
    t0 = time.monotonic()
    freed = wait_until(lambda: not runner_sessions(url) and not advisory_holders(url)
                       and try_runner_lock(url), LOCK_FREED_WITHIN_S)
    waited = time.monotonic() - t0
    assert freed, f"{account}: runner lock/session still held after {waited:.1f}s: " \
                  f"{runner_sessions(url)}"

    # ...which has now committed or rolled back whole.
    applied = assert_consistent(url, names, probes)
    stale = [r for r in run_log(url) if r.status == "RUNNING"]
    live = {pid for (pid,) in query(url, "SELECT pid FROM pg_stat_activity")}
    assert all(r.backend_pid not in live for r in stale)
    assert len(stale) <= 1 and (killed or not stale)

    # The next run completes everything and reconciles the killed run's row.
    res = runner.up(*flags)
    assert res.code == 0, str(res)
    assert res.artifact is not None and res.artifact["executionStatus"] == "Succeeded"
    assert [a["file"] for a in res.artifact["executionSummary"]["applied"]] == \
        names[len(applied):]
    assert assert_consistent(url, names, probes) == names
    rows = {r.id: r for r in run_log(url)}
    for r in stale:
        assert rows[r.id].status == "FAILED" and rows[r.id].finished
        assert "reconciled" in (rows[r.id].message or "")
        assert "reconciled 1 stale RUNNING" in res.stdout
    assert not [r for r in rows.values() if r.status == "RUNNING"]
    return (f"{account} applied={len(applied)} index={index_before} stale={len(stale)}"
            f" freed={int(waited * 1000)}ms")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sigkill_at_random_points_never_half_applies(pg: PgServer, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    files, probes = corpus()
    names = list(files)
    mdir = tmp_path / "migrations"
    write_migrations(mdir, files)
    assert [f.name for f in discover(mdir)] == names and len(names) == 30
    started = time.monotonic()
    outcomes: list[str] = []
    for trial in range(TRIALS):
        dbname = pg.create_database()
        runner = Runner(mdir, tmp_path / f"art{trial}", pg.url(dbname), release_sha=f"k{trial}")
        try:
            outcomes.append(f"{trial}: " + kill_trial(runner, names, probes, rng,
                                                      single=trial % 3 == 2))
        finally:
            pg.drop_database(dbname)
    elapsed = time.monotonic() - started
    print(f"\n{TRIALS} kill trials in {elapsed:.1f}s (seed {SEED}):\n  " + "\n  ".join(outcomes))
    assert sum(" KILLED" in o for o in outcomes) >= TRIALS * 3 // 4, outcomes
    # Some kills must have hit a migration part-way (else the trials prove little).
    assert any(" KILLED applied=" in o and "applied=0 " not in o for o in outcomes)
    assert elapsed < 90


@pytest.mark.slow
def test_kill_during_a_concurrent_index_build_is_rebuilt_next_run(
        runner_url: tuple[Runner, str]) -> None:
    """A killed CREATE INDEX CONCURRENTLY leaves an INVALID index that IF NOT EXISTS would
    skip for ever; the runner's backend must notice the kill, and the next run rebuild it."""
    runner, url = runner_url
    write_migrations(runner.directory, {
        "0001_rows.sql": "CREATE TABLE marks (k int NOT NULL);\n"
                         "CREATE FUNCTION slow_id(k int) RETURNS int LANGUAGE plpgsql IMMUTABLE"
                         " AS $$ BEGIN PERFORM pg_sleep(0.005); RETURN k; END $$;\n"
                         "INSERT INTO marks SELECT generate_series(1, 400);\n",
        INDEX_FILE: "-- migration: no-transaction\n"
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS marks_slow_idx ON marks (slow_id(k));\n",
    })
    proc = runner.popen("up")
    read_until(proc, "0001_rows.sql (", timeout=20)
    building = wait_until(lambda: bool(query(
        url, "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
             " AND query LIKE 'CREATE INDEX CONCURRENTLY%%' AND state = 'active'")), 10, 0.01)
    assert building, "the concurrent build never showed up in pg_stat_activity"
    time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=20)
    # The backend notices the dead client (client_connection_check_interval = 1s) and aborts
    # the build long before it would have finished (400 rows at 5 ms: 2 s).
    t0 = time.monotonic()
    assert wait_until(lambda: not runner_sessions(url) and try_runner_lock(url), 3)
    assert time.monotonic() - t0 < 1.6
    assert history(url) == ["0001_rows.sql"]
    assert index_state(url) is False, "expected the aborted build's INVALID index"

    res = runner.up()
    assert res.code == 0, str(res)
    assert "dropping INVALID index marks_slow_idx" in res.stdout
    assert index_state(url) is True
    assert history(url) == ["0001_rows.sql", INDEX_FILE]
    assert [r.status for r in run_log(url)] == ["FAILED", "SUCCESS"]


@pytest.fixture
def runner_url(tmp_path: Path, database_url: str) -> tuple[Runner, str]:
    return Runner(tmp_path / "migrations", tmp_path / "artifacts", database_url), database_url
