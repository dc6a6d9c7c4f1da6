"""Typed stack config: Pulumi.yaml declares every key, the stack files load, errors are clear."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
import yaml

from infra import config
from infra.errors import ConfigError
from tests.infra.program_harness import ROOT, stack_config


def test_every_declared_key_has_type_and_description() -> None:
    decls = yaml.safe_load(config.PROJECT_FILE.read_text())["config"]
    for key, decl in decls.items():
        assert decl.get("description"), key
        if key == "apps":  # an object: Pulumi's project config types have none, so no type
            assert "type" not in decl and isinstance(decl["default"], dict)
            continue
        assert decl.get("type") in {"string", "integer", "boolean", "array"}, key
        if "default" in decl:
            kind = {"string": str, "integer": int, "boolean": bool, "array": list}[decl["type"]]
            assert isinstance(decl["default"], kind), key


@pytest.mark.parametrize("key", config.declared_keys())
def test_every_declared_key_is_read_and_validated(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.load_config("dev", stack_config("dev", **{key: {"not": "a valid value"}}))
    assert info.value.context["key"] == key


def test_stack_files_use_only_declared_keys_and_promote_in_order() -> None:
    promotes = {}
    for stack in ("dev", "staging", "prod"):
        raw = config.load_stack_file(ROOT / f"Pulumi.{stack}.yaml")
        assert set(raw) <= set(config.declared_keys())
        cfg = config.load_config(stack, raw)
        assert "@sha256:" in cfg.release_image
        assert cfg.database_url_secret_uri.startswith(
            f"https://kv-gr-{stack}.vault.azure.net/secrets/"
        )
        promotes[stack] = cfg.promotes_from
    assert promotes == {"dev": None, "staging": "dev", "prod": "staging"}


def test_defaults_come_from_pulumi_yaml() -> None:
    raw = {
        k: v
        for k, v in stack_config("dev").items()
        if k
        in {
            "releaseSha",
            "releaseImage",
            "registryId",
            "keyVaultId",
            "databaseUrlSecretUri",
        }
    }
    cfg = config.load_config("dev", raw)
    assert cfg.migration_timeout_seconds == 900 and cfg.replica_timeout_seconds == 1020
    # the gate outwaits ACA's replicaTimeout by the start allowance, so ACA's timeout fires first
    assert cfg.gate_start_allowance_seconds == 120 and cfg.gate_deadline_seconds == 1140
    # the default app is the repository's sample, reached from outside and probed on /healthz
    [api] = cfg.apps
    assert (api.name, api.command, api.ingress) == ("api", ("python", "-m", "sample_app"),
                                                    "external")
    assert (api.target_port, api.health_path, api.readiness_path) == (8000, "/healthz", "/healthz")
    assert cfg.migration_command == () and cfg.migration_args == ()
    assert cfg.promotes_from is None and cfg.accept_release is None and cfg.replay is False


def test_engine_string_values_are_parsed() -> None:
    raw = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in stack_config("prod").items()}
    raw["apps"] = '{"api": {"command": ["node", "dist/index.js"], "size": "large"}}'
    raw["migrationCommand"] = '["node", "db/scripts/migrate.mjs", "up"]'
    raw["replay"] = "true"
    cfg = config.load_config("prod", raw)
    assert cfg.apps[0].size == config.SIZES["large"] and cfg.replay is True
    assert cfg.migration_command == ("node", "db/scripts/migrate.mjs", "up")


@pytest.mark.parametrize(
    ("stack", "changes", "code", "key"),
    [
        ("dev", {"releaseSha": None}, "config-missing", "releaseSha"),
        ("dev", {"releaseSha": "HEAD"}, "config-invalid", "releaseSha"),
        (
            "dev",
            {"releaseImage": "myregistry.azurecr.io/app:1.2"},
            "config-invalid",
            "releaseImage",
        ),
        (
            "prod",
            {"releaseImage": "myregistry.azurecr.io/app:1.2", "requireImageDigest": False},
            "config-invalid",
            "requireImageDigest",
        ),
        ("dev", {"migrationTimeoutSeconds": 30}, "config-invalid", "migrationTimeoutSeconds"),
        ("dev", {"migrationLockTimeout": "five seconds"}, "config-invalid", "migrationLockTimeout"),
        (
            "dev",
            {"databaseUrlSecretUri": "postgresql://u:p@db/app"},
            "config-invalid",
            "databaseUrlSecretUri",
        ),
        ("dev", {"apps": ["api", "api"]}, "config-invalid", "apps"),
        ("dev", {"apps": ["api:huge"]}, "config-invalid", "apps"),
        ("dev", {"ingressApps": ["admin"]}, "config-invalid", "ingressApps"),
        ("dev", {"promotesFrom": "dev"}, "config-invalid", "promotesFrom"),
        ("dev", {"replicas": 3}, "config-invalid", "replicas"),
        ("dev", {"gateStartAllowanceSeconds": -1}, "config-invalid", "gateStartAllowanceSeconds"),
        ("dev", {"armEndpoint": "http://management.azure.com"}, "config-invalid", "armEndpoint"),
        ("prod", {"armEndpoint": "http://10.0.0.5:8080"}, "config-invalid", "armEndpoint"),
        ("dev", {"armEndpoint": "http://127.0.0.1.evil.example"}, "config-invalid", "armEndpoint"),
        ("dev", {"armEndpoint": "ftp://127.0.0.1"}, "config-invalid", "armEndpoint"),
        ("dev", {"armEndpoint": "https://"}, "config-invalid", "armEndpoint"),
    ],
)
def test_errors_name_key_stack_and_form(
    stack: str, changes: dict[str, Any], code: str, key: str
) -> None:
    raw = stack_config(stack)
    for k, v in changes.items():
        if v is None:
            raw.pop(k)
        else:
            raw[k] = v
    with pytest.raises(ConfigError) as info:
        config.load_config(stack, raw)
    assert info.value.code == code
    assert info.value.context == {"key": key, "stack": stack}
    assert f"gated-release:{key}" in str(info.value) and f"'{stack}'" in str(info.value)


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://management.azure.com",
        "https://management.usgovcloudapi.net/",
        "http://127.0.0.1:8123",
        "http://localhost:8123/",
        "http://[::1]:8123",
    ],
)
def test_arm_endpoint_is_https_or_a_loopback_test_server(endpoint: str) -> None:
    cfg = config.load_config("dev", stack_config("dev", armEndpoint=endpoint))
    assert cfg.arm_endpoint == endpoint.rstrip("/")


def test_plain_http_arm_endpoint_error_says_what_is_allowed() -> None:
    with pytest.raises(ConfigError) as info:
        config.load_config("staging", stack_config("staging", armEndpoint="http://arm.example"))
    message = str(info.value)
    assert "gated-release:armEndpoint" in message and "'staging'" in message
    assert "https" in message and "loopback" in message


def test_dev_may_opt_out_of_digest_pinning_but_prod_may_not() -> None:
    tagged = "myregistry.azurecr.io/gated-release/app:pr-42"
    cfg = config.load_config(
        "dev", stack_config("dev", releaseImage=tagged, requireImageDigest=False)
    )
    assert cfg.release_image == tagged and cfg.registry_server == "myregistry.azurecr.io"
    with pytest.raises(ConfigError):
        config.load_config("prod", stack_config("prod", releaseImage=tagged))


def test_config_is_frozen() -> None:
    cfg = config.load_config("dev", stack_config("dev"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.release_sha = "0" * 40  # type: ignore[misc]


NODE_STACK = ROOT / "tests" / "infra" / "stacks" / "Pulumi.node.yaml"


def test_a_node_stack_file_describes_its_apps_and_job() -> None:
    cfg = config.load_config("node", config.load_stack_file(NODE_STACK))
    api, web = cfg.apps
    assert api.command == ("node", "dist/index.js") and api.target_port == 3000
    assert api.env == (("NODE_ENV", "production"),)
    assert api.secret_env[0][0] == "SESSION_SECRET" and api.readiness_path == "/ready"
    assert web.ingress == "internal" and web.size == config.ContainerSize(0.5, "1Gi")
    assert cfg.migration_command == ("node", "db/scripts/migrate.mjs", "up")


def _app(**fields: Any) -> dict[str, Any]:
    return {"api": {"command": ["node", "dist/index.js"], **fields}}


@pytest.mark.parametrize(
    ("apps", "field"),
    [
        ({"api": {}}, "api.command"),
        ({"api": {"command": []}}, "api.command"),
        (_app(ingress="public"), "api.ingress"),
        (_app(targetPort=0), "api.targetPort"),
        (_app(healthPath="healthz"), "api.healthPath"),
        (_app(size={"cpu": 0.5, "memory": "3Gi"}), "api.size"),
        (_app(size="huge"), "api.size"),
        (_app(minReplicas=4, maxReplicas=2), "api.maxReplicas"),
        (_app(env={"DATABASE_URL": "x"}), "api.env"),
        (_app(env={"bad-name": "x"}), "api.env"),
        (_app(secretEnv={"TOKEN": "s3cr3t-literal"}), "api.secretEnv"),
        (_app(comand=["node"]), "api.comand"),
        (_app(secretEnv={"database_url": "https://kv-x.vault.azure.net/secrets/db"}),
         "api.secretEnv"),
        (_app(secretEnv={"Api_Key": "https://kv-x.vault.azure.net/secrets/a",
                         "API_KEY": "https://kv-x.vault.azure.net/secrets/b"}), "api.secretEnv"),
    ],
)
def test_app_spec_errors_name_the_app_field_and_stack(apps: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.load_config("dev", stack_config("dev", apps=apps))
    err = info.value
    assert err.code == "config-invalid"
    assert err.context == {"key": "apps", "stack": "dev", "field": field}
    assert f"gated-release:apps.{field} in stack 'dev'" in str(err)
    assert "s3cr3t-literal" not in str(err)  # a literal given as a secret is not echoed


def test_apps_must_be_a_non_empty_map() -> None:
    for bad in ([], {}, ["api"], {"Api": {"command": ["x"]}}):
        with pytest.raises(ConfigError) as info:
            config.load_config("dev", stack_config("dev", apps=bad))
        assert info.value.context["key"] == "apps"
