"""Command line of the rehearsal; every flag has an environment twin (REHEARSE_*)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from infra.tools.preview import PROJECT_ROOT
from infra.tools.rehearse.pipeline import Options, rehearse

EPILOG = """\
stages: preview -> migration -> apps -> smoke -> status -> stop (one line each, with its
duration; the summary names every artifact and is written to
.artifacts/rehearse/<sha>/rehearsal.json).

exit status: 0 every stage passed; 1 mandatory policy violations (nothing ran); 2 usage, program
or pack error, or the preview cannot be rehearsed; the migration job's own exit status when it
failed (docs/runner.md: 1 SQL failed, 3 check failed, 5 lock timeout, 6 deadline, ...), as the
gate fails the pipeline with it; 20 an app did not start or become ready; 21 the smoke check
failed; else the status command's (8: critical); 130 interrupted.

examples:
  python -m infra.tools.rehearse                 # make rehearse
  python -m infra.tools.rehearse --fail          # make rehearse-fail: a broken migration
  python -m infra.tools.rehearse --stack staging --smoke-data-path ''

environment twins: REHEARSE_STACK, REHEARSE_PROGRAM_DIR, REHEARSE_POLICY_PACK,
REHEARSE_DATABASE_URL, REHEARSE_EMBEDDED_DIR, REHEARSE_ARTIFACT_DIR, REHEARSE_SMOKE_APP,
REHEARSE_SMOKE_DATA_PATH, REHEARSE_READY_TIMEOUT_SECONDS, REHEARSE_CONFIG_FILE, REHEARSE_FAIL.
"""


def main(argv: list[str] | None = None) -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m infra.tools.rehearse",
        description=("The whole gated deploy, locally: offline preview with the policy pack, the "
                     "previewed migration job's own command against an embedded PostgreSQL, and "
                     "only when it succeeded the previewed apps' own commands on 127.0.0.1, the "
                     "API smoke check, the runner's status, then the apps stopped."),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default=env("REHEARSE_STACK", "dev"),
                        help="stack to preview and rehearse (default: dev)")
    parser.add_argument("--program-dir", type=Path,
                        default=Path(env("REHEARSE_PROGRAM_DIR", str(PROJECT_ROOT))),
                        help="project root holding Pulumi.yaml and db/migrations")
    config_file = env("REHEARSE_CONFIG_FILE")
    parser.add_argument("--config-file", type=Path,
                        default=Path(config_file) if config_file else None,
                        help="stack file (default: Pulumi.<stack>.yaml in the program dir)")
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
                        help="where migration.json and api-smoke.json go (.artifacts/deploy)")
    parser.add_argument("--smoke-app", default=env("REHEARSE_SMOKE_APP", "api"),
                        help="the app the smoke check calls (default: api)")
    parser.add_argument("--smoke-data-path",
                        default=env("REHEARSE_SMOKE_DATA_PATH", "/api/documents"),
                        help="an API path that reads the migrated tables; '' skips it "
                             "(default: /api/documents, the sample app's)")
    parser.add_argument("--ready-timeout", type=float,
                        default=float(env("REHEARSE_READY_TIMEOUT_SECONDS", "30")),
                        help="seconds each app has to become ready (default: 30)")
    parser.add_argument("--fail", action="store_true",
                        default=env("REHEARSE_FAIL", "0").lower() in ("1", "true", "yes"),
                        help="rehearse a broken migration in a scratch copy "
                             "(<artifact-dir>/../rehearse-fail, i.e. .artifacts/rehearse-fail) on "
                             "a fresh database: the rollout stops before any app starts")
    args = parser.parse_args(argv)
    program_dir: Path = args.program_dir.resolve()
    database_url = args.database_url
    artifact_dir = args.artifact_dir
    if args.fail:
        from infra.tools.rehearse.scratch import fresh_database, scratch_project

        if not database_url:
            from migration.embedded import ensure_server

            database_url = ensure_server(program_dir / args.embedded_dir)
        # beside the normal artifacts, never over them: <artifact-dir>/../rehearse-fail/
        base = (program_dir / args.artifact_dir).resolve().parent / "rehearse-fail"
        scratch = scratch_project(program_dir, args.stack, base / "project")
        print(f"rehearsing a broken migration in {scratch} on a fresh database")
        database_url = fresh_database(database_url)
        artifact_dir = base / "deploy"
        program_dir = scratch
    return rehearse(Options(
        stack=args.stack, program_dir=program_dir, policy_pack=args.policy_pack.resolve(),
        database_url=database_url, embedded_dir=args.embedded_dir, artifact_dir=artifact_dir,
        smoke_app=args.smoke_app, smoke_data_path=args.smoke_data_path or None,
        ready_timeout_s=args.ready_timeout,
        config_file=args.config_file.resolve() if args.config_file else None))


if __name__ == "__main__":
    sys.exit(main())
