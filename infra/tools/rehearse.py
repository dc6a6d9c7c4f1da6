"""``python -m infra.tools.rehearse`` (``make rehearse``): the release pipeline, locally and offline.

1. Offline preview of the stack (default ``dev``) with the policy pack; a mandatory violation
   stops here with exit 1, as the real pipeline's preview would.
2. The migration job's container command and env are taken from the *previewed* Job resource
   (what the program would deploy), adapted to this machine: secret references to the database
   become the embedded PostgreSQL's URL (``migration.embedded.ensure_server(<project>/.pgdata)``),
   ``/app/`` paths map to the project root, ``python`` to this interpreter, and the artifact dir
   to ``.artifacts/deploy``.
3. The command runs as a subprocess against the sample migrations in ``db/migrations``; then
   ``.artifacts/deploy/<sha>/migration.json`` and ``python -m migration status`` are printed.

Exit status: the runner's exit status when it failed (see docs/runner.md), 1 on a mandatory
policy violation, 2 on a usage/program error or when the job cannot be rehearsed, else the
status command's exit status (0 when healthy).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.tools.preview import PROJECT_ROOT, PreviewError, PreviewResult, run_preview
from infra.tools.preview.model import SECRET_SIG, SECRET_SIG_KEY, UNKNOWN_SENTINELS
from infra.tools.preview.report import render, render_error

JOB_TYPE = "azure-native:app:Job"
_PYTHON = re.compile(r"^(/usr(/local)?/bin/)?python[0-9.]*$")
_DATABASE_SECRET = re.compile(r"(?i)(database|db)[-_]?(url|uri|dsn|connection)")


class RehearsalError(Exception):
    """The previewed job cannot be run locally; ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Invocation:
    """The job's container command and env, adapted to this machine."""

    job_urn: str
    argv: list[str]
    env: dict[str, str]
    notes: list[str] = field(default_factory=list)

    @property
    def release_sha(self) -> str:
        return self.env.get("MIGRATION_RELEASE_SHA", "local")


def _plain(value: Any, what: str) -> str:
    if isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG:
        value = value.get("value")
    if isinstance(value, str) and value in UNKNOWN_SENTINELS:
        raise RehearsalError("job-value-unknown",
                             f"{what} is unknown during preview; the rehearsal needs it known")
    if not isinstance(value, str | int | float | bool):
        raise RehearsalError("job-value-invalid", f"{what} is not a scalar: {value!r}")
    return str(value)


def _map_path(text: str, root: Path) -> str:
    if text == "/app":
        return str(root)
    return str(root / text[len("/app/"):]) if text.startswith("/app/") else text


def _migration_job(result: PreviewResult, pack_dir: Path) -> Any:
    """The Job whose container runs a migration, by the pack's own definition."""
    sys.path.insert(0, str(pack_dir))
    try:
        from gated_policies import (  # type: ignore[import-not-found, unused-ignore]
            BY_NAME,
            effective_config,
            plain,
        )
        from gated_policies.resource_rules import (  # type: ignore[import-not-found, unused-ignore]
            is_migration_job,
        )
    finally:
        sys.path.remove(str(pack_dir))
    config = effective_config(BY_NAME["migration-job-single-run"], None)
    jobs = [r for r in result.resources if r.type == JOB_TYPE
            and is_migration_job(r.type, r.name, plain(r.inputs), config)]
    if len(jobs) != 1:
        raise RehearsalError("migration-job-not-found",
                             f"expected one migration job in the preview, found {len(jobs)}")
    return jobs[0]


def invocation(result: PreviewResult, database_url: str, root: Path,
               artifact_dir: Path, pack_dir: Path) -> Invocation:
    """Build the local command line and env from the previewed migration job."""
    job = _migration_job(result, pack_dir)
    containers = job.inputs.get("template", {}).get("containers") or []
    if not containers:
        raise RehearsalError("job-has-no-container", f"{job.urn} has no container")
    container = containers[0]
    parts = [_plain(p, f"{job.name} command") for p in container.get("command") or []]
    parts += [_plain(p, f"{job.name} args") for p in container.get("args") or []]
    if not parts:
        raise RehearsalError("job-has-no-command", f"{job.urn} has no command")
    argv = [sys.executable if _PYTHON.match(p) else _map_path(p, root) for p in parts]
    env: dict[str, str] = {}
    notes: list[str] = []
    for var in container.get("env") or []:
        name = _plain(var.get("name"), f"{job.name} env name")
        if var.get("secretRef") is not None:
            ref = _plain(var["secretRef"], f"{name}.secretRef")
            if name == "DATABASE_URL" or _DATABASE_SECRET.search(ref):
                env[name] = database_url
                notes.append(f"{name}: secret {ref!r} -> the local database")
            else:
                notes.append(f"{name}: secret {ref!r} is not available offline (left unset)")
            continue
        env[name] = _map_path(_plain(var.get("value"), f"env {name}"), root)
    env["MIGRATION_ARTIFACT_DIR"] = str(artifact_dir)
    return Invocation(job_urn=job.urn, argv=argv, env=env, notes=notes)


def _redacted(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def rehearse(args: argparse.Namespace) -> int:
    root: Path = args.program_dir.resolve()
    try:
        result = run_preview(stack=args.stack, program_dir=root, policy_packs=[args.policy_pack])
    except PreviewError as exc:
        print(render_error(exc), file=sys.stderr)
        return 2
    print(render(result))
    if result.exit_code != 0:
        print("rehearsal stopped: the preview has mandatory policy violations", file=sys.stderr)
        return result.exit_code

    database_url = args.database_url
    if not database_url:
        from migration.embedded import ensure_server
        database_url = ensure_server(root / args.embedded_dir)
    artifact_dir = (root / args.artifact_dir).resolve()
    try:
        job = invocation(result, database_url, root, artifact_dir, args.policy_pack.resolve())
    except RehearsalError as exc:
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    shown = " ".join(job.argv)
    print(f"\nRehearsing {job.job_urn}\n  $ {shown}\n  database: {_redacted(database_url)}")
    for note in job.notes:
        print(f"  {note}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATION_")}
    env.update(job.env)
    sys.stdout.flush()
    completed = subprocess.run(job.argv, cwd=root, env=env, check=False)
    artifact = artifact_dir / job.release_sha / "migration.json"
    print(f"\n{artifact}:")
    print(artifact.read_text() if artifact.is_file() else "  (not written)")
    status_env = {**env, "MIGRATION_JSON": "0"}
    sys.stdout.flush()
    status = subprocess.run([sys.executable, "-m", "migration", "status"], cwd=root,
                            env=status_env, check=False)
    if completed.returncode != 0:
        print(f"rehearsal FAILED: the migration job exited {completed.returncode}",
              file=sys.stderr)
        return completed.returncode
    print("rehearsal OK" if status.returncode == 0
          else f"rehearsal: status exited {status.returncode}")
    print("(the embedded PostgreSQL keeps running for the next command; `make clean` stops it)")
    return status.returncode


def main(argv: list[str] | None = None) -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m infra.tools.rehearse",
        description=("Offline preview with the policy pack, then run the previewed migration job's "
                     "command locally against an embedded PostgreSQL, like the pipeline's gate."),
        epilog=("environment twins: REHEARSE_STACK, REHEARSE_PROGRAM_DIR, REHEARSE_POLICY_PACK, "
                "REHEARSE_DATABASE_URL, REHEARSE_EMBEDDED_DIR, REHEARSE_ARTIFACT_DIR"),
    )
    parser.add_argument("--stack", default=env("REHEARSE_STACK", "dev"),
                        help="stack to preview and rehearse (default: dev)")
    parser.add_argument("--program-dir", type=Path,
                        default=Path(env("REHEARSE_PROGRAM_DIR", str(PROJECT_ROOT))),
                        help="project root holding Pulumi.yaml and db/migrations")
    parser.add_argument("--policy-pack", type=Path,
                        default=Path(env("REHEARSE_POLICY_PACK", str(PROJECT_ROOT / "policies"))),
                        help="policy pack directory (default: policies)")
    parser.add_argument("--database-url", default=env("REHEARSE_DATABASE_URL"),
                        help="use this database instead of the embedded one")
    parser.add_argument("--embedded-dir", type=Path,
                        default=Path(env("REHEARSE_EMBEDDED_DIR", ".pgdata")),
                        help="embedded PostgreSQL directory, relative to the project (.pgdata)")
    parser.add_argument("--artifact-dir", type=Path,
                        default=Path(env("REHEARSE_ARTIFACT_DIR", ".artifacts/deploy")),
                        help="where migration.json is written (default: .artifacts/deploy)")
    return rehearse(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Invocation", "RehearsalError", "invocation", "main", "rehearse"]
