"""Adapts the pure validators of ``catalog.py`` to pulumi-policy ``Policy`` objects.

This is the only module that touches pulumi-policy types. It turns the read-only property proxies
into plain values, merges config defaults, and reports findings; unknown-value findings follow the
rule described in ``findings.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from .catalog import POLICIES, PolicySpec, effective_config
from .findings import Finding
from .stack_rules import StackResource
from .values import plain

PACK_NAME = "gated-release"


def _report(findings: Sequence[Finding], config: dict[str, Any], report: ReportViolation) -> None:
    deferred: Finding | None = None
    for finding in findings:
        if finding.unknown and config.get("onUnknown") == "advisory":
            deferred = deferred or finding
            continue
        report(finding.text(), finding.urn)
    if deferred is not None:
        # pulumi-policy turns this into its advisory "can't run policy during preview" diagnostic.
        raise UnknownValueError(UNKNOWN_STRING_VALUE, (deferred.path or "").split("."))


def _resource_validate(spec: PolicySpec) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    validator = spec.resource_validator
    assert validator is not None

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if spec.resource_types and args.resource_type not in spec.resource_types:
            return
        config = effective_config(spec, args.get_config())
        findings = validator(args.resource_type, args.name, plain(args.props), config)
        _report(findings, config, report)

    return validate


def _stack_validate(spec: PolicySpec) -> Callable[[StackValidationArgs, ReportViolation], None]:
    validator = spec.stack_validator
    assert validator is not None

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        config = effective_config(spec, args.get_config())
        resources = [
            StackResource(
                type=r.resource_type,
                name=r.name,
                urn=r.urn,
                props=plain(r.props),
                dependencies=[d.urn for d in r.dependencies],
                property_dependencies={k: [d.urn for d in v] for k, v in
                                       r.property_dependencies.items()},
                parent=r.parent.urn if r.parent is not None else None,
            )
            for r in args.resources
        ]
        _report(validator(resources, config), config, report)

    return validate


def build_policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    """One pulumi-policy object per catalog entry, mandatory by default."""
    built: list[ResourceValidationPolicy | StackValidationPolicy] = []
    for spec in POLICIES:
        common: dict[str, Any] = {
            "name": spec.name,
            "description": spec.description,
            "enforcement_level": EnforcementLevel.MANDATORY,
            "config_schema": PolicyConfigSchema(properties={k: dict(v) for k, v in
                                                            spec.config.items()}),
            "severity": Severity(spec.severity),
            "remediation_steps": spec.remediation,
            "tags": ["migrations", spec.kind],
        }
        if spec.stack_validator is not None:
            built.append(StackValidationPolicy(validate=_stack_validate(spec), **common))
        else:
            built.append(ResourceValidationPolicy(validate=_resource_validate(spec), **common))
    return built
