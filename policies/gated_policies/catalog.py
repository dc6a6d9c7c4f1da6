"""The policies of the pack: name, description, severity, remediation, config schema, validator.

Pure data plus references to pure validators, so tests and docs read it without starting a pack.
Every config property has a ``default`` in its schema: the Pulumi CLI fills defaults from the
schema before calling ``Configure``, and :func:`effective_config` does the same for direct callers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import patterns, resource_rules, stack_rules
from .containers import CONTAINER_APP, JOB
from .findings import Finding

ResourceValidator = Callable[[str, str, Mapping[str, Any], Mapping[str, Any]], list[Finding]]
StackValidator = Callable[[Sequence[stack_rules.StackResource], Mapping[str, Any]], list[Finding]]

_STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}

ON_UNKNOWN: dict[str, dict[str, Any]] = {
    "onUnknown": {
        "type": "string",
        "enum": ["violation", "advisory"],
        "default": "violation",
        "description": ("What a value unknown during preview means for this policy: a violation "
                        "at the policy's enforcement level (default), or pulumi-policy's "
                        "advisory 'cannot run during preview' notice."),
    },
}

MIGRATION_COMMANDS: dict[str, dict[str, Any]] = {
    "migrationCommandPatterns": {
        **_STRINGS,
        "default": list(patterns.DEFAULT_MIGRATION_COMMAND_PATTERNS),
        "description": ("Case-insensitive regular expressions matched against a container's "
                        "command and args joined by spaces (shell scripts included)."),
    },
    "extraMigrationCommandPatterns": {
        **_STRINGS,
        "default": [],
        "description": "Patterns added to migrationCommandPatterns (keep the defaults).",
    },
    "migrationWordPattern": {
        "type": "string",
        "default": patterns.DEFAULT_MIGRATION_WORD_PATTERN,
        "description": ("Fail closed: a shell command (split at && || ; |) containing this "
                        "case-sensitive regex (migrate, migrations, db:migrate, migrate.mjs, "
                        "runMigrations) runs a migration, whatever the tool."),
    },
    "safeCommandPatterns": {
        **_STRINGS,
        "default": list(patterns.DEFAULT_SAFE_COMMAND_PATTERNS),
        "description": ("Shell commands with the migration word that are known not to migrate "
                        "(this runner's serve/status/alerts/check/plan)."),
    },
    "migrationJobNamePattern": {
        "type": "string",
        "default": "",
        "description": ("A regex on the Job's resource name that also marks it as the migration "
                        "job (empty: only its command does)."),
    },
}

ALLOW_LIST: dict[str, dict[str, Any]] = {
    "allowedAppCommands": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["app", "command"],
            "additionalProperties": False,
            "properties": {
                "app": {"type": "string", "minLength": 1,
                        "description": "The app: its stack-file name (container name), "
                                       "containerAppName or Pulumi resource name."},
                "command": {"type": "string", "minLength": 1,
                            "description": "The exact command line: command and args joined "
                                           "by single spaces."},
                "reason": {"type": "string", "description": "Why it is not a migration."},
            },
        },
        "default": [],
        "description": ("Per-stack allow-list for false positives: an app whose exact command "
                        "line looks like a migration but is not. Set it on both "
                        "no-startup-migrations and one-migration-path-per-stack."),
    },
}

ENABLE_FLAG: dict[str, dict[str, Any]] = {
    "migrateEnableEnvPattern": {
        "type": "string",
        "default": patterns.DEFAULT_MIGRATE_ENABLE_ENV_PATTERN,
        "description": "Env var names that switch a start-up migration on when truthy.",
    },
}

GATE: dict[str, dict[str, Any]] = {
    "gateResourceTypes": {
        **_STRINGS,
        "default": ["pulumi-python:dynamic*:MigrationRun", "*:*:MigrationRun"],
        "description": "Type tokens (globs) of the migration-run resource.",
    },
    "gateNamePattern": {
        "type": "string",
        "default": "(?i)migration[-_]?run",
        "description": "A regex on the name of a generic dynamic resource that marks the gate.",
    },
}


@dataclass(frozen=True)
class PolicySpec:
    """One policy of the pack."""

    name: str
    description: str
    severity: str  # low | medium | high | critical
    remediation: str
    config: Mapping[str, Mapping[str, Any]]
    resource_validator: ResourceValidator | None = None
    stack_validator: StackValidator | None = None
    resource_types: tuple[str, ...] = field(default=())

    @property
    def kind(self) -> str:
        return "stack" if self.stack_validator is not None else "resource"


POLICIES: tuple[PolicySpec, ...] = (
    PolicySpec(
        name="no-startup-migrations",
        description=("Container apps must not run database migrations at start-up: no init "
                     "containers, no migration command in command/args, no *_DB_MIGRATE_ENABLED "
                     "flag switched on."),
        severity="critical",
        remediation=("Remove the init container / migration command from the app; set "
                     "WEB_DB_MIGRATE_ENABLED=0 (or drop it). Migrations run only in the dedicated "
                     "migration job, which the migration-run resource executes before rollout."),
        config={
            **MIGRATION_COMMANDS, **ENABLE_FLAG, **ALLOW_LIST, **ON_UNKNOWN,
            "allowInitContainers": {
                "type": "boolean", "default": False,
                "description": "Allow init containers that do not run a migration command.",
            },
        },
        resource_validator=resource_rules.no_startup_migrations,
        resource_types=(CONTAINER_APP,),
    ),
    PolicySpec(
        name="migration-job-single-run",
        description=("The migration job runs exactly once per start: manual trigger, "
                     "parallelism 1, one completion, no ACA retries, a replica timeout that "
                     "covers MIGRATION_TIMEOUT_SECONDS plus a margin and stays under a maximum."),
        severity="high",
        remediation=("Set trigger_type='Manual', manual_trigger_config(parallelism=1, "
                     "replica_completion_count=1), replica_retry_limit=0 and replica_timeout >= "
                     "MIGRATION_TIMEOUT_SECONDS + timeoutMarginSeconds on the app.Job; pass "
                     "MIGRATION_TIMEOUT_SECONDS and MIGRATION_RELEASE_SHA in its env."),
        config={
            **MIGRATION_COMMANDS, **ON_UNKNOWN,
            "timeoutMarginSeconds": {"type": "number", "minimum": 0, "default": 30,
                                     "description": "Seconds the replica timeout must exceed "
                                                    "MIGRATION_TIMEOUT_SECONDS by."},
            "maxReplicaTimeoutSeconds": {"type": "number", "minimum": 1, "default": 7200,
                                         "description": "Upper bound for replicaTimeout."},
            "requiredEnv": {**_STRINGS,
                            "default": ["MIGRATION_TIMEOUT_SECONDS", "MIGRATION_RELEASE_SHA"],
                            "description": "Env vars the migration container must define."},
        },
        resource_validator=resource_rules.migration_job_single_run,
        resource_types=(JOB,),
    ),
    PolicySpec(
        name="pinned-image",
        description="Container images of apps and jobs are pinned by digest (repo@sha256:...).",
        severity="high",
        remediation=("Deploy the release image by digest (registry/app@sha256:<digest>), the "
                     "digest the build produced for this commit; tags can move under you."),
        config={
            **ON_UNKNOWN,
            "allowedUnpinnedImagePatterns": {**_STRINGS, "default": [],
                                             "description": "Regexes of images exempt from "
                                                            "pinning (e.g. a public sidecar)."},
        },
        resource_validator=resource_rules.pinned_image,
        resource_types=(CONTAINER_APP, JOB),
    ),
    PolicySpec(
        name="no-plaintext-secret-env",
        description=("Credentials (DATABASE_URL, *PASSWORD*, *TOKEN*, *SECRET*, connection "
                     "strings) reach containers through secret references backed by Key Vault, "
                     "never as literal env values, command or args."),
        severity="critical",
        remediation=("Declare an ACA secret with key_vault_url and the user-assigned identity, "
                     "and reference it from env with secret_ref; remove the literal value."),
        config={
            **ON_UNKNOWN,
            "secretEnvNamePattern": {"type": "string",
                                     "default": patterns.DEFAULT_SECRET_ENV_NAME_PATTERN,
                                     "description": "Env var names that hold credentials."},
            "requireKeyVaultSecrets": {"type": "boolean", "default": True,
                                       "description": "ACA secrets must use keyVaultUrl, not a "
                                                      "literal value."},
        },
        resource_validator=resource_rules.no_plaintext_secret_env,
        resource_types=(CONTAINER_APP, JOB),
    ),
    PolicySpec(
        name="one-migration-path-per-stack",
        description=("A stack migrates its database through exactly one path: the dedicated "
                     "migration job (no second job, no app that migrates at start-up)."),
        severity="critical",
        remediation=("Keep one app.Job running the migration command; remove other migration "
                     "jobs and start-up migrations from apps."),
        config={
            **MIGRATION_COMMANDS, **ENABLE_FLAG, **ALLOW_LIST, **ON_UNKNOWN,
            "requireMigrationJob": {"type": "boolean", "default": True,
                                    "description": "A stack without a migration job violates."},
        },
        stack_validator=stack_rules.one_migration_path,
    ),
    PolicySpec(
        name="apps-gated-on-migration-run",
        description=("Every container app depends, directly or transitively, on the "
                     "migration-run resource, and the migration run depends on the migration "
                     "job, so a failed migration stops the rollout."),
        severity="critical",
        remediation=("Pass opts=ResourceOptions(depends_on=[migration_run]) to every ContainerApp "
                     "(or to a resource they depend on), and depends_on=[job] to the migration run."),
        config={**MIGRATION_COMMANDS, **GATE, **ON_UNKNOWN},
        stack_validator=stack_rules.apps_gated,
    ),
    PolicySpec(
        name="same-release-artifact",
        description=("The apps and the migration job run the same release image (one image per "
                     "commit), so the schema is migrated for the code that rolls out."),
        severity="high",
        remediation=("Build one image per commit and pass the same registry/app@sha256:<digest> "
                     "to every app and to the migration job."),
        config={
            **MIGRATION_COMMANDS, **ON_UNKNOWN,
            "ignoreImagePatterns": {**_STRINGS, "default": [],
                                    "description": "Regexes of images (sidecars) not compared."},
        },
        stack_validator=stack_rules.same_release_artifact,
    ),
)

BY_NAME: Mapping[str, PolicySpec] = {p.name: p for p in POLICIES}


def defaults(spec: PolicySpec) -> dict[str, Any]:
    return {key: schema["default"] for key, schema in spec.config.items() if "default" in schema}


def effective_config(spec: PolicySpec, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Schema defaults overlaid with the given config (what the CLI would send)."""
    merged = defaults(spec)
    merged.update(given or {})
    return merged
