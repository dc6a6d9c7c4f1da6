"""Who blocked a DDL statement: watched while it waits, so a lock timeout can name them."""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from .redact import Redactor

_QUERY = """
SELECT a.pid, a.application_name, a.usename, a.state,
       (extract(epoch FROM now() - a.xact_start) * 1000)::bigint,
       a.wait_event_type || ':' || a.wait_event, left(a.query, 2000)
FROM pg_stat_activity a
WHERE a.pid = ANY (pg_blocking_pids(%s))
ORDER BY a.xact_start NULLS LAST
LIMIT 50
"""


def snapshot(conn: psycopg.Connection[Any], pid: int, redact: Redactor) -> list[dict[str, Any]]:
    rows = conn.execute(_QUERY, (pid,)).fetchall()
    return [
        {
            "pid": r[0],
            "application": r[1] or None,
            "user": r[2],
            "state": r[3],
            "xactAgeMs": r[4],
            "waitEvent": r[5],
            "query": redact(r[6]) if r[6] else None,
        }
        for r in rows
    ]


class BlockerWatch:
    """Polls ``pg_blocking_pids`` of the migration backend while a statement runs.

    After ``lock_timeout`` fires the statement is no longer waiting and PostgreSQL no longer
    reports who blocked it, so the last non-empty observation is kept.
    """

    def __init__(self, conn: psycopg.Connection[Any], pid: int, redact: Redactor,
                 interval_s: float) -> None:
        self.conn = conn
        self.pid = pid
        self.redact = redact
        self.interval_s = interval_s
        self.last: list[dict[str, Any]] = []
        self._busy = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="blocker-watch", daemon=True)
        self._thread.start()

    def arm(self) -> None:
        self.last = []
        self._busy.set()

    def disarm(self) -> None:
        self._busy.clear()

    def close(self) -> None:
        self._stop.set()
        self._busy.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._busy.wait()
            if self._stop.wait(self.interval_s):
                return
            if not self._busy.is_set():
                continue
            try:
                seen = snapshot(self.conn, self.pid, self.redact)
            except psycopg.Error:
                return  # the monitor connection is gone; the run reports without blockers
            if seen:
                self.last = seen
