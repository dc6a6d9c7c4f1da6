"""goose: ``<int64>_<desc>.sql`` files with ``-- +goose Up`` / ``-- +goose Down`` annotations.

Verified in pressly/goose ``internal/sqlparser/parser.go``: an annotation is a line that
starts with ``--`` (no indentation) whose rest, trimmed, is exactly ``+goose Up``,
``+goose Down``, ``+goose StatementBegin``, ``+goose StatementEnd``, ``+goose NO TRANSACTION``,
``+goose ENVSUBST ON|OFF``. ``Up`` is required and must come first (only blank/comment lines
before it); the down part runs only on ``goose down`` and is blanked here. StatementBegin/End
only group a statement holding semicolons for goose's own line splitter; PostgreSQL's parser
splits correctly without them. ``NO TRANSACTION``: goose runs each statement on its own, so
several statements run per statement with durable progress. ``ENVSUBST ON`` substitutes
environment variables into the SQL, which this runner refuses to guess at (refused).
A ``.go`` migration is Go code, which a SQL runner cannot run: refused (``go-migration``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..errors import CheckError, Location, MigrationError, Problem
from .base import Marker, MigrationFile, Parts, TxMode, sections
from .markers import foreign_markers, listing, score

if TYPE_CHECKING:
    from ..toolhistory.base import ToolHistory

FILE = re.compile(r"^(\d+)_.*\.(sql|go)$")


def read(mf: MigrationFile) -> Parts:
    text = mf.text
    cuts: list[tuple[int, str]] = []
    markers: list[Marker] = []
    problems: list[MigrationError] = []
    no_tx = False
    pos = 0
    seen_sql_before_up = False
    for i, line in enumerate(text.split("\n"), 1):
        if line.startswith("--"):
            cmd = line[2:].strip()
            if cmd.startswith("+goose"):
                markers.append(Marker("goose", line.strip(), i))
            if cmd == "+goose Up":
                if any(k == "up" for _, k in cuts):
                    problems.append(Problem("unsupported-directive",
                                            "duplicate `-- +goose Up` annotation",
                                            location=Location(mf.name, i)))
                cuts.append((pos, "up"))
            elif cmd == "+goose Down":
                cuts.append((pos, "down"))
            elif cmd == "+goose NO TRANSACTION":
                no_tx = True
            elif cmd == "+goose ENVSUBST ON":
                problems.append(Problem(
                    "unsupported-directive",
                    "`-- +goose ENVSUBST ON` substitutes environment variables into the SQL",
                    location=Location(mf.name, i),
                    hint="write the values into the migration (this runner applies the SQL "
                         "as written)"))
        elif line.strip() and not cuts:
            seen_sql_before_up = True
        pos += len(line) + 1
    if not any(k == "up" for _, k in cuts):
        problems.append(Problem("unsupported-directive",
                                "a goose migration must start with `-- +goose Up`",
                                location=Location(mf.name, 1),
                                hint="add `-- +goose Up` before the SQL that migrates forward"))
    elif cuts[0][1] != "up" or seen_sql_before_up:
        problems.append(Problem("down-part-present" if cuts[0][1] == "down"
                                else "unsupported-directive",
                                "SQL or `-- +goose Down` before `-- +goose Up`",
                                location=Location(mf.name, 1),
                                hint="goose requires `-- +goose Up` first"))
    executable, spans = sections(text, cuts, label_of_unmarked="header")
    declared: TxMode | None = "no-transaction" if no_tx else None
    others = tuple(m for m in foreign_markers(text) if m.tool != "goose")
    return Parts(executable, spans, declared, (*markers, *others), tuple(problems))


class Goose:
    name: ClassVar[str] = "goose"
    history: ClassVar[type[ToolHistory] | None] = None

    def detect(self, directory: Path) -> int:
        go = any(name.endswith(".go") and FILE.match(name) for name, _ in listing(directory))
        return score(directory, self.name) + (5 if go else 0)

    def discover(self, directory: Path) -> list[MigrationFile]:
        found: list[MigrationFile] = []
        problems: list[MigrationError] = []
        versions: dict[int, str] = {}
        for entry in directory.iterdir():
            if entry.name.startswith(".") or not entry.is_file():
                continue
            m = FILE.match(entry.name)
            if m is None:
                continue
            version = int(m[1])
            if version in versions:
                problems.append(Problem("duplicate-identity",
                                        f"goose version {version} is used by {versions[version]!r}"
                                        f" and {entry.name!r}", location=Location(entry.name),
                                        hint="give each migration its own version"))
                continue
            versions[version] = entry.name
            if m[2] == "go":
                problems.append(Problem(
                    "go-migration", "a goose Go migration: this runner applies SQL only",
                    location=Location(entry.name),
                    hint="rewrite it as a .sql migration with `-- +goose Up`, or run this "
                         "set with goose itself"))
                continue
            found.append(MigrationFile(entry.name, m[1], entry, tool_key=str(version),
                                       format=self.name, order_key=(version, entry.name),
                                       reader=read, statement_split=True))
        if problems:
            raise CheckError(problems)
        found.sort(key=lambda f: f.order_key)
        return found
