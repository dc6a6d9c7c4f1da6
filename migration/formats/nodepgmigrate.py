"""node-pg-migrate SQL migrations: ``-- Up Migration`` / ``-- Down Migration`` in one file, or
an ``X.up.sql`` / ``X.down.sql`` pair.

Verified in node-pg-migrate 9.0.0 (``dist/bundle/index.js``; sources ``src/sqlMigration.ts``,
``src/migrationLoader.ts``, ``src/utils/fileNameUtils.ts``, ``src/utils/comparators.ts``):
markers ``^\\s*--[\\s-]*up\\s+migration`` / ``down`` (case-insensitive, multiline); the up part
runs from its marker to the down marker (or the end); without an up marker the WHOLE file is
up, so a down marker without an up marker would run the down part too: refused here. Every
file not starting with ``.`` is a migration; the name is the file name without extension
(``X`` for a pair); the order is the numeric prefix (a 17-digit prefix is a UTC
``yyyyMMddHHmmssSSS`` time, compared as epoch milliseconds), then the name. ``X.down.sql`` is
never run; a ``.js``/``.ts`` migration is code this runner cannot run (refused).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..errors import CheckError, Location, MigrationError, Problem
from .base import MigrationFile, Parts
from .markers import foreign_markers, listing, read_foreign, score

if TYPE_CHECKING:
    from ..toolhistory.base import ToolHistory

UP = re.compile(r"^\s*--[\s-]*up\s+migration", re.I | re.M)
DOWN = re.compile(r"^\s*--[\s-]*down\s+migration", re.I | re.M)
PREFIX = re.compile(r"^(\d+)")
CODE = (".js", ".cjs", ".mjs", ".ts", ".cts", ".mts")


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def read(mf: MigrationFile) -> Parts:
    from .base import Span, blank

    text = mf.text
    up, down = UP.search(text), DOWN.search(text)
    markers = tuple(foreign_markers(text))
    # node-pg-migrate's up part starts AT its marker (sqlMigration.ts getActions:
    # content.slice(upStart, ...)): SQL above `-- Up Migration` never runs in the tool, so it
    # must not run here either.
    head = text.index("--", up.start()) if up is not None else 0
    if down is None:
        if text[:head].strip():
            return Parts(blank(text, 0, head), (Span("before-up", 1, _line(text, head - 1)),),
                         markers=markers)
        return Parts(text, markers=markers)
    # ``\s*`` may start on an earlier blank line: the marker is where its ``--`` is.
    d = text.index("--", down.start())
    if up is None:
        return Parts(text, markers=markers, problems=(Problem(
            "down-part-present",
            "a `-- Down Migration` part without `-- Up Migration`: node-pg-migrate would run "
            "the whole file, down part included",
            location=Location(mf.name, _line(text, d)),
            hint="add `-- Up Migration` at the top of the forward part"),))
    u = text.index("--", up.start())
    end = u if u > d else len(text)
    spans = [Span("down", _line(text, d), _line(text, end - 1 if end > d else d))]
    body = blank(text, d, end)
    # before the up marker: the header above it, or (down first) the text before the down part
    before = min(u, d)
    if text[:before].strip():
        spans.insert(0, Span("before-up", 1, _line(text, before - 1)))
        body = blank(body, 0, before)
    return Parts(body, tuple(spans), markers=markers)


def order_of(name: str) -> int:
    m = PREFIX.match(name)
    prefix = m[1] if m else ""
    if len(prefix) == 17:
        when = datetime.strptime(prefix[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        return int(when.timestamp()) * 1000 + int(prefix[14:])
    return int(prefix)


class NodePgMigrate:
    name: ClassVar[str] = "node-pg-migrate"
    history: ClassVar[type[ToolHistory] | None] = None

    def detect(self, directory: Path) -> int:
        # X.up.sql / X.down.sql pairs look like golang-migrate's: they count only beside files
        # carrying node-pg-migrate's own markers (or its JavaScript migrations).
        marked = score(directory, self.name)
        names = [name for name, _ in listing(directory)]
        code = sum(10 for n in names if n.endswith(CODE) and PREFIX.match(n))
        pairs = sum(10 for n in names if n.endswith((".up.sql", ".down.sql")))
        return marked + code + (pairs if marked or code else 0)

    def discover(self, directory: Path) -> list[MigrationFile]:
        found: list[MigrationFile] = []
        problems: list[MigrationError] = []
        groups: dict[str, dict[str, Path]] = {}
        for entry in directory.iterdir():
            if entry.name.startswith(".") or not entry.is_file():
                continue
            if PREFIX.match(entry.name) is None:
                problems.append(Problem("name-invalid",
                                        "node-pg-migrate cannot order a file without a numeric "
                                        "prefix", location=Location(entry.name),
                                        hint="rename it <number>_name.sql"))
                continue
            if entry.suffix in CODE:
                problems.append(Problem("non-sql-migration",
                                        "a JavaScript/TypeScript migration: this runner applies "
                                        "SQL only", location=Location(entry.name),
                                        hint="rewrite it as a .sql migration (`-- Up Migration`)"))
                continue
            if entry.suffix != ".sql":
                continue
            stem = entry.name[:-4]
            kind = "single"
            for k in ("up", "down"):
                if stem.endswith("." + k):
                    stem, kind = stem[:-len(k) - 1], k
            if kind in groups.setdefault(stem, {}):
                problems.append(Problem("duplicate-identity", f"two files for migration {stem!r}",
                                        location=Location(entry.name)))
            groups[stem][kind] = entry
        for stem, g in groups.items():
            if "single" in g and len(g) > 1:
                problems.append(Problem("duplicate-identity",
                                        f"{stem}.sql and {stem}.up/.down.sql both exist",
                                        location=Location(g["single"].name),
                                        hint="keep one representation"))
                continue
            path = g.get("single") or g.get("up")
            if path is None:
                problems.append(Problem("down-part-present",
                                        f"{stem}.down.sql has no {stem}.up.sql",
                                        location=Location(g["down"].name)))
                continue
            found.append(MigrationFile(path.name, PREFIX.match(stem)[1],  # type: ignore[index]
                                       path, tool_key=stem, format=self.name,
                                       order_key=(order_of(stem), stem),
                                       reader=read if "single" in g else read_foreign))
        if problems:
            raise CheckError(problems)
        found.sort(key=lambda f: f.order_key)
        return found
