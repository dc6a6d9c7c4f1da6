"""Prisma Migrate: ``<name>/migration.sql`` directories beside ``migration_lock.toml``.

Verified in prisma/prisma-engines ``schema-connector/src/migrations_directory.rs``: every
sub-directory holding a ``migration.sql`` is a migration, named by the directory, and the
order is the directory NAME (byte order), whatever the widths of numeric prefixes: a set
mixing ``20210101_x`` and ``20210101120000_y`` is applied in that order, not numerically.
Prisma does not wrap a migration in a transaction, and its generator writes ``BEGIN; ...
COMMIT;`` blocks inside files (enum changes); the runner runs the file in ONE transaction,
replacing those blocks' own BEGIN/COMMIT (shown in `plan`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..errors import CheckError, Location, Problem
from .base import MigrationFile, Parts
from .markers import foreign_markers

if TYPE_CHECKING:
    from ..toolhistory.base import ToolHistory

LOCK_FILE = "migration_lock.toml"


def read(mf: MigrationFile) -> Parts:
    return Parts(mf.text, markers=tuple(foreign_markers(mf.text)))


class Prisma:
    name: ClassVar[str] = "prisma"
    history: ClassVar[type[ToolHistory] | None] = None

    def detect(self, directory: Path) -> int:
        return 100 if (directory / LOCK_FILE).is_file() else 0

    def discover(self, directory: Path) -> list[MigrationFile]:
        dirs = sorted((p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")
                       and (p / "migration.sql").is_file()), key=lambda p: p.name.encode())
        stray = sorted(p.name for p in directory.iterdir() if p.suffix == ".sql" and p.is_file())
        if stray:
            raise CheckError([Problem(
                "mixed-formats", "a .sql file beside Prisma's migration directories is not a "
                "Prisma migration", location=Location(name),
                hint="move it into <name>/migration.sql, or out of the directory")
                for name in stray])
        out = []
        for p in dirs:
            digits = "".join(c for c in p.name.split("_", 1)[0] if c.isdigit())
            out.append(MigrationFile(f"{p.name}/migration.sql", digits, p / "migration.sql",
                                     tool_key=p.name, format=self.name,
                                     order_key=(p.name.encode(),), reader=read))
        return out
