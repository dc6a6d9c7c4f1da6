"""The project and stack config as the CLI would hand them to the program and the packs.

Reads ``Pulumi.yaml`` (project name, ``main``, config declarations with defaults) and
``Pulumi.<stack>.yaml`` (``config:``), and produces the ``PULUMI_CONFIG`` JSON map of
``namespace:key`` to string values (objects and lists JSON-encoded, as the CLI does). Keys without
a namespace belong to the project. Encrypted values (``secure:``) cannot be decrypted offline: they
become the placeholder ``[secret]`` and are listed in ``PULUMI_CONFIG_SECRET_KEYS`` so the program
still sees them as secrets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ProjectError

SECRET_PLACEHOLDER = "[secret]"


@dataclass(frozen=True)
class EngineConfig:
    project: str
    stack: str
    program_dir: Path
    main: str | None
    values: dict[str, str]
    secret_keys: list[str] = field(default_factory=list)
    config_file: Path | None = None

    def env(self) -> dict[str, str]:
        """Environment a language host or policy pack receives."""
        return {
            "PULUMI_PROJECT": self.project,
            "PULUMI_STACK": self.stack,
            "PULUMI_DRY_RUN": "true",
            "PULUMI_CONFIG": json.dumps(self.values),
            "PULUMI_CONFIG_SECRET_KEYS": json.dumps(self.secret_keys),
        }


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ProjectError(f"cannot read {path}: {exc}", path=str(path)) from exc
    if not isinstance(data, dict):
        raise ProjectError(f"{path} must hold a YAML mapping", path=str(path))
    return data


def _full_key(project: str, key: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def _as_config_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def load(program_dir: Path, stack: str, config_file: Path | None = None) -> EngineConfig:
    """Load the project and the stack's config; a missing default config file means no config."""
    project_file = program_dir / "Pulumi.yaml"
    if not project_file.is_file():
        raise ProjectError(f"no Pulumi.yaml in {program_dir}; pass --program-dir",
                           path=str(project_file))
    project = _load_yaml(project_file)
    name = project.get("name")
    if not isinstance(name, str) or not name:
        raise ProjectError(f"{project_file}: 'name' is missing", path=str(project_file))
    main = project.get("main")

    values: dict[str, str] = {}
    secret_keys: list[str] = []
    declared = project.get("config") or {}
    if isinstance(declared, dict):
        for key, spec in declared.items():
            if isinstance(spec, dict) and ("default" in spec or "value" in spec):
                default = spec.get("value", spec.get("default"))
                values[_full_key(name, key)] = _as_config_string(default)
            elif not isinstance(spec, dict) and spec is not None:
                values[_full_key(name, key)] = _as_config_string(spec)

    path = config_file or program_dir / f"Pulumi.{stack}.yaml"
    if config_file is not None and not config_file.is_file():
        raise ProjectError(f"config file {config_file} does not exist", path=str(config_file))
    if path.is_file():
        stack_data = _load_yaml(path)
        for key, value in (stack_data.get("config") or {}).items():
            full = _full_key(name, str(key))
            if isinstance(value, dict) and set(value) == {"secure"}:
                values[full] = SECRET_PLACEHOLDER
                secret_keys.append(full)
            else:
                values[full] = _as_config_string(value)
    return EngineConfig(
        project=name,
        stack=stack,
        program_dir=program_dir,
        main=main if isinstance(main, str) else None,
        values=values,
        secret_keys=secret_keys,
        config_file=path if path.is_file() else None,
    )
