"""What the migration gate adds to a rollout: latency per outcome, before and after issue 11.

    python bench/gate_bench.py [--run-seconds 12] [--ingest-seconds 20] [--json PATH]

Each case runs the real gate (real azure-mgmt-appcontainers and azure-monitor-query clients,
real clocks) against the local fake ARM and Log Analytics server (``tests/infra/fake_arm_server``)
with an execution of known length (``--run-seconds``) whose console log is ingested
``--ingest-seconds`` after it ended, as Log Analytics batches it. Added latency = the gate's wall
time minus the execution's length: what the rollout waits for beyond the migration itself.
"before" is the gate as it was (``infra/gate.py`` at the base commit, read from git), "after"
the current package; a missing git history leaves "before" out. Prints a table and writes JSON
(default ``bench/results/gate.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from azure.core.credentials import AccessToken  # noqa: E402

from infra.gate import GateRequest, run_gate  # noqa: E402
from tests.infra.fake_arm_server import FakeArm, Scenario  # noqa: E402

BASE_COMMIT = "4d68e7f"  # the gate before issue 11
JOB_ID = ("/subscriptions/3f2c9a6e-5b1d-4c8e-9a7f-2d6b8e4c1a90/resourceGroups/rg/providers/"
          "Microsoft.App/jobs/gr-dev-migrate")
SHA = "b" * 40
WORKSPACE = "6a1f0f8e-0000-4000-8000-000000000001"
SUMMARY = json.dumps({"schemaVersion": 1, "releaseSha": SHA, "reasonCode": None, "reason": None,
                      "executionSummary": {"applied": [], "pending": [], "skipped": [],
                                           "failing": None}, "lockWaitMs": 0, "blockers": []})
OUTCOMES = ("Succeeded", "Failed", "Degraded")


class _Credential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("bench-token", int(time.time()) + 3600)


def _old_gate() -> Any | None:
    """The gate module at BASE_COMMIT, importable next to the current one."""
    try:
        gate = subprocess.run(["git", "show", f"{BASE_COMMIT}:infra/gate.py"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
        artifact = subprocess.run(["git", "show", f"{BASE_COMMIT}:infra/_gate_artifact.py"],
                                  cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    d = Path(tempfile.mkdtemp(prefix="gate-before-"))
    (d / "old_gate_artifact.py").write_text(artifact)
    (d / "old_gate.py").write_text(gate.replace("from infra._gate_artifact import",
                                                "from old_gate_artifact import"))
    sys.path.insert(0, str(d))
    spec = importlib.util.spec_from_file_location("old_gate", d / "old_gate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_gate"] = module
    spec.loader.exec_module(module)
    return module


def _case(version: str, outcome: str, runner: Callable[..., Any], request_type: Any,
          run_seconds: float, ingest_seconds: float, out: Path) -> dict[str, Any]:
    scenario = Scenario(statuses=[outcome], run_seconds=run_seconds,
                        ingest_seconds=ingest_seconds, message="bench",
                        log_lines=["starting migration run", SUMMARY])
    with FakeArm(scenario) as fake:
        fields = {f.name for f in dataclasses.fields(request_type)}
        kwargs: dict[str, Any] = {
            "job_id": JOB_ID, "release_sha": SHA, "stack": "bench", "deadline_seconds": 600,
            "start_allowance_seconds": 0, "artifact_dir": out / version / outcome,
            "workspace_id": WORKSPACE, "arm_endpoint": fake.url, "logs_endpoint": fake.url,
            "stop_wait_seconds": 10}
        request = request_type(**{k: v for k, v in kwargs.items() if k in fields})
        t0 = time.monotonic()
        error = None
        try:
            runner(request, credential=_Credential())
        except Exception as exc:  # a failed outcome raises: that is the case being measured
            error = getattr(exc, "code", type(exc).__name__)
        wall = time.monotonic() - t0
        stopped = fake.count("stop")
        queries = fake.count("query")
    return {"version": version, "outcome": outcome, "wallSeconds": round(wall, 2),
            "addedSeconds": round(wall - run_seconds, 2), "reasonCode": error,
            "logQueries": queries, "stopRequests": stopped}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-seconds", type=float,
                        default=float(os.environ.get("GATE_BENCH_RUN_SECONDS", "12")),
                        help="length of each execution (env GATE_BENCH_RUN_SECONDS, default 12)")
    parser.add_argument("--ingest-seconds", type=float,
                        default=float(os.environ.get("GATE_BENCH_INGEST_SECONDS", "20")),
                        help="Log Analytics ingestion delay after the run "
                             "(env GATE_BENCH_INGEST_SECONDS, default 20)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "gate.json",
                        help="where to write the results (default bench/results/gate.json)")
    args = parser.parse_args(argv)
    out = Path(tempfile.mkdtemp(prefix="gate-bench-"))
    versions: list[tuple[str, Callable[..., Any], Any]] = [("after", run_gate, GateRequest)]
    old = _old_gate()
    if old is not None:
        versions.insert(0, ("before", old.run_gate, old.GateRequest))
    rows = [_case(v, outcome, runner, req_type, args.run_seconds, args.ingest_seconds, out)
            for outcome in OUTCOMES for v, runner, req_type in versions]
    print(f"gate latency: execution {args.run_seconds:.0f} s, log ingestion "
          f"+{args.ingest_seconds:.0f} s (added = gate wall time - execution length)")
    print(f"{'outcome':<10} {'version':<7} {'wall s':>7} {'added s':>8} {'queries':>8} "
          f"{'stops':>6}  reasonCode")
    for r in rows:
        print(f"{r['outcome']:<10} {r['version']:<7} {r['wallSeconds']:>7.1f} "
              f"{r['addedSeconds']:>8.1f} {r['logQueries']:>8} {r['stopRequests']:>6}  "
              f"{r['reasonCode'] or '-'}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"runSeconds": args.run_seconds,
                                     "ingestSeconds": args.ingest_seconds,
                                     "loadAverage": os.getloadavg()[0], "cases": rows},
                                    indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
