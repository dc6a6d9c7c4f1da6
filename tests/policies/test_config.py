"""Policy-pack config: downgrade, disable, properties, and malformed config errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from infra.tools.preview import PolicyConfigError
from infra.tools.preview.engine import PROJECT_ROOT

from .conftest import PROGRAMS


def test_downgrade_one_policy_to_advisory(preview) -> None:  # type: ignore[no-untyped-def]
    result = preview("unpinned-image", json.dumps({"pinned-image": "advisory"}))
    assert result.violations and {v.level for v in result.violations} == {"advisory"}
    assert result.exit_code == 0


def test_enforcement_level_object_form(preview) -> None:  # type: ignore[no-untyped-def]
    result = preview("unpinned-image",
                     json.dumps({"pinned-image": {"enforcementLevel": "advisory"}}))
    assert {v.level for v in result.violations} == {"advisory"}


def test_disable_one_policy(preview) -> None:  # type: ignore[no-untyped-def]
    result = preview("startup-shell-migration",
                     json.dumps({"no-startup-migrations": {"enforcementLevel": "disabled"}}))
    assert {v.policy for v in result.violations} == {"one-migration-path-per-stack"}


def test_all_then_override(preview) -> None:  # type: ignore[no-untyped-def]
    result = preview("startup-shell-migration",
                     json.dumps({"all": "advisory", "no-startup-migrations": "mandatory"}))
    levels = {(v.policy, v.level) for v in result.violations}
    assert levels == {("no-startup-migrations", "mandatory"),
                      ("one-migration-path-per-stack", "advisory")}
    assert result.policies["gated-release"]


def test_all_disabled_reports_nothing(preview) -> None:  # type: ignore[no-untyped-def]
    assert preview("startup-shell-migration", json.dumps({"all": "disabled"})).violations == []


def test_config_property_changes_the_rule(preview) -> None:  # type: ignore[no-untyped-def]
    config = {"pinned-image": {"allowedUnpinnedImagePatterns": [r":latest$"]}}
    result = preview("unpinned-image", json.dumps(config))
    assert [v for v in result.violations if v.policy == "pinned-image"] == []


def test_extra_migration_pattern_catches_custom_runner(preview) -> None:  # type: ignore[no-untyped-def]
    config = {"no-startup-migrations": {"extraMigrationCommandPatterns": [r"\bgunicorn\b"]}}
    result = preview("compliant", json.dumps(config))
    assert {v.policy for v in result.violations} == {"no-startup-migrations"}


@pytest.mark.parametrize("text", [
    "{not json",
    '["pinned-image"]',
    '{"pinned-image": "strict"}',
    '{"pinned-image": 3}',
    '{"pinned-image": {"enforcementLevel": 1}}',
    '{"pinned-image": {"allowedUnpinnedImagePatterns": "latest"}}',
    '{"migration-job-single-run": {"timeoutMarginSeconds": -5}}',
])
def test_malformed_config_is_a_clear_error(preview, text: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PolicyConfigError) as info:
        preview("compliant", text)
    assert info.value.code == "policy-config-invalid"


def test_unknown_policy_name_is_a_warning(preview) -> None:  # type: ignore[no-untyped-def]
    result = preview("compliant", json.dumps({"pinned-imgae": "disabled"}))
    assert any("pinned-imgae" in w for w in result.warnings)


def test_cli_malformed_config_exits_2(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "policy.json"
    bad.write_text('{"pinned-image": "strict"}')
    done = subprocess.run(
        [sys.executable, "-m", "infra.tools.preview", "--stack", "dev", "--program-dir",
         str(PROGRAMS / "compliant"), "--policy-pack-config", str(bad)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "policy-config-invalid" in done.stderr and "strict" in done.stderr
