"""The project's own program passes the pack for every stack with zero mandatory violations."""

from __future__ import annotations

import pytest
import yaml

from infra.tools.preview import PROJECT_ROOT, PolicyPackProcess, run_preview

pytestmark = pytest.mark.skipif(not (PROJECT_ROOT / "Pulumi.yaml").is_file(),
                                reason="the project's Pulumi program is not there yet")


def _ledgers() -> dict[str, dict[str, object]]:
    """Upstream stacks' outputs as a promotion would find them: each accepted this release.

    Offline there is no backend to read StackReference outputs from; staging promotes from dev
    and prod from staging, so they are given the ledger those stacks would hold.
    """
    outputs: dict[str, dict[str, object]] = {}
    for stack in ("dev", "staging"):
        config = yaml.safe_load((PROJECT_ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        outputs[stack] = {"acceptedReleases": [{
            "sha": config["gated-release:releaseSha"],
            "image": config["gated-release:releaseImage"],
            "acceptedAt": "2025-01-01T00:00:00Z",
        }]}
    return outputs


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_stack_has_no_mandatory_violation(pack: PolicyPackProcess, stack: str) -> None:
    result = run_preview(stack, packs=[pack], stack_outputs=_ledgers())
    assert result.mandatory == [], [v.to_json() for v in result.mandatory]
    types = {r.type for r in result.resources}
    assert {"azure-native:app:Job", "azure-native:app:ContainerApp"} <= types
    assert any(t.startswith("pulumi-python:dynamic") for t in types)
    # every app is a child of a component: its URN carries the component's type, as the engine's
    app = result.find("azure-native:app:ContainerApp")[0]
    assert "$azure-native:app:ContainerApp::" in app.urn


def test_dev_needs_no_stack_outputs(pack: PolicyPackProcess) -> None:
    assert run_preview("dev", packs=[pack]).mandatory == []
