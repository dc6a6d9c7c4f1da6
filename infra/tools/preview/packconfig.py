"""Policy-pack config, parsed, reconciled and validated the way the Pulumi CLI does it.

The file is the standard JSON: ``{"all": "mandatory", "policy-name": "advisory"}`` or
``{"policy-name": {"enforcementLevel": "disabled", "someProperty": 1}}``. Reconciliation follows
the CLI (pkg/resource/analyzer/config.go): schema defaults, then the pack's initial config, then the
file (``all`` first, then per policy); the result is validated against each policy's schema.
Unlike the CLI, a policy name the pack does not know is reported as a warning, because a typo in a
name meant to relax a policy would otherwise go unnoticed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from .errors import PolicyConfigError

LEVELS = ("advisory", "mandatory", "remediate", "disabled")


@dataclass
class PolicyConfig:
    enforcement_level: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyInfo:
    """What GetAnalyzerInfo says about one policy."""

    name: str
    description: str
    enforcement_level: str
    config_schema: dict[str, Any]  # {"properties": {...}, "required": [...]}
    severity: str = ""
    remediation: str = ""
    kind: str = "resource"


def parse(text: str, source: str = "<policy-pack config>") -> dict[str, PolicyConfig]:
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyConfigError(f"{source}: not valid JSON ({exc})", source=source) from exc
    if not isinstance(data, dict):
        raise PolicyConfigError(f"{source}: must be a JSON object keyed by policy name",
                                source=source)
    result: dict[str, PolicyConfig] = {}
    for key, value in data.items():
        if isinstance(value, str):
            result[key] = PolicyConfig(enforcement_level=_level(value, key, source))
        elif isinstance(value, dict):
            props = dict(value)
            level = props.pop("enforcementLevel", None)
            if level is not None and not isinstance(level, str):
                raise PolicyConfigError(f"{source}: {key}.enforcementLevel must be a string",
                                        source=source, policy=key)
            result[key] = PolicyConfig(
                enforcement_level=_level(level, key, source) if level is not None else None,
                properties=props,
            )
        else:
            raise PolicyConfigError(
                f"{source}: {key!r} must be an enforcement level string or an object, "
                f"not {json.dumps(value)}", source=source, policy=key)
    return result


def _level(value: str, key: str, source: str) -> str:
    if value not in LEVELS:
        raise PolicyConfigError(
            f"{source}: {value!r} is not an enforcement level for {key!r} "
            f"(use one of {', '.join(LEVELS)})", source=source, policy=key)
    return value


def load(path: Path) -> dict[str, PolicyConfig]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyConfigError(f"cannot read policy-pack config {path}: {exc}",
                                source=str(path)) from exc
    return parse(text, str(path))


def reconcile(
    policies: list[PolicyInfo],
    initial: dict[str, PolicyConfig],
    given: dict[str, PolicyConfig],
    source: str = "<policy-pack config>",
) -> tuple[dict[str, PolicyConfig], list[str]]:
    """Effective config per policy, plus warnings; raises PolicyConfigError on schema errors."""
    result: dict[str, PolicyConfig] = {}
    for policy in policies:
        defaults = {k: v["default"] for k, v in policy.config_schema.get("properties", {}).items()
                    if isinstance(v, dict) and "default" in v}
        result[policy.name] = PolicyConfig(policy.enforcement_level, defaults)
    for layer in (initial, given):
        all_cfg = layer.get("all")
        if all_cfg is not None and all_cfg.enforcement_level:
            for cfg in result.values():
                cfg.enforcement_level = all_cfg.enforcement_level
        for name, cfg in layer.items():
            current = result.setdefault(name, PolicyConfig())
            if cfg.enforcement_level:
                current.enforcement_level = cfg.enforcement_level
            current.properties.update(cfg.properties)
    known = {p.name for p in policies}
    warnings = [f"{source}: no policy named {name!r} in the pack (ignored)"
                for name in given if name != "all" and name not in known]
    errors: list[str] = []
    for policy in policies:
        schema: dict[str, Any] = {"type": "object"}
        if policy.config_schema.get("properties"):
            schema["properties"] = policy.config_schema["properties"]
        if policy.config_schema.get("required"):
            schema["required"] = policy.config_schema["required"]
        validator = jsonschema.Draft7Validator(schema)
        for error in sorted(validator.iter_errors(result[policy.name].properties), key=str):
            where = ".".join(str(p) for p in error.absolute_path) or "(root)"
            errors.append(f"{policy.name}: {where}: {error.message}")
    if errors:
        raise PolicyConfigError(f"{source}: invalid policy config: " + "; ".join(errors),
                                source=source, errors=errors)
    return result, warnings
