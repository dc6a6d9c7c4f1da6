"""GET /api/ops/migrations against a live wsgiref server and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migration.settings import Settings
from migration.web import OpsApp, as_asgi, parse_lookback

from .conftest import TOKEN, insert_run, settings_for

DOWN_URL = "postgresql://postgres:s3cret-pw@/postgres?host=/nonexistent-gr-socket-dir"


def test_token_missing_wrong_right(applied: Settings, serve: Any) -> None:
    live = serve(applied)
    status, headers, body = live.get("/api/ops/migrations")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert json.loads(body) == {"error": "unauthorized",
                                "message": "send Authorization: Bearer <token>"}
    for wrong in ("wrong", TOKEN[:-1], TOKEN + "x", "", TOKEN.upper()):
        status, _ = live.api(token=wrong or "x")
        assert status == 401, wrong
    status, _, _ = live.get("/api/ops/migrations", {"Authorization": f"Basic {TOKEN}"})
    assert status == 401  # the API takes Bearer only
    status, doc = live.api()
    assert status == 200
    assert doc["alert"] == {"level": "ok", "reasons": []}
    assert doc["pending"] == []
    assert doc["applied"]["count"] == 2
    assert doc["telemetry"]["available"] is True
    assert doc["recentRuns"][0]["status"] == "SUCCESS"
    assert doc["database"] == "reachable"


def test_endpoint_off_without_token(applied: Settings, serve: Any) -> None:
    live = serve(applied, token=None)
    for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
        status, _, body = live.get("/api/ops/migrations", headers)
        assert status == 404
        unknown = live.get("/no/such/path", headers)
        assert (status, body) == (unknown[0], unknown[2])  # indistinguishable from no route
    assert live.get("/healthz")[0] == 200


def test_pending_migration_is_critical_503(applied: Settings, serve: Any) -> None:
    (applied.dir / "0003_more.sql").write_text("ALTER TABLE items ADD COLUMN note text;\n")
    status, doc = serve(applied).api()
    assert status == 503
    assert doc["alert"]["level"] == "critical"
    assert [r["code"] for r in doc["alert"]["reasons"]] == ["pending-migrations"]
    assert doc["pending"] == [{"name": "0003_more.sql", "version": "0003"}]


def test_failed_run_inside_lookback_then_outside(applied: Settings, database_url: str,
                                                 serve: Any) -> None:
    insert_run(database_url, "FAILED", minutes_ago=30, sqlstate="42P01",
               message="relation missing", migration="0002_index.sql")
    live = serve(applied)
    status, doc = live.api()
    assert status == 503
    reason = doc["alert"]["reasons"][0]
    assert reason["code"] == "run-failed" and "42P01" in reason["message"]
    assert live.api("?lookbackMinutes=20")[0] == 200  # the failure is older than 20 minutes
    assert live.api("?lookbackMinutes=31")[0] == 503

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE migration_run_log SET started_at = now() - interval '3 hours'"
                     " WHERE status = 'FAILED'")
    status, doc = live.api()
    assert status == 200 and doc["alert"]["level"] == "ok"
    failed = [r for r in doc["recentRuns"] if r["status"] == "FAILED"]
    assert failed and failed[0]["inLookback"] is False


def test_lock_timeout_run_is_critical(applied: Settings, database_url: str, serve: Any) -> None:
    insert_run(database_url, "LOCK_TIMEOUT", minutes_ago=5, sqlstate="55P03", lock_wait_ms=5000)
    status, doc = serve(applied).api()
    assert status == 503
    assert doc["alert"]["reasons"][0]["code"] == "run-lock-timeout"


def test_telemetry_missing_is_a_valid_answer(applied: Settings, database_url: str,
                                             serve: Any) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE migration_run_log")
    status, doc = serve(applied).api()
    assert status == 200
    assert doc["telemetry"] == {"available": False, "enabled": True,
                                "table": "public.migration_run_log",
                                "reason": "the run-log table does not exist"}
    assert doc["recentRuns"] == []
    assert doc["alert"]["level"] == "warning"
    assert doc["alert"]["reasons"][0]["code"] == "telemetry-unavailable"


def test_database_down_is_a_clear_503(mig_dir: Path, serve: Any) -> None:
    live = serve(settings_for(DOWN_URL, mig_dir))
    status, headers, body = live.get("/api/ops/migrations",
                                     {"Authorization": f"Bearer {TOKEN}"})
    assert status == 503
    assert headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["database"] == "unreachable"
    assert doc["alert"]["reasons"] == [{"code": "database-unreachable", "level": "critical",
                                        "message": "cannot connect to the database"}]
    assert doc["pending"] is None
    text = body.decode()
    for leak in ("s3cret", "nonexistent-gr-socket-dir", "Traceback", "postgresql://"):
        assert leak not in text
    # the operator still gets the (redacted) cause in the server log
    assert any("nonexistent-gr-socket-dir" in line and "s3cret" not in line
               for line in live.app.logs)


def test_lookback_rejects_nonsense(applied: Settings, serve: Any) -> None:
    live = serve(applied)
    for q in ("0", "10081", "-5", "abc", "1.5", "", "1e3", "%D9%A3", "99999999999999999999", "%00"):
        status, doc = live.api(f"?lookbackMinutes={q}")
        assert status == 400, q
        assert doc["error"] == "bad-request"
    assert live.api("?lookbackMinutes=1&lookbackMinutes=2")[0] == 400
    assert live.api("?lookbackMinutes=10080")[0] == 200
    assert live.api("?lookbackMinutes=1")[1]["lookbackMinutes"] == 1


def test_methods_and_head(applied: Settings, serve: Any) -> None:
    live = serve(applied)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, headers, _ = live.get("/api/ops/migrations", auth, method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    status, headers, body = live.get("/api/ops/migrations", auth, method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
    assert headers["Cache-Control"] == "no-store"


def test_dashboard_route_accepts_bearer_and_basic(applied: Settings, serve: Any) -> None:
    live = serve(applied)
    status, headers, _ = live.get("/ops/migrations")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    basic = base64.b64encode(f"ops:{TOKEN}".encode()).decode()
    for auth in (f"Bearer {TOKEN}", f"Basic {basic}"):
        status, headers, body = live.get("/ops/migrations", {"Authorization": auth})
        assert status == 200
        assert headers["Content-Type"].startswith("text/html")
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert b"0002_index.sql" in body
    wrong = base64.b64encode(b"ops:nope").decode()
    assert live.get("/ops/migrations", {"Authorization": f"Basic {wrong}"})[0] == 401
    assert live.get(f"/ops/migrations?token={TOKEN}")[0] == 401  # never from the query


def test_asgi_adapter_gives_the_same_answers(applied: Settings) -> None:
    app = as_asgi(OpsApp(applied, TOKEN))

    async def call(headers: list[tuple[bytes, bytes]], query: bytes = b"") -> tuple[int, Any]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(msg: dict[str, Any]) -> None:
            sent.append(msg)

        scope = {"type": "http", "method": "GET", "path": "/api/ops/migrations",
                 "query_string": query, "headers": headers, "http_version": "1.1"}
        await app(scope, receive, send)
        return sent[0]["status"], json.loads(sent[1]["body"])

    assert asyncio.run(call([]))[0] == 401
    status, doc = asyncio.run(call([(b"authorization", f"Bearer {TOKEN}".encode())]))
    assert status == 200 and doc["alert"]["level"] == "ok"
    status, doc = asyncio.run(call([(b"authorization", f"Bearer {TOKEN}".encode())], b"lookbackMinutes=0"))
    assert status == 400


def test_parse_lookback_unit() -> None:
    assert parse_lookback("") == 120
    assert parse_lookback("other=1", default=7) == 7
    assert parse_lookback("lookbackMinutes=%2030%20") == 30


_text = st.text(st.characters(codec="latin-1"), max_size=40)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.one_of(_text, st.lists(st.tuples(
           st.sampled_from(["lookbackMinutes", "x", "", "lookbackminutes"]), _text),
           max_size=4).map(lambda kv: "&".join(f"{k}={v}" for k, v in kv))),
       auth=st.one_of(st.none(), _text, _text.map(lambda t: "Bearer " + t),
                      st.just("Bearer " + TOKEN), _text.map(lambda t: "Basic " + t)),
       path=st.sampled_from(["/api/ops/migrations", "/ops/migrations", "/healthz", "/x"]),
       method=st.sampled_from(["GET", "HEAD", "POST", "DELETE", "OPTIONS"]))
def test_fuzz_no_5xx_but_the_documented_503(applied: Settings, query: str, auth: str | None,
                                            path: str, method: str) -> None:
    # The WSGI app is called in-process (the same code the live server runs) so that a
    # hundred examples stay fast; every answer must be a well-formed, non-leaking response.
    app = _fuzz_app(applied)
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path,
                               "QUERY_STRING": query}
    if auth is not None:
        environ["HTTP_AUTHORIZATION"] = auth
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        got["status"] = int(status.split()[0])
        got["headers"] = dict(headers)

    body = b"".join(app(environ, start_response))
    assert got["status"] in (200, 400, 401, 404, 405), (got, body[:200])
    assert b"Traceback" not in body
    if method != "HEAD" and got["headers"]["Content-Type"] == "application/json":
        json.loads(body)


_APPS: dict[str, OpsApp] = {}


def _fuzz_app(s: Settings) -> OpsApp:
    key = str(s.database_url)
    if key not in _APPS:
        _APPS.clear()
        _APPS[key] = OpsApp(s, TOKEN)
    return _APPS[key]


def test_fuzz_headers_against_the_live_server(applied: Settings, serve: Any) -> None:
    """A few raw requests the stdlib client would refuse to build, through a real socket."""
    import socket

    live = serve(applied)
    host, port = live.base.removeprefix("http://").split(":")
    requests = [
        b"GET /api/ops/migrations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n",
        b"GET /api/ops/migrations?lookbackMinutes=%ff HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n",
        b"GET /ops/migrations HTTP/1.1\r\nHost: x\r\nAuthorization: Basic !!!!\r\n\r\n",
        b"GET /api/ops/migrations HTTP/1.1\r\nHost: x\r\nAuthorization: " + b"A" * 60000
        + b"\r\n\r\n",
    ]
    for raw in requests:
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(raw)
            head = sock.recv(65536).split(b"\r\n", 1)[0]
        code = int(head.split()[1])
        assert code in (400, 401), (raw[:80], head)


def test_embedded_default_failing_to_start_is_a_503(mig_dir: Path, tmp_path: Path,
                                                    serve: Any) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    s = Settings(dir=mig_dir, database_url=None, embedded_dir=blocker / "pgdata",
                 artifact_dir=None)
    status, doc = serve(s).api()
    assert status == 503 and doc["database"] == "unreachable"
