"""Fixtures for the policy tests: one policy-pack process (started as the CLI starts it) per session."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.tools.preview import (
    DEFAULT_PACK,
    EngineServer,
    PolicyPackProcess,
    PreviewResult,
    run_preview,
)

PROGRAMS = Path(__file__).resolve().parent / "programs"

# The pack's validators are importable for the pure-function tests.
sys.path.insert(0, str(DEFAULT_PACK))


@pytest.fixture(scope="session")
def engine() -> Iterator[EngineServer]:
    server = EngineServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pack(engine: EngineServer) -> Iterator[PolicyPackProcess]:
    env = {"PULUMI_PROJECT": "policy-test", "PULUMI_STACK": "dev", "PULUMI_DRY_RUN": "true",
           "PULUMI_CONFIG": "{}"}
    with PolicyPackProcess(DEFAULT_PACK, env, engine) as process:
        yield process


@pytest.fixture(scope="session")
def preview(pack: PolicyPackProcess):  # type: ignore[no-untyped-def]
    """run_preview over the shared pack: preview("program-dir-name", config_text=None)."""

    def run(program: str, config_text: str | None = None, stack: str = "dev") -> PreviewResult:
        return run_preview(stack, program_dir=PROGRAMS / program, packs=[pack],
                           policy_pack_config_text=config_text)

    return run


def urn(kind: str, name: str) -> str:
    """URN of a top-level resource of the test programs (project policy-test, stack dev)."""
    return f"urn:pulumi:dev::policy-test::{kind}::{name}"
