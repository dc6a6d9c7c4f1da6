"""Drift between a stack's deployed release and its database, and CI summaries."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.release import parse_ledger

from .backend import EXIT_BACKEND, LEDGER_OUTPUT, PromoteError


@dataclass(frozen=True)
class DriftFinding:
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
        raise PromoteError("no-app-url", f"stack {stack} exports no appUrls.{app}; does gated-release:apps.{app} "
                           "have ingress, and has the stack been deployed?",
                           EXIT_BACKEND, stack=stack)
    fqdn = str(fqdn)
    return fqdn.rstrip("/") if fqdn.startswith(("http://", "https://")) else f"https://{fqdn}"


def drift(stack: str, outputs: Mapping[str, Any], status: Mapping[str, Any]) -> list[DriftFinding]:
    """Compare what the stack deployed with what its database reports."""
    findings: list[DriftFinding] = []
    ledger = parse_ledger(outputs.get(LEDGER_OUTPUT))
    deployed = deployed_sha(outputs)
    if not ledger:
        findings.append(DriftFinding("no-accepted-release", "warning",
                                f"stack {stack} has accepted no release yet"))
    elif deployed and deployed != ledger[-1].sha:
        findings.append(DriftFinding(
            "unaccepted-release", "critical",
            f"stack {stack} runs {deployed} but its latest accepted release is "
            f"{ledger[-1].sha}: a deploy failed after `pulumi up`; fix forward or replay "
            f"{ledger[-1].sha[:12]}"))
    pending = _pending_names(status)
    if pending:
        shown = ", ".join(pending[:5]) + (" ..." if len(pending) > 5 else "")
        findings.append(DriftFinding(
            "pending-migrations", "critical",
            f"{len(pending)} migration(s) pending behind deployed release "
            f"{(deployed or 'unknown')[:12]}: {shown}; the gate did not apply them "
            "(restored database, or a deploy that bypassed the pipeline)"))
    ran = _last_success_sha(status)
    if deployed and ran and ran != deployed:
        findings.append(DriftFinding(
            "release-not-migrated", "warning",
            f"the last successful migration run was for {ran[:12]}, not deployed {deployed[:12]}"))
    telemetry = status.get("telemetry")
    if isinstance(telemetry, dict) and telemetry.get("enabled") and not telemetry.get("available"):
        findings.append(DriftFinding("telemetry-unavailable", "warning",
                                "the run log is unavailable; alerts cannot see failures"))
    level, reasons = _alert(status)
    if level == "critical":
        findings.append(DriftFinding("alert-critical", "critical",
                                "migration alert is critical: "
                                + ("; ".join(reasons) or "see the ops endpoint")))
    elif level == "warning":
        findings.append(DriftFinding("alert-warning", "warning",
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


def drift_markdown(stack: str, findings: Sequence[DriftFinding]) -> str:
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
