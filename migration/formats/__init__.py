"""Migration formats: the runner's own and seven other tools', detected or forced by name.

``discover(directory, "auto")`` asks every format how confident it is that the directory is
in its layout (``detect``), takes the most confident one and lists its migrations in that
tool's order. A tie between two tools, or a directory holding files of several, is refused
(``mixed-formats``) rather than guessed. ``--format NAME`` (``MIGRATION_FORMAT``) forces one.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import CheckError, ConfigError, Location, Problem
from .base import Format, MigrationFile, Parts, Span, TxMode
from .dbmate import Dbmate
from .drizzle import Drizzle
from .flyway import Flyway
from .golangmigrate import GolangMigrate
from .goose import Goose
from .nodepgmigrate import NodePgMigrate
from .plain import Plain
from .prisma import Prisma

FORMATS: dict[str, Format] = {f.name: f for f in (
    Plain(), Prisma(), Drizzle(), Dbmate(), NodePgMigrate(), Goose(), GolangMigrate(), Flyway())}
NAMES = ("auto", *FORMATS)


def _check_directory(directory: Path) -> None:
    if not directory.exists():
        raise ConfigError(
            f"migrations directory {str(directory)!r} does not exist",
            hint="pass --dir (MIGRATION_DIR) or create it with `python -m migration new NAME`",
        )
    if not directory.is_dir():
        raise ConfigError(f"{str(directory)!r} is not a directory", hint="pass --dir")


def detect(directory: Path) -> Format:
    """The format of ``directory`` from its layout and markers (plain when nothing else fits)."""
    _check_directory(directory)
    scores = sorted(((f.detect(directory), f.name) for f in FORMATS.values()), reverse=True)
    best, name = scores[0]
    if len(scores) > 1 and scores[1][0] == best and best > 1 and best >= 10:
        raise CheckError([Problem(
            "mixed-formats",
            f"the directory looks like {name} and {scores[1][1]} migrations alike",
            location=Location(str(directory)),
            hint="keep one tool's files per directory, or force one with --format "
                 "(MIGRATION_FORMAT)")])
    return FORMATS[name]


def resolve(directory: Path, name: str = "auto") -> Format:
    if name == "auto":
        return detect(directory)
    _check_directory(directory)
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(f"--format / MIGRATION_FORMAT: unknown format {name!r}",
                          hint="one of: " + ", ".join(NAMES)) from None


def discover(directory: Path, name: str = "auto") -> list[MigrationFile]:
    """All migrations in ``directory``, in the order their tool applies them."""
    return resolve(directory, name).discover(directory)


def warnings_of(directory: Path, files: list[MigrationFile]) -> list[str]:
    """What the format saw but does not run (a Drizzle .sql missing from the journal)."""
    if not files or files[0].format != "drizzle":
        return []
    from .drizzle import JOURNAL

    tags = {f.tool_key for f in files}
    return [f"{p.name} is not in {JOURNAL.as_posix()}: Drizzle never applies it, neither does "
            "the runner" for p in sorted(directory.glob("*.sql")) if p.name[:-4] not in tags]


__all__ = ["FORMATS", "NAMES", "Format", "MigrationFile", "Parts", "Span", "TxMode", "detect",
           "discover", "resolve", "warnings_of"]
