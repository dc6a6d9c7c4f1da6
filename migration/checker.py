"""`check`: everything that can be known before a migration runs, reported all at once.

Nothing is applied when a check fails: `up` runs this first and stops on any problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .analysis import Analysis, analyze, label_use
from .errors import CheckError, Location, MigrationError, Problem
from .formats.base import MigrationFile

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    # annotations only: history imports psycopg, and a file-only `check` needs no driver
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
            problems.append(Problem(
                "duplicate-identity",
                f"two migrations differ only by letter case: {seen[key]!r} and {f.name!r}",
                location=Location(f.name),
                hint="rename one; identities must be unique on every file system",
            ))
        seen[key] = f.name

    missing, edited = applied_drift(files, applied)
    warnings += [f"{name} is applied but its file is missing from the directory"
                 for name in missing]
    problems += edited.values()

    pending = [f for f in files if f.name not in applied
               or (f.repeatable and _changed(f, applied[f.name]))]
    if check_order and applied and pending:
        # The tool's order is the files' order (Prisma's is by directory name, not by number).
        position = {f.name: i for i, f in enumerate(files)}
        done = [position[n] for n in applied if n in position and not files[position[n]].repeatable]
        if done:
            newest = files[max(done)]
            for f in pending:
                if not f.repeatable and position[f.name] < max(done):
                    problems.append(Problem(
                        "out-of-order",
                        f"pending migration is older than the newest applied one, "
                        f"{newest.name!r}",
                        location=Location(f.name),
                        hint="rename it with a newer prefix, or run with --no-check-order "
                             "if applying it out of order is intended",
                    ))

    analyses: dict[str, Analysis] = {}
    for f in files if parse_applied else pending:
        try:
            problems.extend(_foreign_markers(f))
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
        if mf.repeatable:
            continue  # a changed repeatable is pending again, not an edit
        try:
            current = mf.checksum
        except MigrationError as e:
            edited[name] = e
            continue
        if current != row.checksum:
            edited[name] = Problem(
                "edited-after-apply", f"edited after it was applied (applied checksum {row.checksum[:12]}, "
                f"file now {current[:12]})",
                location=Location(name),
                hint="restore the applied text; a fix is a new migration (forward-first)",
            )
    return missing, edited


def _changed(f: MigrationFile, row: Applied) -> bool:
    try:
        return f.checksum != row.checksum
    except MigrationError:
        return True


def _foreign_markers(f: MigrationFile) -> list[MigrationError]:
    """Another tool's directives in a file read as this format: running it whole could run
    the part that tool keeps for `down`."""
    foreign = [m for m in f.markers if m.tool != f.format]
    if not foreign:
        return []
    down = next((m for m in foreign if "down" in m.text.lower()), None)
    m = down or foreign[0]
    how = f"read as {f.format}" + (" (detected)" if f.format == "plain" else "")
    return [Problem(
        "down-part-present" if down else "mixed-formats",
        f"carries {m.tool}'s marker {m.text!r} but is {how}: it would run whole"
        + (", its down part included" if down else ""),
        location=Location(f.name, m.line),
        hint=f"if the directory is {m.tool}'s, pass --format {m.tool} (MIGRATION_FORMAT); "
             "otherwise remove the marker and the down part",
    )]


def _same_file_enum_use(a: Analysis) -> list[MigrationError]:
    """A label added to an enum type and used later in the same transaction (55P04).

    Tracked per (type, label): adding one label to two types is fine. A per-statement run
    commits each statement, so its later statements may use the label.
    """
    if not a.transactional:
        return []
    found: list[MigrationError] = []
    for s in a.statements:
        if s.enum_added is None:
            continue
        type_name, label = s.enum_added
        use = label_use(a, type_name, label, after=s.start)
        if use is not None:
            from .analysis import location_of

            literal = "'" + label.replace("'", "''") + "'"
            where = location_of(a.file, use.start + use.sql.find(literal))
            found.append(Problem(
                "enum-added-and-used",
                f"enum label {label!r} is added to {type_name} and used in one transaction "
                "(PostgreSQL refuses: unsafe use of new value)",
                location=where,
                sqlstate="55P04",
                hint="move the ALTER TYPE ... ADD VALUE into an earlier migration of its own",
            ))
    return found
