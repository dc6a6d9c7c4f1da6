"""Prisma Migrate's ``_prisma_migrations``: one row per attempt of a migration directory.

Verified in prisma/prisma-engines (``schema-engine`` postgres flavour and ``checksum.rs``)
and in the tables Prisma created in public database dumps: ``id VARCHAR(36) PRIMARY KEY NOT
NULL, checksum VARCHAR(64) NOT NULL, finished_at TIMESTAMPTZ, migration_name VARCHAR(255) NOT
NULL, logs TEXT, rolled_back_at TIMESTAMPTZ, started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
applied_steps_count INTEGER NOT NULL DEFAULT 0``. ``checksum`` = sha256 hex of
``migration.sql`` (Prisma also accepts the file with its line endings flipped). Applied: a
row with ``finished_at`` set and ``rolled_back_at`` null. ``finished_at`` null and not rolled
back is a FAILED migration (P3009): Prisma refuses to deploy until ``migrate resolve``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from psycopg import sql

from .base import ToolHistory, ToolProblem, ToolState, missing_file


def checksums(raw: bytes) -> set[str]:
    """The checksums Prisma accepts for one file: as is, LF and CRLF line endings."""
    lf = raw.replace(b"\r\n", b"\n")
    return {hashlib.sha256(v).hexdigest() for v in (raw, lf, lf.replace(b"\n", b"\r\n"))}


class PrismaHistory(ToolHistory):
    tool = "prisma"
    default_table = "_prisma_migrations"
    columns = frozenset({"id", "checksum", "finished_at", "migration_name", "rolled_back_at"})
    source = "prisma/prisma-engines: schema-engine sql-schema-connector (postgres), checksum.rs"

    def read(self, conn: Any, files: list[Any]) -> ToolState:
        rows = conn.execute(sql.SQL(
            "SELECT id, checksum, finished_at IS NOT NULL, rolled_back_at IS NOT NULL,"
            " migration_name FROM {} ORDER BY started_at, id").format(self.ident)).fetchall()
        st = ToolState(self.tool, self.qualified, exists=True, rows=len(rows))
        by_key = {f.tool_key: f for f in files}
        applied: set[str] = set()
        for rid, crc, finished, rolled_back, name in rows:
            desc = f"migration_name={name} id={rid}"
            if rolled_back:
                continue
            f = by_key.get(name)
            if not finished:
                st.problems.append(ToolProblem(
                    "failed-migration",
                    f"Prisma recorded {name} as FAILED (finished_at is null, not rolled back): "
                    "it may be half-applied",
                    hint=f"fix the schema by hand, then `prisma migrate resolve --rolled-back "
                         f"{name}` (or --applied {name}) and adopt again",
                    file=f.name if f else None, row=desc))
                continue
            if f is None:
                st.problems.append(missing_file(self.tool, desc, str(name)))
                continue
            if str(crc) not in checksums(f.raw):
                st.problems.append(ToolProblem(
                    "checksum-mismatch",
                    f"{f.name} differs from what Prisma applied (checksum {str(crc)[:12]}, file "
                    f"now {hashlib.sha256(f.raw).hexdigest()[:12]})",
                    hint="restore the applied text from version control; a fix is a new "
                         "migration", file=f.name, row=desc))
                continue
            applied.add(f.name)
        st.applied = [f for f in files if f.name in applied]
        return st

    def create(self) -> list[sql.Composed]:
        return [sql.SQL("""CREATE TABLE IF NOT EXISTS {} (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)""").format(self.ident)]

    def record(self, mf: Any) -> list[sql.Composed]:
        return [sql.SQL(
            "INSERT INTO {} (id, checksum, finished_at, migration_name, started_at,"
            " applied_steps_count) VALUES (gen_random_uuid()::text, {}, now(), {}, now(), 1)"
        ).format(self.ident, sql.Literal(hashlib.sha256(mf.raw).hexdigest()),
                 sql.Literal(mf.tool_key))]
