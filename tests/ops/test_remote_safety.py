"""`alerts --url` never sends the token where it should not go."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from migration.cli import main

seen: list[tuple[str, str | None]] = []


class Redirecting(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        seen.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/api/"):
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/elsewhere")
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def redirect_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_a_redirect_is_not_followed(redirect_url: str, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DEPLOY_OPS_TOKEN", "tok-123456789")
    seen.clear()
    assert main(["alerts", "--strict", "--url", redirect_url]) == 2
    assert [p for p, _ in seen] == ["/api/ops/migrations?lookbackMinutes=120"]
    assert "redirected (302)" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["http://ops.example.com", "https://u:p@ops.example.com"])
def test_plain_http_or_credentials_in_the_url_are_refused(
        url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DEPLOY_OPS_TOKEN", "tok-123456789")
    assert main(["alerts", "--url", url]) == 2
    err = capsys.readouterr().err
    assert "plain http" in err or "must not carry credentials" in err
