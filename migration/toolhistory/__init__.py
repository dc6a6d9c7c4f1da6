"""Other tools' history tables, one module per tool, behind ``base.ToolHistory``.

``for_format(name, directory)`` gives the adapter of a directory's format (None for the
runner's plain format); ``TOOLS`` maps each tool name to its class. Adoption reads them;
the executor writes their rows next to its own so a team can go back to the tool.
"""

from __future__ import annotations

from pathlib import Path

from .base import ToolFile, ToolHistory, ToolProblem, ToolState
from .dbmate import DbmateHistory
from .drizzle import DrizzleHistory
from .flyway import FlywayHistory
from .golangmigrate import GolangMigrateHistory
from .goose import GooseHistory
from .nodepgmigrate import NodePgMigrateHistory
from .prisma import PrismaHistory

TOOLS: dict[str, type[ToolHistory]] = {cls.tool: cls for cls in (
    NodePgMigrateHistory, DrizzleHistory, PrismaHistory, DbmateHistory, GolangMigrateHistory,
    GooseHistory, FlywayHistory)}


def for_format(name: str, directory: Path, *, schema: str | None = None) -> ToolHistory | None:
    cls = TOOLS.get(name)
    return cls(directory, schema=schema) if cls is not None else None


__all__ = ["TOOLS", "DbmateHistory", "DrizzleHistory", "FlywayHistory", "GolangMigrateHistory",
           "GooseHistory", "NodePgMigrateHistory", "PrismaHistory", "ToolFile", "ToolHistory",
           "ToolProblem", "ToolState", "for_format"]
