"""One container app of the stack, rolled out only after the migration gate.

Every app runs the release image with its own runtime command, never a migration: no init
containers, no migrate command, ``WEB_DB_MIGRATE_ENABLED=0``. The app ``depends_on`` the
``MigrationRun`` so a failed gate leaves the running revision untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import app

from infra.components._container import (
    DATABASE_URL_SECRET,
    OPS_TOKEN_SECRET,
    identity,
    key_vault_secret,
    registry,
)
from infra.config import AppSpec, StackConfig

__all__ = ["AppService", "AppServiceArgs", "runtime_command"]


def runtime_command(name: str, port: int) -> list[str]:
    """The runtime command of an app role (the same image, a different command per role)."""
    bind = f"0.0.0.0:{port}"
    if name == "api":
        return [
            "gunicorn",
            "--bind",
            bind,
            "--workers",
            "2",
            "--worker-class",
            "uvicorn.workers.UvicornWorker",
            "app.api:app",
        ]
    if name == "web":
        return ["gunicorn", "--bind", bind, "--workers", "2", "app.web:application"]
    return ["python", "-m", f"app.{name.replace('-', '_')}"]


@dataclass(frozen=True)
class AppServiceArgs:
    config: StackConfig
    spec: AppSpec
    resource_group_name: pulumi.Input[str]
    environment_id: pulumi.Input[str]
    identity_id: pulumi.Input[str]
    release_sha: pulumi.Input[str]
    image: pulumi.Input[str]
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)


class AppService(pulumi.ComponentResource):
    """A ``ContainerApp`` running one role of the release image."""

    app: app.ContainerApp
    fqdn: pulumi.Output[str | None]

    def __init__(
        self, name: str, args: AppServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gated-release:infra:AppService", name, None, opts)
        cfg, spec = args.config, args.spec
        secrets = [
            key_vault_secret(DATABASE_URL_SECRET, cfg.database_url_secret_uri, args.identity_id)
        ]
        env = [
            app.EnvironmentVarArgs(name="DATABASE_URL", secret_ref=DATABASE_URL_SECRET),
            app.EnvironmentVarArgs(name="RELEASE_SHA", value=args.release_sha),
            app.EnvironmentVarArgs(name="WEB_DB_MIGRATE_ENABLED", value="0"),
        ]
        if spec.name == "api":
            secrets.append(
                key_vault_secret(OPS_TOKEN_SECRET, cfg.ops_token_secret_uri, args.identity_id)
            )
            env.append(
                app.EnvironmentVarArgs(name="OPS_MIGRATION_TOKEN", secret_ref=OPS_TOKEN_SECRET)
            )
        probes = None
        ingress = None
        if spec.ingress:
            http = app.ContainerAppProbeHttpGetArgs(path=cfg.health_path, port=cfg.target_port)
            probes = [
                app.ContainerAppProbeArgs(
                    type="Liveness",
                    http_get=http,
                    period_seconds=10,
                    failure_threshold=3,
                    initial_delay_seconds=5,
                ),
                app.ContainerAppProbeArgs(
                    type="Readiness",
                    http_get=http,
                    period_seconds=5,
                    failure_threshold=3,
                    initial_delay_seconds=3,
                ),
            ]
            ingress = app.IngressArgs(external=True, target_port=cfg.target_port, transport="auto")
        self.app = app.ContainerApp(
            f"{name}-app",
            container_app_name=cfg.resource_name(spec.name),
            resource_group_name=args.resource_group_name,
            location=cfg.location,
            managed_environment_id=args.environment_id,
            identity=identity(args.identity_id),
            configuration=app.ConfigurationArgs(
                active_revisions_mode="Single",
                ingress=ingress,
                registries=[registry(cfg.registry_server, args.identity_id)],
                secrets=secrets,
            ),
            template=app.TemplateArgs(
                containers=[
                    app.ContainerArgs(
                        name=spec.name,
                        image=args.image,
                        command=runtime_command(spec.name, cfg.target_port),
                        env=env,
                        probes=probes,
                        resources=app.ContainerResourcesArgs(
                            cpu=spec.size.cpu, memory=spec.size.memory
                        ),
                    )
                ],
                scale=app.ScaleArgs(min_replicas=cfg.min_replicas, max_replicas=cfg.max_replicas),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.fqdn = self.app.latest_revision_fqdn
        self.register_outputs({"name": self.app.name, "fqdn": self.fqdn})
