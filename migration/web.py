"""The ops HTTP endpoint: a WSGI app (and an ASGI adapter), served by the standard library.

Routes::

    GET /api/ops/migrations[?lookbackMinutes=N]   status JSON; 503 when critical, else 200
    GET /ops/migrations[?lookbackMinutes=N]       the HTML dashboard (same rules)
    GET /healthz                                  liveness of this process only: 200 "ok"

Authentication: ``Authorization: Bearer <OPS_MIGRATION_TOKEN>``, compared in constant time.
The dashboard also accepts HTTP Basic with the token as the password, so a browser can open
it (it prompts); a token in the query string is never accepted (it would land in access
logs, browser history and Referer headers). No token configured: both routes answer 404,
exactly like an unknown path. Error bodies are one short JSON object, never a traceback, a
database URL or the server's own error text.

Mount it in any WSGI server (``migration.web:application`` reads the environment on the
first request) or ASGI server (``migration.web:asgi_application``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from . import dashboard
from .settings import Settings, resolve
from .status import (
    LOOKBACK_BOUNDS,
    LOOKBACK_DEFAULT,
    RECENT_RUNS_DEFAULT,
    Status,
    read_status,
    unreachable,
)

TOKEN_ENV = "OPS_MIGRATION_TOKEN"
API_PATH = "/api/ops/migrations"
DASHBOARD_PATH = "/ops/migrations"
HEALTH_PATH = "/healthz"
REALM = "migration-ops"

StartResponse = Callable[..., Any]
Environ = dict[str, Any]
Reader = Callable[[Settings, int], Status]

_SECURITY_HEADERS = [
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
]
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 500: "Internal Server Error",
            503: "Service Unavailable"}


class BadRequest(Exception):
    pass


def parse_lookback(query: str, default: int = LOOKBACK_DEFAULT) -> int:
    """``lookbackMinutes`` from a query string: a whole number within LOOKBACK_BOUNDS."""
    try:
        values = parse_qs(query, keep_blank_values=True, strict_parsing=False,
                          max_num_fields=50).get("lookbackMinutes")
    except ValueError:
        raise BadRequest("too many query parameters") from None
    if values is None:
        return default
    lo, hi = LOOKBACK_BOUNDS
    problem = f"lookbackMinutes must be one whole number of minutes within {lo}..{hi}"
    if len(values) != 1:
        raise BadRequest(problem)
    raw = values[0].strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        raise BadRequest(problem)
    n = int(raw)
    if not lo <= n <= hi:
        raise BadRequest(problem)
    return n


def _presented_token(environ: Environ, *, allow_basic: bool) -> bytes | None:
    header = environ.get("HTTP_AUTHORIZATION")
    if not isinstance(header, str):
        return None
    # WSGI hands headers over as latin-1 decoded text; recover the bytes that were sent.
    try:
        raw = header.encode("latin-1")
    except UnicodeEncodeError:
        return None
    scheme, _, value = raw.strip().partition(b" ")
    value = value.strip()
    if scheme.lower() == b"bearer" and value:
        return value
    if allow_basic and scheme.lower() == b"basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        _, sep, password = decoded.partition(b":")
        return password if sep else None
    return None


class OpsApp:
    """The WSGI application. ``token=None`` switches the ops routes off (404)."""

    def __init__(
        self,
        settings: Settings,
        token: str | None,
        *,
        default_lookback: int = LOOKBACK_DEFAULT,
        recent_runs: int = RECENT_RUNS_DEFAULT,
        reader: Reader | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self._token = token.encode("utf-8") if token else None
        self.default_lookback = default_lookback
        self.recent_runs = recent_runs
        self._reader = reader or self._read
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._url: str | None = None
        self._url_lock = threading.Lock()

    # -- plumbing --------------------------------------------------------------------
    def _read(self, settings: Settings, lookback: int) -> Status:
        try:
            url = self._database_url()
        except Exception as e:
            return unreachable(settings, lookback, f"embedded PostgreSQL: {e}"[:300])
        return read_status(settings, lookback_minutes=lookback, recent=self.recent_runs, url=url)

    def _database_url(self) -> str | None:
        if self.settings.database_url:
            return self.settings.database_url
        # The embedded default is started once, not per request.
        with self._url_lock:
            if self._url is None:
                from .connection import embedded_url

                self._url = embedded_url(self.settings.embedded_dir)
            return self._url

    def _authorized(self, environ: Environ, *, allow_basic: bool) -> bool:
        assert self._token is not None
        given = _presented_token(environ, allow_basic=allow_basic)
        # compare_digest on bytes of any length; its time does not depend on where they differ.
        return hmac.compare_digest(given or b"", self._token) and given is not None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            status, headers, body = self.handle(environ)
        except Exception as e:  # the last line of defence: never a traceback on the wire
            self._log(f"ops: internal error {type(e).__name__}")
            status, headers, body = _json(500, {"error": "internal",
                                                "message": "internal error; see the server log"})
        head = environ.get("REQUEST_METHOD") == "HEAD"
        start_response(f"{status} {_REASONS.get(status, 'Error')}",
                       [*headers, ("Content-Length", str(len(body))), *_SECURITY_HEADERS])
        return [] if head else [body]

    def handle(self, environ: Environ) -> tuple[int, list[tuple[str, str]], bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD") or "GET"
        if path == HEALTH_PATH:
            if method not in ("GET", "HEAD"):
                return _json(405, {"error": "method-not-allowed"}, [("Allow", "GET, HEAD")])
            return 200, [("Content-Type", "text/plain; charset=utf-8")], b"ok\n"
        if path not in (API_PATH, DASHBOARD_PATH) or self._token is None:
            return _json(404, {"error": "not-found"})
        html = path == DASHBOARD_PATH
        if not self._authorized(environ, allow_basic=html):
            challenge = (f'Basic realm="{REALM}", charset="UTF-8"' if html
                         else f'Bearer realm="{REALM}"')
            return _json(401, {"error": "unauthorized",
                               "message": "send Authorization: Bearer <token>"},
                         [("WWW-Authenticate", challenge)])
        if method not in ("GET", "HEAD"):
            return _json(405, {"error": "method-not-allowed"}, [("Allow", "GET, HEAD")])
        try:
            lookback = parse_lookback(environ.get("QUERY_STRING") or "", self.default_lookback)
        except BadRequest as e:
            return _json(400, {"error": "bad-request", "message": str(e)})
        st = self._reader(self.settings, lookback)
        if st.diagnostic:
            self._log(f"ops: {st.database} database: {st.diagnostic}")
        code = 503 if st.alert.critical else 200
        doc = st.to_json()
        if html:
            page = dashboard.render(doc).encode("utf-8")
            return code, [("Content-Type", "text/html; charset=utf-8"),
                          ("Content-Security-Policy", dashboard.CSP)], page
        return _json(code, doc)


def _json(status: int, doc: Mapping[str, Any],
          extra: list[tuple[str, str]] | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    body = (json.dumps(doc, indent=2) + "\n").encode("utf-8")
    return status, [("Content-Type", "application/json"), *(extra or [])], body


def app_from_env(env: Mapping[str, str] | None = None) -> OpsApp:
    """The app configured from the environment alone (the runner's env twins)."""
    env = os.environ if env is None else env
    return OpsApp(resolve({}, env), env.get(TOKEN_ENV) or None)


class _LazyApp:
    def __init__(self) -> None:
        self._app: OpsApp | None = None
        self._lock = threading.Lock()

    def get(self) -> OpsApp:
        with self._lock:
            if self._app is None:
                self._app = app_from_env()
            return self._app

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return self.get()(environ, start_response)


application = _LazyApp()
"""Module-level WSGI callable for `gunicorn migration.web:application` and friends."""


# -- ASGI ---------------------------------------------------------------------------------

ASGIReceive = Callable[[], Awaitable[dict[str, Any]]]
ASGISend = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], ASGIReceive, ASGISend], Awaitable[None]]


def as_asgi(wsgi: Callable[[Environ, StartResponse], Iterable[bytes]]) -> ASGIApp:
    """Adapt the WSGI app for an ASGI server; the blocking call runs in a worker thread.

    Only what this app needs: HTTP requests without bodies (bodies are drained, ignored).
    """

    async def app(scope: dict[str, Any], receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        environ: Environ = {
            "REQUEST_METHOD": scope.get("method", "GET"),
            "PATH_INFO": scope.get("path", "/"),
            "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
            "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
            "wsgi.url_scheme": scope.get("scheme", "http"),
        }
        for name, value in scope.get("headers", []):
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
            environ[key] = value.decode("latin-1")
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> None:
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                                   for k, v in headers]

        body = await asyncio.to_thread(lambda: b"".join(wsgi(environ, start_response)))
        await send({"type": "http.response.start", "status": captured["status"],
                    "headers": captured["headers"]})
        await send({"type": "http.response.body", "body": body})

    return app


asgi_application = as_asgi(application)


# -- the standalone server ----------------------------------------------------------------

class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        # One line per request, no headers; control characters from the request line are
        # escaped so a client cannot forge log lines or terminal sequences.
        line = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in format % args)
        sys.stderr.write(f"ops: {self.address_string()} {line[:500]}\n")


def make_ops_server(app: OpsApp, host: str, port: int) -> WSGIServer:
    return make_server(host, port, app, server_class=_Server, handler_class=_Handler)
