"""``python -m infra.tools.preview``: preview a stack offline with the policy packs, like
``pulumi preview --policy-pack policies`` but with no CLI, no Azure and no secrets.

Exit status: 0 no mandatory violation, 1 at least one mandatory violation, 2 usage, project,
policy-config, policy-pack or program error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .engine import DEFAULT_PACK, PROJECT_ROOT, run_preview
from .errors import PreviewError, UsageError
from .report import render, render_error

EPILOG = """\
examples:
  python -m infra.tools.preview --stack dev
  python -m infra.tools.preview --stack prod --policy-pack-config prod-policy.json --json out.json
  python -m infra.tools.preview --stack dev --program-dir tests/policies/programs/compliant

policy-pack config (standard Pulumi JSON):
  {"all": "mandatory", "pinned-image": {"enforcementLevel": "advisory"},
   "no-startup-migrations": {"extraMigrationCommandPatterns": ["\\\\bmy-migrator\\\\b"]}}

every flag has an environment twin: PREVIEW_STACK, PREVIEW_PROGRAM_DIR, PREVIEW_POLICY_PACKS
(os.pathsep-separated), PREVIEW_POLICY_PACK_CONFIG, PREVIEW_CONFIG_FILE, PREVIEW_JSON,
PREVIEW_STACK_OUTPUTS.
"""


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m infra.tools.preview",
        description=("Run the Pulumi program under a mock engine in dry-run mode, record every "
                     "resource registration, and check it with the policy packs over gRPC, as "
                     "`pulumi preview --policy-pack` would. Needs no Pulumi CLI and no Azure."),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stack", "-s", default=env("PREVIEW_STACK"),
                        help="stack name (reads Pulumi.<stack>.yaml) [PREVIEW_STACK]")
    parser.add_argument("--program-dir", type=Path,
                        default=Path(env("PREVIEW_PROGRAM_DIR", str(PROJECT_ROOT))),
                        help="directory holding Pulumi.yaml (default: the project root)")
    packs_env = env("PREVIEW_POLICY_PACKS")
    parser.add_argument("--policy-pack", action="append", type=Path, dest="policy_packs",
                        default=None,
                        help=("policy pack directory, repeatable (default: policies) "
                              "[PREVIEW_POLICY_PACKS]"))
    parser.add_argument("--policy-pack-config", action="append", type=Path, dest="pack_configs",
                        default=None,
                        help=("policy-pack config JSON for the pack at the same position, "
                              "repeatable [PREVIEW_POLICY_PACK_CONFIG]"))
    parser.add_argument("--config-file", type=Path,
                        default=_env_path("PREVIEW_CONFIG_FILE"),
                        help="stack config file (default: Pulumi.<stack>.yaml in the program dir)")
    parser.add_argument("--json", type=Path, dest="json_path",
                        default=_env_path("PREVIEW_JSON"),
                        help=("write resources (inputs, secrets redacted), dependencies and "
                              "violations as JSON to this file ('-' for stdout)"))
    parser.add_argument("--stack-outputs", type=Path,
                        default=_env_path("PREVIEW_STACK_OUTPUTS"),
                        help=("JSON {stack: {output: value}} answering StackReferences (e.g. "
                              "from `pulumi stack output --json`); a stack not listed reads as "
                              "never deployed [PREVIEW_STACK_OUTPUTS]"))
    parser.set_defaults(packs_env=packs_env)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.stack:
        parser.print_usage(sys.stderr)
        print("error [usage-error]: --stack is required (or set PREVIEW_STACK)", file=sys.stderr)
        return 2
    packs = args.policy_packs
    if packs is None:
        packs = ([Path(p) for p in args.packs_env.split(os.pathsep) if p]
                 if args.packs_env else [DEFAULT_PACK])
    configs = args.pack_configs
    if configs is None and os.environ.get("PREVIEW_POLICY_PACK_CONFIG"):
        configs = [Path(os.environ["PREVIEW_POLICY_PACK_CONFIG"])]
    try:
        stack_outputs = None
        if args.stack_outputs is not None:
            try:
                stack_outputs = json.loads(args.stack_outputs.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise UsageError(f"--stack-outputs {args.stack_outputs}: {exc}") from exc
            if not isinstance(stack_outputs, dict):
                raise UsageError(f"--stack-outputs {args.stack_outputs}: must be a JSON object")
        result = run_preview(
            stack=args.stack,
            program_dir=args.program_dir,
            policy_packs=packs,
            policy_pack_configs=configs or (),
            config_file=args.config_file,
            stack_outputs=stack_outputs,
        )
    except PreviewError as exc:
        print(render_error(exc), file=sys.stderr)
        return 2
    if args.json_path is not None and str(args.json_path) == "-":
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(render(result))
        if args.json_path is not None:
            args.json_path.parent.mkdir(parents=True, exist_ok=True)
            args.json_path.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
