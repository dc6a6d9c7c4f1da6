"""Plain values from the engine's resource properties, with unknowns made explicit.

pulumi-policy hands validators read-only proxies that raise ``UnknownValueError`` on the first
unknown they touch; that exception is then reported by pulumi-policy as an *advisory* diagnostic
without a URN, so a mandatory policy would pass silently during preview. The validators here work on
plain dicts and lists instead, where an unknown value is an :class:`Unknown` carrying its property
path, so each validator decides what an unknown means for its rule (see ``findings.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The sentinels the engine uses for unknown values (pulumi/sdk/go/common/resource/plugin/rpc.go);
# pulumi-policy keeps them as plain strings in the deserialized properties.
UNKNOWN_SENTINELS = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
        "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
        "e48ece36-62e2-4504-bad9-02848725956a",  # archive
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
    }
)


@dataclass(frozen=True)
class Unknown:
    """A value the engine cannot know during preview, with the property path that holds it."""

    path: str

    def __str__(self) -> str:
        return f"<unknown {self.path}>"


def plain(value: Any, path: str = "") -> Any:
    """Return ``value`` as plain dicts/lists/scalars, unknown sentinels replaced by Unknown.

    Works on pulumi-policy's proxies (read through their raw ``__target``, which never raises) and
    on ordinary dicts and lists, so the pure validators are testable without the policy runtime.
    """
    target = _raw(value)
    if isinstance(target, str) and target in UNKNOWN_SENTINELS:
        return Unknown(path or ".")
    if isinstance(target, Mapping):
        return {str(k): plain(target[k], _join(path, str(k))) for k in target}
    if isinstance(target, Sequence) and not isinstance(target, str | bytes):
        return [plain(target[i], f"{path}[{i}]") for i in range(len(target))]
    return target


def _raw(value: Any) -> Any:
    # pulumi-policy's _DictProxy/_ListProxy expose their storage under the "__target" key.
    if type(value).__name__ in {"_DictProxy", "_ListProxy"}:
        return value["__target"]
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def get(obj: Any, dotted: str) -> Any:
    """Follow a dotted camelCase path through plain dicts; None when a step is missing.

    An Unknown met on the way is returned as is (the rest of the path cannot be known either).
    """
    current = obj
    for part in dotted.split("."):
        if isinstance(current, Unknown) or current is None:
            return current
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


def as_list(value: Any) -> list[Any]:
    """A list for iteration: None becomes [], an Unknown stays visible as a one-element list."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def walk_unknowns(value: Any) -> Iterator[Unknown]:
    """Every Unknown inside a plain value, depth first."""
    if isinstance(value, Unknown):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from walk_unknowns(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_unknowns(item)
