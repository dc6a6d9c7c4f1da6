"""The per-app spec: one container app of a stack, as its stack file describes it.

``gated-release:apps`` maps an app name to its spec: ``command`` and ``args`` (what the release
image runs in this role), ``targetPort``, ``ingress`` (``external``, ``internal`` or ``none``),
``healthPath`` and ``readinessPath``, plain ``env``, ``secretEnv`` (env name -> Key Vault secret
URI, read by the workload identity; never a literal), ``minReplicas``/``maxReplicas`` and ``size``
(a name from :data:`SIZES` or ``{cpu, memory}``, one of ACA's consumption pairs). Every field but
``command`` has a stack-wide default (``targetPort``, ``healthPath``, ``minReplicas``,
``maxReplicas``, ``defaultAppSize`` in ``Pulumi.yaml``), so a stack file stays short.
:func:`parse_apps` validates the whole map once and reports the first problem through the
config reader's ``fail``, naming ``apps.<app>.<field>`` and the stack.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

__all__ = [
    "INGRESS",
    "RESERVED_ENV",
    "SIZES",
    "AppDefaults",
    "AppSpec",
    "ContainerSize",
    "parse_apps",
    "parse_size",
]

INGRESS = ("external", "internal", "none")
# Set by the program on every app; a stack file may not redefine them.
RESERVED_ENV = frozenset({"DATABASE_URL", "RELEASE_SHA", "PORT", "WEB_DB_MIGRATE_ENABLED"})
FIELDS = frozenset({
    "command", "args", "targetPort", "ingress", "healthPath", "readinessPath", "env",
    "secretEnv", "minReplicas", "maxReplicas", "size",
})

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PATH = re.compile(r"^/[A-Za-z0-9/._-]*$")
SECRET_URI = re.compile(
    r"^https://[a-z0-9-]{3,24}\.vault\.azure\.(net|cn|us)/secrets/[A-Za-z0-9-]+(/[0-9a-f]{32})?$"
)


@dataclass(frozen=True)
class ContainerSize:
    """CPU cores and memory of one container (ACA's allowed consumption pairs)."""

    cpu: float
    memory: str


SIZES: Mapping[str, ContainerSize] = {
    "small": ContainerSize(0.25, "0.5Gi"),
    "medium": ContainerSize(0.5, "1Gi"),
    "large": ContainerSize(1.0, "2Gi"),
}
# ACA consumption profile: 0.25..4 vCPU in steps of 0.25, memory exactly twice the cores in Gi.
_CPU_STEPS = frozenset(round(0.25 * n, 2) for n in range(1, 17))


@dataclass(frozen=True)
class AppDefaults:
    """Stack-wide defaults of the per-app fields (declared in ``Pulumi.yaml``)."""

    target_port: int
    health_path: str
    min_replicas: int
    max_replicas: int
    size: ContainerSize


@dataclass(frozen=True)
class AppSpec:
    """One container app: what it runs, how it is reached and probed, and what it reads."""

    name: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    target_port: int
    ingress: str  # external | internal | none
    health_path: str
    readiness_path: str
    env: tuple[tuple[str, str], ...]
    secret_env: tuple[tuple[str, str], ...]  # (env name, Key Vault secret URI)
    min_replicas: int
    max_replicas: int
    size: ContainerSize

    @property
    def has_ingress(self) -> bool:
        return self.ingress != "none"

    @staticmethod
    def secret_name(env_name: str) -> str:
        """The ACA secret name for an env var (lowercase letters, digits and dashes)."""
        return env_name.lower().replace("_", "-").strip("-")


Fail = Callable[..., NoReturn]


def parse_size(value: Any) -> ContainerSize | None:
    """A size name or ``{cpu, memory}`` pair ACA accepts; None when it is neither."""
    if isinstance(value, str):
        return SIZES.get(value)
    if isinstance(value, Mapping) and set(value) == {"cpu", "memory"}:
        cpu, memory = value["cpu"], value["memory"]
        if isinstance(cpu, bool) or not isinstance(cpu, int | float) or not isinstance(memory, str):
            return None
        cpu = round(float(cpu), 2)
        if cpu in _CPU_STEPS and memory == f"{cpu * 2:g}Gi":
            return ContainerSize(cpu, memory)
    return None


class _Fields:
    """Typed access to one app's fields; errors name ``apps.<app>.<field>``."""

    def __init__(self, app: str, body: Mapping[str, Any], fail: Fail) -> None:
        self.app, self.body, self._fail = app, body, fail

    def fail(self, field: str, expected: str, got: Any = None) -> NoReturn:
        self._fail("apps", expected, got, field=f"{self.app}.{field}")

    def strings(self, field: str, required: bool = False) -> tuple[str, ...]:
        value = self.body.get(field)
        if value is None:
            if required:
                self.fail(field, "set: the command this app runs in the release image, e.g. "
                          "[node, dist/index.js] (a list of strings)")
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
            self.fail(field, "a list of strings", value)
        if required and not value:
            self.fail(field, "a non-empty list of strings", value)
        return tuple(str(v) for v in value)

    def integer(self, field: str, default: int, bounds: tuple[int, int]) -> int:
        value = self.body.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int) \
                or not bounds[0] <= value <= bounds[1]:
            self.fail(field, f"an integer in {bounds[0]}..{bounds[1]}", value)
        return value

    def path(self, field: str, default: str) -> str:
        value = self.body.get(field, default)
        if not isinstance(value, str) or not _PATH.match(value):
            self.fail(field, "an absolute URL path (e.g. /healthz)", value)
        return value

    def mapping(self, field: str) -> Mapping[str, Any]:
        value = self.body.get(field) or {}
        if not isinstance(value, Mapping):
            self.fail(field, "a map of env var name to value", value)
        for name in value:
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                self.fail(field, "env var names of letters, digits and _", name)
            if name in RESERVED_ENV:
                self.fail(field, f"free of {sorted(RESERVED_ENV)} (the program sets them)", name)
        return value


def _one(name: str, body: Any, defaults: AppDefaults, fail: Fail) -> AppSpec:
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        fail("apps", "a map of field to value", body, field=name)
    f = _Fields(name, body, fail)
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        f.fail(unknown[0], "one of " + ", ".join(sorted(FIELDS)) + " (unknown field; typo?)")
    ingress = body.get("ingress", "external")
    if ingress not in INGRESS:
        f.fail("ingress", "external, internal or none", ingress)
    env = f.mapping("env")
    plain: list[tuple[str, str]] = []
    for key, value in env.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str | int | float):
            f.fail("env", "string values", {key: value})
        plain.append((key, str(value)))
    secrets: list[tuple[str, str]] = []
    secret_names = {"database-url"}  # the program's own secret on every app
    for key, uri in f.mapping("secretEnv").items():
        if key in env:
            f.fail("secretEnv", "names not also in env", key)
        if AppSpec.secret_name(key) in secret_names:
            f.fail("secretEnv", "names that map to distinct ACA secret names (lowercase, _ as -)",
                   key)
        secret_names.add(AppSpec.secret_name(key))
        if not isinstance(uri, str) or not SECRET_URI.match(uri):
            f.fail("secretEnv", f"{key}: a Key Vault secret URI "
                   "(https://<vault>.vault.azure.net/secrets/<name>[/<version>]), never a literal",
                   "<redacted>" if isinstance(uri, str) and not uri.startswith("https://")
                   else uri)
        secrets.append((key, uri))
    size = parse_size(body.get("size")) if "size" in body else defaults.size
    if size is None:
        f.fail("size", "small, medium, large or {cpu, memory} with cpu in 0.25..4 (steps of "
               "0.25) and memory twice the cpu in Gi (ACA consumption)", body.get("size"))
    health = f.path("healthPath", defaults.health_path)
    min_replicas = f.integer("minReplicas", defaults.min_replicas, (0, 30))
    max_replicas = f.integer("maxReplicas", defaults.max_replicas, (1, 300))
    if max_replicas < min_replicas:
        f.fail("maxReplicas", f"at least minReplicas ({min_replicas})", max_replicas)
    return AppSpec(
        name=name,
        command=f.strings("command", required=True),
        args=f.strings("args"),
        target_port=f.integer("targetPort", defaults.target_port, (1, 65535)),
        ingress=ingress,
        health_path=health,
        readiness_path=f.path("readinessPath", health),
        env=tuple(plain),
        secret_env=tuple(secrets),
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        size=size,
    )


def parse_apps(value: Any, defaults: AppDefaults, fail: Fail) -> tuple[AppSpec, ...]:
    """Validate the ``apps`` map; the first problem goes to ``fail`` (which raises)."""
    if not isinstance(value, Mapping) or not value:
        fail("apps", "a non-empty map of app name to spec, e.g. "
             "{api: {command: [node, dist/index.js]}}", value)
    specs: list[AppSpec] = []
    for name, body in value.items():
        if not isinstance(name, str) or not _NAME.match(name):
            fail("apps", "app names of lowercase letters, digits and dashes", name)
        specs.append(_one(name, body, defaults, fail))
    return tuple(specs)
