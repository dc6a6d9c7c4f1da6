"""The unknown-value rule: an unknown a mandatory policy needs is a mandatory violation."""

from __future__ import annotations

import json

from .conftest import urn

API = urn("azure-native:app:ContainerApp", "api")


def test_unknown_image_is_a_mandatory_violation_naming_path_and_urn(preview) -> None:  # type: ignore[no-untyped-def]
    result = preview("unknown-image")
    pinned = [v for v in result.violations if v.policy == "pinned-image" and v.urn == API]
    assert len(pinned) == 1
    assert pinned[0].level == "mandatory"
    assert "template.containers[0].image" in pinned[0].message
    assert "unknown during preview" in pinned[0].message
    assert result.exit_code == 1


def test_on_unknown_advisory_falls_back_to_pulumi_policy_notice(preview) -> None:  # type: ignore[no-untyped-def]
    config = json.dumps({"pinned-image": {"onUnknown": "advisory"},
                         "same-release-artifact": {"onUnknown": "advisory"}})
    result = preview("unknown-image", config)
    pinned = [v for v in result.violations if v.policy == "pinned-image"]
    assert pinned and all(v.level == "advisory" for v in pinned)
    # pulumi-policy reports it without a URN; the preview attributes it to the analyzed resource.
    assert {v.urn for v in pinned} == {API, urn("azure-native:app:ContainerApp", "web")}
    assert all("can't run policy" in v.message for v in pinned)
    assert result.exit_code == 0
