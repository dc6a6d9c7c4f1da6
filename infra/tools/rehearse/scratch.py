"""``--fail``: a scratch copy of the project whose newest migration is broken, on its own database.

The copy holds what the rehearsal reads from a project (``Pulumi.yaml``, the stack file,
``__main__.py``, ``db/migrations``) plus ``9999_rehearse_broken.sql``, which references a table that
does not exist (SQLSTATE 42P01), so the migration job fails the way a real bad release does. It
runs against a fresh database (dropped and created on the same server), so the failure never
reaches the database the normal rehearsal uses and its run log stays clean.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = ["BROKEN_MIGRATION", "FAIL_DATABASE", "fresh_database", "scratch_project"]

BROKEN_MIGRATION = "9999_rehearse_broken.sql"
FAIL_DATABASE = "rehearse_fail"
BROKEN_SQL = """\
-- Written by `make rehearse-fail`: a release whose migration cannot apply.
ALTER TABLE documents ADD COLUMN reviewer_id bigint REFERENCES reviewers (id);
"""


def scratch_project(root: Path, stack: str, into: Path) -> Path:
    """Copy the project's rehearsal inputs into ``into`` (replaced) and break its migrations."""
    if into.exists():
        shutil.rmtree(into)
    (into / "db").mkdir(parents=True)
    for name in ("Pulumi.yaml", f"Pulumi.{stack}.yaml", "__main__.py"):
        if (root / name).is_file():
            shutil.copy2(root / name, into / name)
    shutil.copytree(root / "db" / "migrations", into / "db" / "migrations")
    (into / "db" / "migrations" / BROKEN_MIGRATION).write_text(BROKEN_SQL)
    return into


def fresh_database(server_url: str, name: str = FAIL_DATABASE) -> str:
    """Drop and create ``name`` on the server of ``server_url``; its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    return make_conninfo("", **{k: v for k, v in params.items() if v is not None})
