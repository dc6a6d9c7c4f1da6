#!/usr/bin/env python3
"""A stand-in for the Pulumi CLI: the subset infra.tools.promote and the workflows call, over a JSON file.

State (``$FAKE_PULUMI_STATE``): ``{"config": {stack: {key: value}}, "outputs": {stack: {...}},
"calls": [argv, ...]}``. ``up`` does what the program does with the release keys: it records the
deployed ``releaseSha`` and appends to ``acceptedReleases`` (via infra.release, the program's own
rule) when ``acceptRelease`` equals ``releaseSha``. ``$FAKE_PULUMI_FAIL`` = a subcommand to fail.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from infra.release import Release, authorize, ledger_output, next_ledger, parse_ledger

PROJECT = "gated-release"


def _flag(args: list[str], name: str) -> str | None:
    if name in args:
        i = args.index(name)
        value = args[i + 1]
        del args[i : i + 2]
        return value
    return None


def main() -> int:
    path = Path(os.environ["FAKE_PULUMI_STATE"])
    state = json.loads(path.read_text()) if path.exists() else {}
    state.setdefault("config", {})
    state.setdefault("outputs", {})
    state.setdefault("calls", [])
    argv = sys.argv[1:]
    state["calls"].append(argv)
    args = [a for a in argv if a not in ("--non-interactive", "--json", "--yes", "--skip-preview")]
    _flag(args, "--cwd")
    _flag(args, "--policy-pack")
    stack = _flag(args, "--stack") or _flag(args, "-s") or "dev"
    config = state["config"].setdefault(stack, {})
    outputs = state["outputs"].setdefault(stack, {})
    rc = 0
    if os.environ.get("FAKE_PULUMI_FAIL") == args[0]:
        print(f"error: {args[0]} failed (fake)", file=sys.stderr)
        rc = 255
    elif args[:2] == ["config", "get"]:
        if args[2] in config:
            print(json.dumps({"value": config[args[2]], "secret": False}))
        else:
            print(f"error: configuration key '{args[2]}' not found for stack '{stack}'",
                  file=sys.stderr)
            rc = 255
    elif args[:2] == ["config", "set"]:
        config[args[2]] = args[3]
    elif args[:2] == ["config", "rm"]:
        config.pop(args[2], None)
    elif args[:2] == ["stack", "output"]:
        print(json.dumps(outputs))
    elif args[0] == "up":
        release = Release(config[f"{PROJECT}:releaseSha"], config[f"{PROJECT}:releaseImage"])
        own = parse_ledger(outputs.get("acceptedReleases"))
        upstream_name = config.get(f"{PROJECT}:promotesFrom") or None
        upstream = parse_ledger(
            state["outputs"].get(upstream_name, {}).get("acceptedReleases") if upstream_name
            else None
        )
        authorize(release, stack=stack, own=own, upstream=upstream,
                  promotes_from=upstream_name,
                  replay=config.get(f"{PROJECT}:replay") == "true")
        accept = config.get(f"{PROJECT}:acceptRelease") or None
        ledger = next_ledger(own, release, accept_sha=accept, now=datetime.now(UTC))
        outputs["acceptedReleases"] = ledger_output(ledger)
        outputs["release"] = release.as_output()
        outputs.setdefault("appUrls", {"api": f"api-{stack}.example.test"})
    else:
        print(f"fake pulumi: unsupported {argv}", file=sys.stderr)
        rc = 2
    path.write_text(json.dumps(state, indent=1))
    return rc


if __name__ == "__main__":
    sys.exit(main())
