"""`python -m infra.tools.rehearse`: preview, the previewed job's command, then the previewed
apps as real processes, the smoke check and status; a failed migration starts no app."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from infra.tools.preview import PROJECT_ROOT, PolicyPackProcess, run_preview
from infra.tools.rehearse import app_invocations, invocation

from .conftest import PROGRAMS

SHA = "2f22765d04931a078909145ca628d2264c852d7d"  # Pulumi.dev.yaml's releaseSha
SCHEMAS = PROJECT_ROOT / "schemas"


def rehearse(program: Path, database_url: str, artifacts: Path, *extra: str
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.tools.rehearse", "--program-dir", str(program),
         "--database-url", database_url, "--artifact-dir", str(artifacts), *extra],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False, timeout=300)


def validate(path: Path, schema: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    jsonschema.validate(doc, json.loads((SCHEMAS / schema).read_text()))
    return doc


def stages(summary: Path) -> dict[str, str]:
    return {s["stage"]: s["status"] for s in json.loads(summary.read_text())["stages"]}


def test_invocation_maps_the_job_to_this_machine(pack: PolicyPackProcess, tmp_path: Path) -> None:
    result = run_preview("dev", program_dir=PROGRAMS / "compliant", packs=[pack])
    job = invocation(result, "postgresql://postgres:pw@/db?host=/tmp", PROGRAMS / "compliant",
                     tmp_path, PROJECT_ROOT / "policies")
    assert job.argv == [sys.executable, "-m", "migration", "up", "--check-order", "--lock"]
    assert job.env["DATABASE_URL"] == "postgresql://postgres:pw@/db?host=/tmp"
    assert job.env["MIGRATION_DIR"] == str(PROGRAMS / "compliant" / "db" / "migrations")
    assert job.env["MIGRATION_ARTIFACT_DIR"] == str(tmp_path)
    assert job.release_sha == "abc123"


def test_app_invocations_come_from_the_previewed_container_apps(pack: PolicyPackProcess) -> None:
    result = run_preview("dev", packs=[pack])
    api, codex, web = app_invocations(result, "postgresql:///local", PROJECT_ROOT)
    assert (api.name, codex.name, web.name) == ("api", "codex", "web")
    assert api.argv == [sys.executable, "-m", "sample_app"]  # the stack file's command
    assert len({api.port, web.port, codex.port}) == 3 and api.env["PORT"] == str(api.port)
    assert api.env["HOST"] == "127.0.0.1" and api.env["RELEASE_SHA"] == SHA
    assert api.env["DATABASE_URL"] == "postgresql:///local"
    # a secret other than the database is substituted by a local random value, never empty
    assert len(api.env["OPS_MIGRATION_TOKEN"]) >= 24 and "OPS_MIGRATION_TOKEN" not in web.env
    assert (api.health_path, api.readiness_path) == ("/healthz", "/readyz")


def test_the_whole_gated_deploy_rehearses(database_url: str, tmp_path: Path) -> None:
    done = rehearse(PROJECT_ROOT, database_url, tmp_path / "deploy")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    migration = validate(tmp_path / "deploy" / SHA / "migration.json", "migration.schema.json")
    assert migration["executionStatus"] == "Succeeded"
    smoke = validate(tmp_path / "deploy" / SHA / "api-smoke.json", "api-smoke.schema.json")
    assert smoke["ok"] is True and smoke["expectVersion"] == SHA
    assert {a["id"] for a in smoke["assertions"]} >= {"openapi-version", "data-status"}
    assert smoke["data"]["status"] == 200  # the api read the table the migrations created
    summary = tmp_path / "rehearse" / SHA / "rehearsal.json"
    assert stages(summary) == dict.fromkeys(
        ["preview", "migration", "apps", "smoke", "status", "stop"], "ok")
    for line in ("==> [1/6] preview", "<== migration: ok in", "<== smoke: ok in",
                 "api-smoke.json", "rehearsal OK"):
        assert line in out, line
    assert (tmp_path / "rehearse" / SHA / "api.log").read_text().count("GET /healthz") >= 1
    # the apps were stopped: nothing listens on their ports any more
    apps_detail = json.loads(summary.read_text())["stages"][2]["detail"]
    ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", apps_detail)]
    assert len(ports) == 3  # api, codex, web
    for port in ports:
        with socket.socket() as s, pytest.raises(OSError):
            s.connect(("127.0.0.1", port))


def test_a_failed_migration_stops_the_rollout_before_any_app(database_url: str,
                                                             tmp_path: Path) -> None:
    done = rehearse(PROGRAMS / "rehearse-bad", database_url, tmp_path / "deploy")
    assert done.returncode == 1, done.stderr[-2000:]  # the runner's: SQL failed
    artifact = json.loads((tmp_path / "deploy" / "abc123" / "migration.json").read_text())
    assert artifact["executionStatus"] == "Failed"
    assert artifact["executionSummary"]["failing"]["file"] == "0002_broken.sql"
    got = stages(tmp_path / "rehearse" / "abc123" / "rehearsal.json")
    assert got["migration"] == "failed"
    assert got["apps"] == got["smoke"] == got["stop"] == "skipped"
    assert "rollout stopped" in done.stderr
    assert not (tmp_path / "rehearse" / "abc123" / "api.log").exists()


def test_rehearse_fail_breaks_a_scratch_copy_on_a_fresh_database(database_url: str,
                                                                 tmp_path: Path) -> None:
    done = rehearse(PROJECT_ROOT, database_url, tmp_path / "deploy", "--fail")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    base = tmp_path / "rehearse-fail"
    artifact = validate(base / "deploy" / SHA / "migration.json", "migration.schema.json")
    assert artifact["reasonCode"] == "sql-failed"
    assert artifact["executionSummary"]["failing"]["sqlstate"] == "42P01"
    assert artifact["executionSummary"]["failing"]["file"] == "9999_rehearse_broken.sql"
    assert stages(base / "rehearse" / SHA / "rehearsal.json")["apps"] == "skipped"
    # the project itself is untouched: the broken file lives only in the scratch copy
    assert not (PROJECT_ROOT / "db" / "migrations" / "9999_rehearse_broken.sql").exists()
    assert not (tmp_path / "deploy").exists()


def test_policy_violation_stops_before_the_database(database_url: str, tmp_path: Path) -> None:
    done = rehearse(PROGRAMS / "unpinned-image", database_url, tmp_path)
    assert done.returncode == 1
    assert "mandatory" in done.stdout
    assert not (tmp_path / "abc123").exists()


def dev_stack_with(tmp_path: Path, apps: dict[str, Any]) -> Path:
    data = yaml.safe_load((PROJECT_ROOT / "Pulumi.dev.yaml").read_text())
    data["config"]["gated-release:apps"] = apps
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_an_app_that_dies_fails_the_rehearsal_and_the_others_are_stopped(
        database_url: str, tmp_path: Path) -> None:
    stack = dev_stack_with(tmp_path, {
        "api": {"command": ["python", "-m", "sample_app"]},
        "worker": {"command": ["python", "-c", "import sys; print('boom'); sys.exit(3)"],
                   "ingress": "none"},
    })
    done = rehearse(PROJECT_ROOT, database_url, tmp_path / "deploy", "--config-file", str(stack))
    assert done.returncode == 20, done.stdout[-2000:] + done.stderr[-2000:]
    assert "app 'worker' exited with 3" in done.stderr and "| boom" in done.stderr
    got = stages(tmp_path / "rehearse" / SHA / "rehearsal.json")
    assert (got["apps"], got["smoke"], got["stop"]) == ("failed", "skipped", "ok")
    assert not (tmp_path / "deploy" / SHA / "api-smoke.json").exists()
    # the api is the only app with ingress, so the only one listening
    [port] = [int(p) for p in re.findall(r"listens on 127\.0\.0\.1:(\d+)", done.stdout)]
    assert closed(port), "the api was left running"


def test_sigterm_stops_the_apps(database_url: str, tmp_path: Path) -> None:
    # a slow readiness path keeps the rehearsal in the apps stage long enough to be signalled
    stack = dev_stack_with(tmp_path, {"api": {"command": ["python", "-m", "sample_app"],
                                              "readinessPath": "/never"}})
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.tools.rehearse", "--database-url", database_url,
         "--artifact-dir", str(tmp_path / "deploy"), "--config-file", str(stack)],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    port = None
    for line in proc.stdout:
        found = re.search(r"listens on 127\.0\.0\.1:(\d+)", line)
        if found:
            port = int(found.group(1))
            break
    assert port is not None
    deadline = time.monotonic() + 20
    while closed(port) and time.monotonic() < deadline:  # the app is up, not yet ready
        time.sleep(0.1)
    assert not closed(port)
    proc.send_signal(signal.SIGTERM)
    rest = proc.stdout.read()
    assert proc.wait(timeout=30) == 130, rest[-2000:]
    assert "<== stop: ok" in rest and closed(port)
