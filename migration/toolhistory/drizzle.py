"""Drizzle's ``drizzle.__drizzle_migrations``: a hash per applied file and a high-water mark.

Verified in drizzle-orm 0.45.4 (``pg-core/dialect.js`` and ``migrator.js``, the release pinned
in tests/realtools; source ``drizzle-orm/src/pg-core/dialect.ts``, ``src/migrator.ts``):
``CREATE SCHEMA IF NOT EXISTS "drizzle"``, ``CREATE TABLE IF NOT EXISTS "drizzle".
"__drizzle_migrations" (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)``;
``hash`` = sha256 hex of the file's text as read, ``created_at`` = the journal entry's
``when``. Drizzle runs every journal entry whose ``when`` is above ``max(created_at)`` and
never re-checks hashes, so an entry below the mark without its own row was silently
skipped (drizzle-orm #5769): adoption reports it as a gap instead of calling it applied.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from psycopg import sql

from .base import ToolHistory, ToolProblem, ToolState, missing_file


def file_hash(raw: bytes) -> str:
    # Node reads the file as a UTF-8 string and hashes it as UTF-8: for valid UTF-8 (the
    # only text Drizzle Kit writes) that is the file's own bytes, BOM included.
    return hashlib.sha256(raw).hexdigest()


class DrizzleHistory(ToolHistory):
    tool = "drizzle"
    default_schema = "drizzle"
    default_table = "__drizzle_migrations"
    columns = frozenset({"id", "hash", "created_at"})
    source = "drizzle-team/drizzle-orm: drizzle-orm/src/pg-core/dialect.ts, src/migrator.ts"

    def journal_when(self) -> dict[str, int]:
        """tag -> when, from ``meta/_journal.json``."""
        path = self.directory / "meta" / "_journal.json"
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))["entries"]
            return {str(e["tag"]): int(e["when"]) for e in entries}
        except (OSError, ValueError, KeyError, TypeError) as e:
            from ..errors import ConfigError

            raise ConfigError(f"cannot read Drizzle's journal {path}: {e}",
                              hint="the directory must be Drizzle Kit's `out` folder") from None

    def read(self, conn: Any, files: list[Any]) -> ToolState:
        rows = conn.execute(sql.SQL("SELECT id, hash, created_at FROM {} ORDER BY id")
                            .format(self.ident)).fetchall()
        st = ToolState(self.tool, self.qualified, exists=True, rows=len(rows))
        if not rows:
            return st
        when = self.journal_when()
        marks = [int(r[2]) for r in rows if r[2] is not None]
        mark = max(marks, default=None)
        by_when: dict[int, Any] = {}
        for f in files:
            if f.tool_key in when:
                by_when[when[f.tool_key]] = f
        recorded = set(marks)
        row_hash: dict[int, set[str]] = {}
        for _, h, created in rows:
            if created is not None:
                row_hash.setdefault(int(created), set()).add(str(h))
        # A row whose created_at is no journal `when` (written by hand, or by a Drizzle that
        # stamped another time) can still name its file by hash.
        hashes = {str(r[1]) for r in rows if r[2] is None or int(r[2]) not in by_when}
        applied: list[Any] = []
        gaps: list[Any] = []
        for f in files:
            w = when.get(f.tool_key)
            if w is None or mark is None or w > mark:
                continue
            if w in recorded or file_hash(f.raw) in hashes:
                applied.append(f)
                if w in recorded and file_hash(f.raw) not in row_hash.get(w, set()):
                    st.warnings.append(f"{f.name} changed since Drizzle applied it (its hash "
                                       "differs; Drizzle never re-checks it)")
            else:
                gaps.append(f)
        for rid, h, created in rows:
            if (created is None or int(created) not in by_when) and not any(
                    file_hash(f.raw) == h for f in applied):
                st.problems.append(missing_file(
                    self.tool, f"id={rid} created_at={created} hash={str(h)[:12]}",
                    f"created_at={created}"))
        for f in gaps:
            st.problems.append(ToolProblem(
                "out-of-order",
                f"journal entry {f.tool_key} is older than Drizzle's high-water mark {mark} but "
                "has no row: Drizzle skipped it and it was probably never applied",
                hint="check the schema: pass --allow-gaps to leave it pending (the runner then "
                     "applies it with --no-check-order), or baseline it if it is in the schema",
                file=f.name))
        st.applied, st.gaps = applied, gaps
        return st

    def create(self) -> list[sql.Composed]:
        return [
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)),
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (id SERIAL PRIMARY KEY, hash text NOT NULL,"
                    " created_at bigint)").format(self.ident),
        ]

    def record(self, mf: Any) -> list[sql.Composed]:
        return [sql.SQL("INSERT INTO {} (hash, created_at) VALUES ({}, {})").format(
            self.ident, sql.Literal(file_hash(mf.raw)),
            sql.Literal(self.journal_when()[mf.tool_key]))]
