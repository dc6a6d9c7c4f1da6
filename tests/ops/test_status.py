"""Status facts from a real database, and the alert rules as a pure function."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from migration.settings import Settings
from migration.status import Facts, RunRow, Telemetry, evaluate, read_status

from .conftest import insert_run, settings_for

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _row(id_: int, status: str, minutes_ago: float, *, run: str = "r1", attempt: int = 1,
         alive: bool | None = None) -> RunRow:
    return RunRow(id_, run, attempt, status, NOW - timedelta(minutes=minutes_ago),
                  backend_alive=alive)


def _codes(facts: Facts, lookback: int = 120, stale_after_s: int = 960) -> list[str]:
    return [r.code for r in evaluate(facts, lookback_minutes=lookback,
                                     stale_after_s=stale_after_s).reasons]


def test_rules_pure() -> None:
    ok = Telemetry(True, True, "public.migration_run_log")
    assert evaluate(Facts(NOW, telemetry=ok), lookback_minutes=120, stale_after_s=960).level \
        == "ok"
    failed = Facts(NOW, telemetry=ok, window=(_row(1, "FAILED", 119),))
    assert _codes(failed) == ["run-failed"]
    assert _codes(failed, lookback=118) == []
    # a retry that recovered inside the same run is a warning, not a page
    retried = Facts(NOW, telemetry=ok, window=(_row(1, "LOCK_TIMEOUT", 5),
                                               _row(2, "SUCCESS", 4, attempt=2)))
    assert _codes(retried) == ["run-retried"]
    assert evaluate(retried, lookback_minutes=120, stale_after_s=960).level == "warning"
    # ...but a run whose last attempt failed is critical even after earlier ones
    still = Facts(NOW, telemetry=ok, window=(_row(1, "LOCK_TIMEOUT", 5),
                                             _row(2, "LOCK_TIMEOUT", 4, attempt=2)))
    assert _codes(still) == ["run-lock-timeout"]
    # a failure fixed forward by a later successful run no longer pages ...
    fixed = Facts(NOW, telemetry=ok, window=(_row(1, "FAILED", 30, run="r1"),
                                             _row(2, "SUCCESS", 10, run="r2")))
    assert _codes(fixed) == ["run-failed-fixed"]
    # ... unless something is still pending, or the success came first
    earlier = Facts(NOW, telemetry=ok, window=(_row(1, "SUCCESS", 30, run="r2"),
                                               _row(2, "FAILED", 10, run="r1")))
    assert _codes(earlier) == ["run-failed"]
    # RUNNING: in progress (alive, young) is fine; dead backend or too old is stale
    assert _codes(Facts(NOW, telemetry=ok, recent=(_row(1, "RUNNING", 1, alive=True),))) == []
    assert _codes(Facts(NOW, telemetry=ok, recent=(_row(1, "RUNNING", 1, alive=False),))) \
        == ["stale-running"]
    assert _codes(Facts(NOW, telemetry=ok, recent=(_row(1, "RUNNING", 20, alive=True),))) \
        == ["stale-running"]
    assert _codes(Facts(NOW, telemetry=Telemetry(False, True, "t", "gone"))) \
        == ["telemetry-unavailable"]
    assert _codes(Facts(NOW, telemetry=Telemetry(False, False, "t", "gone"))) == []
    down = evaluate(Facts(NOW, database_reachable=False), lookback_minutes=120,
                    stale_after_s=960)
    assert (down.level, [r.code for r in down.reasons]) == ("critical", ["database-unreachable"])


def test_read_status_fresh_database_everything_pending(database_url: str,
                                                       mig_dir: Path) -> None:
    st = read_status(settings_for(database_url, mig_dir))
    doc = st.to_json()
    assert [p["name"] for p in doc["pending"]] == ["0001_init.sql", "0002_index.sql"]
    assert doc["telemetry"]["available"] is False
    assert [r["code"] for r in doc["alert"]["reasons"]] == ["pending-migrations",
                                                           "telemetry-unavailable"]


def test_read_status_stale_running_missing_and_edited_files(applied: Settings,
                                                            database_url: str) -> None:
    # a RUNNING row whose backend pid does not exist: a killed runner
    insert_run(database_url, "RUNNING", minutes_ago=2, backend_pid=2_000_000_000,
               finished=False)
    (applied.dir / "0001_init.sql").write_text("-- edited\nSELECT 1;\n")
    (applied.dir / "0002_index.sql").unlink()
    st = read_status(applied)
    doc = st.to_json()
    assert doc["alert"]["level"] == "warning"
    assert [r["code"] for r in doc["alert"]["reasons"]] == [
        "stale-running", "applied-file-missing", "applied-file-edited"]
    [running] = [r for r in doc["recentRuns"] if r["status"] == "RUNNING"]
    assert running["stale"] is True and running["finishedAt"] is None
    assert running["durationMs"] >= 120_000  # still running: measured up to now


def test_read_status_retry_rows_written_for_one_run(applied: Settings, database_url: str) -> None:
    run = str(uuid.uuid4())
    insert_run(database_url, "LOCK_TIMEOUT", minutes_ago=3, run_id=run, sqlstate="55P03")
    insert_run(database_url, "SUCCESS", minutes_ago=2, run_id=run, attempt=2)
    doc = read_status(applied).to_json()
    assert [r["code"] for r in doc["alert"]["reasons"]] == ["run-retried"]


def test_read_status_permission_denied_on_run_log(applied: Settings, database_url: str,
                                                  dbname: str) -> None:
    role = "ops_reader_" + uuid.uuid4().hex[:8]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT SELECT ON gated_release_history TO "{role}"')
    url = database_url.replace("postgres:@", f"{role}:@", 1)
    try:
        doc = read_status(applied.with_(database_url=url)).to_json()
        assert doc["telemetry"]["available"] is False
        assert doc["telemetry"]["reason"] == "permission denied"
        assert doc["alert"]["level"] == "warning"
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def test_read_status_never_raises_when_down(mig_dir: Path) -> None:
    url = "postgresql://u:hunter2@/db?host=/nonexistent-gr-dir"
    st = read_status(settings_for(url, mig_dir))
    assert st.database == "unreachable" and st.alert.critical
    assert st.diagnostic is not None and "hunter2" not in st.diagnostic
    assert "hunter2" not in str(st.to_json())


def test_missing_directory_is_critical(applied: Settings, tmp_path: Path) -> None:
    st = read_status(applied.with_(dir=tmp_path / "nope"))
    assert [r.code for r in st.alert.reasons] == ["migrations-unreadable"]
    assert st.to_json()["pending"] is None
