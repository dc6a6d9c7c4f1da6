"""gated-release's embedded migration runner.

Library use::

    from migration import Settings, up
    report, error = up(Settings(database_url=..., release_sha="abc123"), print)

The names below are resolved on first use (PEP 562): ``python -m migration`` imports this
package before every command, and a command that reads only files (``--help``, ``new``,
``check``) must not pay for the runner and the database driver it would otherwise pull in.
"""

from __future__ import annotations

from importlib import import_module

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Any

    from .errors import (
        CheckError,
        ConfigError,
        ConnectError,
        DeadlineError,
        ExecutionError,
        Interrupted,
        LockTimeoutError,
        MigrationError,
        PoolerError,
        RunnerLockError,
        StatementTimeoutError,
    )
    from .runner import up
    from .settings import Settings, resolve

# public name -> the submodule that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys((
        "CheckError", "ConfigError", "ConnectError", "DeadlineError", "ExecutionError",
        "Interrupted", "LockTimeoutError", "MigrationError", "PoolerError", "RunnerLockError",
        "StatementTimeoutError"), "errors"),
    "up": "runner",
    "Settings": "settings",
    "resolve": "settings",
}

__all__ = [
    "CheckError", "ConfigError", "ConnectError", "DeadlineError", "ExecutionError",
    "Interrupted", "LockTimeoutError", "MigrationError", "PoolerError", "RunnerLockError", "Settings",
    "StatementTimeoutError", "resolve", "up",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'migration' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
