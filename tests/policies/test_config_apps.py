"""The pack over gRPC against apps described in stack config (a Node team's, not the sample):
the real program previewed from a stack file, with hidden migration commands and credentials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.tools.preview import PROJECT_ROOT, PolicyPackProcess, PreviewResult, run_preview

NODE_STACK = PROJECT_ROOT / "tests" / "infra" / "stacks" / "Pulumi.node.yaml"

# Every way a team hides a migration in an app's start command (the list); each one app.
HIDDEN = {
    "script": ["node", "db/scripts/migrate.mjs", "up"],
    "shell-script": ["./scripts/migrate.sh"],
    "rails": ["bin/rails", "db:migrate"],
    "npm": ["npm", "run", "migrate"],
    "pnpm": ["pnpm", "db:migrate"],
    "yarn": ["yarn", "migrate:up"],
    "wrapper": ["sh", "-c", "node db/scripts/migrate.mjs up && node dist/index.js"],
    "camel": ["sh", "-c", "node scripts/runMigrations.js; exec node dist/index.js"],
    "prisma": ["npx", "prisma", "migrate", "deploy"],
    "drizzle": ["npx", "drizzle-kit", "migrate"],
    "npgm": ["npx", "node-pg-migrate", "up"],
    "dbmate": ["dbmate", "up"],
    "goose": ["goose", "up"],
    "flyway": ["flyway", "migrate"],
    "golang": ["migrate", "-path", "db/migrations", "-database", "$DATABASE_URL", "up"],
    "knex": ["npx", "knex", "migrate:latest"],
    "sequelize": ["npx", "sequelize", "db:migrate"],
    "typeorm": ["npx", "typeorm", "migration:run"],
    "alembic": ["alembic", "upgrade", "head"],
    "django": ["python", "manage.py", "migrate"],
    "runner": ["python", "-m", "migration", "up"],
}


def node_stack(tmp_path: Path, **changes: Any) -> Path:
    data = yaml.safe_load(NODE_STACK.read_text())
    for key, value in changes.items():
        data["config"][f"gated-release:{key}"] = value
    path = tmp_path / "Pulumi.node.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def preview(pack: PolicyPackProcess, config_file: Path,
            pack_config: dict[str, Any] | None = None) -> PreviewResult:
    return run_preview("node", program_dir=PROJECT_ROOT, packs=[pack], config_file=config_file,
                       policy_pack_config_text=json.dumps(pack_config) if pack_config else None)


def by_app(result: PreviewResult, policy: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for v in result.mandatory:
        if v.policy == policy:
            out.setdefault(v.urn.rsplit("::", 1)[-1].removesuffix("-app"), []).append(v.message)
    return out


def test_the_node_stack_previews_clean(pack: PolicyPackProcess) -> None:
    result = preview(pack, NODE_STACK)
    assert result.mandatory == [], [v.to_json() for v in result.mandatory]
    [job] = result.find("azure-native:app:Job")
    assert job.inputs["template"]["containers"][0]["command"] == [
        "node", "db/scripts/migrate.mjs", "up"]


def test_the_node_stack_with_the_runner_as_its_job_previews_clean(
        pack: PolicyPackProcess, tmp_path: Path) -> None:
    result = preview(pack, node_stack(tmp_path, migrationCommand=[]))
    assert result.mandatory == [], [v.to_json() for v in result.mandatory]


def test_every_hidden_migration_command_in_an_app_is_caught(
        pack: PolicyPackProcess, tmp_path: Path) -> None:
    apps = {name: {"command": command, "ingress": "none"} for name, command in HIDDEN.items()}
    apps["api"] = {"command": ["node", "dist/index.js"]}
    result = preview(pack, node_stack(tmp_path, apps=apps))
    startup = by_app(result, "no-startup-migrations")
    assert sorted(startup) == sorted(HIDDEN), "api is clean, every other app is caught"
    paths = by_app(result, "one-migration-path-per-stack")
    # the stack policy sees them as second migration paths (its findings name the stack)
    second = [m for ms in paths.values() for m in ms]
    assert len(second) == len(HIDDEN), second


def test_credentials_are_refused_in_command_args_and_env(
        pack: PolicyPackProcess, tmp_path: Path) -> None:
    apps = {
        "api": {"command": ["node", "dist/index.js"], "args": ["--password=hunter2"]},
        "psql": {"command": ["sh", "-c", "PGPASSWORD=hunter2 psql -h db -c 'select 1'"],
                 "ingress": "none"},
        "url": {"command": ["node", "dist/sync.js", "postgres://app:hunter2@db:5432/app"],
                "ingress": "none"},
        "env": {"command": ["node", "dist/index.js"], "env": {"UPSTREAM": "https://u:hunter2@x"}},
        "ok": {"command": ["sh", "-c", "PGPASSWORD=$DB_PASSWORD psql -h db"], "ingress": "none"},
    }
    result = preview(pack, node_stack(tmp_path, apps=apps))
    caught = by_app(result, "no-plaintext-secret-env")
    assert sorted(caught) == ["api", "env", "psql", "url"]
    assert all("hunter2" not in m for ms in caught.values() for m in ms)


def test_the_allow_list_names_the_app_and_the_exact_command(
        pack: PolicyPackProcess, tmp_path: Path) -> None:
    report = ["node", "dist/migration-report.js", "--daily"]
    config = node_stack(tmp_path, apps={"api": {"command": ["node", "dist/index.js"]},
                                        "reports": {"command": report, "ingress": "none"}})
    assert sorted(by_app(preview(pack, config), "no-startup-migrations")) == ["reports"]
    entry = {"app": "reports", "command": " ".join(report), "reason": "reads, never migrates"}
    allow = {"no-startup-migrations": {"allowedAppCommands": [entry]},
             "one-migration-path-per-stack": {"allowedAppCommands": [entry]}}
    assert preview(pack, config, allow).mandatory == []
    # another app, or another command line, is not covered by the entry
    other = {"app": "api", "command": entry["command"]}
    partial = {"app": "reports", "command": "node dist/migration-report.js"}
    for wrong in (other, partial):
        cfg = {p: {"allowedAppCommands": [wrong]} for p in allow}
        assert "reports" in by_app(preview(pack, config, cfg), "no-startup-migrations")


def test_an_overridden_job_command_is_still_judged(pack: PolicyPackProcess,
                                                     tmp_path: Path) -> None:
    # single-run settings: the team's script is recognised as the migration job and checked
    tight = {"migration-job-single-run": {"maxReplicaTimeoutSeconds": 60}}
    result = preview(pack, NODE_STACK, tight)
    assert [v.policy for v in result.mandatory] == ["migration-job-single-run"]
    assert "migration-job" in result.mandatory[0].urn
    # one migration path: the same script in an app is a second path
    apps = {"api": {"command": ["sh", "-c", "node db/scripts/migrate.mjs up && node dist/index.js"]}}
    result = preview(pack, node_stack(tmp_path, apps=apps))
    assert {v.policy for v in result.mandatory} == {"no-startup-migrations",
                                                     "one-migration-path-per-stack"}


@pytest.mark.parametrize("command", [["node", "dist/jobs/nightly.js"]])
def test_a_job_that_does_not_look_like_a_migration_fails_closed(
        pack: PolicyPackProcess, tmp_path: Path, command: list[str]) -> None:
    result = preview(pack, node_stack(tmp_path, migrationCommand=command))
    assert [v.policy for v in result.mandatory] == ["one-migration-path-per-stack"]
    assert "no migration job" in result.mandatory[0].message
