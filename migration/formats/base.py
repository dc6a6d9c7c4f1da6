"""The format interface: one migration file as its tool reads it, and what a format provides.

A :class:`MigrationFile` is the runner's view of one migration whatever tool wrote it: its
identity for the runner (``name``, a path relative to the directory) and for the tool
(``tool_key``), the tool's order, and, read lazily from the file, the normalized text, its
checksum, the *up part* (what runs), the parts that never run (down/undo, as :class:`Span`)
and the transaction mode the tool gives it. The up part is exposed as ``executable_text``:
the file's text with every ignored part blanked out character for character, so offsets,
lines and columns in errors stay the file's own. A :class:`Format` finds the migrations of a
directory in its tool's order; :class:`Parts` is what it reads out of one file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from ..errors import Location, MigrationError, Problem

if TYPE_CHECKING:
    from ..toolhistory.base import ToolHistory  # 9B's adapters

TxMode = Literal["transaction", "no-transaction", "per-statement"]
"""``transaction``: the up part runs in ONE transaction with the history row (most tools).
``no-transaction``: a dedicated non-transactional migration, exactly one statement
(``CREATE INDEX CONCURRENTLY``, ``VACUUM``...). ``per-statement``: the tool runs it statement by
statement outside a transaction (goose ``NO TRANSACTION`` or dbmate ``transaction:false`` with
several statements, a Prisma file that cannot be one transaction): durable progress."""


@dataclass(frozen=True)
class Span:
    """A part of the file the runner never executes (a down or undo part), 1-based lines."""

    label: str
    start_line: int
    end_line: int


@dataclass(frozen=True)
class Marker:
    """A tool's directive found in a file (``-- migrate:up``, ``-- +goose Down``...)."""

    tool: str
    text: str
    line: int


@dataclass(frozen=True)
class Parts:
    """What a format reads out of one file's normalized text."""

    executable: str
    """The text with ignored parts blanked (same length and line breaks as the file)."""
    ignored: tuple[Span, ...] = ()
    tx_declared: TxMode | None = None
    """The mode the file's own directive asks for (None: the format's default)."""
    markers: tuple[Marker, ...] = ()
    problems: tuple[MigrationError, ...] = ()


def blank(text: str, start: int, end: int) -> str:
    """``text`` with ``[start, end)`` replaced by spaces, line breaks kept."""
    return text[:start] + "".join("\n" if c == "\n" else " " for c in text[start:end]) + text[end:]


def _whole(mf: MigrationFile) -> Parts:
    return Parts(mf.text)


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def sections(text: str, cuts: list[tuple[int, str]], label_of_unmarked: str = "up"
             ) -> tuple[str, tuple[Span, ...]]:
    """Blank every section whose kind is not ``up``. ``cuts``: (line-start offset, kind) of
    each directive, in file order; the text before the first belongs to ``label_of_unmarked``.
    """
    executable = text
    spans: list[Span] = []
    bounds = [(0, label_of_unmarked), *cuts, (len(text), "end")]
    for (start, kind), (end, _) in zip(bounds, bounds[1:], strict=False):
        if kind == "up" or start >= end:
            continue
        executable = blank(executable, start, end)
        if kind == "header":
            continue  # comments before the first directive (the tool allows nothing else)
        last = end - 1 if end > start and text[end - 1] == "\n" else end
        spans.append(Span(kind, line_of(text, start), line_of(text, max(start, last))))
    return executable, tuple(spans)


@dataclass(frozen=True)
class MigrationFile:
    name: str
    """The runner's identity: the path relative to the directory, unique (``0001_x.sql``,
    ``1_init.up.sql``, ``20240101_init/migration.sql``, ``R__views.sql``)."""
    version: str
    """The version as written (``""`` for a Flyway repeatable)."""
    path: Path
    tool_key: str = ""
    """The tool's identity in its own history (dbmate/goose/golang-migrate/Flyway: version;
    node-pg-migrate: name without extension; Prisma: directory name; Drizzle: tag)."""
    format: str = "plain"
    order_key: tuple[Any, ...] = ()
    """The tool's order, computed by the format (default: numeric prefix, then name)."""
    repeatable: bool = False
    """Flyway ``R__``: runs after the versioned ones, and again whenever its checksum changes."""
    reader: Callable[[MigrationFile], Parts] = field(default=_whole, compare=False, repr=False)
    default_tx: TxMode = "transaction"
    """The mode the tool gives a file without a directive."""
    statement_split: bool = False
    """True when the tool runs a file its directive takes out of a transaction statement by
    statement (dbmate, goose, Flyway): with several statements it then runs per statement."""
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    """Format-specific facts the tool's history needs (Drizzle: ``when``, ``idx``)."""

    def __post_init__(self) -> None:
        if not self.tool_key:
            object.__setattr__(self, "tool_key", self.name)
        if not self.order_key:
            v = int(self.version) if self.version.isdigit() else 0
            object.__setattr__(self, "order_key", (v, self.name))

    @cached_property
    def raw(self) -> bytes:
        return self.path.read_bytes()

    @cached_property
    def text(self) -> str:
        """The text with a leading BOM removed and line endings normalized to ``\\n``."""
        data = self.raw
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
            raise Problem(
                "not-utf8",
                f"not valid UTF-8 (byte 0x{data[e.start]:02x})",
                location=Location(self.name, line, col),
                hint="save the file as UTF-8",
            ) from None
        return text.replace("\r\n", "\n").replace("\r", "\n")

    @cached_property
    def checksum(self) -> str:
        """SHA-256 of the whole normalized text (down parts included: editing one is an edit)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @cached_property
    def parts(self) -> Parts:
        return self.reader(self)

    @property
    def executable_text(self) -> str:
        return self.parts.executable

    @property
    def up_offset(self) -> int:
        """Character offset in ``text`` where the part that runs begins."""
        ex = self.parts.executable
        return len(ex) - len(ex.lstrip())

    @property
    def up_text(self) -> str:
        return self.parts.executable[self.up_offset:].rstrip()

    @property
    def ignored(self) -> tuple[Span, ...]:
        return self.parts.ignored

    @property
    def markers(self) -> tuple[Marker, ...]:
        return self.parts.markers

    @property
    def declared_no_transaction(self) -> bool:
        return self.parts.tx_declared in ("no-transaction", "per-statement")


class Format(Protocol):
    """One tool's layout. ``discover`` raises CheckError for files its tool would refuse."""

    name: ClassVar[str]
    history: ClassVar[type[ToolHistory] | None]
    """The tool's history adapter (``migration/toolhistory/``); None for plain."""

    def detect(self, directory: Path) -> int:
        """Confidence that ``directory`` is in this format (0: no)."""
        ...

    def discover(self, directory: Path) -> list[MigrationFile]:
        """The tool's migrations in the tool's order."""
        ...
