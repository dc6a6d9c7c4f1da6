"""gated-release's embedded migration runner.

Library use::

    from migration import Settings, up
    report, error = up(Settings(database_url=..., release_sha="abc123"), print)
"""

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

__all__ = [
    "CheckError", "ConfigError", "ConnectError", "DeadlineError", "ExecutionError",
    "Interrupted", "LockTimeoutError", "MigrationError", "PoolerError", "RunnerLockError", "Settings",
    "StatementTimeoutError", "resolve", "up",
]
