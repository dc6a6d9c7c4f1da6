"""The public surface of the preview package and the pack's validator package is deliberate."""

from __future__ import annotations

import gated_policies

import infra.tools.preview


def test_preview_all() -> None:
    public = sorted(n for n in vars(infra.tools.preview) if not n.startswith("_")
                    and n not in {"engine", "errors", "model", "policypack", "analysis",
                                  "packconfig", "engineconfig", "recorder", "report"})
    assert sorted(infra.tools.preview.__all__) == public


def test_policies_all() -> None:
    public = sorted(n for n in vars(gated_policies) if not n.startswith("_")
                    and n not in {"catalog", "findings", "stack_rules", "values", "containers",
                                  "patterns", "resource_rules"})
    assert sorted(gated_policies.__all__) == public
