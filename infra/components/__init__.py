"""Pulumi components of the gated-release stack, each with typed args.

``Platform`` (resource group, Log Analytics, managed environment, identity and its roles),
``MigrationJob`` (the single-run ACA job plus the ``MigrationRun`` gate that awaits it) and
``AppService`` (one container app, rolled out only after the gate).
"""

from infra.components.app import AppService, AppServiceArgs
from infra.components.migration_job import MigrationJob, MigrationJobArgs
from infra.components.platform import Platform, PlatformArgs

__all__ = [
    "AppService",
    "AppServiceArgs",
    "MigrationJob",
    "MigrationJobArgs",
    "Platform",
    "PlatformArgs",
]
