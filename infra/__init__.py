"""The gated-release Pulumi program and its migration gate.

Modules: ``config`` (typed stack config), ``release`` (promotion/replay rules, pure),
``components`` (Pulumi components), ``program`` (the program), ``gate`` (the migration gate:
its Azure logic, artifact, credentials and, in ``gate.provider``, the Pulumi dynamic resource;
``gate_provider`` is an alias kept for state written by earlier releases), ``appspec`` (the
per-app spec), ``errors`` (the exception tree); ``tools`` holds the command-line tools that run
around the program (preview, rehearse, smoke, promote).
Importing this package imports none of them, so the dynamic provider host stays light.
"""

__all__: list[str] = []
