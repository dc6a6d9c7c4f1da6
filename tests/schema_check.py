"""Validate artifacts against the JSON Schemas in schemas/ (used by every test that makes one)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)  # type: ignore[no-any-return]


def validate_migration_artifact(doc: dict[str, Any]) -> None:
    _validator("migration.schema.json").validate(doc)


def validate_file(path: Path, schema_name: str = "migration.schema.json") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    _validator(schema_name).validate(doc)
    return doc
