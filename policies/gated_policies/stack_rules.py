"""Stack validators: pure functions over the whole resource graph.

The graph is a list of :class:`StackResource` (plain inputs, dependency URNs); the adapter builds it
from pulumi-policy's ``PolicyResource`` objects.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import patterns
from .containers import CONTAINER_APP, JOB, Container, containers
from .findings import Finding, unknown_finding
from .resource_rules import (
    Config,
    allowed_app_command,
    is_migration_job,
    migration_command_finding,
)
from .values import Unknown


@dataclass(frozen=True)
class StackResource:
    """A resource of the stack as a policy sees it."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    dependencies: Sequence[str] = ()
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)
    parent: str | None = None

    def all_dependencies(self) -> set[str]:
        deps = set(self.dependencies)
        for urns in self.property_dependencies.values():
            deps.update(urns)
        return deps


def _startup_paths(resource: StackResource, config: Config) -> list[Finding]:
    """Ways a container app migrates at start-up (counted as extra migration paths)."""
    found: list[Finding] = []
    flag = patterns.compile_patterns([config["migrateEnableEnvPattern"]])[0]
    for item in containers(resource.props):
        if not isinstance(item, Container):
            continue
        command = migration_command_finding(item, config)
        if command is not None and not command.unknown \
                and not allowed_app_command(resource.name, resource.props, item, config):
            found.append(Finding(message=f"container app {resource.name!r} {command.message}",
                                 path=command.path, urn=resource.urn))
        for var in item.env():
            if (isinstance(var.name, str) and flag.search(var.name)
                    and isinstance(var.value, str) and patterns.is_truthy(var.value)):
                found.append(Finding(message=f"container app {resource.name!r} sets "
                                     f"{var.name}={var.value}", path=var.path, urn=resource.urn))
    return found


def one_migration_path(resources: Sequence[StackResource], config: Config) -> list[Finding]:
    """Exactly one migration path per stack, and it is the migration job."""
    jobs = [r for r in resources if is_migration_job(r.type, r.name, r.props, config)]
    app_paths = [f for r in resources if r.type == CONTAINER_APP for f in _startup_paths(r, config)]
    findings: list[Finding] = []
    if not jobs and config["requireMigrationJob"]:
        findings.append(Finding(message=(
            "the stack has no migration job (an azure-native:app:Job whose command runs a "
            "migration); add the dedicated single-run job")))
    for extra in jobs[1:]:
        findings.append(Finding(
            message=(f"second migration job {extra.name!r}; the stack already migrates through "
                     f"{jobs[0].name!r}, and two paths can race or skip each other"),
            urn=extra.urn,
        ))
    for path in app_paths:
        findings.append(Finding(
            message=f"{path.message}: a second migration path besides the migration job",
            path=path.path, urn=path.urn,
        ))
    # A Job whose command is unknown during preview may be a second migration path; it must
    # not pass silently (DESIGN.md: unknowns never make a mandatory policy pass).
    known = {j.urn for j in jobs}
    for r in resources:
        if r.type != JOB or r.urn in known:
            continue
        for item in containers(r.props, include_init=False):
            if isinstance(item, Container):
                finding = migration_command_finding(item, config)
                if finding is not None and finding.unknown:
                    findings.append(Finding(
                        message=f"job {r.name!r}: {finding.message}", path=finding.path,
                        urn=r.urn, unknown=True))
    return findings


def _matches_type(resource_type: str, globs: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(resource_type, g) for g in globs)


def is_gate(resource: StackResource, config: Config) -> bool:
    if _matches_type(resource.type, config["gateResourceTypes"]):
        return True
    return (resource.type.startswith("pulumi-python:dynamic")
            and re.search(config["gateNamePattern"], resource.name) is not None)


def _reaches(start: StackResource, targets: set[str], by_urn: Mapping[str, StackResource]) -> bool:
    seen: set[str] = set()
    stack = list(start.all_dependencies())
    while stack:
        urn = stack.pop()
        if urn in targets:
            return True
        if urn in seen:
            continue
        seen.add(urn)
        node = by_urn.get(urn)
        if node is not None:
            stack.extend(node.all_dependencies())
    return False


def apps_gated(resources: Sequence[StackResource], config: Config) -> list[Finding]:
    """Every container app depends (transitively) on the migration run; the run on the job."""
    by_urn = {r.urn: r for r in resources}
    gates = [r for r in resources if is_gate(r, config)]
    apps = [r for r in resources if r.type == CONTAINER_APP]
    jobs = {r.urn for r in resources if is_migration_job(r.type, r.name, r.props, config)}
    findings: list[Finding] = []
    if not gates:
        if apps:
            findings.append(Finding(message=(
                "no migration-run resource found (types "
                f"{list(config['gateResourceTypes'])} or a dynamic resource named like "
                f"{config['gateNamePattern']!r}); apps would roll out before the migration ran")))
        return findings
    gate_urns = {g.urn for g in gates}
    for gate in gates:
        if jobs and not _reaches(gate, jobs, by_urn):
            findings.append(Finding(
                message=(f"migration run {gate.name!r} does not depend on the migration job; it "
                         "could start an execution of the previous job definition"),
                urn=gate.urn,
            ))
    for app in apps:
        if not _reaches(app, gate_urns, by_urn):
            findings.append(Finding(
                message=(f"container app {app.name!r} does not depend on the migration run, so "
                         "Pulumi may roll it out before (or despite) a failed migration; add "
                         "depends_on=[migration_run]"),
                urn=app.urn,
            ))
    return findings


def _normalized_image(image: str) -> str:
    # registry/app:tag@sha256:x and registry/app@sha256:x are the same artifact.
    if "@" in image:
        repo, digest = image.split("@", 1)
        last = repo.rsplit("/", 1)
        if ":" in last[-1]:
            repo = repo[: repo.rfind(":")]
        return f"{repo}@{digest}"
    return image


def same_release_artifact(resources: Sequence[StackResource], config: Config) -> list[Finding]:
    """The apps and the migration job run the same release image."""
    ignored = patterns.compile_patterns(config["ignoreImagePatterns"])
    jobs = [r for r in resources if is_migration_job(r.type, r.name, r.props, config)]
    if not jobs:
        return []
    findings: list[Finding] = []
    release: str | None = None
    for item in containers(jobs[0].props, include_init=False):
        if isinstance(item, Unknown):
            return [unknown_finding(item, "the migration job's image", jobs[0].urn)]
        if isinstance(item.image, Unknown):
            return [unknown_finding(item.image, "the release image", jobs[0].urn)]
        if isinstance(item.image, str):
            release = _normalized_image(item.image)
            break
    if release is None:
        return findings
    for resource in resources:
        if resource.type not in (CONTAINER_APP, JOB) or resource.urn == jobs[0].urn:
            continue
        if resource.type == JOB and resource not in jobs:
            continue
        for item in containers(resource.props, include_init=False):
            if isinstance(item, Unknown):
                findings.append(unknown_finding(item, "the app's image", resource.urn))
                continue
            image = item.image
            if isinstance(image, Unknown):
                findings.append(unknown_finding(image, "that the app runs the release image",
                                                resource.urn))
            elif isinstance(image, str) and not any(p.search(image) for p in ignored):
                if _normalized_image(image) != release:
                    findings.append(Finding(
                        message=(f"runs {image!r} but the migration job runs {release!r}; the "
                                 "schema was migrated for a different release"),
                        path=f"{item.path}.image", urn=resource.urn,
                    ))
    return findings


__all__ = [
    "StackResource",
    "apps_gated",
    "is_gate",
    "one_migration_path",
    "same_release_artifact",
]
