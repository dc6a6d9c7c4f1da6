"""Migration files: discovery, identity, order, normalized text and checksum.

A migration is a ``*.sql`` file in the migrations directory whose name starts with a
number: ``0001_init.sql``, ``20240102_add users.sql``, ``20240102153000-index.sql.sql``.
Its identity is its file name. Files are ordered by the numeric value of the prefix, then
by the full name (code point order), so 8- and 14-digit timestamps, zero-padded counters
and several files sharing one prefix all have one deterministic order.

A Prisma-style directory ``<prefix>_<name>/migration.sql`` is a migration too; its
identity is ``<prefix>_<name>/migration.sql``.

The checksum is the SHA-256 of the text with a leading BOM removed and line endings
normalized to ``\\n``, so a checkout with other line endings never mismatches.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .errors import CheckError, ConfigError, Location, MigrationError

_NAME = re.compile(r"^(?P<prefix>\d+)(?P<rest>.*)\.sql$", re.S)
PRISMA_FILE = "migration.sql"
# A header comment turns a file into a dedicated non-transactional migration.
NO_TRANSACTION = re.compile(
    r"^\s*--\s*(?:migration|gated-release)\s*:\s*no-transaction\b"
    r"|^\s*--\s*migrate:up\b.*\btransaction:false\b",
    re.I,
)


@dataclass(frozen=True)
class MigrationFile:
    name: str
    """The identity: the file name (or ``dir/migration.sql`` for a Prisma directory)."""
    version: str
    """The numeric prefix as written."""
    path: Path

    @property
    def order_key(self) -> tuple[int, str]:
        return (int(self.version), self.name)

    @cached_property
    def raw(self) -> bytes:
        return self.path.read_bytes()

    @cached_property
    def text(self) -> str:
        data = self.raw
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
            raise MigrationError(
                f"not valid UTF-8 (byte 0x{data[e.start]:02x})",
                location=Location(self.name, line, col),
                hint="save the file as UTF-8",
            ) from None
        return text.replace("\r\n", "\n").replace("\r", "\n")

    @cached_property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def declared_no_transaction(self) -> bool:
        for line in self.text.split("\n"):
            stripped = line.strip()
            if not stripped:
                continue
            if not stripped.startswith("--"):
                return False
            if NO_TRANSACTION.match(stripped):
                return True
        return False


def discover(directory: Path) -> list[MigrationFile]:
    """All migrations in ``directory``, in apply order.

    Raises ConfigError when the directory is missing and CheckError for names that are
    not migrations but look like they were meant to be (a ``.sql`` file with no prefix).
    """
    if not directory.exists():
        raise ConfigError(
            f"migrations directory {str(directory)!r} does not exist",
            hint="pass --dir (MIGRATION_DIR) or create it with `python -m migration new NAME`",
        )
    if not directory.is_dir():
        raise ConfigError(f"{str(directory)!r} is not a directory", hint="pass --dir")
    found: list[MigrationFile] = []
    problems: list[MigrationError] = []
    for entry in directory.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            inner = entry / PRISMA_FILE
            m = _NAME.match(entry.name + ".sql")
            if m and inner.is_file():
                found.append(MigrationFile(f"{entry.name}/{PRISMA_FILE}", m["prefix"], inner))
            continue
        if not entry.name.lower().endswith(".sql"):
            continue
        m = _NAME.match(entry.name)
        if m is None:
            problems.append(
                MigrationError(
                    "a .sql file without a numeric prefix is not a migration",
                    location=Location(entry.name),
                    hint="rename it NNNN_name.sql (or create it with `python -m migration new`)",
                )
            )
            continue
        found.append(MigrationFile(entry.name, m["prefix"], entry))
    if problems:
        raise CheckError(problems)
    found.sort(key=lambda f: f.order_key)
    return found
