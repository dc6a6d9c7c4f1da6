"""The sample app as a real process on 127.0.0.1, against a database the real runner migrated."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHA = "0123456789abcdef0123456789abcdef01234567"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def start(database_url: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "RELEASE_SHA": SHA, "DATABASE_URL": database_url, "PORT": str(port),
           "HOST": "127.0.0.1"}
    proc = subprocess.Popen([sys.executable, "-m", "sample_app"], cwd=ROOT, env=env,
                            stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                get(base + "/healthz")
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.05)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0  # a clean stop on SIGTERM, as ACA sends it


@pytest.fixture
def migrated(database_url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "migration", "up", "--lock"], cwd=ROOT, capture_output=True,
        text=True, env={**os.environ, "DATABASE_URL": database_url,
                        "MIGRATION_DIR": str(ROOT / "db" / "migrations"), "MIGRATION_JSON": "0"},
        check=False, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO users (email) VALUES ('a@example.com')")
        conn.execute("INSERT INTO documents (owner_id, title) VALUES (1, 'hello')")
    return database_url


@pytest.fixture
def app(migrated: str) -> Iterator[str]:
    yield from start(migrated)


def test_health_reports_the_release_sha(app: str) -> None:
    assert get(app + "/healthz") == (200, {"status": "ok", "releaseSha": SHA})
    assert get(app + "/readyz")[0] == 200


def test_openapi_version_is_the_release_sha(app: str) -> None:
    status, doc = get(app + "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.") and doc["info"]["version"] == SHA
    assert "/api/documents" in doc["paths"]


def test_documents_come_from_the_migrated_table(app: str) -> None:
    status, body = get(app + "/api/documents")
    assert status == 200
    assert body == {"documents": [{"id": 1, "title": "hello", "status": "draft"}], "count": 1}


def test_an_unmigrated_database_is_a_503_with_the_sqlstate(database_url: str) -> None:
    for base in start(database_url):
        status, body = get(base + "/api/documents")
        assert status == 503 and body["sqlstate"] == "42P01"  # undefined_table
        assert get(base + "/healthz")[0] == 200  # liveness does not depend on the database
        assert get(base + "/nope")[0] == 404


def test_ops_endpoint_is_mounted_and_off_without_a_token(app: str) -> None:
    # no OPS_MIGRATION_TOKEN in this process: the runner's endpoint answers 404, as documented
    assert get(app + "/api/ops/migrations")[0] == 404
