"""``python -m infra.tools.rehearse`` (``make rehearse``): the whole gated deploy, locally.

Offline preview with the policy pack, then the previewed migration Job's own command against an
embedded PostgreSQL, and only when it succeeded every previewed app's own command on 127.0.0.1,
the API smoke check (``.artifacts/deploy/<sha>/api-smoke.json``), the runner's status, and the
apps stopped. ``--fail`` (``make rehearse-fail``) rehearses a broken migration in a scratch copy:
the rollout stops before any app starts. See docs/apps.md.
"""

from infra.tools.rehearse.invocation import (
    AppInvocation,
    Invocation,
    RehearsalError,
    app_invocations,
    invocation,
)
from infra.tools.rehearse.pipeline import EXIT_APPS, EXIT_SMOKE, Options, Rehearsal, rehearse

__all__ = [
    "EXIT_APPS",
    "EXIT_SMOKE",
    "AppInvocation",
    "Invocation",
    "Options",
    "RehearsalError",
    "Rehearsal",
    "app_invocations",
    "invocation",
    "rehearse",
]
