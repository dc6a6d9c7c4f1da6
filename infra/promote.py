"""Promotion, acceptance, replay and drift: the release logic the GitHub workflows run.

A stack's *ledger* is its ``acceptedReleases`` stack output: ``[{sha, image, acceptedAt}, ...]`` in
acceptance order, carried forward by the Pulumi program. A release is *accepted* on a stack when its
``pulumi up`` and every check after it (API smoke, migration alerts) passed; the workflow then sets
``gated-release:acceptRelease`` and runs ``pulumi up`` again, which appends the release to the
ledger.

Promotion reads the upstream stack's ledger (``gated-release:promotesFrom``); a replay redeploys a
release accepted before. Which release may deploy where is decided by :mod:`infra.release`, the
rule the program itself enforces in ``pulumi up``; this module only gathers the ledgers for it.
Everything that talks to Pulumi goes through two seams: ``--ledger-file`` (stack outputs as JSON,
instead of ``pulumi stack output --json``) and ``--pulumi`` (the executable to run), so all of it
runs offline in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.errors import InfraError, ReleaseError
from infra.release import AcceptedRelease, Release, authorize, find, parse_ledger

PROJECT = "gated-release"
KEY_SHA = f"{PROJECT}:releaseSha"
KEY_IMAGE = f"{PROJECT}:releaseImage"
KEY_FROM = f"{PROJECT}:promotesFrom"
KEY_ACCEPT = f"{PROJECT}:acceptRelease"
KEY_REPLAY = f"{PROJECT}:replay"
LEDGER_OUTPUT = "acceptedReleases"
OPS_PATH = "/api/ops/migrations"

# A full SHA-1 or SHA-256 commit id: CI records github.sha, so a short SHA would never match.
SHA_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
IMAGE_RE = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")

EXIT_OK, EXIT_USAGE, EXIT_REFUSED, EXIT_BACKEND, EXIT_DRIFT = 0, 2, 3, 4, 5


class PromoteError(InfraError):
    """A refusal or failure: a stable ``code``, the process exit status, context for the message."""

    def __init__(self, code: str, message: str, exit_code: int, **context: Any) -> None:
        super().__init__(code, message, **context)
        self.exit_code = exit_code


def exit_code_of(error: InfraError) -> int:
    if isinstance(error, PromoteError):
        return error.exit_code
    if error.code == "release-ledger-invalid":
        return EXIT_BACKEND
    return EXIT_REFUSED if isinstance(error, ReleaseError) else EXIT_USAGE


def check_sha(sha: str) -> str:
    if not SHA_RE.fullmatch(sha):
        raise PromoteError(
            "invalid-sha",
            f"{sha!r} is not a full commit SHA; pass the 40-character lowercase hex SHA "
            "(git rev-parse <ref>)",
            EXIT_USAGE,
            sha=sha,
        )
    return sha


def check_image(image: str) -> str:
    if not IMAGE_RE.fullmatch(image):
        raise PromoteError(
            "invalid-image",
            f"{image!r} is not pinned by digest; pass registry/repository@sha256:<64 hex>",
            EXIT_USAGE,
            image=image,
        )
    return image


def _recent(ledger: Sequence[AcceptedRelease]) -> str:
    return ", ".join(e.sha[:12] for e in ledger[-5:][::-1]) or "none"


# -- the Pulumi seam ---------------------------------------------------------------------------

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _subprocess_runner(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise PromoteError(
            "pulumi-missing",
            f"{argv[0]} not found; install the Pulumi CLI or pass --ledger-file for offline use",
            EXIT_BACKEND,
        ) from exc


@dataclass
class Backend:
    """Stack outputs and stack config, from the Pulumi CLI or (outputs only) a JSON ledger file.

    The ledger file maps a stack name to what ``pulumi stack output --json --stack <name>``
    prints, e.g. ``{"dev": {"acceptedReleases": [...], "release": {"sha": ..., "image": ...},
    "appUrls": {"api": "<fqdn>"}}}`` (the exports of infra/program.py).
    """

    pulumi: str = "pulumi"
    project_dir: Path = Path(".")
    ledger_file: Path | None = None
    run: Runner = _subprocess_runner
    calls: list[list[str]] = field(default_factory=list)

    def _pulumi(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [self.pulumi, *args, "--cwd", str(self.project_dir), "--non-interactive"]
        self.calls.append(argv)
        return self.run(argv)

    def _checked(self, *args: str) -> str:
        proc = self._pulumi(*args)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise PromoteError(
                "pulumi-failed",
                f"`pulumi {' '.join(args)}` exited {proc.returncode}: "
                f"{detail[-1] if detail else 'no output'}",
                EXIT_BACKEND,
            )
        return proc.stdout

    def outputs(self, stack: str) -> dict[str, Any]:
        if self.ledger_file is not None:
            try:
                data = json.loads(self.ledger_file.read_text())
            except (OSError, ValueError) as exc:
                raise PromoteError(
                    "ledger-unreadable", f"{self.ledger_file}: {exc}", EXIT_BACKEND
                ) from exc
            value = data.get(stack, {}) if isinstance(data, dict) else None
        else:
            text = self._checked("stack", "output", "--json", "--stack", stack)
            try:
                value = json.loads(text or "{}")
            except ValueError as exc:
                raise PromoteError(
                    "ledger-unreadable", f"stack {stack}: outputs are not JSON", EXIT_BACKEND
                ) from exc
        if not isinstance(value, dict):
            raise PromoteError(
                "ledger-unreadable", f"stack {stack}: outputs are not an object", EXIT_BACKEND
            )
        return value

    def ledger(self, stack: str) -> tuple[AcceptedRelease, ...]:
        return parse_ledger(self.outputs(stack).get(LEDGER_OUTPUT))

    def config_get(self, stack: str, key: str) -> str | None:
        proc = self._pulumi("config", "get", key, "--json", "--stack", stack)
        if proc.returncode != 0:
            if "not found" in (proc.stderr + proc.stdout):
                return None
            raise PromoteError(
                "pulumi-failed", f"`pulumi config get {key}` failed: {proc.stderr.strip()}",
                EXIT_BACKEND,
            )
        value = json.loads(proc.stdout).get("value")
        return None if value is None else str(value)

    def config_set(self, stack: str, key: str, value: str) -> None:
        self._checked("config", "set", key, value, "--stack", stack)

    def config_rm(self, stack: str, key: str) -> None:
        self._checked("config", "rm", key, "--stack", stack)

    def stack_file_config(self, stack: str) -> dict[str, Any]:
        """The committed ``Pulumi.<stack>.yaml`` config (no CLI); empty when there is none."""
        path = self.project_dir / f"Pulumi.{stack.rsplit('/', 1)[-1]}.yaml"
        if not path.is_file():
            return {}
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        return dict(config) if isinstance(config, dict) else {}

    def promotes_from(self, stack: str) -> str | None:
        """``gated-release:promotesFrom`` from the committed stack file."""
        value = self.stack_file_config(stack).get(KEY_FROM)
        return str(value) if value else None


# -- the operations ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Resolution:
    stack: str
    sha: str
    image: str
    source: str

    def to_json(self) -> dict[str, str]:
        return {"stack": self.stack, "sha": self.sha, "image": self.image, "source": self.source}


def _ledgers(
    backend: Backend, stack: str, upstream: str | None
) -> tuple[tuple[AcceptedRelease, ...], str | None, tuple[AcceptedRelease, ...]]:
    source = upstream or backend.promotes_from(stack)
    return backend.ledger(stack), source, (backend.ledger(source) if source else ())


def _authorized(
    sha: str, image: str | None, stack: str, own: Sequence[AcceptedRelease],
    source: str | None, upstream: Sequence[AcceptedRelease], replay: bool,
) -> AcceptedRelease:
    """The ledger entry that lets ``stack`` deploy ``sha``, by the program's own rule."""
    candidate = (find(own, sha) if replay else None) or find(upstream, sha)
    release = Release(sha, image or (candidate.image if candidate else ""))
    try:
        entry = authorize(release, stack=stack, own=own, upstream=upstream,
                          promotes_from=source, replay=replay)
    except ReleaseError as exc:
        recent = f"latest accepted on {stack}: {_recent(own)}"
        if source:
            recent += f"; on {source}: {_recent(upstream)}"
        raise ReleaseError(exc.code, f"{exc.message} ({recent})", **exc.context) from exc
    if entry is None:  # authorize needs no ledger only for a first stage's fresh build
        raise PromoteError("no-upstream", f"stack {stack} promotes from no stack; a replay needs "
                           "the release in its own ledger", EXIT_REFUSED, stack=stack)
    return entry


def resolve(
    backend: Backend,
    stack: str,
    sha: str | None = None,
    image: str | None = None,
    upstream: str | None = None,
    replay: bool = False,
) -> Resolution:
    """Which release ``stack`` deploys: a fresh build, an upstream acceptance, or a replay."""
    if sha is not None:
        check_sha(sha)
    if image and not replay:
        if sha is None:
            raise PromoteError("usage", "--image needs --sha (the commit it was built from)",
                               EXIT_USAGE)
        return Resolution(stack, sha, check_image(image), "build")
    own, source, upstream_ledger = _ledgers(backend, stack, upstream)
    if replay:
        if sha is None:
            raise PromoteError("usage", "a replay needs --sha", EXIT_USAGE)
        entry = _authorized(sha, image, stack, own, source, upstream_ledger, replay=True)
        return Resolution(stack, entry.sha, check_image(entry.image), f"replay:{stack}")
    if not source:
        raise PromoteError(
            "no-upstream",
            f"stack {stack} promotes from no stack ({KEY_FROM} unset) and no --image was "
            "given; pass --image for a first stage or --from for a promotion",
            EXIT_USAGE,
            stack=stack,
        )
    if sha is None:
        if not upstream_ledger:
            raise PromoteError("ledger-empty", f"upstream stack {source} has accepted no "
                               "release yet; deploy it there first", EXIT_REFUSED, stack=source)
        sha = upstream_ledger[-1].sha
    entry = _authorized(sha, None, stack, own, source, upstream_ledger, replay=False)
    return Resolution(stack, entry.sha, check_image(entry.image), f"promote:{source}")


def verify(
    backend: Backend, stacks: Sequence[str], sha: str, latest: bool = False
) -> AcceptedRelease:
    """Refuse ``sha`` unless every stack may replay it, all with one image (the same artifact).

    ``latest``: instead, require ``sha`` to be the newest entry of each stack's own ledger (what
    a completed stage leaves behind).
    """
    check_sha(sha)
    found: list[tuple[str, AcceptedRelease]] = []
    for stack in stacks:
        own, source, upstream_ledger = _ledgers(backend, stack, None)
        if latest:
            if not own or own[-1].sha != sha:
                raise ReleaseError(
                    "release-not-recorded",
                    f"release {sha} is not the latest accepted release of stack {stack} "
                    f"(latest: {_recent(own)}); the acceptance update did not record it",
                    sha=sha, stack=stack)
            found.append((stack, own[-1]))
        else:
            found.append((stack, _authorized(sha, None, stack, own, source, upstream_ledger,
                                             replay=True)))
    images = {entry.image for _, entry in found}
    if len(images) > 1:
        detail = ", ".join(f"{s}={e.image}" for s, e in found)
        raise ReleaseError("release-image-mismatch", f"release {sha} was accepted with different "
                           f"images ({detail}); refusing an ambiguous artifact", sha=sha)
    return found[-1][1]


def preview_outputs(backend: Backend, stack: str) -> dict[str, Any]:
    """Stack outputs for the offline preview (``--stack-outputs``): the upstream has accepted
    the release committed in the stack file, so the preview exercises the program and the
    policy pack rather than the promotion rule (which only real ledgers can answer)."""
    config = backend.stack_file_config(stack)
    source = backend.promotes_from(stack)
    sha, image = config.get(KEY_SHA), config.get(KEY_IMAGE)
    if not source:
        return {}
    if not (sha and image):
        raise PromoteError("usage", f"Pulumi.{stack}.yaml sets no {KEY_SHA}/{KEY_IMAGE}",
                           EXIT_USAGE, stack=stack)
    entry = AcceptedRelease(str(sha), str(image), "1970-01-01T00:00:00Z")
    return {source: {LEDGER_OUTPUT: [entry.as_output()]}}


def configure(backend: Backend, stack: str, sha: str, image: str, replay: bool = False) -> None:
    """Set the release for the next ``pulumi up``; clears acceptance so the up cannot accept."""
    check_sha(sha)
    check_image(image)
    backend.config_set(stack, KEY_SHA, sha)
    backend.config_set(stack, KEY_IMAGE, image)
    backend.config_set(stack, KEY_REPLAY, "true" if replay else "false")
    backend.config_rm(stack, KEY_ACCEPT)


def accept(backend: Backend, stack: str, sha: str) -> None:
    """Mark the configured release accepted; the next ``pulumi up`` appends it to the ledger."""
    check_sha(sha)
    configured = backend.config_get(stack, KEY_SHA)
    if configured != sha:
        raise PromoteError(
            "release-mismatch",
            f"stack {stack} is configured for release {configured or '(none)'}, not {sha}; "
            "run `python -m infra.promote configure` for this release first",
            EXIT_REFUSED,
            stack=stack,
        )
    backend.config_set(stack, KEY_ACCEPT, sha)


# -- drift ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # "critical" fails the check, "warning" is reported only
    message: str


def _pending_names(status: Mapping[str, Any]) -> list[str]:
    pending = status.get("pending") or []
    return [str(p.get("name", p)) if isinstance(p, dict) else str(p) for p in pending]


def _alert(status: Mapping[str, Any]) -> tuple[str, list[str]]:
    alert = status.get("alert") or {}
    if isinstance(alert, str):
        return alert, []
    reasons = [str(r.get("message", r)) if isinstance(r, dict) else str(r)
               for r in alert.get("reasons") or []]
    return str(alert.get("level") or "unknown"), reasons


def _last_success_sha(status: Mapping[str, Any]) -> str | None:
    """Release of the newest successful whole-run row (``recentRuns`` is newest first)."""
    for run in status.get("recentRuns") or []:
        if isinstance(run, dict) and run.get("status") == "SUCCESS" and not run.get("migration"):
            sha = run.get("releaseSha")
            return str(sha) if sha else None
    return None


def deployed_sha(outputs: Mapping[str, Any]) -> str | None:
    """The release the stack's last update deployed (the program's ``release`` output)."""
    release = outputs.get("release")
    sha = release.get("sha") if isinstance(release, dict) else None
    return str(sha) if sha else None


def api_url(outputs: Mapping[str, Any], stack: str, app: str = "api") -> str:
    """``https://<fqdn>`` of an app's latest revision, from the ``appUrls`` output."""
    urls = outputs.get("appUrls")
    fqdn = urls.get(app) if isinstance(urls, dict) else None
    if not fqdn:
        raise PromoteError("no-app-url", f"stack {stack} exports no appUrls.{app}; is {app} in "
                           "gated-release:ingressApps, and has the stack been deployed?",
                           EXIT_BACKEND, stack=stack)
    fqdn = str(fqdn)
    return fqdn.rstrip("/") if fqdn.startswith(("http://", "https://")) else f"https://{fqdn}"


def drift(stack: str, outputs: Mapping[str, Any], status: Mapping[str, Any]) -> list[Finding]:
    """Compare what the stack deployed with what its database reports."""
    findings: list[Finding] = []
    ledger = parse_ledger(outputs.get(LEDGER_OUTPUT))
    deployed = deployed_sha(outputs)
    if not ledger:
        findings.append(Finding("no-accepted-release", "warning",
                                f"stack {stack} has accepted no release yet"))
    elif deployed and deployed != ledger[-1].sha:
        findings.append(Finding(
            "unaccepted-release", "critical",
            f"stack {stack} runs {deployed} but its latest accepted release is "
            f"{ledger[-1].sha}: a deploy failed after `pulumi up`; fix forward or replay "
            f"{ledger[-1].sha[:12]}"))
    pending = _pending_names(status)
    if pending:
        shown = ", ".join(pending[:5]) + (" ..." if len(pending) > 5 else "")
        findings.append(Finding(
            "pending-migrations", "critical",
            f"{len(pending)} migration(s) pending behind deployed release "
            f"{(deployed or 'unknown')[:12]}: {shown}; the gate did not apply them "
            "(restored database, or a deploy that bypassed the pipeline)"))
    ran = _last_success_sha(status)
    if deployed and ran and ran != deployed:
        findings.append(Finding(
            "release-not-migrated", "warning",
            f"the last successful migration run was for {ran[:12]}, not deployed {deployed[:12]}"))
    telemetry = status.get("telemetry")
    if isinstance(telemetry, dict) and telemetry.get("enabled") and not telemetry.get("available"):
        findings.append(Finding("telemetry-unavailable", "warning",
                                "the run log is unavailable; alerts cannot see failures"))
    level, reasons = _alert(status)
    if level == "critical":
        findings.append(Finding("alert-critical", "critical",
                                "migration alert is critical: "
                                + ("; ".join(reasons) or "see the ops endpoint")))
    elif level == "warning":
        findings.append(Finding("alert-warning", "warning",
                                "migration alert is warning: " + ("; ".join(reasons) or "see ops")))
    return findings


def fetch_status(url: str, token: str | None, timeout: float = 20.0) -> dict[str, Any]:
    """GET the ops endpoint; a 503 (critical) still carries the status body."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        if exc.code != 503:
            raise PromoteError("status-unavailable", f"GET {url} returned {exc.code}; check "
                               "DEPLOY_OPS_TOKEN and OPS_MIGRATION_TOKEN", EXIT_BACKEND) from exc
        body = exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise PromoteError("status-unavailable", f"GET {url}: {exc}", EXIT_BACKEND) from exc
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise PromoteError("status-unavailable", f"GET {url}: body is not JSON",
                           EXIT_BACKEND) from exc
    if not isinstance(data, dict):
        raise PromoteError("status-unavailable", f"GET {url}: body is not an object", EXIT_BACKEND)
    return data


def drift_markdown(stack: str, findings: Sequence[Finding]) -> str:
    failed = any(f.severity == "critical" for f in findings)
    lines = [f"### Drift: `{stack}` — {'FAILED' if failed else 'ok'}", ""]
    if not findings:
        lines.append("No drift: the deployed release is accepted and no migration is pending.")
    else:
        lines += ["| severity | code | finding |", "|---|---|---|"]
        lines += [f"| {f.severity} | `{f.code}` | {f.message} |" for f in findings]
    return "\n".join(lines) + "\n"


# -- the deploy summary --------------------------------------------------------------------------

def summary_markdown(sha: str, artifact_dir: Path) -> str:
    """A short human summary of ``migration.json`` and ``api-smoke.json`` for a release."""
    base = artifact_dir / sha
    lines = [f"### Release `{sha[:12]}`", ""]
    for name in ("migration.json", "api-smoke.json"):
        path = base / name
        if not path.is_file():
            lines.append(f"- `{name}`: not written (the step did not run or crashed before it)")
            continue
        try:
            data = json.loads(path.read_text())
        except ValueError:
            lines.append(f"- `{name}`: unreadable JSON")
            continue
        code = data.get("reasonCode")
        verdict = "ok" if code is None else f"**{code}**"
        detail = data.get("reason") or ""
        if name == "migration.json":
            summary = data.get("executionSummary") or {}
            detail = (f"{data.get('executionStatus')}; applied {len(summary.get('applied') or [])},"
                      f" pending {len(summary.get('pending') or [])}; {detail}".rstrip("; "))
            failing = summary.get("failing")
            if failing and str(failing.get("file")) not in detail:
                detail += (f"; failing {failing.get('file')}:{failing.get('line')} "
                           f"SQLSTATE {failing.get('sqlstate')}")
        lines.append(f"- `{name}`: {verdict} {detail}".rstrip())
    return "\n".join(lines) + "\n"


# -- the command line ----------------------------------------------------------------------------

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
        prog="python -m infra.promote",
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
  python -m infra.promote resolve --stack staging --sha <sha>      # image from dev's ledger
  python -m infra.promote verify --stack dev,staging,prod --sha <sha>
  python -m infra.promote ledger --stack prod --ledger-file outputs.json
  python -m infra.promote drift --stack prod --status-file status.json

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


if __name__ == "__main__":
    sys.exit(main())
