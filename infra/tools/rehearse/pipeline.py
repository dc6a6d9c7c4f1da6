"""The rehearsal's stages, in the pipeline's order, each timed; the apps stopped whatever happens.

``preview`` (offline, with the policy pack; a mandatory violation stops here) -> ``migration``
(the previewed Job's own command against the local database; a failure stops the rollout, as the
gate does: no app starts) -> ``apps`` (each previewed ContainerApp's own command on a 127.0.0.1
port, waited for on its readiness path) -> ``smoke`` (``infra.tools.smoke`` against the API with
``--expect-version <sha>``) -> ``status`` (``python -m migration status``) -> ``stop``. One line per
stage with its duration; the summary names every artifact and is written as ``rehearsal.json``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from infra.tools.preview import PreviewError, run_preview
from infra.tools.preview.report import render, render_error
from infra.tools.rehearse.invocation import RehearsalError, app_invocations, invocation
from infra.tools.rehearse.processes import AppProcess, start_app, stop_all

__all__ = ["EXIT_APPS", "EXIT_SMOKE", "Options", "Rehearsal", "rehearse"]

EXIT_POLICY = 1
EXIT_USAGE = 2
EXIT_APPS = 20  # an app did not start or become ready
EXIT_SMOKE = 21  # the smoke check failed (api-smoke.json says which assertion)
STAGES = ("preview", "migration", "apps", "smoke", "status", "stop")


@dataclass(frozen=True)
class Options:
    stack: str
    program_dir: Path
    policy_pack: Path
    database_url: str | None
    embedded_dir: Path
    artifact_dir: Path
    smoke_app: str = "api"
    smoke_data_path: str | None = "/api/documents"
    ready_timeout_s: float = 30.0
    config_file: Path | None = None


@dataclass
class Rehearsal:
    """What happened, stage by stage, and where everything was written."""

    stages: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    release_sha: str | None = None
    exit_code: int = 0

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, Any]]:
        index = STAGES.index(name) + 1
        print(f"\n==> [{index}/{len(STAGES)}] {name}", flush=True)
        entry: dict[str, Any] = {"stage": name, "status": "ok", "detail": None}
        start = time.monotonic()
        try:
            yield entry
        except BaseException:
            entry["status"] = "failed" if entry["status"] == "ok" else entry["status"]
            raise
        finally:
            entry["durationMs"] = int((time.monotonic() - start) * 1000)
            self.stages.append(entry)
            detail = f"  {entry['detail']}" if entry["detail"] else ""
            print(f"<== {name}: {entry['status']} in {entry['durationMs'] / 1000:.2f}s{detail}",
                  flush=True)

    def skip(self, *names: str, why: str) -> None:
        for name in names:
            self.stages.append({"stage": name, "status": "skipped", "detail": why,
                                "durationMs": 0})

    def summary(self) -> str:
        lines = [f"\nRehearsal summary (release {self.release_sha or '?'})"]
        for s in self.stages:
            detail = f"  {s['detail']}" if s["detail"] else ""
            lines.append(f"  {s['stage']:<10} {s['status']:<8} {s['durationMs'] / 1000:6.2f}s"
                         f"{detail}")
        lines.append("Artifacts:")
        lines += [f"  {k:<10} {v}" for k, v in self.artifacts.items()]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"releaseSha": self.release_sha, "exitCode": self.exit_code,
                "ok": self.exit_code == 0, "stages": self.stages, "artifacts": self.artifacts}


def _redacted(url: str) -> str:
    """A URL or keyword conninfo without its password."""
    url = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    return re.sub(r"(?i)\b(password\s*=\s*)('[^']*'|\S+)", r"\1***", url)


def _rel(path: Path, root: Path) -> str:
    """``path`` as the user would type it from here (the project root when run by make)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path.resolve())


class _Terminated(Exception):
    """SIGTERM reached the rehearsal: stop the apps and leave, like Ctrl-C."""


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise _Terminated


def rehearse(opts: Options) -> int:
    """Run every stage; return the exit status (see ``python -m infra.tools.rehearse --help``)."""
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    run = Rehearsal()
    root = opts.program_dir.resolve()
    running: list[AppProcess] = []
    try:
        run.exit_code = _stages(opts, root, run, running)
    except (KeyboardInterrupt, _Terminated):
        print("\nrehearsal interrupted: stopping the apps", file=sys.stderr)
        run.exit_code = 130
    finally:
        if running:
            with run.stage("stop") as entry:
                entry["detail"] = "; ".join(stop_all(running))
        elif not any(s["stage"] == "stop" for s in run.stages):
            run.skip("stop", why="no app was started")
        signal.signal(signal.SIGTERM, previous)
        _write_summary(run, opts, root)
    return run.exit_code


def _write_summary(run: Rehearsal, opts: Options, root: Path) -> None:
    if run.release_sha is not None:
        path = (root / opts.artifact_dir).parent / "rehearse" / run.release_sha / "rehearsal.json"
        run.artifacts["summary"] = _rel(path, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(run.to_json(), indent=2) + "\n")
    print(run.summary())
    if run.exit_code == 0:
        print("rehearsal OK")
    else:
        print(f"rehearsal FAILED (exit {run.exit_code})", file=sys.stderr)
    print("(the embedded PostgreSQL keeps running for the next command; `make clean` stops it)")


def _stages(opts: Options, root: Path, run: Rehearsal, running: list[AppProcess]) -> int:
    with run.stage("preview") as entry:
        try:
            result = run_preview(stack=opts.stack, program_dir=root,
                                 policy_packs=[opts.policy_pack], config_file=opts.config_file)
        except PreviewError as exc:
            print(render_error(exc), file=sys.stderr)
            entry.update(status="failed", detail="the program or the pack did not run")
            run.skip(*STAGES[1:-1], why="the preview failed")
            return EXIT_USAGE
        print(render(result))
        entry["detail"] = (f"{len(result.resources)} resources, {len(result.mandatory)} "
                           "mandatory violation(s)")
        if result.exit_code != 0:
            entry["status"] = "failed"
            run.skip(*STAGES[1:-1], why="mandatory policy violations: nothing deploys")
            return EXIT_POLICY

    database_url = opts.database_url
    if not database_url:
        from migration.embedded import ensure_server

        database_url = ensure_server(root / opts.embedded_dir)
    artifact_dir = (root / opts.artifact_dir).resolve()
    try:
        job = invocation(result, database_url, root, artifact_dir, opts.policy_pack.resolve())
        apps = app_invocations(result, database_url, root)
    except RehearsalError as exc:
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        run.skip(*STAGES[1:-1], why=f"cannot rehearse: {exc.code}")
        return EXIT_USAGE
    run.release_sha = job.release_sha
    work = (root / opts.artifact_dir).parent / "rehearse" / job.release_sha
    work.mkdir(parents=True, exist_ok=True)
    (work / "preview.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    run.artifacts["preview"] = _rel(work / "preview.json", root)
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith("MIGRATION_") and k not in ("DATABASE_URL", "PORT", "HOST")}

    with run.stage("migration") as entry:
        print(f"{job.urn}\n  $ {' '.join(job.argv)}\n  database: {_redacted(database_url)}")
        for note in job.notes:
            print(f"  {note}")
        sys.stdout.flush()
        done = subprocess.run(job.argv, cwd=root, env={**base_env, **job.env}, check=False)
        artifact = artifact_dir / job.release_sha / "migration.json"
        run.artifacts["migration"] = _rel(artifact, root)
        doc = _read_json(artifact)
        reason = (doc or {}).get("reason") or (doc or {}).get("reasonCode")
        if done.returncode != 0:
            entry.update(status="failed", detail=f"the job exited {done.returncode}: {reason}")
    if done.returncode != 0:
        print(f"\nrollout stopped: the migration job exited {done.returncode} "
              f"({(doc or {}).get('reasonCode')}); as the gate fails `pulumi up`, no app "
              f"starts. Reason: {reason}", file=sys.stderr)
        run.skip("apps", "smoke", why="the migration failed: rollout stopped")
        _status(run, root, base_env, job.env)
        return done.returncode

    with run.stage("apps") as entry:
        try:
            for app in apps:
                print(f"{app.name}: $ {' '.join(app.argv)}")
                for note in app.notes:
                    print(f"  {note}")
                running.append(start_app(app, base_env, root, work))
                run.artifacts[f"{app.name} log"] = _rel(work / f"{app.name}.log", root)
            for proc in running:
                waited = proc.wait_ready(opts.ready_timeout_s)
                print(f"  {proc.app.name} ready in {waited:.2f}s"
                      + (f" at {proc.app.base_url}" if proc.app.base_url else ""))
        except RehearsalError as exc:
            print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
            entry.update(status="failed", detail=exc.code)
        else:
            entry["detail"] = ", ".join(f"{p.app.name} {p.app.base_url or '(no ingress)'}"
                                        for p in running)
    if entry["status"] != "ok":
        run.skip("smoke", why="an app did not become ready")
        _status(run, root, base_env, job.env)
        return EXIT_APPS

    code = _smoke(opts, run, root, running, artifact_dir, job.release_sha)
    status = _status(run, root, base_env, job.env)
    return code or status


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _smoke(opts: Options, run: Rehearsal, root: Path, running: list[AppProcess],
           artifact_dir: Path, sha: str) -> int:
    with run.stage("smoke") as entry:
        target = next((p.app for p in running if p.app.name == opts.smoke_app), None)
        if target is None or target.base_url is None:
            entry.update(status="failed", detail=f"no app {opts.smoke_app!r} with ingress "
                         "(set --smoke-app)")
            return EXIT_SMOKE
        argv = [sys.executable, "-m", "infra.tools.smoke", "--base-url", target.base_url,
                "--release-sha", sha, "--expect-version", sha, "--artifact-dir",
                str(artifact_dir), "--attempts", "5", "--interval", "0.5", "--deadline", "30"]
        if target.health_path:
            argv += ["--health-path", target.health_path]
        if opts.smoke_data_path:
            argv += ["--data-path", opts.smoke_data_path]
        print("$ python " + " ".join(argv[1:]), flush=True)
        done = subprocess.run(argv, cwd=root, check=False)
        run.artifacts["smoke"] = _rel(artifact_dir / sha / "api-smoke.json", root)
        if done.returncode != 0:
            entry.update(status="failed", detail=f"smoke exited {done.returncode}")
            return EXIT_SMOKE
        entry["detail"] = f"{target.base_url} sees release {sha[:12]} and the migrated schema"
    return 0


def _status(run: Rehearsal, root: Path, base_env: dict[str, str],
            job_env: dict[str, str]) -> int:
    with run.stage("status") as entry:
        sys.stdout.flush()
        done = subprocess.run([sys.executable, "-m", "migration", "status"], cwd=root,
                              env={**base_env, **job_env, "MIGRATION_JSON": "0"}, check=False)
        if done.returncode != 0:
            entry.update(status="failed", detail=f"status exited {done.returncode}")
    return done.returncode
