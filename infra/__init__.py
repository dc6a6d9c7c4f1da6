"""The gated-release Pulumi program and its migration gate.

Modules: ``config`` (typed stack config), ``release`` (promotion/replay rules, pure),
``components`` (Pulumi components), ``program`` (the program), ``gate`` (the migration gate's
Azure logic, no Pulumi), ``gate_provider`` (the gate as a Pulumi dynamic resource), ``appspec``
(the per-app spec), ``errors`` (the exception tree); ``tools`` holds the command-line tools that
run around the program (preview, rehearse, smoke, promote).
Importing this package imports none of them, so the dynamic provider host stays light.
"""

__all__: list[str] = []
