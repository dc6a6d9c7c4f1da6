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
from .markers import foreign_markers, leading_directive, sample

if TYPE_CHECKING:
    from ..toolhistory.base import ToolHistory

NAME = re.compile(r"^(?P<prefix>\d+)(?P<rest>.*)\.sql$", re.S)
PRISMA_FILE = "migration.sql"
NO_TRANSACTION = re.compile(r"^\s*--\s*(?:migration|gated-release)\s*:\s*no-transaction\b", re.I)


def read(mf: MigrationFile) -> Parts:
    text = mf.text
    declared: TxMode | None = "no-transaction" if leading_directive(text, NO_TRANSACTION, "no-transaction") else None
    return Parts(text, tx_declared=declared, markers=tuple(foreign_markers(text)))


class Plain:
    name: ClassVar[str] = "plain"
    history: ClassVar[type[ToolHistory] | None] = None

    def detect(self, directory: Path) -> int:
        # The fallback (1) for any directory; more for numbered files no other tool marks.
        from .flyway import FILE as FLYWAY
        from .golangmigrate import FILE as GOLANG

        unmarked = sum(10 for name, tools in sample(directory) if not tools
                       and NAME.match(name) and not GOLANG.match(name) and not FLYWAY.match(name))
        return 1 + unmarked

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
            if entry.name.lower().endswith(".down.sql"):
                problems.append(Problem(
                    "down-part-present",
                    "a down migration file (golang-migrate / node-pg-migrate style): running it "
                    "would undo its up file", location=Location(entry.name),
                    hint="pass --format golang-migrate or node-pg-migrate if the directory is "
                         "that tool's; otherwise delete it (forward-only: a fix is a new "
                         "migration)"))
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
