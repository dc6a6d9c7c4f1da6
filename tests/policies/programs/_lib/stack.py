"""A small gated-release stack for policy tests: compliant by default, one knob per violation.

Each test program calls ``build(...)`` with the one change it is about, so a failing policy test
points at a single difference from the compliant baseline.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_azure_native as azure
from pulumi import ResourceOptions
from pulumi_azure_native import app

DIGEST = "sha256:" + "a" * 64
IMAGE = f"gatedrelease.azurecr.io/app@{DIGEST}"
VAULT = "https://gr-kv.vault.azure.net/secrets/database-url"


class _GateProvider(pulumi.dynamic.ResourceProvider):
    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        return pulumi.dynamic.CreateResult(id_="run", outs=props)


class MigrationRun(pulumi.dynamic.Resource, module="gate", name="MigrationRun"):
    def __init__(self, name: str, props: dict[str, Any], opts: ResourceOptions) -> None:
        super().__init__(_GateProvider(), name, props, opts)


def _env(pairs: dict[str, str]) -> list[app.EnvironmentVarArgs]:
    return [app.EnvironmentVarArgs(name=k, value=v) for k, v in pairs.items()]


def build(
    *,
    app_command: list[str] | None = None,
    app_args: list[str] | None = None,
    app_init_containers: list[app.InitContainerArgs] | None = None,
    app_env: dict[str, str] | None = None,
    app_image: Any = IMAGE,
    app_literal_env: dict[str, Any] | None = None,
    app_depends_on_gate: bool = True,
    gate: bool = True,
    gate_depends_on_job: bool = True,
    job: bool = True,
    extra_job: bool = False,
    job_image: Any = IMAGE,
    job_command: Any = None,
    trigger_type: str = "Manual",
    parallelism: int = 1,
    replica_completion_count: int = 1,
    replica_retry_limit: int | None = 0,
    replica_timeout: Any = 960,
    migration_timeout: str = "900",
    job_secret_value: str | None = None,
    app_names: tuple[str, ...] = ("api", "web"),
) -> None:
    rg = azure.resources.ResourceGroup("rg")
    env = app.ManagedEnvironment("env", resource_group_name=rg.name)
    identity = azure.managedidentity.UserAssignedIdentity("identity", resource_group_name=rg.name)

    def job_resource(name: str) -> app.Job:
        secret = (app.SecretArgs(name="database-url", value=job_secret_value)
                  if job_secret_value is not None
                  else app.SecretArgs(name="database-url", key_vault_url=VAULT,
                                      identity=identity.id))
        return app.Job(
            name,
            resource_group_name=rg.name,
            environment_id=env.id,
            configuration=app.JobConfigurationArgs(
                trigger_type=trigger_type,
                replica_timeout=replica_timeout,
                replica_retry_limit=replica_retry_limit,
                manual_trigger_config=app.JobConfigurationManualTriggerConfigArgs(
                    parallelism=parallelism, replica_completion_count=replica_completion_count),
                secrets=[secret],
            ),
            template=app.JobTemplateArgs(containers=[app.ContainerArgs(
                name="migrate",
                image=job_image,
                command=job_command or ["python", "-m", "migration", "up", "--check-order",
                                        "--lock"],
                env=[
                    *_env({"MIGRATION_DIR": "/app/db/migrations",
                           "MIGRATION_RELEASE_SHA": "abc123",
                           "MIGRATION_TIMEOUT_SECONDS": migration_timeout,
                           "MIGRATE_DB_MIGRATE_ENABLED": "1"}),
                    app.EnvironmentVarArgs(name="DATABASE_URL", secret_ref="database-url"),
                ],
            )]),
        )

    migration_job = job_resource("migration-job") if job else None
    if extra_job:
        job_resource("migration-job-2")
    run = None
    if gate:
        deps = [migration_job] if (migration_job is not None and gate_depends_on_job) else []
        run = MigrationRun("migration-run", {"releaseSha": "abc123", "jobName": "migration-job"},
                           ResourceOptions(depends_on=deps))
    if app_image == "unknown":
        # An ID is unknown while previewing a create: the image becomes unknown too.
        app_image = env.id.apply(lambda _: IMAGE)
    for name in app_names:
        env_vars = [
            *_env({"WEB_DB_MIGRATE_ENABLED": "0", **(app_env or {})}),
            *[app.EnvironmentVarArgs(name=k, value=v) for k, v in (app_literal_env or {}).items()],
            app.EnvironmentVarArgs(name="DATABASE_URL", secret_ref="database-url"),
        ]
        app.ContainerApp(
            name,
            resource_group_name=rg.name,
            managed_environment_id=env.id,
            configuration=app.ConfigurationArgs(secrets=[app.SecretArgs(
                name="database-url", key_vault_url=VAULT, identity=identity.id)]),
            template=app.TemplateArgs(
                containers=[app.ContainerArgs(
                    name=name, image=app_image,
                    command=app_command or ["gunicorn", "app:app"],
                    args=app_args, env=env_vars)],
                init_containers=app_init_containers,
            ),
            opts=ResourceOptions(depends_on=[run] if (run is not None and app_depends_on_gate)
                                 else []),
        )
