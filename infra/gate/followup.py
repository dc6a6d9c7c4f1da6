"""``python -m infra.gate logs``: put a run's console log into its artifact after the rollout.

A succeeded gate does not hold the rollout for Log Analytics ingestion; it leaves
``gate-followup.json`` next to ``migration.json``. This command, run by the workflow after
``pulumi up`` (also when it failed), waits for the complete log (bounded), merges it into the
same ``migration.json`` (``logsSource: log-analytics``, the runner's summary adopted) and removes
the follow-up file. Exit 0 when there was nothing to do or the log was merged, complete or not
(a missing log never fails a release that passed); 2 for a usage error or an unreadable artifact.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from azure.core.credentials import TokenCredential

from infra.gate.artifact import FOLLOWUP_FILE, ArtifactBuilder
from infra.gate.logs import LogAnswer, fetch_logs
from infra.gate.request import MAX_POLL_SECONDS, parse_job_id
from migration.contract import ARTIFACT_FILE

__all__ = ["collect", "main"]

DEFAULTS = {"artifact_dir": ("GATE_ARTIFACT_DIR", ".artifacts/deploy"),
            "wait_seconds": ("GATE_LOGS_WAIT_SECONDS", "300")}


def collect(
    artifact_dir: Path, sha: str, *, wait_seconds: float,
    credential: TokenCredential | None = None, poll_seconds: float = MAX_POLL_SECONDS,
) -> dict[str, object]:
    """Merge the console log into ``<artifact_dir>/<sha>/migration.json``; a summary dict."""
    followup = artifact_dir / sha / FOLLOWUP_FILE
    target = artifact_dir / sha / ARTIFACT_FILE
    if not followup.exists():
        return {"collected": False, "detail": f"nothing to collect ({followup} absent)"}
    where = json.loads(followup.read_text(encoding="utf-8"))
    builder = ArtifactBuilder.load(target)
    _, _, job = parse_job_id(str(where["jobId"]))
    if credential is None:
        from infra.gate.credentials import gate_credential

        credential = gate_credential(str(where["armEndpoint"]))
    answer: LogAnswer | None = fetch_logs(
        workspace_id=str(where["workspaceId"]), job=job, execution=str(where["executionName"]),
        endpoint=str(where["logsEndpoint"]), credential=credential, wait_seconds=wait_seconds,
        poll_seconds=poll_seconds, sleep=time.sleep, monotonic=time.monotonic)
    if answer is None:
        return {"collected": False, "detail": "no console lines in the workspace yet",
                "artifact": str(target)}
    builder.set_logs(answer.lines, "log-analytics")
    builder.write(artifact_dir)
    followup.unlink(missing_ok=True)
    return {"collected": True, "complete": answer.complete, "lines": len(answer.lines),
            "detail": answer.detail, "artifact": str(target)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.gate",
        description="After `pulumi up`: collect the migration job's console log from Log "
                    "Analytics into .artifacts/deploy/<sha>/migration.json.")
    sub = parser.add_subparsers(dest="command", required=True)
    logs = sub.add_parser("logs", help="merge the console log into the run's artifact")
    logs.add_argument("--sha", required=True, help="the release SHA (the artifact's directory)")
    env, default = DEFAULTS["artifact_dir"]
    logs.add_argument("--artifact-dir", default=os.environ.get(env, default),
                      help=f"artifacts root (env {env}, default {default})")
    env, default = DEFAULTS["wait_seconds"]
    logs.add_argument("--wait-seconds", type=float, default=float(os.environ.get(env, default)),
                      help=f"how long to wait for a complete log (env {env}, default {default})")
    logs.add_argument("--json", action="store_true", help="print the outcome as JSON")
    args = parser.parse_args(argv)
    try:
        outcome = collect(Path(args.artifact_dir), args.sha, wait_seconds=args.wait_seconds)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: [artifact-unreadable] {exc}; run it where `pulumi up` wrote "
              ".artifacts/deploy/<sha>/", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(outcome))
    else:
        print(f"gate logs: {outcome['detail']}")
    return 0
