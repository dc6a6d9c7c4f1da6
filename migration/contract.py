"""The contract between the runner inside the migration job and the gate that awaits it.

The gate (``infra.gate``) never runs in the job's container: it reads the runner's environment
names when it builds the Job, the runner's one-line JSON summary from the console logs, and writes
the same ``migration.json`` (``schemas/migration.schema.json``) within the same limits. Every value
both sides must agree on lives here, and both import it, so a rename or a new limit cannot drift
between them. Plain constants only: importing this module costs nothing and pulls in no driver.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ARTIFACT_FILE",
    "BLOCKERS_MAX",
    "BOUNDARY_ENUM_VALUE_USED_LATER",
    "BOUNDARY_NON_TRANSACTIONAL",
    "BOUNDARY_REASONS",
    "ENV_DATABASE_URL",
    "ENV_DIR",
    "ENV_JSON",
    "ENV_LOCK_TIMEOUT",
    "ENV_RELEASE_SHA",
    "ENV_STACK",
    "ENV_STATEMENT_TIMEOUT",
    "ENV_TIMEOUT_SECONDS",
    "EXECUTION_STATUSES",
    "LOG_LINE_MAX",
    "LOG_TAIL",
    "REASON_MAX",
    "SCHEMA_VERSION",
    "SUMMARY_KEYS",
]

# -- environment of the job's container (set by the Pulumi program, read by the runner) ----------
ENV_DATABASE_URL: Final = "DATABASE_URL"
ENV_DIR: Final = "MIGRATION_DIR"
ENV_TIMEOUT_SECONDS: Final = "MIGRATION_TIMEOUT_SECONDS"
ENV_LOCK_TIMEOUT: Final = "MIGRATION_LOCK_TIMEOUT"
ENV_STATEMENT_TIMEOUT: Final = "MIGRATION_STATEMENT_TIMEOUT"
ENV_RELEASE_SHA: Final = "MIGRATION_RELEASE_SHA"
ENV_STACK: Final = "MIGRATION_STACK"
# 1: `up` prints its report as ONE JSON line on stdout, the last line of a run, which reaches
# ContainerAppConsoleLogs_CL; the gate treats its presence as "the log is complete".
ENV_JSON: Final = "MIGRATION_JSON"

# -- the artifact, migration.json ------------------------------------------------------------
ARTIFACT_FILE: Final = "migration.json"
SCHEMA_VERSION: Final = 1
LOG_TAIL: Final = 200  # lines kept in `logs`
LOG_LINE_MAX: Final = 2000  # characters per kept line
REASON_MAX: Final = 4000  # characters of `reason` and of the failing migration's message
BLOCKERS_MAX: Final = 50
# the keys of `executionSummary` (schema: additionalProperties false)
SUMMARY_KEYS: Final = frozenset({"applied", "pending", "skipped", "failing", "boundaries"})
# `executionStatus` values the schema admits; a status ARM adds later is recorded as Unknown
EXECUTION_STATUSES: Final = frozenset({
    "Succeeded", "Failed", "Stopped", "Degraded", "Unknown", "Running", "Processing", "TimedOut",
    "Skipped",
})

# -- why `--single-transaction` committed a group early (executionSummary.boundaries[].reason) ---
BOUNDARY_NON_TRANSACTIONAL: Final = "non-transactional"
BOUNDARY_ENUM_VALUE_USED_LATER: Final = "enum-value-used-later"
BOUNDARY_REASONS: Final = frozenset({BOUNDARY_NON_TRANSACTIONAL, BOUNDARY_ENUM_VALUE_USED_LATER})
