"""The runner's own format: ``NNNN_name.sql`` files (and ``<prefix>_<name>/migration.sql``).

Identity is the file name; order is the numeric value of the prefix, then the full name (code
point order), so 8- and 14-digit timestamps, zero-padded counters and several files sharing one
prefix have one deterministic order. A header comment ``-- migration: no-transaction`` marks a
dedicated non-transactional migration (exactly one statement).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..errors import CheckError, Location, MigrationError, Problem
from .base import MigrationFile, Parts, TxMode
from .markers import foreign_markers, leading_directive

if TYPE_CHECKING:
    from ..toolhistory.base import ToolHistory

NAME = re.compile(r"^(?P<prefix>\d+)(?P<rest>.*)\.sql$", re.S)
PRISMA_FILE = "migration.sql"
NO_TRANSACTION = re.compile(r"^\s*--\s*(?:migration|gated-release)\s*:\s*no-transaction\b", re.I)


def read(mf: MigrationFile) -> Parts:
    text = mf.text
    declared: TxMode | None = "no-transaction" if leading_directive(text, NO_TRANSACTION) else None
    return Parts(text, tx_declared=declared, markers=tuple(foreign_markers(text)))


class Plain:
    name: ClassVar[str] = "plain"
    history: ClassVar[type[ToolHistory] | None] = None

    def detect(self, directory: Path) -> int:
        return 1  # the fallback: any directory can be read as plain files

    def discover(self, directory: Path) -> list[MigrationFile]:
        found: list[MigrationFile] = []
        problems: list[MigrationError] = []
        for entry in directory.iterdir():
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                inner = entry / PRISMA_FILE
                m = NAME.match(entry.name + ".sql")
                if m and inner.is_file():
                    found.append(MigrationFile(f"{entry.name}/{PRISMA_FILE}", m["prefix"], inner,
                                               reader=read))
                continue
            if not entry.name.lower().endswith(".sql"):
                continue
            m = NAME.match(entry.name)
            if m is None:
                problems.append(Problem(
                    "name-invalid", "a .sql file without a numeric prefix is not a migration",
                    location=Location(entry.name),
                    hint="rename it NNNN_name.sql (or create it with `python -m migration new`)"))
                continue
            found.append(MigrationFile(entry.name, m["prefix"], entry, reader=read))
        if problems:
            raise CheckError(problems)
        found.sort(key=lambda f: f.order_key)
        return found
