"""dbmate's ``schema_migrations``: one row per applied version (the file's leading digits).

Verified in amacneil/dbmate ``pkg/driver/postgres/postgres.go`` and against dbmate 2.37.0 (the
PyPI release the tests run): ``create table if not exists <schema>.schema_migrations (version
varchar primary key)`` (an older copy of the source wrote ``varchar(255)``), ``insert into ...
(version) values ($1)`` in the migration's transaction; a version is applied when its row exists. No
checksum. dbmate applies pending files in name order whatever is applied after them, so an
unapplied file older than an applied one is a gap.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from .base import ToolHistory, ToolState, missing_file


class DbmateHistory(ToolHistory):
    tool = "dbmate"
    default_table = "schema_migrations"
    columns = frozenset({"version"})
    source = "amacneil/dbmate: pkg/driver/postgres/postgres.go"

    def exists(self, conn: Any) -> bool:
        from .base import table_columns

        # golang-migrate's table has the same name and a `version` too: its `dirty` tells it
        # apart, and the runner's own old default has `checksum`.
        cols = table_columns(conn, self.schema, self.table)
        return "version" in cols and not cols & {"dirty", "checksum"}

    def read(self, conn: Any, files: list[Any]) -> ToolState:
        rows = [str(r[0]) for r in conn.execute(
            sql.SQL("SELECT version FROM {} ORDER BY version").format(self.ident)).fetchall()]
        st = ToolState(self.tool, self.qualified, exists=True, rows=len(rows))
        by_key = {f.tool_key: f for f in files}
        done = set(rows)
        st.applied = [f for f in files if f.tool_key in done]
        st.problems = [missing_file(self.tool, f"version={v}", v) for v in rows
                       if v not in by_key]
        return st

    def create(self) -> list[sql.Composed]:
        return [sql.SQL("CREATE TABLE IF NOT EXISTS {} (version varchar PRIMARY KEY)")
                .format(self.ident)]

    def record(self, mf: Any) -> list[sql.Composed]:
        return [sql.SQL("INSERT INTO {} (version) VALUES ({})").format(
            self.ident, sql.Literal(mf.tool_key))]
