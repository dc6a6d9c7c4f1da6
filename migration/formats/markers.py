"""Other tools' up/down directives, found in a file so that a plain file carrying them is refused.

A plain migration runs whole; one that carries ``-- migrate:down`` or ``-- +goose Down`` was
written for a tool that would NOT run its second half, so running it whole loses data. The
patterns are the tools' own (see each format module); only comment lines are looked at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from .base import Marker, MigrationFile, Parts

# (tool, pattern) over one line; each tool's own regular expression, anchored at the line start.
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("dbmate", re.compile(r"^--\s*migrate:(up|down)(\s*$|\s+\S+)")),
    ("goose", re.compile(r"^--.*\+goose\s+(Up|Down|StatementBegin|StatementEnd|NO TRANSACTION)",
                         re.I)),
    ("node-pg-migrate", re.compile(r"^\s*--[\s-]*(up|down)\s+migration", re.I)),
)


# One C-level search first: most files carry no directive at all.
_ANY = re.compile(r"^[ \t]*--[^\n]*(?:migrate:(?:up|down)|\+goose|(?:up|down)\s+migration)",
                  re.M | re.I)


def foreign_markers(text: str) -> Iterator[Marker]:
    if "--" not in text or _ANY.search(text) is None:
        return
    for i, line in enumerate(text.split("\n"), 1):
        stripped = line.lstrip()
        if not stripped.startswith("--"):
            continue
        for tool, pattern in PATTERNS:
            if pattern.match(line if tool == "node-pg-migrate" else stripped):
                yield Marker(tool, stripped.strip(), i)
                break


def leading_directive(text: str, pattern: re.Pattern[str], needle: str = "") -> bool:
    """True when ``pattern`` matches a comment line before the first SQL line (``needle``:
    a lower-case word the directive must contain, to skip files without it cheaply)."""
    if needle and needle not in text.lower():
        return False
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            return False
        if pattern.match(stripped):
            return True
    return False


def read_foreign(mf: MigrationFile) -> Parts:
    """A format without markers of its own: the whole file runs; other tools' markers noted."""
    return Parts(mf.text, markers=tuple(foreign_markers(mf.text)))


SAMPLE = 20


@lru_cache(maxsize=8)
def _listing(directory: str, _mtime_ns: int) -> tuple[tuple[str, bool], ...]:
    import os

    with os.scandir(directory) as it:
        return tuple((e.name, e.is_dir()) for e in it)


def listing(directory: Path) -> tuple[tuple[str, bool], ...]:
    """(name, is a directory) of every entry, read once per directory state (detection asks
    every format; ``os.scandir`` answers ``is_dir`` without a stat per entry)."""
    return _listing(str(directory), directory.stat().st_mtime_ns)


@lru_cache(maxsize=8)
def _sample(directory: str, _mtime_ns: int) -> tuple[tuple[str, frozenset[str]], ...]:
    out = []
    names = sorted(Path(directory) / n for n, is_dir in _listing(directory, _mtime_ns)
                   if n.endswith(".sql") and not is_dir)
    for p in names[:SAMPLE]:
        try:
            head = p.read_bytes()[:65536].decode("utf-8", "replace")
        except OSError:
            continue
        out.append((p.name, frozenset(m.tool for m in foreign_markers(head))))
    return tuple(out)


def sample(directory: Path) -> tuple[tuple[str, frozenset[str]], ...]:
    """(file name, tools whose markers it carries) for the first few ``.sql`` files."""
    return _sample(str(directory), directory.stat().st_mtime_ns)


def score(directory: Path, tool: str | None) -> int:
    """10 per sampled file carrying ``tool``'s markers (``None``: carrying none)."""
    return 10 * sum(1 for _, tools in sample(directory)
                    if (tool in tools if tool else not tools))
