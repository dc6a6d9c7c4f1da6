"""The stack's typed configuration, read once and validated once.

``Pulumi.yaml`` declares every key with its type, default and description; this module reads
those declarations (so a default is written in one place only), applies them to the raw values
the engine passes (strings; JSON for arrays), and builds a frozen :class:`StackConfig`. Any
problem raises :class:`~infra.errors.ConfigError` naming the key, the stack and the expected form,
so ``pulumi preview`` stops before a single resource is registered.

``load_config(stack, raw)`` is the pure core (tests and the offline preview call it);
``from_pulumi()`` is the edge that reads the engine's config.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import yaml

from infra.appspec import SECRET_URI, SIZES, AppDefaults, AppSpec, ContainerSize, parse_apps
from infra.errors import ConfigError

__all__ = [
    "PROJECT",
    "PROJECT_FILE",
    "SIZES",
    "AppSpec",
    "ContainerSize",
    "StackConfig",
    "check_ci_stage_timeout",
    "ci_stage_seconds_needed",
    "declared_keys",
    "from_pulumi",
    "load_config",
    "load_stack_file",
]

PROJECT = "gated-release"
PROJECT_FILE = Path(__file__).resolve().parent.parent / "Pulumi.yaml"

MIGRATION_TIMEOUT_BOUNDS = (60, 7200)
MIGRATION_MARGIN_BOUNDS = (30, 900)
GATE_START_ALLOWANCE_BOUNDS = (0, 900)
RETENTION_BOUNDS = (30, 730)
CI_STAGE_TIMEOUT_BOUNDS = (10, 360)  # minutes; 360 is GitHub's limit for a hosted job
# After its deadline the gate may still stop the execution (60 s) and, on a failure, wait for a
# complete console log (180 s): GateRequest.stop_wait_seconds + logs_wait_seconds.
GATE_AFTER_DEADLINE_SECONDS = 240
# The rest of a stage job: installs, the second `pulumi up`, smoke, alerts, the logs follow-up.
CI_STAGE_OTHER_STEPS_SECONDS = 1200

_SHA = re.compile(r"^[0-9a-f]{7,64}$")
# registry host, repository path, then an optional tag and/or a sha256 digest
_IMAGE = re.compile(
    r"^(?P<registry>[a-z0-9.-]+(?::[0-9]+)?)/(?P<repository>[a-z0-9._/-]+)"
    r"(?::(?P<tag>[A-Za-z0-9_.-]{1,128}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
_ARM_ID = re.compile(r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[^/]+/providers/.+/[^/]+$")
_SECRET_URI = SECRET_URI
_PG_DURATION = re.compile(r"^[0-9]+(us|ms|s|min|h|d)?$")
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_STACK = re.compile(r"^[A-Za-z0-9_.-]+$")
_URL_ROOT = re.compile(r"^https?://[^\s/]+/?$")
# plain http is for a local test server only; a bearer token never crosses the network in clear
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class StackConfig:
    """Everything the program reads from the stack configuration, validated."""

    stack: str
    release_sha: str
    release_image: str
    registry_server: str
    registry_id: str
    key_vault_id: str
    database_url_secret_uri: str
    location: str
    name_prefix: str
    apps: tuple[AppSpec, ...]
    migration_timeout_seconds: int
    migration_timeout_margin_seconds: int
    gate_start_allowance_seconds: int
    migration_lock_timeout: str
    migration_statement_timeout: str
    migration_single_transaction: bool
    migration_command: tuple[str, ...]  # empty: the runner's own command
    migration_args: tuple[str, ...]
    migration_job_size: ContainerSize
    log_retention_days: int
    gate_logs_from_workspace: bool
    arm_endpoint: str
    artifact_dir: str
    pulumi_org: str
    promotes_from: str | None
    accept_release: str | None
    replay: bool

    @property
    def replica_timeout_seconds(self) -> int:
        """The job's replicaTimeout: the run's deadline plus a margin."""
        return self.migration_timeout_seconds + self.migration_timeout_margin_seconds

    @property
    def gate_deadline_seconds(self) -> int:
        """How long the gate waits: replicaTimeout plus the start allowance.

        ACA's replica clock starts when the replica starts, the gate's before ``begin_start``;
        the allowance makes ACA's own timeout fire first.
        """
        return self.replica_timeout_seconds + self.gate_start_allowance_seconds

    def resource_name(self, suffix: str) -> str:
        return f"{self.name_prefix}-{self.stack}-{suffix}"

    def stack_ref(self, stack: str) -> str:
        """Fully qualified name of a stack of this project: ``<org>/gated-release/<stack>``."""
        return f"{self.pulumi_org}/{PROJECT}/{stack}"


@cache
def _declarations() -> Mapping[str, Mapping[str, Any]]:
    data = yaml.safe_load(PROJECT_FILE.read_text(encoding="utf-8"))
    return dict(data.get("config") or {})


def declared_keys() -> tuple[str, ...]:
    """The config keys declared in ``Pulumi.yaml`` (without the project namespace)."""
    return tuple(_declarations())


def load_stack_file(path: Path) -> dict[str, Any]:
    """The ``gated-release:`` keys of a ``Pulumi.<stack>.yaml`` file, namespace stripped."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    prefix = PROJECT + ":"
    return {
        k[len(prefix) :]: v for k, v in (data.get("config") or {}).items() if k.startswith(prefix)
    }


class _Reader:
    """Typed access to raw values with the declared defaults; errors name key and stack."""

    def __init__(self, stack: str, raw: Mapping[str, Any]) -> None:
        self.stack = stack
        self.raw = raw
        unknown = sorted(set(raw) - set(_declarations()))
        if unknown:
            self.fail(unknown[0], "a key declared in Pulumi.yaml (unknown key; typo?)")

    def fail(self, key: str, expected: str, got: Any = None, field: str | None = None) -> NoReturn:
        shown = "" if got is None else f", got {got!r}"
        where = f"{key}.{field}" if field else key
        fix = (f"fix it under {PROJECT}:{key} in Pulumi.{self.stack}.yaml" if field
               else f"fix it with: pulumi config set {key} <value> --stack {self.stack}")
        context = {"key": key, "stack": self.stack}
        if field:
            context["field"] = field
        raise ConfigError(
            "config-invalid",
            f"{PROJECT}:{where} in stack '{self.stack}' must be {expected}{shown}; {fix}",
            **context,
        )

    def _value(self, key: str) -> Any:
        if key in self.raw and self.raw[key] is not None:
            return self.raw[key]
        decl = _declarations()[key]
        if "default" not in decl:
            raise ConfigError(
                "config-missing",
                f"{PROJECT}:{key} is required in stack '{self.stack}' ({decl.get('description', '')}"
                f"); set it with: pulumi config set {key} <value> --stack {self.stack}",
                key=key,
                stack=self.stack,
            )
        return decl["default"]

    def string(self, key: str, pattern: re.Pattern[str] | None = None, expected: str = "") -> str:
        value = self._value(key)
        if not isinstance(value, str):
            self.fail(key, "a string", value)
        if pattern is not None and not pattern.match(value):
            self.fail(key, expected, value)
        return value

    def optional(self, key: str, pattern: re.Pattern[str], expected: str) -> str | None:
        value = self.string(key)
        if value == "":
            return None
        if not pattern.match(value):
            self.fail(key, expected, value)
        return value

    def integer(self, key: str, bounds: tuple[int, int]) -> int:
        value = self._value(key)
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(key, f"an integer in {bounds[0]}..{bounds[1]}", value)
        if not bounds[0] <= value <= bounds[1]:
            self.fail(key, f"an integer in {bounds[0]}..{bounds[1]}", value)
        return value

    def boolean(self, key: str) -> bool:
        value = self._value(key)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            self.fail(key, "true or false", value)
        return value

    def strings(self, key: str) -> list[str]:
        value = self._value(key)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                self.fail(key, "a JSON array of strings", value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, "an array of strings", value)
        return list(value)

    def size(self, key: str) -> ContainerSize:
        name = self.string(key)
        if name not in SIZES:
            self.fail(key, "one of " + ", ".join(SIZES), name)
        return SIZES[name]


def _apps(r: _Reader) -> tuple[AppSpec, ...]:
    value = r._value("apps")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            r.fail("apps", "a JSON map of app name to spec", value)
    min_replicas = r.integer("minReplicas", (0, 30))
    max_replicas = r.integer("maxReplicas", (1, 300))
    if max_replicas < min_replicas:
        r.fail("maxReplicas", f"at least minReplicas ({min_replicas})", max_replicas)
    defaults = AppDefaults(
        target_port=r.integer("targetPort", (1, 65535)),
        health_path=r.string("healthPath", re.compile(r"^/[A-Za-z0-9/._-]*$"),
                             "an absolute URL path"),
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        size=r.size("defaultAppSize"),
    )
    return parse_apps(value, defaults, r.fail)


def _arm_endpoint(r: _Reader) -> str:
    expected = (
        "an https URL with no path (e.g. https://management.azure.com); plain http only for a "
        "loopback test server (127.0.0.1, localhost, ::1)"
    )
    value = r.string("armEndpoint", _URL_ROOT, expected)
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        r.fail("armEndpoint", expected, value)
    if not host or (parts.scheme != "https" and host not in _LOOPBACK):
        r.fail("armEndpoint", expected, value)
    return value


def load_config(stack: str, raw: Mapping[str, Any]) -> StackConfig:
    """Validate ``raw`` (keys without the project namespace) for ``stack``; one error at a time."""
    if not _NAME.match(stack):
        raise ConfigError(
            "config-invalid",
            f"stack name {stack!r} must be lowercase letters, digits and dashes (it names ACA "
            "resources)",
            stack=stack,
        )
    r = _Reader(stack, raw)
    sha = r.string("releaseSha", _SHA, "a git commit SHA (7 to 64 lowercase hex characters)")
    image = r.string(
        "releaseImage", _IMAGE, "<registry>/<repository>@sha256:<64 hex> (a digest-pinned image)"
    )
    match = _IMAGE.match(image)
    assert match is not None  # checked just above
    require_digest = r.boolean("requireImageDigest")
    production = stack == "prod" or stack.startswith("prod-")
    if production and not require_digest:
        r.fail("requireImageDigest", "true in a production stack (prod never deploys a tag)", False)
    if match["digest"] is None and (require_digest or production):
        r.fail(
            "releaseImage",
            "pinned by digest, <registry>/<repository>@sha256:<64 hex> (a tag can move; "
            "apps and the migration job must run the same bytes)",
            image,
        )
    arm_id = "an ARM resource ID (/subscriptions/<guid>/resourceGroups/<rg>/providers/...)"
    secret = "a Key Vault secret URI (https://<vault>.vault.azure.net/secrets/<name>[/<version>])"
    prefix = r.string("namePrefix", _NAME, "lowercase letters, digits and dashes")
    apps = _apps(r)
    longest = max([*(len(a.name) for a in apps), len("migrate")])
    if len(f"{prefix}-{stack}-") + longest > 32:
        r.fail(
            "namePrefix",
            "short enough that <prefix>-<stack>-<app> fits ACA's 32 characters",
            prefix,
        )
    promotes_from = r.optional("promotesFrom", _STACK, "a stack name of this project")
    if promotes_from == stack:
        r.fail("promotesFrom", "another stack (a stack cannot promote from itself)", promotes_from)
    arm_endpoint = _arm_endpoint(r)
    cfg = StackConfig(
        stack=stack,
        release_sha=sha,
        release_image=image,
        registry_server=match["registry"],
        registry_id=r.string("registryId", _ARM_ID, arm_id),
        key_vault_id=r.string("keyVaultId", _ARM_ID, arm_id),
        database_url_secret_uri=r.string("databaseUrlSecretUri", _SECRET_URI, secret),
        location=r.string("location", re.compile(r"^[a-z0-9]+$"), "an Azure region name"),
        name_prefix=prefix,
        apps=apps,
        migration_timeout_seconds=r.integer("migrationTimeoutSeconds", MIGRATION_TIMEOUT_BOUNDS),
        migration_timeout_margin_seconds=r.integer(
            "migrationTimeoutMarginSeconds", MIGRATION_MARGIN_BOUNDS
        ),
        gate_start_allowance_seconds=r.integer(
            "gateStartAllowanceSeconds", GATE_START_ALLOWANCE_BOUNDS
        ),
        migration_lock_timeout=r.string(
            "migrationLockTimeout", _PG_DURATION, "a PostgreSQL duration (500ms, 5s, 1min)"
        ),
        migration_statement_timeout=r.string(
            "migrationStatementTimeout", _PG_DURATION, "a PostgreSQL duration (30s, 10min)"
        ),
        migration_single_transaction=r.boolean("migrationSingleTransaction"),
        migration_command=tuple(r.strings("migrationCommand")),
        migration_args=tuple(r.strings("migrationArgs")),
        migration_job_size=r.size("migrationJobSize"),
        log_retention_days=r.integer("logRetentionDays", RETENTION_BOUNDS),
        gate_logs_from_workspace=r.boolean("gateLogsFromWorkspace"),
        arm_endpoint=arm_endpoint.rstrip("/"),
        artifact_dir=r.string("artifactDir", re.compile(r"^[^\0]+$"), "a directory path"),
        pulumi_org=r.string("pulumiOrg", re.compile(r"^[A-Za-z0-9_.-]+$"), "a Pulumi org name"),
        promotes_from=promotes_from,
        accept_release=r.optional("acceptRelease", _SHA, "a release SHA or empty"),
        replay=r.boolean("replay"),
    )
    check_ci_stage_timeout(r, cfg)
    return cfg


def ci_stage_seconds_needed(cfg: StackConfig) -> int:
    """The longest a stage job can take with this config (the rule in Pulumi.yaml)."""
    return cfg.gate_deadline_seconds + GATE_AFTER_DEADLINE_SECONDS + CI_STAGE_OTHER_STEPS_SECONDS


def check_ci_stage_timeout(r: _Reader, cfg: StackConfig) -> None:
    """The migration deadline and its margins must fit the CI stage job's ``timeout-minutes``.

    Otherwise GitHub kills the job (and the gate in it) while the execution runs on unwatched.
    """
    minutes = r.integer("ciStageTimeoutMinutes", CI_STAGE_TIMEOUT_BOUNDS)
    needed = ci_stage_seconds_needed(cfg)
    if needed > minutes * 60:
        fixed = needed - cfg.migration_timeout_seconds
        r.fail(
            "migrationTimeoutSeconds",
            f"at most {minutes * 60 - fixed} so that it + migrationTimeoutMarginSeconds "
            f"({cfg.migration_timeout_margin_seconds}) + gateStartAllowanceSeconds "
            f"({cfg.gate_start_allowance_seconds}) + the gate's stop and log waits "
            f"({GATE_AFTER_DEADLINE_SECONDS}) + the stage's other steps "
            f"({CI_STAGE_OTHER_STEPS_SECONDS}) fit ciStageTimeoutMinutes ({minutes} min, the "
            "stage job's timeout-minutes in .github/workflows/stage.yml); or raise both",
            cfg.migration_timeout_seconds,
        )


def from_pulumi() -> StackConfig:
    """Read the engine's config for the current stack (the program's edge)."""
    import pulumi

    cfg = pulumi.Config(PROJECT)
    raw = {key: cfg.get(key) for key in declared_keys()}
    return load_config(pulumi.get_stack(), {k: v for k, v in raw.items() if v is not None})
