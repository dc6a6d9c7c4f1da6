"""The gated-release Pulumi program, read top-down.

1. Read and validate the stack config once (:func:`infra.config.from_pulumi`).
2. Decide whether this release may deploy here (:mod:`infra.release`): the previous ledger comes
   from a ``StackReference`` to this very stack, the upstream's from one to ``promotesFrom``. The
   release SHA and image flow into the job and the apps only through that decision, so a refusal
   leaves every workload untouched.
3. Platform, migration job and its gate, then the apps, each from its ``AppSpec`` (the stack
   file's ``apps``) and each depending on the gate.
4. Exports: ``release``, ``acceptedReleases`` (the ledger), ``migrationStatus`` and a few names.

``build(cfg)`` registers everything and returns the exports (tests and the offline preview call
it under Pulumi's mock monitor); ``run()`` is what ``__main__.py`` calls.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pulumi

from infra import release as rel
from infra.components import (
    AppService,
    AppServiceArgs,
    MigrationJob,
    MigrationJobArgs,
    Platform,
    PlatformArgs,
)
from infra.config import PROJECT_FILE, StackConfig, from_pulumi
from infra.gate.provider import IdentityPropagation, IdentityPropagationArgs

__all__ = ["LEDGER_OUTPUT", "build", "migrations_checksum", "run"]

LEDGER_OUTPUT = "acceptedReleases"
PROJECT_DIR = PROJECT_FILE.parent


def migrations_checksum(directory: Path) -> str:
    """sha256 over the migration files' names and normalized text (a gate trigger)."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.sql")) if directory.is_dir() else []:
        text = path.read_text(encoding="utf-8").replace("\r\n", "\n").replace("\r", "\n")
        digest.update(path.name.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()


def _decide(cfg: StackConfig, own: Any, upstream: Any) -> dict[str, Any]:
    release = rel.Release(cfg.release_sha, cfg.release_image)
    own_ledger = rel.parse_ledger(own)
    rel.authorize(
        release,
        stack=cfg.stack,
        own=own_ledger,
        upstream=rel.parse_ledger(upstream),
        promotes_from=cfg.promotes_from,
        replay=cfg.replay,
    )
    ledger = rel.next_ledger(own_ledger, release, accept_sha=cfg.accept_release)
    return {**release.as_output(), "ledger": rel.ledger_output(ledger)}


def build(cfg: StackConfig) -> dict[str, Any]:
    """Register the stack's resources; return its exports (name -> value or Output)."""
    own_ref = pulumi.StackReference("ledger-self", stack_name=cfg.stack_ref(cfg.stack))
    upstream: Any = None
    if cfg.promotes_from:
        upstream_ref = pulumi.StackReference(
            "ledger-upstream", stack_name=cfg.stack_ref(cfg.promotes_from)
        )
        upstream = upstream_ref.get_output(LEDGER_OUTPUT)
    decision = pulumi.Output.all(own_ref.get_output(LEDGER_OUTPUT), upstream).apply(
        lambda v: _decide(cfg, v[0], v[1])
    )
    release_sha = decision.apply(lambda d: str(d["sha"]))
    image = decision.apply(lambda d: str(d["image"]))

    platform = Platform("platform", PlatformArgs(cfg))
    artifact_dir = Path(cfg.artifact_dir)
    if not artifact_dir.is_absolute():
        artifact_dir = PROJECT_DIR / artifact_dir
    # first deploy: ACA checks the Key Vault reference and AcrPull with the identity at once
    propagation = IdentityPropagation(
        "identity-propagation",
        IdentityPropagationArgs(
            principal_id=platform.role_assignments[0].principal_id,
            role_assignment_ids=[ra.id for ra in platform.role_assignments],
            arm_endpoint=cfg.arm_endpoint,
        ),
        opts=pulumi.ResourceOptions(depends_on=platform.role_assignments),
    )
    migration = MigrationJob(
        "migration",
        MigrationJobArgs(
            config=cfg,
            resource_group_name=platform.resource_group_name,
            environment_id=platform.environment_id,
            identity_id=platform.identity_id,
            release_sha=release_sha,
            image=image,
            artifact_dir=str(artifact_dir),
            migrations_checksum=migrations_checksum(PROJECT_DIR / "db" / "migrations"),
            workspace_customer_id=platform.workspace_customer_id,
            depends_on=[*platform.role_assignments, propagation],
        ),
    )
    apps = {
        spec.name: AppService(
            spec.name,
            AppServiceArgs(
                spec=spec,
                resource_name=cfg.resource_name(spec.name),
                location=cfg.location,
                registry_server=cfg.registry_server,
                database_url_secret_uri=cfg.database_url_secret_uri,
                resource_group_name=platform.resource_group_name,
                environment_id=platform.environment_id,
                identity_id=platform.identity_id,
                release_sha=release_sha,
                image=image,
                # the gate: no app revision rolls out before the migration run succeeded
                depends_on=[migration.run, *platform.role_assignments, propagation],
            ),
        )
        for spec in cfg.apps
    }
    return {
        "release": decision.apply(lambda d: {"sha": d["sha"], "image": d["image"]}),
        LEDGER_OUTPUT: decision.apply(lambda d: d["ledger"]),
        "migrationStatus": migration.status,
        "migrationJobName": migration.job.name,
        "resourceGroupName": platform.resource_group_name,
        "appUrls": {s.name: apps[s.name].fqdn for s in cfg.apps if s.has_ingress},
    }


def run() -> None:
    """Entry point of ``__main__.py``: config, resources, exports."""
    for name, value in build(from_pulumi()).items():
        pulumi.export(name, value)
