"""From previewed resources to local command lines: the migration Job's and each app's.

What the rehearsal runs is what the program would deploy: command, args and env come from the
*recorded* inputs of the ``azure-native:app:Job`` (found by the policy pack's own definition of a
migration job) and of every ``azure-native:app:ContainerApp``. Adapting them to this machine is
deliberately small and printed: ``python`` becomes this interpreter, ``/app/...`` paths the
project directory, a ``DATABASE_URL``-like secret reference the local database, any other secret
a random local value, and for apps ``0.0.0.0``/the target port become ``127.0.0.1`` and a free
local port (``PORT`` and ``HOST`` set to match).
"""

from __future__ import annotations

import re
import secrets
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.tools.preview import PreviewResult
from infra.tools.preview.model import SECRET_SIG, SECRET_SIG_KEY, UNKNOWN_SENTINELS

__all__ = [
    "APP_TYPE",
    "JOB_TYPE",
    "AppInvocation",
    "Invocation",
    "RehearsalError",
    "app_invocations",
    "invocation",
]

JOB_TYPE = "azure-native:app:Job"
APP_TYPE = "azure-native:app:ContainerApp"
_PYTHON = re.compile(r"^(/usr(/local)?/bin/)?python[0-9.]*$")
_DATABASE_SECRET = re.compile(r"(?i)(database|db)[-_]?(url|uri|dsn|connection)")


class RehearsalError(Exception):
    """The previewed resources cannot be run locally; ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Invocation:
    """A container's command and env, adapted to this machine."""

    urn: str
    name: str
    argv: list[str]
    env: dict[str, str]
    notes: list[str] = field(default_factory=list)

    @property
    def release_sha(self) -> str:
        return self.env.get("MIGRATION_RELEASE_SHA") or self.env.get("RELEASE_SHA") or "local"


@dataclass
class AppInvocation(Invocation):
    """An app: its command plus where it listens locally and how it is probed."""

    port: int | None = None
    health_path: str | None = None
    readiness_path: str | None = None

    @property
    def base_url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port is not None else None


def _plain(value: Any, what: str) -> str:
    if isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG:
        value = value.get("value")
    if isinstance(value, str) and value in UNKNOWN_SENTINELS:
        raise RehearsalError("value-unknown",
                             f"{what} is unknown during preview; the rehearsal needs it known")
    if not isinstance(value, str | int | float | bool):
        raise RehearsalError("value-invalid", f"{what} is not a scalar: {value!r}")
    return str(value)


def _map_path(text: str, root: Path) -> str:
    if text == "/app":
        return str(root)
    return str(root / text[len("/app/"):]) if text.startswith("/app/") else text


def _container(resource: Any) -> dict[str, Any]:
    containers = resource.inputs.get("template", {}).get("containers") or []
    if not containers:
        raise RehearsalError("no-container", f"{resource.urn} has no container")
    container: dict[str, Any] = containers[0]
    return container


def _argv(resource: Any, container: dict[str, Any], root: Path) -> list[str]:
    parts = [_plain(p, f"{resource.name} command") for p in container.get("command") or []]
    parts += [_plain(p, f"{resource.name} args") for p in container.get("args") or []]
    if not parts:
        raise RehearsalError("no-command", f"{resource.urn} has no command (the image's own "
                             "CMD cannot be known offline)")
    return [sys.executable if _PYTHON.match(p) else _map_path(p, root) for p in parts]


def _env(resource: Any, container: dict[str, Any], root: Path, database_url: str,
         local_secrets: dict[str, str], notes: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for var in container.get("env") or []:
        name = _plain(var.get("name"), f"{resource.name} env name")
        if var.get("secretRef") is not None:
            ref = _plain(var["secretRef"], f"{name}.secretRef")
            if name == "DATABASE_URL" or _DATABASE_SECRET.search(ref):
                env[name] = database_url
                notes.append(f"{name}: secret {ref!r} -> the local database")
            else:
                env[name] = local_secrets.setdefault(ref, secrets.token_urlsafe(24))
                notes.append(f"{name}: secret {ref!r} -> a random local value")
            continue
        env[name] = _map_path(_plain(var.get("value"), f"env {name}"), root)
    return env


def _migration_job(result: PreviewResult, pack_dir: Path) -> Any:
    """The Job whose container runs a migration, by the pack's own definition."""
    sys.path.insert(0, str(pack_dir))
    try:
        from gated_policies import (  # type: ignore[import-not-found, unused-ignore]
            BY_NAME,
            effective_config,
            plain,
        )
        from gated_policies.resource_rules import (  # type: ignore[import-not-found, unused-ignore]
            is_migration_job,
        )
    finally:
        sys.path.remove(str(pack_dir))
    config = effective_config(BY_NAME["migration-job-single-run"], None)
    jobs = [r for r in result.resources if r.type == JOB_TYPE
            and is_migration_job(r.type, r.name, plain(r.inputs), config)]
    if len(jobs) != 1:
        raise RehearsalError("migration-job-not-found",
                             f"expected one migration job in the preview, found {len(jobs)}")
    return jobs[0]


def invocation(result: PreviewResult, database_url: str, root: Path,
               artifact_dir: Path, pack_dir: Path) -> Invocation:
    """The previewed migration job's command line and env, for this machine."""
    job = _migration_job(result, pack_dir)
    container = _container(job)
    notes: list[str] = []
    env = _env(job, container, root, database_url, {}, notes)
    env["MIGRATION_ARTIFACT_DIR"] = str(artifact_dir)
    return Invocation(urn=job.urn, name=job.name, argv=_argv(job, container, root), env=env,
                      notes=notes)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _probe(container: dict[str, Any], kind: str) -> str | None:
    for probe in container.get("probes") or []:
        if probe.get("type") == kind and isinstance(probe.get("httpGet"), dict):
            path = probe["httpGet"].get("path")
            return str(path) if path else None
    return None


def app_invocations(result: PreviewResult, database_url: str,
                    root: Path) -> list[AppInvocation]:
    """Every previewed container app's command and env, each on its own 127.0.0.1 port."""
    local_secrets: dict[str, str] = {}
    apps: list[AppInvocation] = []
    for resource in sorted(result.find(APP_TYPE), key=lambda r: r.name):
        container = _container(resource)
        notes: list[str] = []
        argv = _argv(resource, container, root)
        env = _env(resource, container, root, database_url, local_secrets, notes)
        ingress = (resource.inputs.get("configuration") or {}).get("ingress")
        port = None
        if isinstance(ingress, dict) and ingress.get("targetPort") is not None:
            target = _plain(ingress["targetPort"], f"{resource.name} targetPort")
            target = target.removesuffix(".0")
            port = _free_port()
            argv = [_local_bind(a, target, port) for a in argv]
            env.update(PORT=str(port), HOST="127.0.0.1")
            notes.append(f"listens on 127.0.0.1:{port} (targetPort {target})")
        apps.append(AppInvocation(
            urn=resource.urn, name=str(container.get("name") or resource.name), argv=argv,
            env=env, notes=notes, port=port, health_path=_probe(container, "Liveness"),
            readiness_path=_probe(container, "Readiness")))
    return apps


def _local_bind(arg: str, target: str, port: int) -> str:
    if arg == target:
        return str(port)
    arg = arg.replace(f"0.0.0.0:{target}", f"127.0.0.1:{port}")
    return "127.0.0.1" if arg == "0.0.0.0" else arg
