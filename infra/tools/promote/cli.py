"""`python -m infra.tools.promote`: the command line the workflows call."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from infra.errors import InfraError

from .backend import (
    EXIT_BACKEND,
    EXIT_DRIFT,
    EXIT_OK,
    EXIT_USAGE,
    KEY_ACCEPT,
    KEY_FROM,
    OPS_PATH,
    Backend,
    PromoteError,
    Runner,
    _subprocess_runner,
    exit_code_of,
)
from .drift import api_url, drift, drift_markdown, fetch_status, summary_markdown
from .ledger import accept, configure, preview_outputs, resolve, verify


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_bool(name: str) -> bool:
    return (_env(name) or "0").lower() in ("1", "true", "yes", "on")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ledger-file", type=Path, default=_env("GATED_RELEASE_LEDGER_FILE"),
                   help="read stack outputs from this JSON file ({stack: outputs}) instead of "
                   "`pulumi stack output --json` [GATED_RELEASE_LEDGER_FILE]")
    p.add_argument("--pulumi", default=_env("GATED_RELEASE_PULUMI", "pulumi"),
                   help="the Pulumi executable [GATED_RELEASE_PULUMI, default pulumi]")
    p.add_argument("--project-dir", type=Path, default=_env("GATED_RELEASE_PROJECT_DIR", "."),
                   help="directory holding Pulumi.yaml [GATED_RELEASE_PROJECT_DIR, default .]")
    p.add_argument("--json", action="store_true", default=_env_bool("GATED_RELEASE_JSON"),
                   help="print a JSON document for machines [GATED_RELEASE_JSON=1]")


def _stack(p: argparse.ArgumentParser, many: bool = False) -> None:
    default = _env("GATED_RELEASE_STACK")
    if many:
        # append onto an env-provided default would merge both; the env applies in run()
        p.add_argument("--stack", action="append", dest="stacks",
                       help="a stack (repeat, or comma-separate) [GATED_RELEASE_STACK]")
    else:
        p.add_argument("--stack", default=default, help="the stack [GATED_RELEASE_STACK]")


def _sha(p: argparse.ArgumentParser, required_hint: str) -> None:
    p.add_argument("--sha", default=_env("GATED_RELEASE_SHA"),
                   help=f"full 40-hex commit SHA; {required_hint} [GATED_RELEASE_SHA]")


def _github_output_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--github-output", action="store_true",
                   default=_env_bool("GATED_RELEASE_GITHUB_OUTPUT"),
                   help=f"also append {what} to the file named by $GITHUB_OUTPUT "
                   "[GATED_RELEASE_GITHUB_OUTPUT=1]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra.tools.promote",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Promote, accept, verify and replay gated releases; check stacks for drift.

A stack's ledger is its `acceptedReleases` output. A stage runs, in order:
  resolve -> configure -> pulumi up --policy-pack policies -> smoke -> alerts
  -> accept -> pulumi up (records the release) -> verify --latest
Stack outputs come from `pulumi stack output --json` (--pulumi) or a JSON file
(--ledger-file, {stack: outputs}); promotesFrom from Pulumi.<stack>.yaml.""",
        epilog="""\
examples:
  python -m infra.tools.promote resolve --stack staging --sha <sha>      # image from dev's ledger
  python -m infra.tools.promote verify --stack dev,staging,prod --sha <sha>
  python -m infra.tools.promote ledger --stack prod --ledger-file outputs.json
  python -m infra.tools.promote drift --stack prod --status-file status.json

exit codes: 0 ok, 2 usage, 3 refused (not accepted, mismatch), 4 Pulumi or
ledger unavailable, 5 drift found""",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("resolve", help="the release a stack deploys (build, promotion or replay)")
    _stack(p)
    _sha(p, "with --image: the built commit; else: must be accepted upstream")
    p.add_argument("--image", default=_env("GATED_RELEASE_IMAGE"),
                   help="digest-pinned image of a fresh build (first stage) [GATED_RELEASE_IMAGE]")
    p.add_argument("--from", dest="upstream", default=_env("GATED_RELEASE_PROMOTES_FROM"),
                   help=f"upstream stack (default: {KEY_FROM} in Pulumi.<stack>.yaml) "
                   "[GATED_RELEASE_PROMOTES_FROM]")
    p.add_argument("--replay", action="store_true", default=_env_bool("GATED_RELEASE_REPLAY"),
                   help="redeploy a release this stack accepted before [GATED_RELEASE_REPLAY=1]")
    _github_output_flag(p, "sha=, image=, source=")
    _common(p)

    p = sub.add_parser("verify", help="refuse a SHA that a given stack may not replay")
    _stack(p, many=True)
    _sha(p, "required")
    p.add_argument("--latest", action="store_true", default=_env_bool("GATED_RELEASE_LATEST"),
                   help="require the SHA to be the newest entry of each stack's own ledger "
                   "[GATED_RELEASE_LATEST=1]")
    _github_output_flag(p, "sha= and image=")
    _common(p)

    p = sub.add_parser("configure", help="set the release config before `pulumi up`")
    _stack(p)
    _sha(p, "required")
    p.add_argument("--image", default=_env("GATED_RELEASE_IMAGE"), help="[GATED_RELEASE_IMAGE]")
    p.add_argument("--replay", action="store_true", default=_env_bool("GATED_RELEASE_REPLAY"),
                   help="[GATED_RELEASE_REPLAY=1]")
    _common(p)

    p = sub.add_parser("accept", help="mark the configured release accepted (then `pulumi up`)")
    _stack(p)
    _sha(p, "required; must equal the configured releaseSha")
    p.add_argument("--policy-pack", default=_env("GATED_RELEASE_POLICY_PACK", "policies"),
                   help="printed in the follow-up command [GATED_RELEASE_POLICY_PACK]")
    _common(p)

    p = sub.add_parser("url", help="https URL of an app's latest revision (appUrls output)")
    _stack(p)
    p.add_argument("--app", default=_env("GATED_RELEASE_APP", "api"),
                   help="the app [GATED_RELEASE_APP, default api]")
    _github_output_flag(p, "url=")
    _common(p)

    p = sub.add_parser("preview-outputs", help="stack outputs for the offline preview: the "
                       "upstream accepted the stack file's release (JSON on stdout)")
    _stack(p)
    _common(p)

    p = sub.add_parser("ledger", help="print a stack's accepted releases")
    _stack(p)
    _common(p)

    p = sub.add_parser("drift", help="compare a stack's deployed release with its database")
    _stack(p)
    p.add_argument("--status-file", type=Path, default=_env("GATED_RELEASE_STATUS_FILE"),
                   help="the JSON of `python -m migration status --json` or of GET "
                   f"{OPS_PATH} [GATED_RELEASE_STATUS_FILE]")
    p.add_argument("--url", default=_env("GATED_RELEASE_OPS_URL"),
                   help=f"the ops endpoint (default: https://<appUrls.api>{OPS_PATH}); token from "
                   "DEPLOY_OPS_TOKEN [GATED_RELEASE_OPS_URL]")
    _common(p)

    p = sub.add_parser("summary", help="markdown summary of a release's deploy artifacts")
    _sha(p, "required")
    p.add_argument("--artifact-dir", type=Path,
                   default=_env("GATED_RELEASE_ARTIFACT_DIR", ".artifacts/deploy"),
                   help="[GATED_RELEASE_ARTIFACT_DIR, default .artifacts/deploy]")
    return parser


def _require(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        if not getattr(args, name, None):
            flag = "--" + name.rstrip("s").replace("_", "-")
            raise PromoteError("usage", f"{args.command} needs {flag}", EXIT_USAGE)


def _github_output(pairs: Mapping[str, str]) -> None:
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        raise PromoteError("usage", "--github-output needs $GITHUB_OUTPUT", EXIT_USAGE)
    with open(path, "a", encoding="utf-8") as fh:
        fh.writelines(f"{k}={v}\n" for k, v in pairs.items())


def _step_summary(text: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)


def _emit(args: argparse.Namespace, doc: object, human: str) -> None:
    print(json.dumps(doc, indent=2) if args.json else human)


def run(args: argparse.Namespace, backend: Backend) -> int:
    cmd = args.command
    if cmd == "resolve":
        _require(args, "stack")
        res = resolve(backend, args.stack, args.sha, args.image, args.upstream, args.replay)
        if args.github_output:
            _github_output({"sha": res.sha, "image": res.image, "source": res.source})
        _emit(args, res.to_json(), f"{res.stack}: deploy {res.sha} {res.image} ({res.source})")
    elif cmd == "verify":
        if not args.stacks and _env("GATED_RELEASE_STACK"):
            args.stacks = [_env("GATED_RELEASE_STACK")]
        _require(args, "stacks", "sha")
        stacks = [s for arg in args.stacks for s in arg.split(",") if s]
        entry = verify(backend, stacks, args.sha, args.latest)
        if args.github_output:
            _github_output({"sha": entry.sha, "image": entry.image})
        _emit(args, {"stacks": stacks, **entry.as_output()},
              f"accepted on {', '.join(stacks)}: {entry.sha} {entry.image}")
    elif cmd == "configure":
        _require(args, "stack", "sha", "image")
        configure(backend, args.stack, args.sha, args.image, args.replay)
        _emit(args, {"stack": args.stack, "sha": args.sha, "image": args.image,
                     "replay": args.replay},
              f"{args.stack}: release {args.sha} configured ({KEY_ACCEPT} cleared)")
    elif cmd == "accept":
        _require(args, "stack", "sha")
        accept(backend, args.stack, args.sha)
        follow = (f"pulumi up --stack {args.stack} --policy-pack {args.policy_pack} "
                  "--yes --skip-preview")
        _emit(args, {"stack": args.stack, "sha": args.sha, "next": follow},
              f"{args.stack}: {KEY_ACCEPT}={args.sha}; record it with:\n  {follow}")
    elif cmd == "url":
        _require(args, "stack")
        url = api_url(backend.outputs(args.stack), args.stack, args.app)
        if args.github_output:
            _github_output({"url": url})
        _emit(args, {"stack": args.stack, "app": args.app, "url": url}, url)
    elif cmd == "preview-outputs":
        _require(args, "stack")
        print(json.dumps(preview_outputs(backend, args.stack), indent=2))
    elif cmd == "ledger":
        _require(args, "stack")
        ledger = backend.ledger(args.stack)
        _emit(args, [e.as_output() for e in ledger],
              "\n".join(f"{e.accepted_at}  {e.sha}  {e.image}" for e in ledger)
              or f"{args.stack}: no accepted release")
    elif cmd == "drift":
        _require(args, "stack")
        outputs = backend.outputs(args.stack)
        if args.status_file:
            try:
                status = json.loads(Path(args.status_file).read_text())
            except (OSError, ValueError) as exc:
                raise PromoteError("status-unavailable", f"{args.status_file}: {exc}",
                                   EXIT_BACKEND) from exc
        else:
            url = args.url or api_url(outputs, args.stack) + OPS_PATH
            status = fetch_status(url, os.environ.get("DEPLOY_OPS_TOKEN"))
        findings = drift(args.stack, outputs, status)
        text = drift_markdown(args.stack, findings)
        _step_summary(text)
        _emit(args, {"stack": args.stack,
                     "findings": [f.__dict__ for f in findings]}, text.rstrip())
        return EXIT_DRIFT if any(f.severity == "critical" for f in findings) else EXIT_OK
    elif cmd == "summary":
        _require(args, "sha")
        print(summary_markdown(args.sha, args.artifact_dir), end="")
    return EXIT_OK


def main(argv: Sequence[str] | None = None, runner: Runner | None = None) -> int:
    args = build_parser().parse_args(argv)
    backend = Backend(
        pulumi=getattr(args, "pulumi", "pulumi"),
        project_dir=Path(getattr(args, "project_dir", ".")),
        ledger_file=getattr(args, "ledger_file", None),
        run=runner or _subprocess_runner,
    )
    try:
        return run(args, backend)
    except InfraError as exc:
        print(f"error[{exc.code}]: {exc.message}", file=sys.stderr)
        return exit_code_of(exc)

