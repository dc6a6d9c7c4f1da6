"""One container app of the stack, described by its :class:`~infra.appspec.AppSpec`, rolled out
only after the migration gate.

The app runs the release image with the command its spec names (one image, role by command), never
a migration: no init containers, ``WEB_DB_MIGRATE_ENABLED=0``, and the policy pack judges the
command. Secrets reach it as Key Vault references read by the workload identity. The app
``depends_on`` the ``MigrationRun`` so a failed gate leaves the running revision untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import app

from infra.appspec import AppSpec
from infra.components._container import (
    DATABASE_URL_SECRET,
    identity,
    key_vault_secret,
    registry,
)

__all__ = ["AppService", "AppServiceArgs"]


@dataclass(frozen=True)
class AppServiceArgs:
    spec: AppSpec
    resource_name: str
    location: str
    registry_server: str
    database_url_secret_uri: str
    resource_group_name: pulumi.Input[str]
    environment_id: pulumi.Input[str]
    identity_id: pulumi.Input[str]
    release_sha: pulumi.Input[str]
    image: pulumi.Input[str]
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)


def _probes(spec: AppSpec) -> list[app.ContainerAppProbeArgs] | None:
    if not spec.has_ingress:
        return None
    return [
        app.ContainerAppProbeArgs(
            type="Liveness",
            http_get=app.ContainerAppProbeHttpGetArgs(path=spec.health_path, port=spec.target_port),
            period_seconds=10,
            failure_threshold=3,
            initial_delay_seconds=5,
        ),
        app.ContainerAppProbeArgs(
            type="Readiness",
            http_get=app.ContainerAppProbeHttpGetArgs(
                path=spec.readiness_path, port=spec.target_port
            ),
            period_seconds=5,
            failure_threshold=3,
            initial_delay_seconds=3,
        ),
    ]


class AppService(pulumi.ComponentResource):
    """A ``ContainerApp`` running one role of the release image."""

    app: app.ContainerApp
    fqdn: pulumi.Output[str | None]

    def __init__(
        self, name: str, args: AppServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("gated-release:infra:AppService", name, None, opts)
        spec = args.spec
        secrets = [
            key_vault_secret(DATABASE_URL_SECRET, args.database_url_secret_uri, args.identity_id)
        ]
        env = [
            app.EnvironmentVarArgs(name="DATABASE_URL", secret_ref=DATABASE_URL_SECRET),
            app.EnvironmentVarArgs(name="RELEASE_SHA", value=args.release_sha),
            app.EnvironmentVarArgs(name="PORT", value=str(spec.target_port)),
            app.EnvironmentVarArgs(name="WEB_DB_MIGRATE_ENABLED", value="0"),
        ]
        env += [app.EnvironmentVarArgs(name=k, value=v) for k, v in spec.env]
        for env_name, uri in spec.secret_env:
            secret = AppSpec.secret_name(env_name)
            secrets.append(key_vault_secret(secret, uri, args.identity_id))
            env.append(app.EnvironmentVarArgs(name=env_name, secret_ref=secret))
        ingress = None
        if spec.has_ingress:
            ingress = app.IngressArgs(
                external=spec.ingress == "external", target_port=spec.target_port, transport="auto"
            )
        self.app = app.ContainerApp(
            f"{name}-app",
            container_app_name=args.resource_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            managed_environment_id=args.environment_id,
            identity=identity(args.identity_id),
            configuration=app.ConfigurationArgs(
                active_revisions_mode="Single",
                ingress=ingress,
                registries=[registry(args.registry_server, args.identity_id)],
                secrets=secrets,
            ),
            template=app.TemplateArgs(
                containers=[
                    app.ContainerArgs(
                        name=spec.name,
                        image=args.image,
                        command=list(spec.command),
                        args=list(spec.args) or None,
                        env=env,
                        probes=_probes(spec),
                        resources=app.ContainerResourcesArgs(
                            cpu=spec.size.cpu, memory=spec.size.memory
                        ),
                    )
                ],
                scale=app.ScaleArgs(
                    min_replicas=spec.min_replicas, max_replicas=spec.max_replicas
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.fqdn = self.app.latest_revision_fqdn
        self.register_outputs({"name": self.app.name, "fqdn": self.fqdn})
