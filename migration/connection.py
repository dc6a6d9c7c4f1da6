"""Connections: URL validation, the embedded default, redacted errors, pooler refusal."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo

from .errors import ConfigError, ConnectError, PoolerError
from .redact import Redactor

APPLICATION_NAME = "gated-release-migration"
# Azure Database for PostgreSQL runs its built-in PgBouncer on this port, in transaction
# pooling mode: session advisory locks and SET would silently apply to a random backend.
POOLER_PORT = 6432
CONNECT_TIMEOUT_S = 10
# Parameters libpq validates only when connecting, where a typo looks like an outage.
_ENUM_PARAMS = {
    "sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "target_session_attrs": ("any", "read-write", "read-only", "primary", "standby",
                             "prefer-standby"),
}


def check_url(url: str) -> dict[str, Any]:
    """Parse a URL or key=value conninfo; ConfigError (redacted) when malformed."""
    if "://" in url and url.split("://", 1)[0] not in ("postgres", "postgresql"):
        raise ConfigError(
            f"database URL scheme {url.split('://', 1)[0]!r} is not PostgreSQL",
            hint="use postgresql://USER@HOST:5432/DBNAME (password in the URL or PGPASSWORD)",
        )
    try:
        params = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as e:
        raise ConfigError(
            "database URL is malformed: " + Redactor(url)(str(e).splitlines()[0]),
            hint="use postgresql://USER@HOST:5432/DBNAME with the password in the URL "
                 "(percent-encode its special characters)",
        ) from None
    port = str(params.get("port") or "")
    # libpq only rejects a bad port when connecting, where it surfaces as "unreachable"
    # (exit 7) instead of the configuration error it is. A list is for several hosts.
    ports = [p.strip() for p in port.split(",")] if port else []
    bad = next((p for p in ports if p and not p.isdigit()), None)
    if bad is not None:
        raise ConfigError(
            f"database URL port {bad!r} is not a number",
            hint="use postgresql://USER@HOST:5432/DBNAME (password in the URL or PGPASSWORD)",
        )
    for key, allowed in _ENUM_PARAMS.items():
        value = params.get(key)
        if value is not None and str(value) not in allowed:
            raise ConfigError(
                f"database URL {key}={value!r} is not one of {', '.join(allowed)}",
                hint=f"fix the {key} parameter of DATABASE_URL",
            )
    if str(POOLER_PORT) in ports:
        raise PoolerError(
            f"port {POOLER_PORT} is a transaction-pooling PgBouncer: the runner's session lock "
            "would not hold",
            hint="connect the migration job directly to PostgreSQL (port 5432)",
        )
    return params


def embedded_url(directory: Path) -> str:
    from .embedded import ensure_server

    return ensure_server(directory)


def host_name() -> str:
    return socket.gethostname()


def connect(
    url: str,
    redactor: Redactor,
    *,
    autocommit: bool = False,
    timeout_s: float = CONNECT_TIMEOUT_S,
    purpose: str = "migrate",
) -> psycopg.Connection[Any]:
    check_url(url)
    try:
        conn = psycopg.connect(
            url,
            autocommit=autocommit,
            connect_timeout=max(1, int(timeout_s)),
            # A dead peer (failover, dropped NAT entry) must surface in seconds, not after the
            # kernel's default two hours. libpq ignores these for Unix sockets.
            keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
            application_name=f"{APPLICATION_NAME}:{purpose}",
        )
    except psycopg.OperationalError as e:
        first = next((ln for ln in str(e).splitlines() if ln.strip()), "connection failed")
        raise ConnectError(
            "cannot connect to the database: " + redactor(first.strip()),
            hint="check DATABASE_URL (host, port, credentials) and that the server accepts "
                 "connections",
        ) from None
    except psycopg.ProgrammingError as e:
        raise ConfigError("database URL rejected: " + redactor(str(e))) from None
    return conn


def verify_session_pinned(conn: psycopg.Connection[Any], lock_key: int) -> None:
    """Refuse when consecutive transactions do not run on one backend holding our lock.

    Behind a transaction-pooling proxy the backend can change between transactions, so a
    session advisory lock protects nothing. Three round trips prove the session is ours.
    """
    pids = set()
    for _ in range(3):
        row = conn.execute(
            "SELECT pg_backend_pid(), EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
            " AND pid = pg_backend_pid() AND granted"
            " AND ((classid::bigint << 32) | objid::bigint) = %s AND objsubid = 1)",
            (lock_key,),
        ).fetchone()
        if not conn.autocommit:
            conn.commit()
        assert row is not None
        pids.add(row[0])
        if not row[1]:
            raise PoolerError(
                "the runner lock is not visible on this backend: a connection pooler is between "
                "the runner and PostgreSQL",
                hint="connect the migration job directly to PostgreSQL, not through PgBouncer",
            )
    if len(pids) != 1:
        raise PoolerError(
            "consecutive transactions ran on different backends (transaction pooling)",
            hint="connect the migration job directly to PostgreSQL, not through PgBouncer",
        )
