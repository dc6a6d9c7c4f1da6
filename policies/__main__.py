"""The gated-release policy pack: `pulumi preview --policy-pack policies` starts this file.

Only builds the PolicyPack (constructing it starts the analyzer gRPC server and never returns);
the validators live in ``gated_policies``.
"""

from gated_policies.pack import PACK_NAME, build_policies
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name=PACK_NAME,
    policies=build_policies(),
    enforcement_level=EnforcementLevel.MANDATORY,
    description="Migrations run once, in the dedicated ACA job, before the apps roll out.",
)
