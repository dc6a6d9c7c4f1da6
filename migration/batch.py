"""Send several statements in one round trip and know exactly which one failed.

A migration is sent as one simple-query message (``SET LOCAL`` timeouts, its statements,
its history row), so applying it costs one network round trip whatever its length; psql
pays one per statement. PostgreSQL answers with one result per statement and stops at the
first error, so the number of results before the error is the failing statement's index.
Waiting uses ``select`` on the socket, which releases the GIL for the blocker watch and
keeps the runner interruptible.
"""

from __future__ import annotations

import select
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq

_OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.EMPTY_QUERY)
_COPY = (pq.ExecStatus.COPY_IN, pq.ExecStatus.COPY_OUT, pq.ExecStatus.COPY_BOTH)
CANCEL_GRACE_S = 5.0


@dataclass(frozen=True)
class Piece:
    sql: str
    origin: Any = None
    """What the piece stands for (a file statement, or None for the runner's own SQL)."""


@dataclass
class BatchFailure(Exception):
    piece: Piece
    offset: int | None
    """0-based character offset of the error inside ``piece.sql``, when PostgreSQL gives one."""
    sqlstate: str | None
    message: str
    lost_connection: bool = False
    deadline_exceeded: bool = False
    """The client cancelled (or abandoned) the query at the run's deadline."""

    def __str__(self) -> str:
        return f"{self.message} (SQLSTATE {self.sqlstate})"


def _field(res: pq.abc.PGresult, f: pq.DiagnosticField) -> str | None:
    v = res.error_field(f)
    return v.decode("utf-8", "replace") if v is not None else None


def run(conn: psycopg.Connection[Any], pieces: list[Piece], *,
        deadline: float | None = None) -> list[list[tuple[Any, ...]]]:
    """Execute ``pieces`` as one message; return the rows of each piece's result.

    The connection must be in autocommit mode: the pieces carry their own BEGIN/COMMIT.
    Raises BatchFailure naming the piece that failed. At ``deadline`` (a ``time.monotonic``
    value) the query is cancelled on the server, and the connection closed if the server
    does not answer within ``CANCEL_GRACE_S``: a half-open connection must not outlive the
    run's one deadline.
    """
    # A newline before each ";" so a trailing line comment cannot swallow it.
    text = "\n;\n".join(p.sql for p in pieces)
    starts, pos = [], 0
    for p in pieces:
        starts.append(pos)
        pos += len(p.sql) + 3
    pg = conn.pgconn
    try:
        pg.send_query(text.encode("utf-8"))
        while pg.flush():
            select.select([], [pg.socket], [])
        results: list[pq.abc.PGresult] = []
        cancelled_at: float | None = None
        while True:
            while pg.is_busy():
                wait = 1.0
                if deadline is not None:
                    now = time.monotonic()
                    if cancelled_at is None and now >= deadline:
                        cancelled_at = now
                        try:
                            conn.cancel_safe(timeout=CANCEL_GRACE_S)
                        except psycopg.Error:
                            _abandon(conn, pieces)
                    elif cancelled_at is not None and now - cancelled_at > CANCEL_GRACE_S:
                        _abandon(conn, pieces)
                    wait = max(0.01, min(wait, deadline - now if cancelled_at is None else 0.2))
                select.select([pg.socket], [], [], wait)
                pg.consume_input()
            res = pg.get_result()
            if res is None:
                break
            if res.status in _COPY:
                # COPY FROM STDIN / TO STDOUT would wait for data that never comes (or
                # stream a table into memory); `check` refuses these, this is the backstop.
                conn.close()
                raise BatchFailure(pieces[min(len(results), len(pieces) - 1)], None, None,
                                   "COPY FROM STDIN / TO STDOUT cannot run in a migration; "
                                   "the connection was closed and nothing committed",
                                   lost_connection=False)
            results.append(res)
    except psycopg.OperationalError as e:
        raise BatchFailure(pieces[0], None, None, str(e).splitlines()[0] if str(e) else
                           "connection lost", lost_connection=True) from None
    rows: list[list[tuple[Any, ...]]] = []
    for i, res in enumerate(results):
        if res.status in _OK:
            rows.append(_rows(res))
            continue
        if res.status == pq.ExecStatus.FATAL_ERROR:
            piece = pieces[min(i, len(pieces) - 1)]
            state = _field(res, pq.DiagnosticField.SQLSTATE)
            position = _field(res, pq.DiagnosticField.STATEMENT_POSITION)
            offset = None
            if position and position.isdigit():
                # PostgreSQL counts characters from 1 over the whole message.
                offset = max(0, int(position) - 1 - starts[min(i, len(starts) - 1)])
            raise BatchFailure(
                piece, offset, state,
                _field(res, pq.DiagnosticField.MESSAGE_PRIMARY) or "error",
                lost_connection=pg.status != pq.ConnStatus.OK,
                deadline_exceeded=cancelled_at is not None and state == "57014")
        # COPY and the like are not migration material; refuse instead of hanging.
        raise BatchFailure(pieces[min(i, len(pieces) - 1)], None, None,
                           f"unsupported result {pq.ExecStatus(res.status).name}")
    if pg.status != pq.ConnStatus.OK:
        raise BatchFailure(pieces[-1], None, None, "connection lost", lost_connection=True)
    return rows


def _abandon(conn: psycopg.Connection[Any], pieces: list[Piece]) -> None:
    """The server did not take the cancel: drop the connection (the server rolls back)."""
    conn.close()
    raise BatchFailure(pieces[0], None, "57014",
                       "the server did not answer the cancel at the deadline; the connection "
                       "was closed", lost_connection=True, deadline_exceeded=True)


def _rows(res: pq.abc.PGresult) -> list[tuple[Any, ...]]:
    out = []
    for r in range(res.ntuples):
        out.append(tuple(
            None if (v := res.get_value(r, c)) is None else v.decode("utf-8")
            for c in range(res.nfields)))
    return out
