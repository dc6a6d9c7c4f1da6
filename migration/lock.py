"""The runner lock: one session advisory lock per history table, held for the whole run.

It lives in the migration connection's session, so PostgreSQL releases it when that
connection ends, including when the runner is killed. The wait is bounded by the run's
deadline and polls with jittered backoff, so runners started together do not stampede.
"""

from __future__ import annotations

import hashlib
import random
import time
from typing import Any

import psycopg

from .errors import RunnerLockError


def lock_key(schema: str, table: str) -> int:
    digest = hashlib.sha256(f"gated-release:{schema}.{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def acquire(conn: psycopg.Connection[Any], key: int, deadline: float) -> int:
    """Take the lock or raise RunnerLockError at the deadline; returns the wait in ms."""
    started = time.monotonic()
    delay = 0.02
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not conn.autocommit:
            conn.commit()
        if row and row[0]:
            return int((time.monotonic() - started) * 1000)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            waited = int((time.monotonic() - started) * 1000)
            holder = conn.execute(
                "SELECT l.pid, a.application_name, a.client_addr::text FROM pg_locks l"
                " LEFT JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory'"
                " AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = %s AND l.objsubid = 1",
                (key,),
            ).fetchone()
            if not conn.autocommit:
                conn.commit()
            who = f" (held by pid {holder[0]}, {holder[1] or 'unknown application'})" if holder else ""
            raise RunnerLockError(
                f"runner lock not acquired within {waited} ms{who}",
                hint="another migration run is in progress; wait for it or raise "
                     "MIGRATION_TIMEOUT_SECONDS",
            )
        # Full jitter: spreads runners that started together.
        time.sleep(min(remaining, random.uniform(0, delay)))
        delay = min(delay * 2, 1.0)
