"""Runs the gated-release program under Pulumi's mock monitor and records what it registered.

``set_mocks`` keeps an existing root stack unless the root is reset, so every run resets it;
registration order is not deterministic, so tests look resources up by type and name.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from infra import config, program
from tests.infra.mocks import ProgramMocks

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Registered:
    type: str
    name: str
    urn: str
    parent: str
    dependencies: list[str]
    inputs: dict[str, Any]


@dataclass
class Run:
    resources: list[Registered] = field(default_factory=list)
    exports: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> Registered:
        found = self.of_type(type_)
        assert len(found) == 1, f"{type_}: {len(found)} registered"
        return found[0]

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.resources if r.urn == urn)


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks, run: Run) -> None:
        super().__init__(mocks)
        self.run = run

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = _sync_await_props(request.object)
            self.run.resources.append(
                Registered(
                    request.type,
                    request.name,
                    response.urn,
                    request.parent,
                    list(request.dependencies),
                    inputs,
                )
            )
        return response


def _sync_await_props(struct: Any) -> dict[str, Any]:
    return dict(rpc.deserialize_properties(struct, keep_unknowns=True))


def stack_config(stack: str, **overrides: Any) -> dict[str, Any]:
    raw = config.load_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    raw.update(overrides)
    return raw


def run_program(
    stack: str,
    raw: dict[str, Any] | None = None,
    *,
    preview: bool = False,
    ledgers: dict[str, list[dict[str, str]]] | None = None,
    mocks: ProgramMocks | None = None,
) -> Run:
    """Validate config and run ``infra.program.build`` under mocks; never raises for the
    program's own errors (they land in ``Run.error``)."""
    run = Run()
    mocks = mocks or ProgramMocks(ledgers=ledgers or {})
    settings.ROOT.set(None)  # a fresh root stack per run
    monitor = RecordingMonitor(mocks, run)
    pulumi.runtime.set_mocks(
        mocks, project=config.PROJECT, stack=stack, preview=preview, monitor=monitor
    )

    async def main() -> None:
        cfg = config.load_config(stack, raw if raw is not None else stack_config(stack))
        exports = program.build(cfg)
        run.exports.update(await pulumi.Output.from_input(exports).future(with_unknowns=True))

    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    # A refused program leaves futures whose exception nobody awaits. asyncio reports them when
    # they are garbage collected, formatting a traceback (which runs ast.parse on 3.11) in
    # whatever thread collects them; concurrent AST work trips CPython 3.11's shared AST
    # recursion counter (SystemError). Keep those reports quiet and collect here, on this thread.
    _ensure_event_loop().set_exception_handler(lambda _loop, _context: None)
    try:
        _sync_await(run_pulumi_func(main))
    except Exception as exc:
        run.error = exc
    gc.collect()
    return run
