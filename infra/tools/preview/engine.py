"""The offline preview: run the program under the recording monitor, then the policy packs.

:func:`run_preview` is the library entry used by the CLI, the rehearsal and the tests. The packs
start while the program runs (both are separate processes), so a warm preview costs roughly one
interpreter start plus the program itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import engineconfig, packconfig
from .analysis import Analyzer
from .errors import ProgramError, UsageError
from .model import PreviewResult, Registration, Violation
from .policypack import EngineServer, PolicyPackProcess

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_PACK = PROJECT_ROOT / "policies"


def run_program(config: engineconfig.EngineConfig, python: str = sys.executable,
                stack_outputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run the program in a fresh language-host process; returns its recording."""
    with tempfile.TemporaryDirectory(prefix="gr-preview-") as tmp:
        request_path, result_path = Path(tmp, "request.json"), Path(tmp, "result.json")
        request_path.write_text(json.dumps({
            "programDir": str(config.program_dir.resolve()),
            "project": config.project,
            "stack": config.stack,
            "main": config.main,
            "stackOutputs": dict(stack_outputs or {}),
        }))
        env = {**os.environ, **config.env(), "PULUMI_DRY_RUN": "true"}
        completed = subprocess.run(
            [python, "-m", "infra.tools.preview.programhost", str(request_path), str(result_path)],
            env=env, cwd=config.program_dir, capture_output=True, text=True, check=False,
            timeout=600,
        )
        if not result_path.is_file():
            raise ProgramError(
                f"the program host crashed (exit {completed.returncode}): "
                f"{completed.stderr.strip()[-2000:]}", stderr=completed.stderr)
        result: dict[str, Any] = json.loads(result_path.read_text())
    result["stdout"] = completed.stdout
    error = result.get("error")
    if error:
        raise ProgramError(f"{error['type']}: {error['message']}", frames=error.get("frames"),
                           stdout=completed.stdout)
    return result


def _default_providers(resources: list[Registration], stack: str, project: str
                       ) -> list[Registration]:
    """Default provider resources the engine would add, and references to them."""
    providers: dict[str, Registration] = {}
    updated: list[Registration] = []
    for r in resources:
        if not r.custom or r.read or r.provider or r.type.startswith("pulumi:"):
            updated.append(r)
            continue
        package = r.type.split(":", 1)[0]
        name = "default_" + r.version.replace(".", "_").replace("-", "_") if r.version \
            else "default"
        urn = f"urn:pulumi:{stack}::{project}::pulumi:providers:{package}::{name}"
        if urn not in providers:
            providers[urn] = Registration(
                urn=urn, type=f"pulumi:providers:{package}", name=name, custom=True, parent="",
                dependencies=(), property_dependencies={},
                inputs={"version": r.version} if r.version else {}, synthetic=True)
        updated.append(Registration(**{**r.__dict__, "provider": f"{urn}::offline"}))
    return list(providers.values()) + updated


def run_preview(
    stack: str,
    program_dir: Path = PROJECT_ROOT,
    policy_packs: Sequence[Path] = (DEFAULT_PACK,),
    policy_pack_configs: Sequence[Path] = (),
    config_file: Path | None = None,
    packs: Sequence[PolicyPackProcess] | None = None,
    policy_pack_config_text: str | None = None,
    stack_outputs: Mapping[str, Any] | None = None,
    python: str = sys.executable,
) -> PreviewResult:
    """Preview ``stack`` of the program in ``program_dir`` with the given policy packs.

    ``packs`` reuses already running pack processes (tests start one per session); otherwise one
    process per directory in ``policy_packs`` is started and stopped here. The i-th config file
    (or ``policy_pack_config_text``) applies to the i-th pack, as with the CLI's repeated
    ``--policy-pack-config``. ``stack_outputs`` maps a referenced stack's name (full or
    last segment) to its outputs; a StackReference to any other stack reads no outputs.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    config = engineconfig.load(program_dir, stack, config_file)
    given: list[tuple[dict[str, packconfig.PolicyConfig], str]] = []
    for path in policy_pack_configs:
        given.append((packconfig.load(path), str(path)))
    if policy_pack_config_text is not None:
        given.append((packconfig.parse(policy_pack_config_text), "<policy-pack config>"))
    pack_count = len(packs) if packs is not None else len(policy_packs)
    if len(given) > pack_count:
        raise UsageError(f"{len(given)} policy-pack configs for {pack_count} policy packs")

    engine: EngineServer | None = None
    owned: list[PolicyPackProcess] = []
    try:
        if packs is None:
            engine = EngineServer()
            for pack_dir in policy_packs:
                owned.append(PolicyPackProcess(Path(pack_dir), config.env(), engine,
                                               python=python))
        running = list(packs) if packs is not None else owned

        t0 = time.perf_counter()
        recording = run_program(config, python=python, stack_outputs=stack_outputs)
        timings["programSeconds"] = round(time.perf_counter() - t0, 3)
        resources = [Registration.from_json(r) for r in recording["resources"]]
        resources = _default_providers(resources, config.stack, config.project)

        t0 = time.perf_counter()
        violations: list[Violation] = []
        policies: dict[str, list[packconfig.PolicyInfo]] = {}
        warnings: list[str] = []
        for index, pack in enumerate(running):
            analyzer = Analyzer(pack)
            analyzer.configure_stack(config.project, config.stack, config.values)
            analyzer.load_info()
            layer, source = given[index] if index < len(given) else ({}, "<none>")
            effective, pack_warnings = packconfig.reconcile(
                analyzer.policies, analyzer.initial_config, layer, source)
            warnings.extend(pack_warnings)
            analyzer.configure(effective)
            violations.extend(analyzer.analyze(resources))
            violations.extend(analyzer.analyze_stack(resources))
            policies[analyzer.name] = [
                packconfig.PolicyInfo(**{**p.__dict__, "enforcement_level":
                                         effective[p.name].enforcement_level or "advisory"})
                for p in analyzer.policies
            ]
        timings["policySeconds"] = round(time.perf_counter() - t0, 3)
    finally:
        for pack in owned:
            pack.close()
        if engine is not None:
            engine.stop()
    timings["totalSeconds"] = round(time.perf_counter() - started, 3)
    violations.sort(key=lambda v: (v.level != "mandatory", v.policy, v.urn, v.message))
    return PreviewResult(
        project=config.project,
        stack=config.stack,
        resources=resources,
        violations=violations,
        policies=policies,
        invokes=sorted(set(recording.get("invokes", []))),
        logs=recording.get("logs", []) + (engine.logs if engine is not None else []),
        warnings=warnings,
        timings=timings,
    )
