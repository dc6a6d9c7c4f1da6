"""Exceptions raised by the runner, each with a stable machine-readable code.

The tree (every class carries ``.code``, the artifact's ``reasonCode``, and ``.exit_code``)::

    MigrationError
    ├── ConfigError                 usage/config: bad flag, bad URL, missing directory   exit 2
    ├── CheckError                  files or history invalid; nothing applied             exit 3
    │   └── PartiallyAppliedError   a per-statement migration stopped part-way: resolve   exit 3
    ├── Problem                     one check problem; ``code`` names it (PROBLEM_CODES)  exit 3
    ├── ConnectError                database unreachable                                  exit 7
    │   └── PoolerError             transaction-pooling proxy: session locks would lie    exit 7
    ├── RunnerLockError             runner lock not acquired within the deadline          exit 4
    ├── ExecutionError              a migration failed; its transaction rolled back       exit 1
    │   ├── StatementTimeoutError   SQLSTATE 57014 from statement_timeout                 exit 1
    │   └── LockTimeoutError        SQLSTATE 55P03 (or 40P01) after bounded retries       exit 5
    ├── DeadlineError               MIGRATION_TIMEOUT_SECONDS exceeded                    exit 6
    └── Interrupted                 SIGTERM, Ctrl-C or an internal error part-way         exit 143

Errors that point into a migration file carry ``file``, ``line`` and ``column`` (1-based);
errors from PostgreSQL carry ``sqlstate``. ``str(err)`` is one line that says what to do.
"""

from __future__ import annotations

from .value import Value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Any

EXIT_OK = 0
EXIT_SQL_FAILED = 1
EXIT_USAGE = 2
EXIT_CHECK_FAILED = 3
EXIT_RUNNER_LOCK = 4
EXIT_LOCK_TIMEOUT = 5
EXIT_DEADLINE = 6
EXIT_UNREACHABLE = 7
EXIT_CRITICAL = 8
EXIT_INTERRUPTED = 143  # 128 + SIGTERM, as a shell reports a terminated process


class Location(Value):
    """A place in a migration file; line and column are 1-based."""

    __slots__ = ("file", "line", "column")
    file: str
    line: int | None
    column: int | None

    def __init__(self, file: str, line: int | None = None, column: int | None = None) -> None:
        self._set(file=file, line=line, column=column)

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


class MigrationError(Exception):
    code: str = "sql-failed"
    exit_code: int = EXIT_SQL_FAILED

    def __init__(
        self,
        message: str,
        *,
        location: Location | None = None,
        sqlstate: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.sqlstate = sqlstate
        self.hint = hint

    def __str__(self) -> str:
        parts = []
        if self.location is not None:
            parts.append(f"{self.location}: ")
        parts.append(self.message)
        if self.sqlstate:
            parts.append(f" (SQLSTATE {self.sqlstate})")
        if self.hint:
            parts.append(f"; {self.hint}")
        return "".join(parts)

    def as_dict(self) -> dict[str, Any]:
        loc = self.location
        return {
            "code": self.code,
            "message": self.message,
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
            "sqlstate": self.sqlstate,
            "hint": self.hint,
        }


class ConfigError(MigrationError):
    code = "config-error"
    exit_code = EXIT_USAGE


class CheckError(MigrationError):
    """One or more problems found before execution; ``problems`` lists them all."""

    code = "check-failed"
    exit_code = EXIT_CHECK_FAILED

    def __init__(self, problems: list[MigrationError]) -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(
            first.message + more,
            location=first.location,
            sqlstate=first.sqlstate,
            hint=first.hint,
        )
        self.problems = problems


PROBLEM_CODES = frozenset({
    "name-invalid", "not-utf8", "empty-file", "syntax-error", "duplicate-identity",
    "edited-after-apply", "out-of-order", "down-part-present", "mixed-formats",
    "non-transactional-mixed", "enum-added-and-used", "copy-stdin", "go-migration",
    "transaction-control", "unsupported-directive", "journal-invalid", "partially-applied",
    "adoption-required", "applied-file-missing", "non-sql-migration",
    # adoption (9B): what another tool's history can hold that adoption refuses
    "dirty-history", "failed-migration", "checksum-mismatch", "unsupported-history-row",
})
"""The stable codes of check problems (``check --json``, the artifact's ``failing.code``)."""


class Problem(MigrationError):
    """One thing `check` found wrong; its ``code`` (one of PROBLEM_CODES) says which."""

    exit_code = EXIT_CHECK_FAILED

    def __init__(self, code: str, message: str, *, location: Location | None = None,
                 sqlstate: str | None = None, hint: str | None = None) -> None:
        if code not in PROBLEM_CODES:
            raise ValueError(f"unknown problem code {code!r}")
        super().__init__(message, location=location, sqlstate=sqlstate, hint=hint)
        self.code = code


class PartiallyAppliedError(CheckError):
    """A migration run statement by statement stopped part-way; `resolve` decides."""

    code = "partially-applied"


class ConnectError(MigrationError):
    code = "database-unreachable"
    exit_code = EXIT_UNREACHABLE


class PoolerError(ConnectError):
    code = "pooler-unsupported"


class RunnerLockError(MigrationError):
    code = "runner-lock-not-acquired"
    exit_code = EXIT_RUNNER_LOCK


class ExecutionError(MigrationError):
    code = "sql-failed"
    exit_code = EXIT_SQL_FAILED


class StatementTimeoutError(ExecutionError):
    code = "statement-timeout"


class LockTimeoutError(ExecutionError):
    code = "lock-timeout"
    exit_code = EXIT_LOCK_TIMEOUT


class DeadlineError(MigrationError):
    code = "deadline-exceeded"
    exit_code = EXIT_DEADLINE


class Interrupted(MigrationError):
    """SIGTERM, Ctrl-C or an internal error stopped the run part-way."""

    code = "interrupted"
    exit_code = EXIT_INTERRUPTED
