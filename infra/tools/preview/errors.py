"""Errors of the offline preview, each with a stable ``code``.

::

    PreviewError                      code
    ├── UsageError                    usage-error            bad flag, missing file
    ├── ProjectError                  project-invalid        Pulumi.yaml / stack config unreadable
    ├── PolicyConfigError             policy-config-invalid  policy-pack config JSON rejected
    ├── PolicyPackError               policy-pack-failed     pack did not start or answer
    └── ProgramError                  program-failed         the Pulumi program raised

All of them exit with status 2 from ``python -m infra.tools.preview`` (1 is kept for mandatory
violations).
"""

from __future__ import annotations


class PreviewError(Exception):
    """Root of the preview's errors."""

    code = "preview-error"

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


class UsageError(PreviewError):
    """A flag or a file named on the command line is wrong."""

    code = "usage-error"


class ProjectError(PreviewError):
    """Pulumi.yaml or the stack's config file cannot be used."""

    code = "project-invalid"


class PolicyConfigError(PreviewError):
    """The policy-pack config JSON is malformed or does not match a policy's schema."""

    code = "policy-config-invalid"


class PolicyPackError(PreviewError):
    """The policy pack process did not start or failed an RPC."""

    code = "policy-pack-failed"


class ProgramError(PreviewError):
    """The Pulumi program raised; ``frames`` are the program's own traceback lines."""

    code = "program-failed"

    def __init__(self, message: str, frames: list[str] | None = None, **context: object) -> None:
        super().__init__(message, **context)
        self.frames = frames or []
