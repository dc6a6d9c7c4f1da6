"""The command-line tools that run around the Pulumi program, apart from its own modules.

``python -m infra.tools.preview`` (offline preview with the policy packs over gRPC),
``python -m infra.tools.rehearse`` (the whole gated deploy, locally), ``python -m
infra.tools.smoke`` (the API smoke check) and ``python -m infra.tools.promote`` (promotion, replay
and drift for the workflows). The program (``infra.program``, ``infra.components``) imports none
of them.
"""

__all__: list[str] = []
