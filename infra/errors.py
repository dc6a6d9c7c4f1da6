"""Exceptions raised by the Pulumi program, the release ledger logic and the migration gate.

Every error carries a stable, machine-readable ``code`` (tests and CI assert on it, never on the
message) and a one-line message that says what to do::

    InfraError                 root; .code, .context
    ├── ConfigError            stack configuration invalid (code: config-invalid, config-missing)
    ├── ReleaseError           promotion/replay refused (codes: release-*)
    └── GateError              the migration gate failed; .code is the artifact's ``reasonCode``
                               (execution-failed, execution-stopped, execution-degraded,
                               execution-timeout, execution-unknown, start-failed, azure-api-error)
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConfigError", "GateError", "InfraError", "ReleaseError"]


class InfraError(Exception):
    """Root of the infra package's errors: a stable ``code`` plus context fields."""

    def __init__(self, code: str, message: str, **context: Any) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message
        self.context = context


class ConfigError(InfraError):
    """A stack configuration value is missing or has the wrong form."""


class ReleaseError(InfraError):
    """The release may not be deployed to this stack (promotion or replay refused)."""


class GateError(InfraError):
    """The migration job execution did not succeed; the apps must not roll out."""

    @property
    def reason_code(self) -> str:
        return self.code
