"""`check`: everything that can be known before a migration runs, reported all at once.

Nothing is applied when a check fails: `up` runs this first and stops on any problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .analysis import Analysis, analyze
from .errors import CheckError, Location, MigrationError
from .formats.base import MigrationFile
from .history import Applied


@dataclass
class CheckResult:
    files: list[MigrationFile]
    pending: list[MigrationFile]
    analyses: dict[str, Analysis]
    problems: list[MigrationError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def raise_for_problems(self) -> None:
        if self.problems:
            raise CheckError(self.problems)


def check(
    files: list[MigrationFile],
    applied: Mapping[str, Applied] | None = None,
    *,
    check_order: bool = True,
    parse_applied: bool = False,
) -> CheckResult:
    """Check files against the history (``None``: no database, every file is pending).

    Applied files are verified by checksum only; parsing them again would cost time on
    every no-op run and cannot change what already ran. ``parse_applied`` forces it.
    """
    applied = applied or {}
    problems: list[MigrationError] = []
    warnings: list[str] = []

    seen: dict[str, str] = {}
    for f in files:
        key = f.name.casefold()
        if key in seen:
            problems.append(MigrationError(
                f"two migrations differ only by letter case: {seen[key]!r} and {f.name!r}",
                location=Location(f.name),
                hint="rename one; identities must be unique on every file system",
            ))
        seen[key] = f.name

    by_name = {f.name: f for f in files}
    missing, edited = applied_drift(files, applied)
    warnings += [f"{name} is applied but its file is missing from the directory"
                 for name in missing]
    problems += edited.values()

    pending = [f for f in files if f.name not in applied]
    if check_order and applied and pending:
        newest = max((r for r in applied.values() if r.name in by_name),
                     key=lambda r: r.order_key, default=None)
        if newest is not None:
            for f in pending:
                if f.order_key < newest.order_key:
                    problems.append(MigrationError(
                        f"pending migration is older than the newest applied one, "
                        f"{newest.name!r}",
                        location=Location(f.name),
                        hint="rename it with a newer prefix, or run with --no-check-order "
                             "if applying it out of order is intended",
                    ))

    analyses: dict[str, Analysis] = {}
    for f in files if parse_applied else pending:
        try:
            a = analyze(f)
        except CheckError as e:
            problems.extend(e.problems)
            continue
        except MigrationError as e:
            problems.append(e)
            continue
        analyses[f.name] = a
        problems.extend(_same_file_enum_use(a))
    return CheckResult(files, pending, analyses, problems, warnings)


def applied_drift(files: list[MigrationFile], applied: Mapping[str, Applied]
                  ) -> tuple[list[str], dict[str, MigrationError]]:
    """Applied migrations whose file is missing, and those whose file changed since (by name).

    An unreadable file (not UTF-8) counts as changed: its error says why.
    """
    by_name = {f.name: f for f in files}
    missing: list[str] = []
    edited: dict[str, MigrationError] = {}
    for name, row in applied.items():
        mf = by_name.get(name)
        if mf is None:
            missing.append(name)
            continue
        try:
            current = mf.checksum
        except MigrationError as e:
            edited[name] = e
            continue
        if current != row.checksum:
            edited[name] = MigrationError(
                f"edited after it was applied (applied checksum {row.checksum[:12]}, "
                f"file now {current[:12]})",
                location=Location(name),
                hint="restore the applied text; a fix is a new migration (forward-first)",
            )
    return missing, edited


def _same_file_enum_use(a: Analysis) -> list[MigrationError]:
    if not a.transactional:
        return []
    found = []
    for s in a.statements:
        if s.enum_added is None:
            continue
        label = s.enum_added[1]
        literal = "'" + label.replace("'", "''") + "'"
        pos = a.file.executable_text.find(literal, s.end)
        if pos != -1:
            from .analysis import location_of

            found.append(MigrationError(
                f"enum label {label!r} is added and used in one transaction "
                "(PostgreSQL refuses: unsafe use of new value)",
                location=location_of(a.file, pos),
                sqlstate="55P04",
                hint="move the ALTER TYPE ... ADD VALUE into an earlier migration of its own",
            ))
    return found
