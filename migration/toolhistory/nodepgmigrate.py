"""node-pg-migrate's ``pgmigrations``: one row per applied migration name.

Verified in node-pg-migrate 9.0.0 (``dist/bundle/index.js``, from ``src/runner.ts``, the
release pinned in tests/realtools): ``CREATE TABLE "<schema>"."pgmigrations" (id SERIAL PRIMARY
KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL)``; a migration writes ``INSERT INTO
... (name, run_on) VALUES ('<name>', NOW())`` where name is the file name without its
extension; ``checkOrder`` (on by default) refuses unless the i-th row (ordered by run_on, id)
is the i-th file. No checksum.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from .base import ToolHistory, ToolState, missing_file


class NodePgMigrateHistory(ToolHistory):
    tool = "node-pg-migrate"
    default_table = "pgmigrations"
    columns = frozenset({"id", "name", "run_on"})
    source = "salsita/node-pg-migrate: src/runner.ts (9.0.0 dist/bundle/index.js)"

    def read(self, conn: Any, files: list[Any]) -> ToolState:
        rows = [str(r[0]) for r in conn.execute(
            sql.SQL("SELECT name FROM {} ORDER BY run_on, id").format(self.ident)).fetchall()]
        st = ToolState(self.tool, self.qualified, exists=True, rows=len(rows))
        by_key = {f.tool_key: f for f in files}
        done = set(rows)
        st.applied = [f for f in files if f.tool_key in done]
        st.problems = [missing_file(self.tool, f"name={n}", n) for n in rows if n not in by_key]
        return st

    def create(self) -> list[sql.Composed]:
        return [sql.SQL("CREATE TABLE IF NOT EXISTS {} (id SERIAL PRIMARY KEY, name varchar(255)"
                        " NOT NULL, run_on timestamp NOT NULL)").format(self.ident)]

    def record(self, mf: Any) -> list[sql.Composed]:
        return [sql.SQL("INSERT INTO {} (name, run_on) VALUES ({}, NOW())").format(
            self.ident, sql.Literal(mf.tool_key))]
