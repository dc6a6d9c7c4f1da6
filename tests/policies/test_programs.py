"""Every policy against small programs, through the real pack process over gRPC."""

from __future__ import annotations

import pytest

from .conftest import urn

APP = "azure-native:app:ContainerApp"
JOB = "azure-native:app:Job"
GATE = "pulumi-python:dynamic/gate:MigrationRun"
API, WEB = urn(APP, "api"), urn(APP, "web")
MIGRATION_JOB = urn(JOB, "migration-job")
STACK = ""  # a stack-level violation names no resource

# program -> the exact set of (policy, urn) mandatory violations it must produce
EXPECTED: dict[str, set[tuple[str, str]]] = {
    "compliant": set(),
    "startup-shell-migration": {
        ("no-startup-migrations", API), ("no-startup-migrations", WEB),
        ("one-migration-path-per-stack", API), ("one-migration-path-per-stack", WEB),
    },
    "startup-init-container": {
        ("no-startup-migrations", API), ("no-startup-migrations", WEB),
        ("one-migration-path-per-stack", API), ("one-migration-path-per-stack", WEB),
    },
    "startup-enable-flag": {
        ("no-startup-migrations", API), ("no-startup-migrations", WEB),
        ("one-migration-path-per-stack", API), ("one-migration-path-per-stack", WEB),
    },
    "job-not-single-run": {("migration-job-single-run", MIGRATION_JOB)},
    "unpinned-image": {("pinned-image", API), ("pinned-image", WEB),
                       ("pinned-image", MIGRATION_JOB)},
    "plaintext-secret": {("no-plaintext-secret-env", API), ("no-plaintext-secret-env", WEB),
                         ("no-plaintext-secret-env", MIGRATION_JOB)},
    "two-migration-jobs": {("one-migration-path-per-stack", urn(JOB, "migration-job-2"))},
    "ungated-apps": {("apps-gated-on-migration-run", API), ("apps-gated-on-migration-run", WEB),
                     ("apps-gated-on-migration-run", urn(GATE, "migration-run"))},
    "no-migration-job": {("one-migration-path-per-stack", STACK),
                         ("apps-gated-on-migration-run", STACK)},
    "mixed-release": {("same-release-artifact", API), ("same-release-artifact", WEB)},
}


@pytest.mark.parametrize("program", sorted(EXPECTED))
def test_program_violations(preview, program: str) -> None:  # type: ignore[no-untyped-def]
    result = preview(program)
    got = {(v.policy, v.urn) for v in result.violations}
    assert got == EXPECTED[program]
    assert all(v.level == "mandatory" and v.pack == "gated-release" for v in result.violations)
    assert result.exit_code == (1 if EXPECTED[program] else 0)


def test_every_policy_has_a_violating_program() -> None:
    from gated_policies import POLICIES

    covered = {policy for expected in EXPECTED.values() for policy, _ in expected}
    assert covered == {p.name for p in POLICIES}


def test_job_violation_messages_name_each_setting(preview) -> None:  # type: ignore[no-untyped-def]
    result = preview("job-not-single-run")
    text = "\n".join(v.message for v in result.violations)
    for path in ("configuration.triggerType", "manualTriggerConfig.parallelism",
                 "configuration.replicaRetryLimit", "configuration.replicaTimeout"):
        assert path in text


def test_plaintext_secret_value_is_redacted_in_json(preview) -> None:  # type: ignore[no-untyped-def]
    import json

    result = preview("plaintext-secret")
    dumped = json.dumps(result.to_json())
    # the app's DATABASE_URL_RO is a secret output: redacted; the job's literal ACA secret is
    # plaintext in the program itself and is what the policy flags.
    assert "[secret]" in dumped
    app = result.find(APP, "api")[0]
    assert "hunter2" not in json.dumps(app.redacted_inputs())


def test_engine_urns_differ_from_mock_monitor(preview) -> None:  # type: ignore[no-untyped-def]
    from pulumi.runtime.mocks import MockMonitor

    result = preview("compliant")
    stack = result.find("pulumi:pulumi:Stack")[0]
    api = result.find(APP, "api")[0]
    assert api.urn == API and api.parent == stack.urn
    # MockMonitor.make_urn would have put the stack type in front of every top-level resource.
    assert "pulumi:pulumi:Stack$" not in api.urn
    assert urn(GATE, "migration-run") in api.dependencies
    env = urn("azure-native:app:ManagedEnvironment", "env")
    assert api.property_dependencies["managedEnvironmentId"] == [env]
    mock_style = MockMonitor.make_urn.__code__.co_consts  # the mock prefixes the parent's type
    assert mock_style is not None
