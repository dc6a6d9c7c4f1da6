"""Per-resource validators: pure functions from (type, plain inputs, config) to findings.

Config keys are the ones declared in ``catalog.py`` (with their defaults merged in by the caller);
numbers from the engine are floats (``parallelism: 1.0``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import patterns
from .containers import CONTAINER_APP, JOB, Container, containers
from .findings import Finding, unknown_finding
from .values import Unknown, as_list, get

Config = Mapping[str, Any]


def migration_patterns(config: Config) -> list[str]:
    return [*config["migrationCommandPatterns"], *config.get("extraMigrationCommandPatterns", [])]


def migration_command_finding(container: Container, config: Config) -> Finding | None:
    """A finding when the container's command line runs a migration (or cannot be known)."""
    parts, unknown = container.command_parts()
    if unknown is not None:
        return unknown_finding(unknown, "that this container does not run a migration")
    line = patterns.command_line(parts, [])
    why = patterns.detect_migration(
        line, migration_patterns(config),
        word=config.get("migrationWordPattern", patterns.DEFAULT_MIGRATION_WORD_PATTERN),
        safe=config.get("safeCommandPatterns", patterns.DEFAULT_SAFE_COMMAND_PATTERNS),
    )
    if why is None:
        return None
    return Finding(
        message=f"runs a migration ({patterns.redact_command(why)})",
        path=f"{container.path}.command",
    )


def allowed_app_command(name: str, props: Mapping[str, Any], container: Container,
                        config: Config) -> bool:
    """The stack's allow-list names this app (resource, containerAppName or container name) and
    this exact command line (command and args joined by spaces)."""
    parts, unknown = container.command_parts()
    if unknown is not None:
        return False
    line = patterns.command_line(parts, [])
    names = {name, container.name, props.get("containerAppName")}
    for entry in config.get("allowedAppCommands") or []:
        if isinstance(entry, Mapping) and entry.get("app") in names \
                and entry.get("command") == line:
            return True
    return False


def is_migration_job(resource_type: str, name: str, props: Mapping[str, Any], config: Config) -> bool:
    """A Job whose container runs a migration command (or whose name says it is the migration job)."""
    if resource_type != JOB:
        return False
    for item in containers(props, include_init=False):
        if isinstance(item, Container):
            finding = migration_command_finding(item, config)
            if finding is not None and not finding.unknown:
                return True
    pattern = config.get("migrationJobNamePattern")
    if not isinstance(pattern, str) or not pattern:
        return False
    return patterns.compile_patterns([pattern])[0].search(name) is not None


def no_startup_migrations(resource_type: str, name: str, props: Mapping[str, Any],
                          config: Config) -> list[Finding]:
    """Apps must not migrate at start-up: no init containers, no migration command, no enable flag."""
    if resource_type != CONTAINER_APP:
        return []
    findings: list[Finding] = []
    flag = patterns.compile_patterns([config["migrateEnableEnvPattern"]])[0]
    for item in containers(props):
        if isinstance(item, Unknown):
            findings.append(unknown_finding(item, "the app's containers"))
            continue
        if item.init and not config["allowInitContainers"]:
            findings.append(Finding(
                message=(f"init container {item.name!r} runs before every replica starts; apps "
                         "must not have init containers (migrations belong to the migration job)"),
                path=item.path,
            ))
        command = migration_command_finding(item, config)
        if command is not None and (command.unknown
                                    or not allowed_app_command(name, props, item, config)):
            findings.append(command)
        for var in item.env():
            if isinstance(var.name, Unknown):
                findings.append(unknown_finding(var.name, "the app's env var names"))
                continue
            if not isinstance(var.name, str) or not flag.search(var.name):
                continue
            if var.secret_ref is not None:
                findings.append(Finding(
                    message=(f"{var.name} comes from secret {var.secret_ref!r}, so the policy "
                             "cannot verify it is off; set it as a literal 0 or remove it"),
                    path=var.path,
                ))
            elif isinstance(var.value, Unknown):
                findings.append(unknown_finding(var.value, f"that {var.name} is off"))
            elif not (isinstance(var.value, str) and patterns.is_off(var.value)):
                findings.append(Finding(
                    message=f"{var.name}={var.value!r} is not an explicit off and may turn a "
                            "start-up migration on; set it to 0 or remove it",
                    path=f"{var.path}.value",
                ))
    return findings


def migration_job_single_run(resource_type: str, name: str, props: Mapping[str, Any],
                             config: Config) -> list[Finding]:
    """The migration job runs once per start: manual trigger, one replica, no ACA retries."""
    if not is_migration_job(resource_type, name, props, config):
        return []
    findings: list[Finding] = []

    def expect(path: str, wanted: Any, why: str) -> None:
        value = get(props, path)
        if isinstance(value, Unknown):
            findings.append(unknown_finding(value, why))
        elif value != wanted:
            shown = "absent" if value is None else repr(value)
            findings.append(Finding(message=f"is {shown}, must be {wanted!r}: {why}", path=path))

    expect("configuration.triggerType", "Manual", "the job starts only when the gate starts it")
    expect("configuration.manualTriggerConfig.parallelism", 1, "exactly one replica migrates")
    expect("configuration.manualTriggerConfig.replicaCompletionCount", 1,
           "one successful replica completes the execution")
    expect("configuration.replicaRetryLimit", 0,
           "retries belong to the runner, which knows which errors are transient")

    timeout = get(props, "configuration.replicaTimeout")
    job_container = _first_container(props)
    migration_timeout: Any = None
    if job_container is not None:
        for var in job_container.env():
            if var.name == "MIGRATION_TIMEOUT_SECONDS":
                migration_timeout = var.value
    for required in config["requiredEnv"]:
        if job_container is not None and not any(v.name == required for v in job_container.env()):
            findings.append(Finding(message=f"env var {required} is missing",
                                    path=f"{job_container.path}.env"))
    if isinstance(timeout, Unknown):
        findings.append(unknown_finding(timeout, "the replica timeout"))
    elif not isinstance(timeout, int | float):
        findings.append(Finding(message="must be set (seconds)", path="configuration.replicaTimeout"))
    else:
        maximum = config["maxReplicaTimeoutSeconds"]
        if timeout > maximum:
            findings.append(Finding(
                message=f"{timeout:g}s exceeds the maximum {maximum:g}s (maxReplicaTimeoutSeconds)",
                path="configuration.replicaTimeout",
            ))
        if isinstance(migration_timeout, Unknown):
            findings.append(unknown_finding(migration_timeout, "MIGRATION_TIMEOUT_SECONDS"))
        elif isinstance(migration_timeout, str):
            try:
                seconds = float(migration_timeout)
            except ValueError:
                findings.append(Finding(message=f"MIGRATION_TIMEOUT_SECONDS={migration_timeout!r} "
                                        "is not a number", path="template.containers[0].env"))
            else:
                margin = config["timeoutMarginSeconds"]
                if timeout < seconds + margin:
                    findings.append(Finding(
                        message=(f"{timeout:g}s is shorter than MIGRATION_TIMEOUT_SECONDS "
                                 f"({seconds:g}s) + {margin:g}s margin; ACA would kill the runner "
                                 "before its own deadline reports"),
                        path="configuration.replicaTimeout",
                    ))
    return findings


def _first_container(props: Mapping[str, Any]) -> Container | None:
    for item in containers(props, include_init=False):
        if isinstance(item, Container):
            return item
    return None


def pinned_image(resource_type: str, name: str, props: Mapping[str, Any],
                 config: Config) -> list[Finding]:
    """Every container image is pinned by digest (registry/repo@sha256:...)."""
    if resource_type not in (CONTAINER_APP, JOB):
        return []
    allowed = patterns.compile_patterns(config["allowedUnpinnedImagePatterns"])
    findings: list[Finding] = []
    for item in containers(props):
        if isinstance(item, Unknown):
            findings.append(unknown_finding(item, "the container images"))
            continue
        image = item.image
        if isinstance(image, Unknown):
            findings.append(unknown_finding(image, "that the image is pinned by digest"))
        elif not isinstance(image, str) or not image:
            findings.append(Finding(message="has no image", path=f"{item.path}.image"))
        elif not patterns.is_pinned(image) and not any(p.search(image) for p in allowed):
            findings.append(Finding(
                message=f"{image!r} is not pinned by digest; use registry/repo@sha256:<digest>",
                path=f"{item.path}.image",
            ))
    return findings


def no_plaintext_secret_env(resource_type: str, name: str, props: Mapping[str, Any],
                            config: Config) -> list[Finding]:
    """Credentials come from secret references (Key Vault), never from literal env values."""
    if resource_type not in (CONTAINER_APP, JOB):
        return []
    secret_name = patterns.compile_patterns([config["secretEnvNamePattern"]])[0]
    findings: list[Finding] = []
    for item in containers(props):
        if isinstance(item, Unknown):
            findings.append(unknown_finding(item, "the containers' env"))
            continue
        parts, unknown = item.command_parts()
        kind = patterns.credential_in_command(patterns.command_line(parts, []))
        if kind is not None:
            findings.append(Finding(
                message=(f"container {item.name!r} carries {kind} in its command/args; pass it "
                         "through an env var with secretRef (Key Vault) and reference it as "
                         "$NAME"),
                path=f"{item.path}.command",
            ))
        elif unknown is not None:
            findings.append(unknown_finding(unknown, "that the command carries no credential"))
        for var in item.env():
            if isinstance(var.name, Unknown):
                findings.append(unknown_finding(var.name, "the env var names"))
                continue
            if var.value is None:
                continue
            # The decision rests on the name and on `value` being used instead of `secretRef`;
            # both are known even when the value itself is not (a secret output is still a
            # plaintext env value in the app's template).
            if isinstance(var.name, str) and secret_name.search(var.name):
                findings.append(Finding(
                    message=(f"{var.name} is a literal env value; reference an ACA secret "
                             "(secretRef) backed by Key Vault instead"),
                    path=f"{var.path}.value",
                ))
            elif isinstance(var.value, str) and patterns.looks_like_credential(var.value):
                findings.append(Finding(
                    message=f"{var.name} holds a literal credential (password in the value)",
                    path=f"{var.path}.value",
                ))
    if config["requireKeyVaultSecrets"]:
        secrets = get(props, "configuration.secrets")
        if isinstance(secrets, Unknown):
            findings.append(unknown_finding(secrets, "that secrets are Key Vault references"))
        for index, secret in enumerate(as_list(secrets) if not isinstance(secrets, Unknown) else []):
            if isinstance(secret, Mapping) and secret.get("value") is not None:
                findings.append(Finding(
                    message=(f"secret {secret.get('name')!r} holds a literal value; use keyVaultUrl "
                             "with a managed identity"),
                    path=f"configuration.secrets[{index}].value",
                ))
    return findings
