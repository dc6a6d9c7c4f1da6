"""Flyway: versioned ``V<version>__<description>.sql``, repeatable ``R__<description>.sql``,
undo ``U<version>__...`` (never applied by `migrate`, so never here).

Verified in flyway/flyway (``ResourceNameParser.java``, ``MigrationVersion.java``,
``ResolvedMigrationComparator``): prefix and ``__`` separator, ``_`` in a version means ``.``,
version parts compare as integers with trailing zero parts dropped (``1.0`` is ``1``: a
duplicate), the description is the rest with ``_`` as space. Repeatables run after every
versioned migration, ordered by description, and again whenever their checksum changes. The
locations are scanned recursively. A migration's ``<file>.conf`` with
``executeInTransaction=false`` takes it out of the transaction.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..errors import CheckError, Location, MigrationError, Problem
from .base import MigrationFile, Parts, TxMode
from .markers import foreign_markers

if TYPE_CHECKING:
    from ..toolhistory.base import ToolHistory

FILE = re.compile(r"^(?P<kind>[VUR])(?P<version>[^_]*(?:_[0-9][^_]*)*?)__(?P<desc>.*)\.sql$")
_VERSION = re.compile(r"^\d+(?:\.\d+)*$")


def version_key(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def read(mf: MigrationFile) -> Parts:
    declared: TxMode | None = None
    conf = mf.path.with_name(mf.path.name + ".conf")
    if conf.is_file():
        for line in conf.read_text("utf-8", "replace").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "executeInTransaction" and value.strip().lower() == "false":
                declared = "no-transaction"
    return Parts(mf.text, tx_declared=declared, markers=tuple(foreign_markers(mf.text)))


class Flyway:
    name: ClassVar[str] = "flyway"
    history: ClassVar[type[ToolHistory] | None] = None

    def detect(self, directory: Path) -> int:
        import os

        n = 0
        for _root, dirs, names in os.walk(directory):  # os.walk: far cheaper than rglob
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            n += sum(1 for name in names if name.endswith(".sql") and FILE.match(name))
            if n >= 20:
                break
        return 10 * min(n, 20)

    def discover(self, directory: Path) -> list[MigrationFile]:
        versioned: list[MigrationFile] = []
        repeatable: list[MigrationFile] = []
        problems: list[MigrationError] = []
        seen: dict[tuple[int, ...], str] = {}
        for path in sorted(directory.rglob("*.sql")):
            rel = path.relative_to(directory).as_posix()
            if any(part.startswith(".") for part in path.relative_to(directory).parts):
                continue
            m = FILE.match(path.name)
            if m is None:
                problems.append(Problem("name-invalid",
                                        "not a Flyway migration name (V<version>__<description>"
                                        ".sql or R__<description>.sql)", location=Location(rel),
                                        hint="rename it, or move it out of the directory"))
                continue
            desc = m["desc"].replace("_", " ")
            if m["kind"] == "U":
                continue  # undo: run by `flyway undo` only, never by migrate
            if m["kind"] == "R":
                if m["version"]:
                    problems.append(Problem("name-invalid", "a repeatable migration has no version",
                                            location=Location(rel), hint="name it R__<description>.sql"))
                    continue
                repeatable.append(MigrationFile(rel, "", path, tool_key=desc, format=self.name,
                                                order_key=(1, (), desc, rel), repeatable=True,
                                                reader=read, statement_split=True))
                continue
            version = m["version"].replace("_", ".")
            if not _VERSION.match(version):
                problems.append(Problem("name-invalid", f"invalid Flyway version {m['version']!r}",
                                        location=Location(rel),
                                        hint="use digits separated by . or _ (V1_2__x.sql)"))
                continue
            key = version_key(version)
            if key in seen:
                problems.append(Problem("duplicate-identity",
                                        f"Flyway version {version} is used by {seen[key]!r} and "
                                        f"{rel!r}", location=Location(rel),
                                        hint="give each versioned migration its own version"))
                continue
            seen[key] = rel
            versioned.append(MigrationFile(rel, version, path, tool_key=version, format=self.name,
                                           order_key=(0, key, "", rel), reader=read,
                                           statement_split=True, meta={"description": desc}))
        if problems:
            raise CheckError(problems)
        return sorted(versioned, key=lambda f: f.order_key) + \
            sorted(repeatable, key=lambda f: f.order_key)
