"""The GitHub workflows: schema-valid, and the deployment rules hold in their structure.

Rules checked (DESIGN section 6): one `production-mutation` lock for every stack mutation (and no
concurrency deadlock), the policy pack on every preview and up, smoke and alerts after each up,
the release accepted only after them, artifacts uploaded even on failure, replay input verified
before any mutation, pinned actions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
CHECK_JSONSCHEMA = ROOT / ".venv" / "bin" / "check-jsonschema"
NAMES = ("preview", "deploy", "replay", "drift", "stage")
LOCK = "production-mutation"
STACKS = ("dev", "staging", "prod")

Job = dict[str, Any]
Step = dict[str, Any]


def load(name: str) -> dict[str, Any]:
    doc: dict[Any, Any] = yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text())
    # YAML 1.1 reads the key `on` as boolean true
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def steps(job: Job) -> list[Step]:
    return list(job.get("steps", []))


def run_text(step: Step) -> str:
    return str(step.get("run", ""))


def uses(step: Step) -> str:
    return str(step.get("uses", ""))


def pulumi_command(step: Step) -> str | None:
    """`up`, `preview`, ... for a pulumi/actions step or a `pulumi <cmd>` run line."""
    if uses(step).startswith("pulumi/actions@"):
        command = step.get("with", {}).get("command")
        return None if command is None else str(command)
    m = re.search(r"\bpulumi (up|update|preview|destroy|refresh)\b", run_text(step))
    return m.group(1) if m else None


def has_policy_pack(step: Step) -> bool:
    if uses(step).startswith("pulumi/actions@"):
        packs = str(step.get("with", {}).get("policyPacks", "")).split()
        return "policies" in packs
    return bool(re.search(r"--policy-pack[ =]policies\b", run_text(step)))


def mutates(step: Step) -> bool:
    return (pulumi_command(step) in ("up", "update", "destroy", "refresh")
            or bool(re.search(r"pulumi config (set|rm)|infra\.promote (configure|accept)",
                              run_text(step))))


def called(job: Job) -> str | None:
    ref = job.get("uses")
    if ref and ref.startswith("./.github/workflows/"):
        return Path(ref).stem
    return None


def job_mutates(job: Job) -> bool:
    target = called(job)
    if target:
        return any(job_mutates(j) for j in load(target)["jobs"].values())
    return any(mutates(s) for s in steps(job))


def index(job: Job, pred: Any) -> list[int]:
    return [i for i, s in enumerate(steps(job)) if pred(s)]


def needs(job: Job) -> list[str]:
    value = job.get("needs", [])
    return [value] if isinstance(value, str) else list(value)


def all_needs(jobs: dict[str, Job], name: str) -> set[str]:
    seen: set[str] = set()
    todo = needs(jobs[name])
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo += needs(jobs[n])
    return seen


def group_of(concurrency: Any) -> tuple[str | None, bool]:
    if concurrency is None:
        return None, False
    if isinstance(concurrency, str):
        return concurrency, False
    return concurrency.get("group"), bool(concurrency.get("cancel-in-progress", False))


def expand(text: str, inputs: dict[str, Any]) -> str:
    return re.sub(r"\$\{\{\s*inputs\.(\w+)\s*\}\}", lambda m: str(inputs.get(m.group(1), "")), text)


# -- schema --------------------------------------------------------------------------------------

def check_schema(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    exe = str(CHECK_JSONSCHEMA) if CHECK_JSONSCHEMA.exists() else shutil.which("check-jsonschema")
    assert exe, "check-jsonschema is not installed (pip install -e '.[dev]')"
    return subprocess.run([exe, "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


def test_every_workflow_validates_against_the_github_workflow_schema() -> None:
    paths = sorted(WORKFLOWS.glob("*.y*ml"))
    assert {p.stem for p in paths} >= set(NAMES)
    proc = check_schema(paths)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    # the validator must be able to fail: a job with neither runs-on nor uses, a bad trigger key
    bad = tmp_path / "bad.yml"
    bad.write_text("on: {push: {branchez: [main]}}\njobs:\n  a:\n    steps: [{run: echo}]\n")
    assert check_schema([bad]).returncode != 0


# -- pinned actions, OIDC --------------------------------------------------------------------------

def all_steps() -> list[tuple[str, str, Step]]:
    return [(n, jn, s) for n in NAMES for jn, j in load(n)["jobs"].items() for s in steps(j)]


def test_every_action_is_pinned_to_a_version() -> None:
    pinned = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")
    for wf, job, step in all_steps():
        if "uses" in step:
            assert pinned.match(uses(step)), f"{wf}/{job}: unpinned action {uses(step)}"


def test_required_action_versions() -> None:
    used = {uses(s) for _, _, s in all_steps()}
    assert {"azure/login@v2", "pulumi/actions@v6", "actions/upload-artifact@v4"} <= used


def test_azure_login_is_oidc_only() -> None:
    for wf, job, step in all_steps():
        if uses(step).startswith("azure/login@"):
            w = step["with"]
            assert set(w) == {"client-id", "tenant-id", "subscription-id"}, f"{wf}/{job}"
            assert "creds" not in w and "client-secret" not in str(w)
    for name in ("deploy", "replay", "stage", "drift"):
        assert load(name)["permissions"]["id-token"] == "write", name


# -- concurrency ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["deploy", "replay"])
def test_mutating_workflows_hold_the_production_mutation_lock(name: str) -> None:
    assert group_of(load(name).get("concurrency")) == (LOCK, False)


@pytest.mark.parametrize("name", NAMES)
def test_every_job_that_mutates_a_stack_is_under_the_lock(name: str) -> None:
    for job_name, job in load(name)["jobs"].items():
        if called(job) or not job_mutates(job):
            continue
        group, cancel = group_of(job.get("concurrency"))
        assert group and group.startswith(LOCK), f"{name}/{job_name}: no {LOCK} job lock"
        assert cancel is False, f"{name}/{job_name}: a running mutation must never be cancelled"


def test_only_deploy_and_replay_mutate() -> None:
    for name in ("preview", "drift"):
        assert not any(job_mutates(j) for j in load(name)["jobs"].values()), name
    for name in ("deploy", "replay"):
        jobs = load(name)["jobs"]
        assert {"dev", "staging", "prod"} <= {n for n, j in jobs.items() if job_mutates(j)}


@pytest.mark.parametrize("name", ["deploy", "replay"])
def test_no_concurrency_deadlock_between_workflow_and_job_groups(name: str) -> None:
    # GitHub cancels a job whose group equals its (caller's) workflow-level group:
    # "Canceling since a deadlock ... was detected between 'top level workflow' and '<job>'".
    doc = load(name)
    top, _ = group_of(doc.get("concurrency"))
    for job_name, job in doc["jobs"].items():
        assert group_of(job.get("concurrency"))[0] != top, f"{name}/{job_name}"
        target = called(job)
        if target:
            callee = load(target)
            assert group_of(callee.get("concurrency"))[0] != top, target
            for inner_name, inner in callee["jobs"].items():
                group = group_of(inner.get("concurrency"))[0] or ""
                assert expand(group, job.get("with", {})) != top, f"{target}/{inner_name}"


# -- what each stage does --------------------------------------------------------------------------

def deploy_jobs() -> list[tuple[str, Job]]:
    return [(f"{n}/{jn}", j) for n in NAMES for jn, j in load(n)["jobs"].items()
            if any(pulumi_command(s) in ("up", "update") for s in steps(j))]


def test_stack_updates_exist() -> None:
    assert [name for name, _ in deploy_jobs()] == ["stage/deploy"]


def test_every_preview_and_up_runs_the_policy_pack() -> None:
    found = 0
    for wf, job, step in all_steps():
        if pulumi_command(step) in ("up", "update", "preview"):
            found += 1
            assert has_policy_pack(step), f"{wf}/{job}: {step.get('name')} without policies"
    assert found >= 3  # preview, deploying up, recording up


def test_offline_preview_runs_every_stack_with_the_policy_pack() -> None:
    job = load("preview")["jobs"]["offline-preview"]
    assert set(job["strategy"]["matrix"]["stack"]) == set(STACKS)
    assert {p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml")} <= set(STACKS)
    (step,) = [s for s in steps(job) if "infra.tools.preview" in run_text(s)]
    assert "--policy-pack policies" in run_text(step)
    assert "secrets." not in yaml.safe_dump(job)  # runs without secrets, forks included


def test_offline_preview_step_runs_as_written_for_prod() -> None:
    # prod promotes from staging: without preview-outputs its release would be refused offline
    job = load("preview")["jobs"]["offline-preview"]
    (step,) = [s for s in steps(job) if "infra.tools.preview" in run_text(s)]
    env = {**os.environ, **step["env"], "STACK": "prod", "PYTHONWARNINGS": "ignore",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "-e", "-c", run_text(step)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    report = json.loads((ROOT / ".artifacts" / "preview" / "prod.json").read_text())
    assert report  # the JSON report the job uploads


def test_cloud_preview_runs_only_when_credentials_are_configured() -> None:
    jobs = load("preview")["jobs"]
    job = jobs["pulumi-preview"]
    assert "credentials" in needs(job)
    assert "needs.credentials.outputs.configured == 'true'" in job["if"]
    check = run_text(steps(jobs["credentials"])[0])
    assert "AZURE_CLIENT_ID" in check and "configured=true" in check
    (pv,) = [s for s in steps(job) if pulumi_command(s) == "preview"]
    assert uses(pv) == "pulumi/actions@v6" and has_policy_pack(pv)
    assert pv["with"]["stack-name"] == "${{ matrix.stack }}"
    assert set(job["strategy"]["matrix"]["stack"]) == set(STACKS)


def test_pull_requests_run_the_project_tests() -> None:
    doc = load("preview")
    assert "pull_request" in doc["on"]
    assert any(run_text(s).strip() == "make test" for s in steps(doc["jobs"]["test"]))


def is_smoke(step: Step) -> bool:
    return "python -m infra.tools.smoke" in run_text(step)


def is_alerts(step: Step) -> bool:
    return "python -m migration alerts" in run_text(step)


def is_accept(step: Step) -> bool:
    return "infra.tools.promote accept" in run_text(step)


def test_smoke_and_alerts_follow_each_up_and_gate_the_acceptance() -> None:
    for name, job in deploy_jobs():
        ups = index(job, lambda s: pulumi_command(s) in ("up", "update"))
        (smoke,) = index(job, is_smoke)
        (alerts,) = index(job, is_alerts)
        (acc,) = index(job, is_accept)
        configure = index(job, lambda s: "infra.tools.promote configure" in run_text(s))
        assert configure and configure[0] < ups[0], f"{name}: release config after the up"
        assert ups[0] < smoke < alerts < acc, f"{name}: order up, smoke, alerts, accept"
        for i in ups[1:]:  # only the ledger-recording up may come later, after the acceptance
            assert i > acc, f"{name}: an up after smoke/alerts that records nothing"
        for i in [smoke, alerts, acc, *ups]:
            cond = str(steps(job)[i].get("if", ""))
            assert not re.search(r"always|failure|cancelled|continue-on-error", cond), (
                f"{name}: step {i} would run after a failure")
            assert not steps(job)[i].get("continue-on-error"), name


def test_smoke_and_alerts_are_wired_to_the_release_and_the_ops_token() -> None:
    for _name, job in deploy_jobs():
        (smoke,) = [s for s in steps(job) if is_smoke(s)]
        assert "--base-url" in run_text(smoke) and '--release-sha "$RELEASE_SHA"' in run_text(smoke)
        # the release image contract: info.version is the release SHA, so an old revision
        # still serving fails the smoke check
        assert '--expect-version "$RELEASE_SHA"' in run_text(smoke)
        assert "SMOKE_DATA_PATH" in smoke["env"]
        (alerts,) = [s for s in steps(job) if is_alerts(s)]
        env = alerts["env"]
        assert env["DEPLOY_OPS_TOKEN"] == "${{ secrets.DEPLOY_OPS_TOKEN }}"
        assert "vars.DEPLOY_MIGRATION_ALERT_STRICT" in env["DEPLOY_MIGRATION_ALERT_STRICT"]
        assert ("vars.DEPLOY_MIGRATION_ALERT_LOOKBACK_MINUTES"
                in env["DEPLOY_MIGRATION_ALERT_LOOKBACK_MINUTES"])


def test_deploy_artifacts_are_uploaded_even_on_failure() -> None:
    for name, job in deploy_jobs():
        uploads = [s for s in steps(job) if uses(s).startswith("actions/upload-artifact@")]
        assert uploads, f"{name}: no artifact upload"
        (up,) = uploads
        assert uses(up) == "actions/upload-artifact@v4"
        assert up.get("if") == "always()"
        assert up["with"]["path"].startswith(".artifacts/deploy/${{ inputs.sha }}")
        assert steps(job).index(up) > max(index(job, lambda s: pulumi_command(s) == "up"))


def test_stages_run_in_order_in_their_environments() -> None:
    stage = load("stage")["jobs"]["deploy"]
    assert stage["environment"]["name"] == "${{ inputs.stack }}"  # prod approval lives there
    for name in ("deploy", "replay"):
        jobs = load(name)["jobs"]
        assert [jobs[s]["with"]["stack"] for s in STACKS] == list(STACKS)
        assert "dev" in needs(jobs["staging"]) and "staging" in needs(jobs["prod"])
        for s in STACKS:
            assert called(jobs[s]) == "stage" and jobs[s]["secrets"] == "inherit"


def test_deploy_builds_once_and_promotes_the_accepted_image() -> None:
    doc = load("deploy")
    assert doc["on"]["push"]["branches"] == ["main"]
    jobs = doc["jobs"]
    assert jobs["dev"]["with"]["image"] == "${{ needs.build.outputs.image }}"
    assert "image" not in jobs["staging"]["with"] and "image" not in jobs["prod"]["with"]


# -- replay ----------------------------------------------------------------------------------------

def test_replay_validates_and_verifies_before_any_mutation() -> None:
    doc = load("replay")
    assert doc["on"]["workflow_dispatch"]["inputs"]["sha"]["required"] is True
    jobs = doc["jobs"]
    verify = jobs["verify"]
    assert not job_mutates(verify)
    assert "infra.tools.promote verify" in "".join(run_text(s) for s in steps(verify))
    first = steps(verify)[0]
    assert "grep -Eq '^[0-9a-f]{40}$'" in run_text(first)
    for name, job in jobs.items():
        if job_mutates(job):
            assert "verify" in all_needs(jobs, name), f"replay/{name} can start before verify"
            assert job["with"]["replay"] is True
            assert job["with"]["sha"] == "${{ needs.verify.outputs.sha }}"


def test_replay_never_splices_the_input_into_a_shell_script() -> None:
    for _, _, step in [x for x in all_steps() if x[0] == "replay"]:
        assert "inputs." not in run_text(step) and "github.event.inputs" not in run_text(step)


@pytest.mark.parametrize(("sha", "ok"), [
    ("0123456789abcdef0123456789abcdef01234567", True),
    ("0123456", False), ("", False), ("0123456789ABCDEF0123456789ABCDEF01234567", False),
    ("0123456789abcdef0123456789abcdef01234567; rm -rf /", False),
    ("$(touch /tmp/pwned)", False),
])
def test_replay_input_validation_step_accepts_only_a_full_sha(sha: str, ok: bool) -> None:
    step = steps(load("replay")["jobs"]["verify"])[0]
    proc = subprocess.run(["bash", "-e", "-c", run_text(step)], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "REPLAY_SHA": sha, "THROUGH": "prod"},
                          timeout=30)
    assert (proc.returncode == 0) is ok, proc.stdout + proc.stderr


# -- drift -----------------------------------------------------------------------------------------

def test_drift_runs_on_a_schedule_per_stack_with_strict_alerts() -> None:
    doc = load("drift")
    assert doc["on"]["schedule"] and "workflow_dispatch" in doc["on"]
    job = doc["jobs"]["drift"]
    assert all(f'"{s}"' in job["strategy"]["matrix"]["stack"] for s in STACKS)
    (alerts,) = [s for s in steps(job) if is_alerts(s)]
    assert "--strict" in run_text(alerts) and "GITHUB_STEP_SUMMARY" in run_text(alerts)
    assert alerts.get("shell") == "bash"  # pipefail: tee must not hide the exit code
    (drift,) = [s for s in steps(job) if "infra.tools.promote drift" in run_text(s)]
    assert "!cancelled()" in drift["if"]  # reported even when the alert step failed
    assert job["env"]["DEPLOY_OPS_TOKEN"] == "${{ secrets.DEPLOY_OPS_TOKEN }}"


def test_python_runs_in_the_project_virtualenv_pulumi_uses() -> None:
    # Pulumi.yaml sets runtime.options.virtualenv: .venv, so the program, the dynamic provider
    # and the CLIs must share that environment; an install elsewhere would leave Pulumi's empty.
    for name in NAMES:
        for job_name, job in load(name)["jobs"].items():
            installs = index(job, lambda s: ".venv/bin/python -m pip install" in run_text(s)
                             and "GITHUB_PATH" in run_text(s))
            python_steps = [i for i in index(job, lambda s: "python -m" in run_text(s))
                            if i not in installs]
            if not python_steps:
                continue
            assert installs and installs[0] < python_steps[0], f"{name}/{job_name}"


def test_pull_request_code_never_gets_the_deploy_identity() -> None:
    doc = load("preview")
    for name, job in doc["jobs"].items():
        if "id-token" not in (job.get("permissions") or {}):
            continue
        env = str(job.get("environment", ""))
        assert env.endswith("-readonly"), f"preview job {name} uses environment {env!r}"


def test_a_stage_deploys_the_release_commit_not_the_branch_head() -> None:
    job = load("stage")["jobs"]["deploy"]
    checkout = next(s for s in steps(job) if uses(s).startswith("actions/checkout"))
    assert checkout.get("with", {}).get("ref") == "${{ inputs.sha }}"


# -- the gate in the stage job: credentials, timeouts, logs (issue 11) ---------------------------

def test_the_gate_gets_the_azure_identity_variables_and_oidc_permission() -> None:
    job = load("stage")["jobs"]["deploy"]
    # azure-identity (the gate) reads AZURE_*; ARM_* is only the azure-native provider's
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID"):
        assert job["env"][name] == f"${{{{ secrets.{name} }}}}"
    assert job["env"]["ARM_USE_OIDC"] == "true"
    assert load("stage")["permissions"]["id-token"] == "write"  # ACTIONS_ID_TOKEN_REQUEST_*


def test_the_stage_timeout_is_the_one_the_config_rule_checks() -> None:
    from infra.config import ci_stage_seconds_needed, load_config, load_stack_file

    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    declared = project["config"]["ciStageTimeoutMinutes"]["default"]
    job = load("stage")["jobs"]["deploy"]
    assert job["timeout-minutes"] == declared
    for stack in STACKS:
        raw = load_stack_file(ROOT / f"Pulumi.{stack}.yaml")
        cfg = load_config(stack, raw)  # the rule passed when the config was read
        minutes = int(raw.get("ciStageTimeoutMinutes", declared))
        assert minutes <= job["timeout-minutes"], stack
        assert ci_stage_seconds_needed(cfg) <= job["timeout-minutes"] * 60, stack


def test_a_migration_timeout_that_outlives_the_stage_job_is_refused_when_config_is_read() -> None:
    from infra.config import load_config, load_stack_file
    from infra.errors import ConfigError

    raw = {**load_stack_file(ROOT / "Pulumi.dev.yaml"), "migrationTimeoutSeconds": "7200"}
    with pytest.raises(ConfigError) as info:
        load_config("dev", raw)
    assert "migrationTimeoutSeconds" in str(info.value)
    assert "ciStageTimeoutMinutes" in str(info.value)
    load_config("dev", {**raw, "ciStageTimeoutMinutes": "150"})  # raised together: accepted


def test_the_console_log_follow_up_runs_after_the_up_and_before_the_upload() -> None:
    job = load("stage")["jobs"]["deploy"]
    ups = index(job, lambda s: pulumi_command(s) == "up")
    (follow,) = index(job, lambda s: "python -m infra.gate logs" in run_text(s))
    upload = index(job, lambda s: uses(s).startswith("actions/upload-artifact"))
    assert ups[0] < follow < upload[0]
    step = steps(job)[follow]
    assert "!cancelled()" in step["if"]  # also after a failed up: the failure's log matters most
    assert '--sha "$RELEASE_SHA"' in run_text(step)
