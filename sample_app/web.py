"""The sample application's WSGI app: routes, JSON answers, and its one database read.

One short-lived connection per request that needs the database (the sample favours obviously
correct over fast); errors answer 503 with the SQLSTATE and never the URL, which may hold a
password.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import psycopg

__all__ = ["SampleApp", "openapi_document"]

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
DOCUMENTS_LIMIT = 100
OPS_PREFIXES = ("/api/ops/", "/ops/")


def openapi_document(version: str) -> dict[str, Any]:
    """The API's OpenAPI 3.1 description; ``info.version`` is the release SHA."""
    ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    down = {"description": "The database is unreachable or its schema is not migrated"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "gated-release sample app", "version": version},
        "paths": {
            "/healthz": {"get": {"summary": "Liveness; reports the release SHA",
                                 "responses": {"200": ok}}},
            "/readyz": {"get": {"summary": "Readiness: the database answers",
                                "responses": {"200": ok, "503": down}}},
            "/api/ops/migrations": {"get": {
                "summary": "The runner's migration status (Bearer OPS_MIGRATION_TOKEN)",
                "responses": {"200": ok, "503": {"description": "Critical"}}}},
            "/api/documents": {"get": {
                "summary": f"The newest documents (at most {DOCUMENTS_LIMIT}), from the table "
                           "the migrations create",
                "responses": {"200": ok, "503": down}}},
        },
    }


class SampleApp:
    """WSGI callable: ``SampleApp(release_sha, database_url)``."""

    def __init__(self, release_sha: str, database_url: str | None) -> None:
        self.release_sha = release_sha
        self.database_url = database_url

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path.startswith(OPS_PREFIXES):
            # the runner's ops endpoint and dashboard, token-protected (OPS_MIGRATION_TOKEN)
            from migration.web import application as ops

            return ops(environ, start_response)
        routes: dict[str, Callable[[], tuple[int, dict[str, Any]]]] = {
            "/healthz": self.health,
            "/readyz": self.ready,
            "/openapi.json": lambda: (200, openapi_document(self.release_sha)),
            "/api/documents": self.documents,
        }
        if path not in routes:
            status, body = 404, {"error": "not-found", "path": path[:200]}
        elif environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            status, body = 405, {"error": "method-not-allowed"}
        else:
            status, body = routes[path]()
        data = json.dumps(body).encode()
        start_response(f"{status} {_REASONS[status]}", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store")])
        return [data]

    def health(self) -> tuple[int, dict[str, Any]]:
        return 200, {"status": "ok", "releaseSha": self.release_sha}

    def _query(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if not self.database_url:
            raise psycopg.OperationalError("DATABASE_URL is not set")
        with psycopg.connect(self.database_url, connect_timeout=5,
                             application_name="sample-app") as conn:
            return conn.execute(query, params).fetchall()

    @staticmethod
    def _unavailable(exc: psycopg.Error) -> tuple[int, dict[str, Any]]:
        # The message of a connection error can echo the host but not the password; the
        # SQLSTATE says which it was (42P01: the table is missing, the schema is not migrated).
        return 503, {"error": "database-unavailable", "sqlstate": exc.sqlstate,
                     "detail": str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}

    def ready(self) -> tuple[int, dict[str, Any]]:
        try:
            self._query("SELECT 1")
        except psycopg.Error as exc:
            return self._unavailable(exc)
        return 200, {"status": "ready", "releaseSha": self.release_sha}

    def documents(self) -> tuple[int, dict[str, Any]]:
        try:
            rows = self._query(
                "SELECT id, title, status::text FROM documents ORDER BY id DESC LIMIT %s",
                (DOCUMENTS_LIMIT,))
        except psycopg.Error as exc:
            return self._unavailable(exc)
        return 200, {"documents": [{"id": r[0], "title": r[1], "status": r[2]} for r in rows],
                     "count": len(rows)}
