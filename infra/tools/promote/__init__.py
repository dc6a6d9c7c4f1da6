"""Promotion, acceptance, replay and drift: the release logic the GitHub workflows run.

A stack's *ledger* is its ``acceptedReleases`` stack output: ``[{sha, image, acceptedAt}, ...]`` in
acceptance order, carried forward by the Pulumi program. A release is *accepted* on a stack when its
``pulumi up`` and every check after it (API smoke, migration alerts) passed; the workflow then sets
``gated-release:acceptRelease`` and runs ``pulumi up`` again, which appends the release to the
ledger.

Promotion reads the upstream stack's ledger (``gated-release:promotesFrom``); a replay redeploys a
release accepted before. Which release may deploy where is decided by :mod:`infra.release`, the
rule the program itself enforces in ``pulumi up``; this module only gathers the ledgers for it.
Everything that talks to Pulumi goes through two seams: ``--ledger-file`` (stack outputs as JSON,
instead of ``pulumi stack output --json``) and ``--pulumi`` (the executable to run), so all of it
runs offline in tests.
"""

from .backend import (
    EXIT_BACKEND,
    EXIT_DRIFT,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    IMAGE_RE,
    KEY_ACCEPT,
    KEY_FROM,
    KEY_IMAGE,
    KEY_REPLAY,
    KEY_SHA,
    LEDGER_OUTPUT,
    OPS_PATH,
    PROJECT,
    SHA_RE,
    Backend,
    PromoteError,
    Runner,
    check_image,
    check_sha,
    exit_code_of,
)
from .cli import build_parser, main, run
from .drift import (
    DriftFinding,
    api_url,
    deployed_sha,
    drift,
    drift_markdown,
    fetch_status,
    summary_markdown,
)
from .ledger import Resolution, accept, configure, preview_outputs, resolve, verify

__all__ = [
    "Backend",
    "DriftFinding",
    "EXIT_BACKEND",
    "EXIT_DRIFT",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "IMAGE_RE",
    "KEY_ACCEPT",
    "KEY_FROM",
    "KEY_IMAGE",
    "KEY_REPLAY",
    "KEY_SHA",
    "LEDGER_OUTPUT",
    "OPS_PATH",
    "PROJECT",
    "PromoteError",
    "Resolution",
    "Runner",
    "SHA_RE",
    "accept",
    "api_url",
    "build_parser",
    "check_image",
    "check_sha",
    "configure",
    "deployed_sha",
    "drift",
    "drift_markdown",
    "exit_code_of",
    "fetch_status",
    "main",
    "preview_outputs",
    "resolve",
    "run",
    "summary_markdown",
    "verify",
]
