"""Reading containers, env vars and images out of ACA app/job inputs (engine camelCase names).

Both ``azure-native:app:ContainerApp`` and ``azure-native:app:Job`` keep their containers under
``template.containers`` and ``template.initContainers``; each container has ``image``, ``command``,
``args`` and ``env`` (``[{name, value | secretRef}]``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .values import Unknown, as_list, get

CONTAINER_APP = "azure-native:app:ContainerApp"
JOB = "azure-native:app:Job"


@dataclass(frozen=True)
class Container:
    """One container of a template, with where it sits in the engine's property tree."""

    path: str  # template.containers[0]
    init: bool
    body: Mapping[str, Any]

    @property
    def name(self) -> str:
        value = self.body.get("name")
        return value if isinstance(value, str) else "?"

    @property
    def image(self) -> Any:
        return self.body.get("image")

    def command_parts(self) -> tuple[list[str], Unknown | None]:
        """command + args as strings, or the first Unknown met (the line cannot be known)."""
        parts: list[str] = []
        for key in ("command", "args"):
            raw = self.body.get(key)
            if isinstance(raw, Unknown):
                return parts, raw
            for item in as_list(raw):
                if isinstance(item, Unknown):
                    return parts, item
                parts.append(str(item))
        return parts, None

    def env(self) -> Iterator[EnvVar]:
        raw = self.body.get("env")
        if isinstance(raw, Unknown):
            yield EnvVar(path=raw.path, name=raw, value=None, secret_ref=None)
            return
        for index, entry in enumerate(as_list(raw)):
            path = f"{self.path}.env[{index}]"
            if isinstance(entry, Unknown):
                yield EnvVar(path=path, name=entry, value=None, secret_ref=None)
                continue
            if not isinstance(entry, Mapping):
                continue
            yield EnvVar(
                path=path,
                name=entry.get("name"),
                value=entry.get("value"),
                secret_ref=entry.get("secretRef"),
            )


@dataclass(frozen=True)
class EnvVar:
    path: str
    name: Any  # str or Unknown
    value: Any  # str, Unknown or None
    secret_ref: Any  # str, Unknown or None


def containers(props: Mapping[str, Any], include_init: bool = True) -> Iterator[Container | Unknown]:
    """Every container of the template; an Unknown where a container list is unknown."""
    keys = ("containers", "initContainers") if include_init else ("containers",)
    template = get(props, "template")
    if isinstance(template, Unknown):
        yield template
        return
    for key in keys:
        items = get(props, f"template.{key}")
        if isinstance(items, Unknown):
            yield items
            continue
        for index, body in enumerate(as_list(items)):
            path = f"template.{key}[{index}]"
            if isinstance(body, Unknown):
                yield body
            elif isinstance(body, Mapping):
                yield Container(path=path, init=key == "initContainers", body=body)


def env_value(container: Container, name: str) -> Any:
    """The literal value of env var ``name`` (str/Unknown), or None when absent or secret."""
    for var in container.env():
        if var.name == name:
            return var.value
    return None
