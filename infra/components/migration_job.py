"""The migration path of a stack: one single-run ACA Job and the gate that executes and awaits it.

The job runs the release image with the migration command (the apps run the same image with their
runtime command): manual trigger, parallelism 1, one completion, no replica retries (the runner
retries what is transient, since it knows which SQLSTATEs are), and a replica timeout equal to the
migration deadline plus a margin. ``MigrationRun`` depends on the job and starts one execution per
release with the job's own template (no override: the job carries the release image and env,
``MIGRATION_RELEASE_SHA`` included); apps depend on ``MigrationRun``. The command defaults to the
runner; a stack may name its own (``migrationCommand``), which gets the same env.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_azure_native import app

from infra.components._container import DATABASE_URL_SECRET, identity, key_vault_secret, registry
from infra.config import StackConfig
from infra.gate_provider import MigrationRun, MigrationRunArgs

__all__ = [
    "CONTAINER_NAME",
    "MIGRATION_DIR",
    "MigrationJob",
    "MigrationJobArgs",
    "migration_command",
]

CONTAINER_NAME = "migrate"
MIGRATION_DIR = "/app/db/migrations"


def migration_command(cfg: StackConfig) -> list[str]:
    """The job's command: the stack's own (``migrationCommand``) or the runner's, then
    ``migrationArgs``. The pack judges whatever it is (single-run settings, one path)."""
    if cfg.migration_command:
        command = list(cfg.migration_command)
    else:
        command = ["python", "-m", "migration", "up", "--check-order", "--lock"]
        if cfg.migration_single_transaction:
            command.append("--single-transaction")
    return [*command, *cfg.migration_args]


@dataclass(frozen=True)
class MigrationJobArgs:
    config: StackConfig
    resource_group_name: pulumi.Input[str]
    environment_id: pulumi.Input[str]
    identity_id: pulumi.Input[str]
    release_sha: pulumi.Input[str]
    image: pulumi.Input[str]
    artifact_dir: str
    migrations_checksum: str = ""
    workspace_customer_id: pulumi.Input[str] | None = None
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)


def _env(cfg: StackConfig, release_sha: pulumi.Input[str]) -> list[dict[str, Any]]:
    plain: list[tuple[str, pulumi.Input[str]]] = [
        ("MIGRATION_DIR", MIGRATION_DIR),
        ("MIGRATION_TIMEOUT_SECONDS", str(cfg.migration_timeout_seconds)),
        ("MIGRATION_LOCK_TIMEOUT", cfg.migration_lock_timeout),
        ("MIGRATION_STATEMENT_TIMEOUT", cfg.migration_statement_timeout),
        ("MIGRATION_RELEASE_SHA", release_sha),
        ("MIGRATION_STACK", cfg.stack),
        ("MIGRATION_JSON", "1"),
        ("MIGRATE_DB_MIGRATE_ENABLED", "1"),
        ("MIGRATE_DB_MIGRATE_RUNNER", "aca-migration-job"),
        ("DB_MIGRATE_TELEMETRY_ENABLED", "1"),
    ]
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in plain]
    env.append({"name": "DATABASE_URL", "secretRef": DATABASE_URL_SECRET})
    return env


class MigrationJob(pulumi.ComponentResource):
    """The migration ``app.Job`` and its ``MigrationRun`` gate."""

    job: app.Job
    run: MigrationRun
    status: pulumi.Output[str]

    def __init__(
        self, name: str, args: MigrationJobArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gated-release:infra:MigrationJob", name, None, opts)
        cfg = args.config
        env = _env(cfg, args.release_sha)
        size = cfg.migration_job_size
        self.job = app.Job(
            f"{name}-job",
            job_name=cfg.resource_name("migrate"),
            resource_group_name=args.resource_group_name,
            location=cfg.location,
            environment_id=args.environment_id,
            identity=identity(args.identity_id),
            configuration=app.JobConfigurationArgs(
                trigger_type="Manual",
                manual_trigger_config=app.JobConfigurationManualTriggerConfigArgs(
                    parallelism=1, replica_completion_count=1
                ),
                replica_retry_limit=0,
                replica_timeout=cfg.replica_timeout_seconds,
                registries=[registry(cfg.registry_server, args.identity_id)],
                secrets=[
                    key_vault_secret(
                        DATABASE_URL_SECRET, cfg.database_url_secret_uri, args.identity_id
                    )
                ],
            ),
            template=app.JobTemplateArgs(
                containers=[
                    app.ContainerArgs(
                        name=CONTAINER_NAME,
                        image=args.image,
                        command=migration_command(cfg),
                        env=[app.EnvironmentVarArgs(**_snake(e)) for e in env],
                        resources=app.ContainerResourcesArgs(cpu=size.cpu, memory=size.memory),
                    )
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.run = MigrationRun(
            f"{name}-gate",
            MigrationRunArgs(
                job_id=self.job.id,
                release_sha=args.release_sha,
                image=args.image,
                deadline_seconds=cfg.replica_timeout_seconds,
                start_allowance_seconds=cfg.gate_start_allowance_seconds,
                artifact_dir=args.artifact_dir,
                stack=cfg.stack,
                migrations_checksum=args.migrations_checksum,
                workspace_id=args.workspace_customer_id if cfg.gate_logs_from_workspace else None,
                arm_endpoint=cfg.arm_endpoint,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.job]),
        )
        self.status = self.run.status
        self.register_outputs({"jobId": self.job.id, "status": self.run.status})


def _snake(env: dict[str, Any]) -> dict[str, Any]:
    return {"secret_ref" if k == "secretRef" else k: v for k, v in env.items()}
