"""The interface every other tool's history table is read and written through.

A ``ToolHistory`` knows one tool's bookkeeping table exactly as the tool's own source creates
it (verified per module against the file named in its docstring): whether it exists, which
migration files it marks applied (and what is wrong with it: a dirty or failed row, a row
whose file is gone, a checksum that differs, a gap), the DDL that creates it, and the row(s)
the tool would write for one applied migration. Adoption reads it; the executor writes
``record()`` in the same transaction as the runner's own history row, so the team can return
to the tool on any day. Identifiers are always composed with ``sql.Identifier``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from psycopg import sql


class ToolFile(Protocol):
    """What an adapter needs of a migration file (9A's ``formats.base.MigrationFile``)."""

    @property
    def name(self) -> str: ...
    @property
    def tool_key(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def path(self) -> Path: ...
    @property
    def raw(self) -> bytes: ...


@dataclass(frozen=True)
class ToolProblem:
    """Why the tool's history cannot be adopted as it is; ``code`` is stable."""

    code: str
    """``dirty-history``, ``failed-migration``, ``applied-file-missing``,
    ``checksum-mismatch``, ``out-of-order``, ``unsupported-history-row``."""
    message: str
    hint: str
    file: str | None = None
    row: str | None = None
    """The row as the tool wrote it, e.g. ``version=3 dirty=true``."""

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "file": self.file,
                "row": self.row, "hint": self.hint}


@dataclass
class ToolState:
    """What the tool's history says, in the runner's file order."""

    tool: str
    table: str
    exists: bool
    applied: list[Any] = field(default_factory=list)
    """Files the tool marks applied (ToolFile values, in the runner's order)."""
    gaps: list[Any] = field(default_factory=list)
    """Files NOT applied although a later file is: the tool skipped or will skip them."""
    problems: list[ToolProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows: int = 0


class ToolHistory:
    """One tool's history table; subclasses set the class attributes and the three methods."""

    tool: ClassVar[str]
    default_table: ClassVar[str]
    default_schema: ClassVar[str] = "public"
    columns: ClassVar[frozenset[str]]
    """Columns that identify the table as the tool's (all must be present)."""
    source: ClassVar[str]
    """Where the facts were verified (repository: file)."""

    def __init__(self, directory: Path, *, schema: str | None = None,
                 table: str | None = None) -> None:
        self.directory = directory
        self.schema = schema or self.default_schema
        self.table = table or self.default_table

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.table)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"

    def exists(self, conn: Any) -> bool:
        """True when the table exists with the tool's columns."""
        return self.columns <= table_columns(conn, self.schema, self.table)

    def state(self, conn: Any, files: list[Any]) -> ToolState:
        if not self.exists(conn):
            return ToolState(self.tool, self.qualified, exists=False)
        st = self.read(conn, files)
        if not st.gaps:
            st.gaps = self.gaps(files, st.applied)
        return st

    def gaps(self, files: list[Any], applied: list[Any]) -> list[Any]:
        return gaps_of(files, applied)

    def read(self, conn: Any, files: list[Any]) -> ToolState:
        raise NotImplementedError

    def create(self) -> list[sql.Composed]:
        raise NotImplementedError

    def record(self, mf: Any) -> list[sql.Composed]:
        raise NotImplementedError


def table_columns(conn: Any, schema: str, table: str) -> set[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(format('%%I.%%I',"
        " %s::text, %s::text)) AND attnum > 0 AND NOT attisdropped", (schema, table)).fetchall()
    return {str(r[0]) for r in rows}


def gaps_of(files: list[Any], applied: list[Any]) -> list[Any]:
    """Unapplied files ordered before the last applied one (in the runner's order)."""
    done = {f.name for f in applied}
    last = max((i for i, f in enumerate(files) if f.name in done), default=None)
    if last is None:
        return []
    return [f for f in files[:last] if f.name not in done]


def missing_file(tool: str, row: str, key: str) -> ToolProblem:
    return ToolProblem(
        "applied-file-missing",
        f"{tool}'s history marks {key!r} applied but no migration file has that identity",
        hint="restore the file from version control (the directory must hold every applied "
             "migration), or point --dir at the directory the tool used",
        row=row)
