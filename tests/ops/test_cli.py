"""`status`, `alerts` (local and remote) and `serve` through the real command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from migration.cli import main
from migration.errors import EXIT_CRITICAL, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from migration.settings import Settings

from .conftest import TOKEN, insert_run

ROOT = Path(__file__).resolve().parents[2]


def _common(s: Settings) -> list[str]:
    return ["--dir", str(s.dir), "--database-url", str(s.database_url)]


def test_status_json_and_exit_codes(applied: Settings, capsys: pytest.CaptureFixture[str]
                                    ) -> None:
    assert main(["status", "--json", *_common(applied)]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    assert doc["alert"]["level"] == "ok" and doc["applied"]["count"] == 2
    (applied.dir / "0003_x.sql").write_text("SELECT 1;\n")
    assert main(["status", *_common(applied)]) == EXIT_CRITICAL
    out = capsys.readouterr().out
    assert "alert: CRITICAL" in out and "0003_x.sql" in out


def test_status_runs_and_lookback_bounds(applied: Settings,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--lookback-minutes", "0", *_common(applied)]) == EXIT_USAGE
    assert "1..10080" in capsys.readouterr().err
    assert main(["status", "--json", "--runs", "1", *_common(applied)]) == EXIT_OK
    assert len(json.loads(capsys.readouterr().out)["recentRuns"]) == 1


def test_alerts_strict_and_not(applied: Settings, database_url: str,
                               monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    insert_run(database_url, "FAILED", minutes_ago=45, sqlstate="23505")
    assert main(["alerts", *_common(applied)]) == EXIT_OK  # report only
    assert "alert: CRITICAL" in capsys.readouterr().out
    assert main(["alerts", "--strict", *_common(applied)]) == EXIT_CRITICAL
    monkeypatch.setenv("DEPLOY_MIGRATION_ALERT_STRICT", "1")
    assert main(["alerts", *_common(applied)]) == EXIT_CRITICAL
    monkeypatch.setenv("DEPLOY_MIGRATION_ALERT_LOOKBACK_MINUTES", "30")
    assert main(["alerts", *_common(applied)]) == EXIT_OK  # the failure is 45 minutes old
    assert main(["alerts", "--lookback-minutes", "60", *_common(applied)]) == EXIT_CRITICAL
    monkeypatch.setenv("DEPLOY_MIGRATION_ALERT_STRICT", "maybe")
    assert main(["alerts", *_common(applied)]) == EXIT_USAGE
    capsys.readouterr()
    monkeypatch.setenv("DEPLOY_MIGRATION_ALERT_STRICT", "0")
    assert main(["alerts", "--json", *_common(applied)]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["alert"]["level"] == "ok"


def test_alerts_database_down(mig_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://u:pw-secret@/db?host=/nonexistent-gr-dir"
    assert main(["alerts", "--strict", "--dir", str(mig_dir), "--database-url", url]) \
        == EXIT_UNREACHABLE
    captured = capsys.readouterr()
    assert "database-unreachable" in captured.out
    assert "pw-secret" not in captured.out + captured.err
    assert main(["status", "--dir", str(mig_dir), "--database-url", url]) == EXIT_UNREACHABLE


def test_alerts_remote_against_the_live_server(applied: Settings, database_url: str,
                                               serve: Any, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    live = serve(applied)
    monkeypatch.setenv("DEPLOY_OPS_TOKEN", TOKEN)
    assert main(["alerts", "--strict", "--url", live.base]) == EXIT_OK
    assert "alert: OK" in capsys.readouterr().out
    insert_run(database_url, "LOCK_TIMEOUT", minutes_ago=10, sqlstate="55P03")
    assert main(["alerts", "--strict", "--url", live.base + "/api/ops/migrations"]) \
        == EXIT_CRITICAL
    assert "run-lock-timeout" in capsys.readouterr().out
    assert main(["alerts", "--strict", "--url", live.base, "--lookback-minutes", "5"]) \
        == EXIT_OK
    monkeypatch.setenv("DEPLOY_OPS_TOKEN", "wrong")
    assert main(["alerts", "--strict", "--url", live.base]) == EXIT_USAGE
    assert "refused the token" in capsys.readouterr().err
    monkeypatch.delenv("DEPLOY_OPS_TOKEN")
    assert main(["alerts", "--url", live.base]) == EXIT_USAGE
    monkeypatch.setenv("DEPLOY_OPS_TOKEN", TOKEN)
    assert main(["alerts", "--url", "http://127.0.0.1:9/", "--remote-timeout", "2"]) \
        == EXIT_UNREACHABLE
    assert main(["alerts", "--url", "ftp://x"]) == EXIT_USAGE


def test_help_lists_env_twins(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd, envs in (("status", ["DEPLOY_MIGRATION_ALERT_LOOKBACK_MINUTES",
                                  "OPS_MIGRATION_RECENT_RUNS", "MIGRATION_STATUS_HTML"]),
                      ("alerts", ["DEPLOY_MIGRATION_ALERT_STRICT", "DEPLOY_OPS_URL",
                                  "DEPLOY_OPS_TOKEN", "DEPLOY_OPS_TIMEOUT_SECONDS"]),
                      ("serve", ["OPS_MIGRATION_HOST", "OPS_MIGRATION_PORT",
                                 "OPS_MIGRATION_TOKEN"])):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for env in envs:
            assert env in text, (cmd, env)


def test_serve_command_end_to_end(applied: Settings) -> None:
    env = {**os.environ, "OPS_MIGRATION_TOKEN": TOKEN, "DATABASE_URL": str(applied.database_url),
           "MIGRATION_DIR": str(applied.dir), "OPS_MIGRATION_PORT": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "migration", "serve"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving http://127.0.0.1:"), line
        url = line.split()[1]
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=20) as r:
            assert r.status == 200 and json.load(r)["alert"]["level"] == "ok"
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_refuses_a_missing_directory(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--dir", str(tmp_path / "nope"), "--database-url",
                 "postgresql://x@/y?host=/nonexistent"]) == EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err


def test_status_uses_the_embedded_default_without_a_url(mig_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    from migration.embedded import stop_server

    monkeypatch.delenv("DATABASE_URL", raising=False)
    # Like the session fixture, outside pytest's shared tmp tree: the embedded server runs as
    # another user and other pytest sessions on this machine prune that tree.
    base = Path(tempfile.mkdtemp(prefix="gr-ops-pg-"))
    data = base / "pgdata"
    try:
        assert main(["status", "--json", "--dir", str(mig_dir), "--embedded-dir", str(data)]) \
            == EXIT_CRITICAL
        doc = json.loads(capsys.readouterr().out)
        assert doc["database"] == "reachable"
        assert [p["name"] for p in doc["pending"]] == ["0001_init.sql", "0002_index.sql"]
    finally:
        stop_server(data)
        shutil.rmtree(base, ignore_errors=True)


def test_status_json_is_the_endpoint_document(applied: Settings, database_url: str,
                                              serve: Any,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    insert_run(database_url, "FAILED", minutes_ago=3, sqlstate="42601", message="syntax")
    (applied.dir / "0003_y.sql").write_text("SELECT 1;\n")
    assert main(["status", "--json", *_common(applied)]) == EXIT_CRITICAL
    local = json.loads(capsys.readouterr().out)
    status, remote = serve(applied).api()
    assert status == 503
    for doc in (local, remote):
        doc.pop("checkedAt")
    assert local == remote


def test_wsgi_application_from_the_environment(applied: Settings) -> None:
    from migration.web import app_from_env

    app = app_from_env({"OPS_MIGRATION_TOKEN": TOKEN, "DATABASE_URL": str(applied.database_url),
                        "MIGRATION_DIR": str(applied.dir)})
    got: dict[str, Any] = {}
    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": "/api/ops/migrations",
                         "QUERY_STRING": "", "HTTP_AUTHORIZATION": f"Bearer {TOKEN}"},
                        lambda status, headers: got.update(status=status)))
    assert got["status"] == "200 OK" and json.loads(body)["applied"]["count"] == 2
