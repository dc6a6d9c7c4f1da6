"""golang-migrate's ``schema_migrations``: ONE row, the highest version and a dirty flag.

Verified in golang-migrate/migrate ``database/postgres/postgres.go``: ``CREATE TABLE IF NOT
EXISTS <schema>.schema_migrations (version bigint not null primary key, dirty boolean not
null)``; ``SetVersion`` truncates the table and inserts ``(version, dirty)`` in one transaction;
``dirty = true`` means a migration failed part-way and the tool refuses to run until someone
runs ``migrate force``. Every file whose version is <= the stored one counts as applied: a
high-water mark, so the tool cannot tell whether an older file added later ever ran.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from .base import ToolHistory, ToolProblem, ToolState, missing_file


class GolangMigrateHistory(ToolHistory):
    tool = "golang-migrate"
    default_table = "schema_migrations"
    columns = frozenset({"version", "dirty"})
    source = "golang-migrate/migrate: database/postgres/postgres.go"

    def read(self, conn: Any, files: list[Any]) -> ToolState:
        rows = conn.execute(sql.SQL("SELECT version, dirty FROM {}").format(self.ident)
                            ).fetchall()
        st = ToolState(self.tool, self.qualified, exists=True, rows=len(rows))
        if not rows:
            return st
        if len(rows) > 1:
            st.problems.append(ToolProblem(
                "unsupported-history-row",
                f"{self.qualified} holds {len(rows)} rows; golang-migrate keeps exactly one",
                hint="someone edited the table by hand: keep only the row of the version the "
                     "database is really at", row=", ".join(f"version={v}" for v, _ in rows)))
            return st
        version, dirty = int(rows[0][0]), bool(rows[0][1])
        keyed = [f for f in files if f.tool_key.isdigit()]
        by_version = {int(f.tool_key): f for f in keyed}
        row = f"version={version} dirty={'true' if dirty else 'false'}"
        if dirty:
            st.problems.append(ToolProblem(
                "dirty-history",
                f"golang-migrate's history is dirty at version {version}: that migration failed "
                "part-way and may be half-applied",
                hint=f"inspect the schema, finish or undo the migration by hand, then run "
                     f"`migrate force {version}` (or the previous version) and adopt again",
                file=by_version[version].name if version in by_version else None, row=row))
        if version not in by_version and version >= 0:
            st.problems.append(missing_file(self.tool, row, str(version)))
        st.applied = [f for f in keyed if int(f.tool_key) <= version]
        if st.applied:
            st.warnings.append(
                "golang-migrate records only the highest version: every file up to "
                f"{version} is taken as applied (it cannot tell whether an older file added "
                "later ever ran)")
        return st

    def create(self) -> list[sql.Composed]:
        return [sql.SQL("CREATE TABLE IF NOT EXISTS {} (version bigint NOT NULL PRIMARY KEY,"
                        " dirty boolean NOT NULL)").format(self.ident)]

    def record(self, mf: Any) -> list[sql.Composed]:
        # DELETE, not the tool's TRUNCATE: the same single row, without an ACCESS EXCLUSIVE lock
        # held to the end of the migration's transaction.
        # A file applied out of order never lowers the mark.
        return [sql.SQL(
            "WITH old AS (DELETE FROM {t} RETURNING version) INSERT INTO {t} (version, dirty)"
            " SELECT GREATEST({v}, coalesce((SELECT max(version) FROM old), {v})), false"
        ).format(t=self.ident, v=sql.Literal(int(mf.tool_key)))]
