"""Fixtures for the ops tests: applied databases, run-log rows, live servers on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from migration.runner import up
from migration.settings import Settings
from migration.web import OpsApp, make_ops_server

TOKEN = "t0ken-for-tests-0123456789abcdef"
FILES = {
    "0001_init.sql": "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);\n",
    "0002_index.sql": "CREATE INDEX items_name_idx ON items (name);\n",
}


@pytest.fixture
def mig_dir(tmp_path: Path) -> Path:
    d = tmp_path / "migrations"
    d.mkdir()
    for name, text in FILES.items():
        (d / name).write_text(text)
    return d


def settings_for(url: str | None, mig_dir: Path, **kw: Any) -> Settings:
    return Settings(dir=mig_dir, database_url=url, artifact_dir=None, release_sha="test-sha",
                    **kw)


@pytest.fixture
def applied(database_url: str, mig_dir: Path) -> Settings:
    """A database where the real runner applied every file (history and run log exist)."""
    s = settings_for(database_url, mig_dir)
    report, err = up(s, lambda _line: None)
    assert err is None, err
    # Age the runner's own SUCCESS row: a failure the tests insert "minutes ago" must be
    # the latest run, not one that this success already fixed forward.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE public.migration_run_log SET started_at = started_at - interval"
                     " '1 day', finished_at = finished_at - interval '1 day'")
    return s


def insert_run(url: str, status: str, *, minutes_ago: float, run_id: str | None = None,
               attempt: int = 1, message: str | None = None, sqlstate: str | None = None,
               migration: str | None = None, lock_wait_ms: int | None = None,
               backend_pid: int | None = None, finished: bool = True) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO public.migration_run_log (run_id, attempt, status, started_at,"
            " finished_at, lock_wait_ms, sqlstate, message, migration, release_sha, host, runner,"
            " backend_pid) VALUES (coalesce(%s::uuid, gen_random_uuid()), %s, %s,"
            " now() - make_interval(secs => %s), CASE WHEN %s THEN now() -"
            " make_interval(secs => %s) + interval '1.5 seconds' END, %s, %s, %s, %s, 'rel-1',"
            " 'host-a', 'test', %s)",
            (run_id, attempt, status, minutes_ago * 60, finished, minutes_ago * 60,
             lock_wait_ms, sqlstate, message, migration, backend_pid),
        )


@dataclass
class Live:
    base: str
    app: OpsApp

    def get(self, path: str, headers: dict[str, str] | None = None,
            method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.base + path, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, dict(r.headers.items()), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers.items()), e.read()

    def api(self, query: str = "", token: str | None = TOKEN) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        status, _, body = self.get("/api/ops/migrations" + query, headers)
        return status, json.loads(body)


@pytest.fixture
def serve() -> Iterator[Callable[..., Live]]:
    servers = []

    def start(settings: Settings, token: str | None = TOKEN, **kw: Any) -> Live:
        logs: list[str] = []
        app = OpsApp(settings, token, log=logs.append, **kw)
        app.logs = logs  # type: ignore[attr-defined]
        server = make_ops_server(app, "127.0.0.1", 0)
        t = threading.Thread(target=server.serve_forever, daemon=True)
        t.start()
        servers.append((server, t))
        host, port = server.server_address[:2]
        return Live(f"http://{host}:{port}", app)

    yield start
    for server, t in servers:
        server.shutdown()
        server.server_close()
        t.join(5)
