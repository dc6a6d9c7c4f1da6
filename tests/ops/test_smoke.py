"""`python -m infra.tools.smoke` against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from infra.tools import smoke

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "api-smoke.schema.json").read_text())
GOOD_OPENAPI = {"openapi": "3.1.0", "info": {"title": "api", "version": "abc123"}, "paths": {}}


def _validate(doc: dict[str, Any]) -> dict[str, Any]:
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(doc)
    return doc


def _handler(routes: dict[str, tuple[int, str, bytes]]) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, ctype, body = routes.get(self.path, (404, "text/plain", b"no"))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return H


def _ok_routes(openapi: bytes | None = None) -> dict[str, tuple[int, str, bytes]]:
    return {"/healthz": (200, "application/json", b'{"status":"ok"}'),
            "/openapi.json": (200, "application/json; charset=utf-8",
                              openapi if openapi is not None else
                              json.dumps(GOOD_OPENAPI).encode())}


class Servers:
    def __init__(self) -> None:
        self.started: list[ThreadingHTTPServer] = []

    def start(self, routes: dict[str, tuple[int, str, bytes]], port: int = 0) -> str:
        srv = ThreadingHTTPServer(("127.0.0.1", port), _handler(routes))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.started.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"


@pytest.fixture
def servers() -> Iterator[Servers]:
    s = Servers()
    yield s
    for srv in s.started:
        srv.shutdown()
        srv.server_close()


def _run(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    code = smoke.main(["--release-sha", "abc123", "--artifact-dir", str(tmp_path), *args], env={})
    doc = json.loads((tmp_path / "abc123" / "api-smoke.json").read_text())
    return code, _validate(doc)


def test_success_writes_a_valid_artifact(servers: Servers, tmp_path: Path) -> None:
    base = servers.start(_ok_routes())
    code, doc = _run(tmp_path, "--base-url", base, "--expect-version", "abc123")
    assert code == smoke.EXIT_OK
    assert doc["ok"] is True and doc["reasonCode"] is None and doc["reason"] is None
    assert [a["id"] for a in doc["assertions"]] == list(smoke.ASSERTION_IDS)
    assert all(a["passed"] for a in doc["assertions"])
    assert len(doc["timeline"]) == 1
    assert doc["health"]["status"] == 200 and doc["health"]["snippet"] == '{"status":"ok"}'


def test_server_that_comes_up_late(tmp_path: Path, servers: Servers) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    threading.Timer(1.0, lambda: servers.start(_ok_routes(), port)).start()
    code, doc = _run(tmp_path, "--base-url", f"http://127.0.0.1:{port}", "--attempts", "20",
                     "--interval", "0.25", "--deadline", "15")
    assert code == smoke.EXIT_OK
    tl = doc["timeline"]
    assert len(tl) >= 3 and tl[-1]["passed"] is True
    assert tl[0]["passed"] is False and tl[0]["healthStatus"] is None
    assert "Connection refused" in (tl[0]["error"] or "")
    assert [t["attempt"] for t in tl] == list(range(1, len(tl) + 1))


def test_server_error_500(servers: Servers, tmp_path: Path) -> None:
    routes = _ok_routes()
    routes["/healthz"] = (500, "text/html", b"<h1>boom</h1>" + b"x" * 5000)
    code, doc = _run(tmp_path, "--base-url", servers.start(routes), "--attempts", "3",
                     "--interval", "0.1")
    assert code == smoke.EXIT_HEALTH
    assert doc["reasonCode"] == "health-failed" and doc["stoppedBy"] == "attempts"
    failed = {a["id"]: a for a in doc["assertions"] if not a["passed"]}
    assert set(failed) == {"health-status", "health-content-type"}
    assert failed["health-status"]["actual"] == "500"
    assert "health-status" in doc["reason"]
    assert len(doc["timeline"]) == 3
    assert len(doc["health"]["snippet"]) == smoke.SNIPPET_MAX
    assert doc["health"]["snippetTruncated"] is True


@pytest.mark.parametrize(("body", "ctype", "failing"), [
    (b"{not json", "application/json", {"openapi-parses", "openapi-version"}),
    (b"[1, 2]", "application/json", {"openapi-parses", "openapi-version"}),
    (json.dumps({"openapi": "3.0.0", "info": {}}).encode(), "application/json",
     {"openapi-version"}),
    (json.dumps(GOOD_OPENAPI).encode(), "text/html", {"openapi-content-type"}),
])
def test_invalid_openapi(servers: Servers, tmp_path: Path, body: bytes, ctype: str,
                         failing: set[str]) -> None:
    routes = _ok_routes()
    routes["/openapi.json"] = (200, ctype, body)
    code, doc = _run(tmp_path, "--base-url", servers.start(routes), "--attempts", "1")
    assert code == smoke.EXIT_OPENAPI
    assert doc["reasonCode"] == "openapi-failed"
    assert {a["id"] for a in doc["assertions"] if not a["passed"]} == failing
    for a in doc["assertions"]:
        assert (a["detail"] is None) == a["passed"]


def test_old_revision_fails_expected_version(servers: Servers, tmp_path: Path) -> None:
    code, doc = _run(tmp_path, "--base-url", servers.start(_ok_routes()), "--attempts", "2",
                     "--interval", "0", "--expect-version", "def456")
    assert code == smoke.EXIT_OPENAPI
    [bad] = [a for a in doc["assertions"] if not a["passed"]]
    assert bad["id"] == "openapi-version" and "abc123" in bad["actual"]


def test_never_answers_deadline_is_honoured(tmp_path: Path) -> None:
    # Listening without ever accepting: connections complete (backlog) but nothing answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        t0 = time.monotonic()
        code, doc = _run(tmp_path, "--base-url", f"http://127.0.0.1:{port}", "--deadline", "2",
                         "--request-timeout", "30", "--attempts", "10", "--interval", "0.5")
        elapsed = time.monotonic() - t0
    assert code == smoke.EXIT_UNREACHABLE
    assert 1.8 <= elapsed <= 3.5, elapsed
    assert doc["reasonCode"] == "unreachable" and doc["stoppedBy"] == "deadline"
    assert doc["health"]["status"] is None and "timed out" in doc["health"]["error"]
    assert doc["elapsedMs"] <= 3500


def test_cli_env_twins_json_and_usage(servers: Servers, tmp_path: Path) -> None:
    base = servers.start(_ok_routes())
    env = {"PATH": "/usr/bin:/bin", "SMOKE_BASE_URL": base + "/", "SMOKE_RELEASE_SHA": "sha-9",
           "SMOKE_ARTIFACT_DIR": str(tmp_path), "SMOKE_JSON": "1"}
    proc = subprocess.run([sys.executable, "-m", "infra.tools.smoke"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = _validate(json.loads(proc.stdout))
    assert doc["releaseSha"] == "sha-9"
    assert (tmp_path / "sha-9" / "api-smoke.json").exists()
    assert smoke.main(["--base-url", "nope", "--release-sha", "x"], env={}) == smoke.EXIT_USAGE
    assert smoke.main(["--base-url", base, "--release-sha", "../etc"], env={}) \
        == smoke.EXIT_USAGE
    assert smoke.main(["--base-url", base, "--release-sha", "x", "--attempts", "0"], env={}) \
        == smoke.EXIT_USAGE


def test_credentials_or_query_in_base_url_are_refused(servers: Servers, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    base = servers.start(_ok_routes())
    for bad in (base.replace("http://", "http://user:pa55@"), base + "/?k=s3cret",
                base + "#frag"):
        assert smoke.main(["--base-url", bad, "--release-sha", "x",
                           "--artifact-dir", str(tmp_path)], env={}) == smoke.EXIT_USAGE
        err = capsys.readouterr().err
        assert "pa55" not in err and "s3cret" not in err
    assert not (tmp_path / "x").exists()


def test_schema_is_a_valid_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    bad = {"schemaVersion": 1}
    with pytest.raises(jsonschema.ValidationError):
        _validate(bad)


def test_data_endpoint_proves_the_migrated_schema(servers: Servers, tmp_path: Path) -> None:
    routes = _ok_routes()
    routes["/api/documents"] = (200, "application/json", b'{"documents": [], "count": 0}')
    code, doc = _run(tmp_path, "--base-url", servers.start(routes), "--data-path",
                     "/api/documents")
    assert code == smoke.EXIT_OK
    assert [a["id"] for a in doc["assertions"]] == [*smoke.ASSERTION_IDS,
                                                    *smoke.DATA_ASSERTION_IDS]
    assert doc["dataPath"] == "/api/documents" and doc["data"]["status"] == 200


def test_a_data_endpoint_that_cannot_read_its_table_fails(servers: Servers,
                                                           tmp_path: Path) -> None:
    routes = _ok_routes()
    # what the sample app answers before its table exists (SQLSTATE 42P01)
    routes["/api/documents"] = (503, "application/json", b'{"sqlstate": "42P01"}')
    code, doc = _run(tmp_path, "--base-url", servers.start(routes), "--data-path",
                     "/api/documents", "--attempts", "2", "--interval", "0.1")
    assert code == smoke.EXIT_DATA
    assert doc["reasonCode"] == "data-failed"
    assert [a["id"] for a in doc["assertions"] if not a["passed"]] == ["data-status"]
