"""Offline preview: the Pulumi program under a recording mock engine, checked by policy packs.

``run_preview(stack, ...) -> PreviewResult`` is the library entry; ``python -m infra.tools.preview`` the
command. See docs/policies.md.
"""

from .engine import DEFAULT_PACK, PROJECT_ROOT, run_preview
from .errors import (
    PolicyConfigError,
    PolicyPackError,
    PreviewError,
    ProgramError,
    ProjectError,
    UsageError,
)
from .model import LIMITS, PreviewResult, Registration, Violation
from .policypack import EngineServer, PolicyPackProcess

__all__ = [
    "DEFAULT_PACK",
    "LIMITS",
    "PROJECT_ROOT",
    "EngineServer",
    "PolicyConfigError",
    "PolicyPackError",
    "PolicyPackProcess",
    "PreviewError",
    "PreviewResult",
    "ProgramError",
    "ProjectError",
    "Registration",
    "UsageError",
    "Violation",
    "run_preview",
]
