"""The validators are pure functions over plain values (floats, Unknown markers)."""

from __future__ import annotations

from gated_policies import BY_NAME, StackResource, Unknown, effective_config, plain
from gated_policies.resource_rules import migration_job_single_run, no_startup_migrations
from gated_policies.stack_rules import apps_gated
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

IMAGE = "r.io/app@sha256:" + "a" * 64


def job(**configuration: object) -> dict[str, object]:
    base: dict[str, object] = {
        "triggerType": "Manual", "replicaTimeout": 960.0, "replicaRetryLimit": 0.0,
        "manualTriggerConfig": {"parallelism": 1.0, "replicaCompletionCount": 1.0},
    }
    base.update(configuration)
    return {"configuration": base, "template": {"containers": [{
        "name": "m", "image": IMAGE, "command": ["python", "-m", "migration", "up"],
        "env": [{"name": "MIGRATION_TIMEOUT_SECONDS", "value": "900"},
                {"name": "MIGRATION_RELEASE_SHA", "value": "abc"}]}]}}


def config(name: str) -> dict[str, object]:
    return effective_config(BY_NAME[name], None)


def test_float_settings_pass() -> None:
    cfg = config("migration-job-single-run")
    assert migration_job_single_run("azure-native:app:Job", "j", job(), cfg) == []


def test_timeout_shorter_than_runner_deadline() -> None:
    cfg = config("migration-job-single-run")
    findings = migration_job_single_run("azure-native:app:Job", "j", job(replicaTimeout=905.0),
                                        cfg)
    assert [f.path for f in findings] == ["configuration.replicaTimeout"]


def test_timeout_over_maximum_is_configurable() -> None:
    cfg = {**config("migration-job-single-run"), "maxReplicaTimeoutSeconds": 600}
    findings = migration_job_single_run("azure-native:app:Job", "j", job(), cfg)
    assert any("maximum" in f.message for f in findings)


def test_unknown_parallelism_is_an_unknown_finding() -> None:
    cfg = config("migration-job-single-run")
    props = job(manualTriggerConfig={"parallelism": Unknown("configuration.manualTriggerConfig."
                                                            "parallelism"),
                                     "replicaCompletionCount": 1.0})
    findings = migration_job_single_run("azure-native:app:Job", "j", props, cfg)
    assert [f.unknown for f in findings] == [True]


def test_plain_reads_pulumi_policy_proxies_without_raising() -> None:
    proxied = unknown_checking_proxy({"template": {"containers": [
        {"image": UNKNOWN_STRING_VALUE, "command": ["gunicorn"]}]}})
    value = plain(proxied)
    assert value["template"]["containers"][0]["image"] == Unknown("template.containers[0].image")
    assert value["template"]["containers"][0]["command"] == ["gunicorn"]


def test_secret_ref_enable_flag_cannot_be_verified() -> None:
    props = {"template": {"containers": [{"name": "a", "image": IMAGE, "env": [
        {"name": "WEB_DB_MIGRATE_ENABLED", "secretRef": "flag"}]}]}}
    findings = no_startup_migrations("azure-native:app:ContainerApp", "a", props,
                                     config("no-startup-migrations"))
    assert len(findings) == 1 and "cannot verify" in findings[0].message


def test_gate_reached_transitively() -> None:
    cfg = config("apps-gated-on-migration-run")
    job_r = StackResource("azure-native:app:Job", "job", "urn:job", job())
    gate = StackResource("pulumi-python:dynamic:Resource", "migration-run", "urn:gate", {},
                         dependencies=["urn:job"])
    middle = StackResource("azure-native:authorization:RoleAssignment", "ra", "urn:ra", {},
                           property_dependencies={"principalId": ["urn:gate"]})
    app = StackResource("azure-native:app:ContainerApp", "api", "urn:api", {},
                        dependencies=["urn:ra"])
    assert apps_gated([job_r, gate, middle, app], cfg) == []
    lonely = StackResource("azure-native:app:ContainerApp", "web", "urn:web", {})
    assert [f.urn for f in apps_gated([job_r, gate, middle, app, lonely], cfg)] == ["urn:web"]


def test_enable_flag_must_be_an_explicit_off() -> None:
    cfg = config("no-startup-migrations")
    for value, violates in [("0", False), ("false", False), ("2", True), ("maybe", True),
                            ("1", True)]:
        props = {"template": {"containers": [{"name": "a", "image": IMAGE, "env": [
            {"name": "WEB_DB_MIGRATE_ENABLED", "value": value}]}]}}
        findings = no_startup_migrations("azure-native:app:ContainerApp", "a", props, cfg)
        assert bool(findings) is violates, value


def test_second_job_with_unknown_command_is_reported() -> None:
    from gated_policies.stack_rules import one_migration_path

    cfg = config("one-migration-path-per-stack")
    real = StackResource("azure-native:app:Job", "migration-job", "urn:job", job())
    other_props = job()
    other_props["template"]["containers"][0]["command"] = Unknown(  # type: ignore[index]
        "template.containers[0].command")
    other = StackResource("azure-native:app:Job", "nightly", "urn:nightly", other_props)
    assert one_migration_path([real], cfg) == []
    findings = one_migration_path([real, other], cfg)
    assert [(f.urn, f.unknown) for f in findings] == [("urn:nightly", True)]


def test_a_migrating_sidecar_is_caught_beside_a_clean_main_container() -> None:
    from gated_policies import resource_rules
    from gated_policies.catalog import BY_NAME, effective_config

    props = {"template": {"containers": [
        {"name": "api", "image": "r/a@sha256:" + "0" * 64, "command": ["node", "dist/index.js"]},
        {"name": "migrator", "image": "r/a@sha256:" + "0" * 64,
         "command": ["node", "db/scripts/migrate.mjs", "up"]},
    ]}}
    config = effective_config(BY_NAME["no-startup-migrations"], None)
    [finding] = resource_rules.no_startup_migrations(
        "azure-native:app:ContainerApp", "api-app", props, config)
    assert finding.path == "template.containers[1].command"
