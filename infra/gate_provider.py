"""Alias of :mod:`infra.gate.provider` for state written before the gate became a package.

A dynamic provider is pickled by reference into every ``MigrationRun`` in a stack's state; the
engine unpickles the OLD one for ``read`` and ``delete``. State from earlier releases names
``infra.gate_provider.MigrationRunProvider``, so this module must keep that name importable.
"""

from infra.gate.provider import (
    TRIGGERS,
    MigrationRun,
    MigrationRunArgs,
    MigrationRunProvider,
    changed_triggers,
)

__all__ = ["TRIGGERS", "MigrationRun", "MigrationRunArgs", "MigrationRunProvider",
           "changed_triggers"]
