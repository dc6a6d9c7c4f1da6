"""Other tools' up/down directives, found in a file so that a plain file carrying them is refused.

A plain migration runs whole; one that carries ``-- migrate:down`` or ``-- +goose Down`` was
written for a tool that would NOT run its second half, so running it whole loses data. The
patterns are the tools' own (see each format module); only comment lines are looked at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .base import Marker

# (tool, pattern) over one line; each tool's own regular expression, anchored at the line start.
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("dbmate", re.compile(r"^--\s*migrate:(up|down)(\s*$|\s+\S+)")),
    ("goose", re.compile(r"^--.*\+goose\s+(Up|Down|StatementBegin|StatementEnd|NO TRANSACTION)",
                         re.I)),
    ("node-pg-migrate", re.compile(r"^\s*--[\s-]*(up|down)\s+migration", re.I)),
)


def foreign_markers(text: str) -> Iterator[Marker]:
    if "--" not in text:
        return
    for i, line in enumerate(text.split("\n"), 1):
        stripped = line.lstrip()
        if not stripped.startswith("--"):
            continue
        for tool, pattern in PATTERNS:
            if pattern.match(line if tool == "node-pg-migrate" else stripped):
                yield Marker(tool, stripped.strip(), i)
                break


def leading_directive(text: str, pattern: re.Pattern[str]) -> bool:
    """True when ``pattern`` matches a comment line before the first SQL line."""
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            return False
        if pattern.match(stripped):
            return True
    return False
