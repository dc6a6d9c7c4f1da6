"""The Pulumi program under the mock monitor, for each stack file of the repository."""

from __future__ import annotations

import pytest

from infra import config
from infra.errors import ConfigError, ReleaseError
from tests.infra.program_harness import ROOT, Run, run_program, stack_config

NODE_STACK = ROOT / "tests" / "infra" / "stacks" / "Pulumi.node.yaml"

STACKS = ["dev", "staging", "prod"]
JOB = "azure-native:app:Job"
APP = "azure-native:app:ContainerApp"
GATE = "pulumi-python:dynamic/gate:MigrationRun"
MIGRATE = ["python", "-m", "migration", "up", "--check-order", "--lock"]


def accepted(stack: str) -> dict[str, list[dict[str, str]]]:
    """Ledgers in which the stack file's release was accepted upstream."""
    raw = stack_config(stack)
    entry = {
        "sha": raw["releaseSha"],
        "image": raw["releaseImage"],
        "acceptedAt": "2030-01-01T00:00:00Z",
    }
    return {"dev": [entry], "staging": [entry]}


@pytest.fixture(scope="module", params=STACKS)
def deployed(request: pytest.FixtureRequest) -> tuple[str, Run]:
    stack = request.param
    run = run_program(stack, ledgers=accepted(stack))
    assert run.error is None, run.error
    return stack, run


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def test_job_is_single_run_with_the_migration_command(deployed: tuple[str, Run]) -> None:
    stack, run = deployed
    raw = stack_config(stack)
    job = run.one(JOB).inputs
    conf = job["configuration"]
    assert conf["triggerType"] == "Manual"
    assert conf["manualTriggerConfig"] == {"parallelism": 1, "replicaCompletionCount": 1}
    assert conf["replicaRetryLimit"] == 0
    assert conf["replicaTimeout"] == raw["migrationTimeoutSeconds"] + 120
    [container] = job["template"]["containers"]
    assert container["command"][: len(MIGRATE)] == MIGRATE
    assert "--single-transaction" in container["command"]  # the default
    assert "initContainers" not in job["template"]
    env = env_of(container)
    expected = {
        "MIGRATION_DIR": "/app/db/migrations",
        "MIGRATION_TIMEOUT_SECONDS": str(raw["migrationTimeoutSeconds"]),
        "MIGRATION_LOCK_TIMEOUT": "5s",
        "MIGRATION_STATEMENT_TIMEOUT": "10min",
        "MIGRATION_RELEASE_SHA": raw["releaseSha"],
        "MIGRATION_STACK": stack,
        "MIGRATE_DB_MIGRATE_ENABLED": "1",
        "MIGRATE_DB_MIGRATE_RUNNER": "aca-migration-job",
        "DB_MIGRATE_TELEMETRY_ENABLED": "1",
    }
    assert {k: env[k].get("value") for k in expected} == expected
    assert env["DATABASE_URL"] == {"name": "DATABASE_URL", "secretRef": "database-url"}
    [secret] = conf["secrets"]
    assert secret["keyVaultUrl"] == raw["databaseUrlSecretUri"]
    assert "value" not in secret and secret["identity"].endswith(
        "/userAssignedIdentities/" + f"gr-{stack}-id"
    )


def test_apps_run_the_job_digest_with_another_command(deployed: tuple[str, Run]) -> None:
    stack, run = deployed
    raw = stack_config(stack)
    [job_container] = run.one(JOB).inputs["template"]["containers"]
    apps = run.of_type(APP)
    names = sorted(a.inputs["containerAppName"] for a in apps)
    assert names == sorted(f"gr-{stack}-{a}" for a in raw["apps"])
    for app in apps:
        template = app.inputs["template"]
        assert "initContainers" not in template
        [container] = template["containers"]
        assert container["image"] == job_container["image"] == raw["releaseImage"]
        assert "@sha256:" in container["image"]
        spec = raw["apps"][container["name"]]
        assert container["command"] == spec["command"] != job_container["command"]
        assert env_of(container)["PORT"]["value"] == "8000"  # the app's targetPort
        env = env_of(container)
        assert env["WEB_DB_MIGRATE_ENABLED"]["value"] == "0"
        assert env["DATABASE_URL"].get("secretRef") == "database-url"
        assert all(
            "value" not in e or not e["name"].endswith(("URL", "TOKEN")) for e in env.values()
        )
        ingress = app.inputs["configuration"]["ingress"]
        assert ingress["external"] is (spec["ingress"] == "external")
        assert ingress["targetPort"] == 8000
        probes = {p["type"]: p["httpGet"]["path"] for p in container["probes"]}
        assert probes == {"Liveness": "/healthz",
                          "Readiness": spec.get("readinessPath", "/healthz")}
    api = next(a for a in apps if a.inputs["containerAppName"].endswith("-api"))
    [api_container] = api.inputs["template"]["containers"]
    # the api's secretEnv is a Key Vault reference read by the identity, never a literal
    assert env_of(api_container)["OPS_MIGRATION_TOKEN"] == {
        "name": "OPS_MIGRATION_TOKEN", "secretRef": "ops-migration-token"}
    vault = {s["name"]: s for s in api.inputs["configuration"]["secrets"]}
    assert vault["ops-migration-token"]["keyVaultUrl"] == (
        raw["apps"]["api"]["secretEnv"]["OPS_MIGRATION_TOKEN"])
    assert "value" not in vault["ops-migration-token"]


def test_apps_depend_on_the_gate_and_the_gate_on_the_job(deployed: tuple[str, Run]) -> None:
    _, run = deployed
    gate = run.one(GATE)
    job = run.one(JOB)
    assert job.urn in gate.dependencies
    assert gate.inputs["jobId"].endswith("/providers/Microsoft.App/jobs/" + job.inputs["jobName"])
    for app in run.of_type(APP):
        assert gate.urn in app.dependencies, app.urn
    # the gate runs the job's own template (no override input); the image is a trigger field
    assert "container" not in gate.inputs
    assert gate.inputs["image"] == job.inputs["template"]["containers"][0]["image"]
    # the gate waits replicaTimeout plus a start allowance, so ACA's own timeout fires first
    assert gate.inputs["deadlineSeconds"] == job.inputs["configuration"]["replicaTimeout"]
    assert gate.inputs["startAllowanceSeconds"] == 120


def test_identity_roles_are_scoped_from_config(deployed: tuple[str, Run]) -> None:
    stack, run = deployed
    raw = stack_config(stack)
    roles = {
        r.inputs["scope"]: r.inputs["roleDefinitionId"]
        for r in run.of_type("azure-native:authorization:RoleAssignment")
    }
    assert roles[raw["registryId"]].endswith("7f951dda-4ed3-4680-a7ca-43fe172d538d")  # AcrPull
    assert roles[raw["keyVaultId"]].endswith(
        "4633458b-17de-408a-b874-0445c86b69e6"
    )  # KV Secrets User


def test_exports(deployed: tuple[str, Run]) -> None:
    stack, run = deployed
    raw = stack_config(stack)
    assert run.exports["release"] == {"sha": raw["releaseSha"], "image": raw["releaseImage"]}
    assert run.exports["migrationStatus"] == "Succeeded"  # what the gate's create returns
    assert isinstance(run.exports["acceptedReleases"], list)


def test_components_are_parents_of_their_resources(deployed: tuple[str, Run]) -> None:
    _, run = deployed
    for res in run.of_type(JOB) + run.of_type(APP) + run.of_type(GATE):
        assert "gated-release:infra:" in res.parent, res.urn
    assert len({r.urn for r in run.resources}) == len(run.resources), "duplicate URNs"


def _cause(run: Run, kind: type[BaseException]) -> BaseException:
    exc: BaseException | None = run.error
    while exc is not None and not isinstance(exc, kind):
        exc = exc.__cause__ or exc.__context__
    assert isinstance(exc, kind), repr(run.error)
    return exc


def test_prod_refuses_an_image_without_digest() -> None:
    raw = stack_config(
        "prod",
        releaseImage="myregistry.azurecr.io/gated-release/app:latest",
        requireImageDigest=False,
    )
    run = run_program("prod", raw)
    err = _cause(run, ConfigError)
    assert err.context["key"] == "requireImageDigest" and err.context["stack"] == "prod"
    assert not run.resources, "nothing registered before config is valid"


@pytest.mark.parametrize("value", [59, 7201])
def test_migration_timeout_out_of_bounds(value: int) -> None:
    run = run_program("dev", stack_config("dev", migrationTimeoutSeconds=value))
    err = _cause(run, ConfigError)
    assert err.code == "config-invalid" and err.context["key"] == "migrationTimeoutSeconds"
    assert "60..7200" in str(err) and "'dev'" in str(err)


def test_staging_refuses_a_release_dev_did_not_accept() -> None:
    run = run_program("staging", ledgers={"dev": []})
    err = _cause(run, ReleaseError)
    assert err.code == "release-not-promoted"
    # fail closed: the job and the gate never receive the refused release
    assert not run.of_type(GATE) or run.one(GATE).inputs.get("releaseSha") in (None, "")


def test_accepting_appends_to_the_ledger() -> None:
    raw = stack_config("dev")
    run = run_program(
        "dev", stack_config("dev", acceptRelease=raw["releaseSha"]), ledgers={"dev": []}
    )
    assert run.error is None, run.error
    [entry] = run.exports["acceptedReleases"]
    assert entry["sha"] == raw["releaseSha"] and entry["image"] == raw["releaseImage"]


def test_preview_registers_the_same_graph() -> None:
    run = run_program("dev", preview=True)
    assert run.error is None, run.error
    assert {r.type for r in run.resources} >= {JOB, APP, GATE}


def test_a_node_app_and_its_own_migration_script_deploy_from_config() -> None:
    raw = config.load_stack_file(NODE_STACK)
    run = run_program("node", raw)
    assert run.error is None, run.error
    [job] = run.of_type(JOB)
    [container] = job.inputs["template"]["containers"]
    # the team's own command, with the runner's env and the same single-run settings
    assert container["command"] == ["node", "db/scripts/migrate.mjs", "up"]
    assert job.inputs["configuration"]["replicaRetryLimit"] == 0
    assert {e["name"] for e in container["env"]} >= {"MIGRATION_TIMEOUT_SECONDS", "DATABASE_URL"}
    apps = {a.inputs["containerAppName"]: a.inputs for a in run.of_type(APP)}
    api = apps["gr-node-api"]["template"]["containers"][0]
    web = apps["gr-node-web"]
    assert api["command"] == ["node", "dist/index.js"] and "args" not in api
    assert env_of(api)["NODE_ENV"] == {"name": "NODE_ENV", "value": "production"}
    assert env_of(api)["SESSION_SECRET"] == {"name": "SESSION_SECRET",
                                             "secretRef": "session-secret"}
    assert env_of(api)["PORT"]["value"] == "3000"
    assert apps["gr-node-api"]["configuration"]["ingress"]["targetPort"] == 3000
    assert web["configuration"]["ingress"]["external"] is False
    assert web["template"]["containers"][0]["resources"] == {"cpu": 0.5, "memory": "1Gi"}


def test_an_app_without_ingress_has_no_probes() -> None:
    apps = {"worker": {"command": ["node", "dist/worker.js"], "ingress": "none", "args": ["-q"]}}
    run = run_program("dev", stack_config("dev", apps=apps), ledgers=accepted("dev"))
    assert run.error is None, run.error
    [app] = run.of_type(APP)
    [container] = app.inputs["template"]["containers"]
    assert "ingress" not in app.inputs["configuration"] and "probes" not in container
    assert container["args"] == ["-q"]
    assert "worker" not in run.exports["appUrls"]
