"""One contract between the runner and the gate: migration/contract.py, imported by both sides.

Each value is checked against the third party that must agree: the artifact's JSON Schema, the
runner's settings (the env names the Job sets) and the gate's artifact builder.
"""

from __future__ import annotations

import json
from pathlib import Path

import infra.gate.artifact as gate_artifact
import migration.artifact as runner_artifact
import migration.groups as runner_groups
from migration import contract
from migration.settings import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "migration.schema.json").read_text())["properties"]


def test_the_schema_and_the_contract_agree() -> None:
    assert set(SCHEMA["executionStatus"]["enum"]) == contract.EXECUTION_STATUSES
    assert SCHEMA["logs"]["maxItems"] == contract.LOG_TAIL
    assert SCHEMA["logs"]["items"]["maxLength"] == contract.LOG_LINE_MAX
    assert SCHEMA["reason"]["maxLength"] == contract.REASON_MAX
    assert SCHEMA["blockers"]["maxItems"] == contract.BLOCKERS_MAX
    summary = SCHEMA["executionSummary"]["properties"]
    assert set(summary) == contract.SUMMARY_KEYS
    reasons = summary["boundaries"]["items"]["properties"]["reason"]["enum"]
    assert set(reasons) == contract.BOUNDARY_REASONS


def test_runner_and_gate_import_the_same_values_instead_of_restating_them() -> None:
    assert runner_artifact.LOG_TAIL is contract.LOG_TAIL
    assert gate_artifact.LOG_TAIL is contract.LOG_TAIL
    assert gate_artifact.REASON_MAX is contract.REASON_MAX
    assert gate_artifact.BOUNDARY_REASONS is contract.BOUNDARY_REASONS
    assert runner_groups.BOUNDARY_NON_TRANSACTIONAL is contract.BOUNDARY_NON_TRANSACTIONAL
    assert runner_groups.BOUNDARY_ENUM_VALUE_USED_LATER is contract.BOUNDARY_ENUM_VALUE_USED_LATER


def test_the_jobs_environment_names_are_the_runners_settings() -> None:
    env_names = {env for env, _ in DEFAULTS.values()}
    for name in (contract.ENV_DIR, contract.ENV_TIMEOUT_SECONDS, contract.ENV_LOCK_TIMEOUT,
                 contract.ENV_STATEMENT_TIMEOUT, contract.ENV_RELEASE_SHA, contract.ENV_STACK,
                 contract.ENV_JSON):
        assert name in env_names, name
