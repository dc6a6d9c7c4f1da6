"""dbmate: ``<digits>*.sql`` files with ``-- migrate:up`` / ``-- migrate:down`` blocks.

Verified in amacneil/dbmate ``pkg/dbmate/migration.go``: ``upRegExp`` is
``(?m)^--\\s*migrate:up(\\s*$|\\s+\\S+)``, ``downRegExp`` the same for ``down`` (anchored at
the line end); both blocks are required, up first, and only blank or comment lines may
precede it; options follow the directive on its line (``transaction:false``; anything else
but ``false`` keeps the transaction). Version = the leading digits as a string; files are
sorted by name. Newer dbmate releases accept several up/down pairs per file: every up block
runs, in file order, every down block is blanked. A ``transaction:false`` up block with one
statement is a dedicated non-transactional migration, with several it runs per statement.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..errors import CheckError, Location, MigrationError, Problem
from .base import MigrationFile, Parts, TxMode, sections
from .markers import foreign_markers, score

if TYPE_CHECKING:
    from ..toolhistory.base import ToolHistory

FILE = re.compile(r"^(\d+).*\.sql$")
DIRECTIVE = re.compile(r"(?m)^--\s*migrate:(up|down)(\s*$|\s+\S.*$)")
_COMMENT_OR_BLANK = re.compile(r"^\s*(--.*)?$")


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def read(mf: MigrationFile) -> Parts:
    text = mf.text
    found = list(DIRECTIVE.finditer(text))
    # Every tool's markers (dbmate's own among them): a goose file here is refused by name.
    markers = tuple(foreign_markers(text))
    problems: list[MigrationError] = []
    ups = [m for m in found if m.group(1) == "up"]
    downs = [m for m in found if m.group(1) == "down"]
    if not ups:
        problems.append(Problem("mixed-formats" if not found else "down-part-present",
                                "dbmate requires an up block (`-- migrate:up`)",
                                location=Location(mf.name),
                                hint="add `-- migrate:up` before the SQL that migrates forward"))
    elif not downs:
        problems.append(Problem("unsupported-directive",
                                "dbmate requires a down block (`-- migrate:down`), even empty",
                                location=Location(mf.name, _line(text, ups[0].start())),
                                hint="add an empty `-- migrate:down` block at the end"))
    elif downs[0].start() < ups[0].start():
        problems.append(Problem("down-part-present",
                                "`-- migrate:down` comes before `-- migrate:up`",
                                location=Location(mf.name, _line(text, downs[0].start())),
                                hint="dbmate requires the up block first"))
    if ups and any(not _COMMENT_OR_BLANK.match(line)
                   for line in text[:ups[0].start()].split("\n")):
        problems.append(Problem("unsupported-directive",
                                "SQL before `-- migrate:up` (dbmate refuses it)",
                                location=Location(mf.name, 1),
                                hint="move it into the up block"))
    executable, spans = sections(text, [(m.start(), m.group(1)) for m in found],
                                 label_of_unmarked="header")
    no_tx = any("transaction:false" in m.group(2).split() for m in ups)
    declared: TxMode | None = "no-transaction" if no_tx else None
    return Parts(executable, spans, declared, markers, tuple(problems))


class Dbmate:
    name: ClassVar[str] = "dbmate"
    history: ClassVar[type[ToolHistory] | None] = None

    def detect(self, directory: Path) -> int:
        return score(directory, self.name)

    def discover(self, directory: Path) -> list[MigrationFile]:
        found: list[MigrationFile] = []
        problems: list[MigrationError] = []
        for entry in sorted(directory.iterdir(), key=lambda e: e.name):
            if entry.name.startswith(".") or not entry.is_file():
                continue
            m = FILE.match(entry.name)
            if m is None:
                if entry.name.endswith(".sql"):
                    problems.append(Problem("name-invalid",
                                            "dbmate skips a .sql file without a leading version",
                                            location=Location(entry.name),
                                            hint="rename it <version>_name.sql"))
                continue
            found.append(MigrationFile(entry.name, m[1], entry, tool_key=m[1], format=self.name,
                                       order_key=(entry.name,), reader=read,
                                       statement_split=True))
        if problems:
            raise CheckError(problems)
        return found
