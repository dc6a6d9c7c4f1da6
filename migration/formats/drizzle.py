"""Drizzle Kit: ``meta/_journal.json`` lists the migrations, ``<tag>.sql`` holds each one.

Verified in drizzle-team/drizzle-orm ``drizzle-orm/src/migrator.ts`` (``readMigrationFiles``):
only journal entries are migrations, in journal order (a ``.sql`` file not in the journal is
never applied by Drizzle: reported as a warning, not run); each entry's ``when`` (ms) is what
Drizzle's history compares; statements are separated by ``--> statement-breakpoint`` (a SQL
comment, so PostgreSQL's parser splits the same statements). Drizzle 1.0 (beta) writes
``<14-digit timestamp>_<name>/migration.sql`` directories with a ``snapshot.json`` and no
journal, ordered by directory name: both layouts are read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import CheckError, Location, MigrationError, Problem
from .base import MigrationFile, Parts
from .markers import foreign_markers, listing

if TYPE_CHECKING:
    from ..toolhistory.base import ToolHistory

JOURNAL = Path("meta") / "_journal.json"
V1_DIR = re.compile(r"^\d{14}_.+$")


def read(mf: MigrationFile) -> Parts:
    return Parts(mf.text, markers=tuple(foreign_markers(mf.text)))


def _v1_dirs(directory: Path) -> list[Path]:
    found = (directory / n for n, is_dir in listing(directory) if is_dir and V1_DIR.match(n))
    return sorted((p for p in found if (p / "migration.sql").is_file()
                   and (p / "snapshot.json").is_file()), key=lambda p: p.name.encode())


class Drizzle:
    name: ClassVar[str] = "drizzle"
    history: ClassVar[type[ToolHistory] | None] = None

    def detect(self, directory: Path) -> int:
        if (directory / JOURNAL).is_file():
            return 100
        return 50 if _v1_dirs(directory) else 0

    def discover(self, directory: Path) -> list[MigrationFile]:
        if not (directory / JOURNAL).is_file():
            return [MigrationFile(f"{p.name}/migration.sql", p.name[:14], p / "migration.sql",
                                  tool_key=p.name, format=self.name, order_key=(p.name.encode(),),
                                  reader=read) for p in _v1_dirs(directory)]
        where = Location(JOURNAL.as_posix())
        try:
            journal: dict[str, Any] = json.loads((directory / JOURNAL).read_text("utf-8"))
            entries = list(journal["entries"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckError([Problem("journal-invalid", f"cannot read the Drizzle journal: {e}",
                                      location=where,
                                      hint="restore meta/_journal.json as drizzle-kit wrote it")]
                             ) from None
        found: list[MigrationFile] = []
        problems: list[MigrationError] = []
        tags: set[str] = set()
        for i, entry in enumerate(entries):
            tag = entry.get("tag") if isinstance(entry, dict) else None
            if not isinstance(tag, str) or not tag or "/" in tag:
                problems.append(Problem("journal-invalid", f"journal entry {i} has no valid tag",
                                        location=where))
                continue
            if tag in tags:
                problems.append(Problem("duplicate-identity", f"tag {tag!r} appears twice",
                                        location=where))
                continue
            tags.add(tag)
            path = directory / f"{tag}.sql"
            if not path.is_file():
                problems.append(Problem("journal-invalid",
                                        f"journal entry {tag!r} has no file {tag}.sql",
                                        location=where, hint="restore the file drizzle-kit wrote"))
                continue
            m = re.match(r"^(\d+)", tag)
            found.append(MigrationFile(
                f"{tag}.sql", m[1] if m else str(entry.get("idx", i)), path, tool_key=tag,
                format=self.name, order_key=(i,), reader=read,
                meta={"when": entry.get("when"), "idx": entry.get("idx", i),
                      "breakpoints": entry.get("breakpoints", True)}))
        if problems:
            raise CheckError(problems)
        return found
