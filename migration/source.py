"""Migration files (kept for imports): the format layer lives in ``migration/formats/``.

``discover(directory)`` detects the directory's format; see :mod:`migration.formats`.
"""

from __future__ import annotations

from .formats import discover
from .formats.base import MigrationFile
from .formats.plain import PRISMA_FILE

__all__ = ["PRISMA_FILE", "MigrationFile", "discover"]
