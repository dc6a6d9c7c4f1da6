"""gated-release policy pack: validators as pure functions, adapted to pulumi-policy in ``pack``.

``catalog.POLICIES`` lists the policies; ``resource_rules`` and ``stack_rules`` hold the
validators; ``patterns`` says what counts as a migration; ``values`` makes unknowns explicit.
"""

from .catalog import BY_NAME, POLICIES, PolicySpec, effective_config
from .findings import Finding
from .stack_rules import StackResource
from .values import Unknown, plain

__all__ = [
    "BY_NAME",
    "POLICIES",
    "Finding",
    "PolicySpec",
    "StackResource",
    "Unknown",
    "effective_config",
    "plain",
]
