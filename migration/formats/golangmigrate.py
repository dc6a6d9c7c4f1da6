"""golang-migrate: ``<version>_<title>.up.sql`` (run) and ``.down.sql`` (never a migration).

Verified in golang-migrate/migrate ``source/parse.go``: ``^([0-9]+)_(.*)\\.(down|up)\\.(.*)$``,
the version a uint64, numeric order, a second file with the same version and direction is an
error. ``database/postgres/postgres.go`` runs a file as one multi-statement Exec, which
PostgreSQL runs as one implicit transaction: the runner's one transaction per file is the same.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..errors import CheckError, Location, MigrationError, Problem
from .base import MigrationFile
from .markers import listing, read_foreign

if TYPE_CHECKING:
    from ..toolhistory.base import ToolHistory

FILE = re.compile(r"^([0-9]+)_(.*)\.(down|up)\.(.*)$")


class GolangMigrate:
    name: ClassVar[str] = "golang-migrate"
    history: ClassVar[type[ToolHistory] | None] = None

    def detect(self, directory: Path) -> int:
        n = sum(1 for name, _ in listing(directory) if name.endswith(".sql") and FILE.match(name))
        return 10 * min(n, 20)

    def discover(self, directory: Path) -> list[MigrationFile]:
        found: list[MigrationFile] = []
        problems: list[MigrationError] = []
        seen: dict[tuple[int, str], str] = {}
        for entry in directory.iterdir():
            m = FILE.match(entry.name)
            if entry.name.startswith(".") or not entry.is_file():
                continue
            if m is None:
                if entry.suffix == ".sql":
                    problems.append(Problem(
                        "mixed-formats", "a .sql file that is not golang-migrate's "
                        "<version>_<title>.up.sql / .down.sql", location=Location(entry.name),
                        hint="rename it, or keep one tool's files per directory"))
                continue
            version = int(m[1])
            if version >= 2 ** 64:
                problems.append(Problem("name-invalid", f"version {m[1]} exceeds uint64",
                                        location=Location(entry.name)))
                continue
            key = (version, m[3])
            if key in seen:
                problems.append(Problem("duplicate-identity",
                                        f"version {version} ({m[3]}) is used by {seen[key]!r} "
                                        f"and {entry.name!r}", location=Location(entry.name),
                                        hint="golang-migrate refuses duplicate versions"))
                continue
            seen[key] = entry.name
            if m[3] == "down":
                continue  # run by `migrate down` only: never a migration here
            if m[4] != "sql":
                continue
            found.append(MigrationFile(entry.name, m[1], entry, tool_key=str(version),
                                       format=self.name, order_key=(version,),
                                       reader=read_foreign))
        if problems:
            raise CheckError(problems)
        found.sort(key=lambda f: f.order_key)
        return found
