"""What a validator returns: findings, some of them about values unknown during preview.

Validators never call pulumi-policy's ``report_violation`` themselves; they return findings and the
adapter in ``pack.py`` reports them. A finding with ``unknown`` set means "this rule depends on a
value the engine does not know yet". The unknown-value rule (docs/policies.md): such a finding is
reported as a violation at the policy's own enforcement level (mandatory by default), naming the
property path and the resource, unless the policy's config says ``"onUnknown": "advisory"``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .values import Unknown


@dataclass(frozen=True)
class Finding:
    """One reason a resource (or the stack) breaks a policy."""

    message: str
    path: str | None = None  # engine property path, e.g. template.containers[0].command
    urn: str | None = None  # stack policies: the resource at fault; None = the stack itself
    unknown: bool = False

    def text(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def unknown_finding(value: Unknown, why: str, urn: str | None = None) -> Finding:
    """A finding for a value the rule needs but the preview cannot know."""
    return Finding(
        message=(
            f"unknown during preview, so the policy cannot verify {why}; make the value known "
            "at preview time (a stack config value or a literal instead of another resource's "
            "output)"
        ),
        path=value.path,
        urn=urn,
        unknown=True,
    )
