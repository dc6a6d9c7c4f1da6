"""infra.tools.promote: promotion, acceptance, replay refusal and drift, with Pulumi faked offline.

Two seams: a JSON ledger file (``--ledger-file``) for stack outputs, and a fake ``pulumi``
executable (``--pulumi``, tests/ci/fake_pulumi.py) that keeps config and outputs in a JSON file and
applies the program's ledger rule on ``up``.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from infra.errors import ReleaseError
from infra.tools import promote
from infra.tools.promote import Backend, PromoteError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SHA_A = "a" * 40
SHA_B = "b" * 40
SHA_C = "c" * 40
IMG_A = "reg.azurecr.io/app@sha256:" + "1" * 64
IMG_B = "reg.azurecr.io/app@sha256:" + "2" * 64
IMG_C = "reg.azurecr.io/app@sha256:" + "3" * 64


def entry(sha: str, image: str, at: str = "2025-01-01T00:00:00Z") -> dict[str, str]:
    return {"sha": sha, "image": image, "acceptedAt": at}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project dir with the stack files' promotion chain dev -> staging -> prod."""
    for stack, upstream in (("dev", ""), ("staging", "dev"), ("prod", "staging")):
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(
            f'config:\n  gated-release:promotesFrom: "{upstream}"\n'
        )
    return tmp_path


def ledger_backend(project: Path, outputs: dict[str, Any]) -> Backend:
    path = project / "ledger.json"
    path.write_text(json.dumps(outputs))
    return Backend(project_dir=project, ledger_file=path)


LEDGERS = {
    "dev": {"acceptedReleases": [entry(SHA_A, IMG_A), entry(SHA_B, IMG_B)]},
    "staging": {"acceptedReleases": [entry(SHA_A, IMG_A)]},
    "prod": {"acceptedReleases": [entry(SHA_A, IMG_A)]},
}


# -- resolve ---------------------------------------------------------------------------------------

def test_first_stage_deploys_the_fresh_build(project: Path) -> None:
    res = promote.resolve(ledger_backend(project, {}), "dev", SHA_C, IMG_C)
    assert (res.sha, res.image, res.source) == (SHA_C, IMG_C, "build")


def test_first_stage_refuses_a_tag_instead_of_a_digest(project: Path) -> None:
    with pytest.raises(PromoteError) as err:
        promote.resolve(ledger_backend(project, {}), "dev", SHA_C, "reg.azurecr.io/app:latest")
    assert err.value.code == "invalid-image"


def test_promotion_takes_the_image_from_the_upstream_ledger(project: Path) -> None:
    res = promote.resolve(ledger_backend(project, LEDGERS), "staging", SHA_B)
    assert (res.sha, res.image, res.source) == (SHA_B, IMG_B, "promote:dev")


def test_promotion_without_sha_takes_the_latest_upstream_acceptance(project: Path) -> None:
    res = promote.resolve(ledger_backend(project, LEDGERS), "staging")
    assert res.sha == SHA_B


def test_promotion_refuses_a_sha_the_upstream_never_accepted(project: Path) -> None:
    with pytest.raises(ReleaseError) as err:
        promote.resolve(ledger_backend(project, LEDGERS), "prod", SHA_B)
    assert err.value.code == "release-not-promoted"
    assert "staging" in err.value.message


def test_promotion_from_an_empty_upstream_is_refused(project: Path) -> None:
    with pytest.raises(PromoteError) as err:
        promote.resolve(ledger_backend(project, {"dev": {}}), "staging")
    assert err.value.code == "ledger-empty"


def test_a_stack_without_upstream_needs_an_image(project: Path) -> None:
    with pytest.raises(PromoteError) as err:
        promote.resolve(ledger_backend(project, LEDGERS), "dev", SHA_A)
    assert err.value.code == "no-upstream"


def test_explicit_upstream_overrides_the_stack_file(project: Path) -> None:
    res = promote.resolve(ledger_backend(project, LEDGERS), "prod", SHA_B, upstream="dev")
    assert res.image == IMG_B


# -- replay / verify -------------------------------------------------------------------------------

def test_replay_redeploys_the_recorded_image(project: Path) -> None:
    res = promote.resolve(ledger_backend(project, LEDGERS), "prod", SHA_A, replay=True)
    assert (res.image, res.source) == (IMG_A, "replay:prod")


def test_replay_refuses_a_sha_never_accepted(project: Path) -> None:
    with pytest.raises(ReleaseError) as err:
        promote.resolve(ledger_backend(project, LEDGERS), "prod", SHA_C, replay=True)
    assert err.value.code == "release-not-accepted"


def test_replay_refuses_another_image_for_an_accepted_sha(project: Path) -> None:
    with pytest.raises(ReleaseError) as err:
        promote.resolve(ledger_backend(project, LEDGERS), "prod", SHA_A, IMG_B, replay=True)
    assert err.value.code == "release-image-mismatch"


def test_verify_accepts_a_sha_every_stack_accepted(project: Path) -> None:
    got = promote.verify(ledger_backend(project, LEDGERS), ["dev", "staging", "prod"], SHA_A)
    assert got.image == IMG_A


def test_verify_refuses_when_one_stack_never_accepted(project: Path) -> None:
    # B was accepted on dev only: a replay through prod would bypass staging's checks
    with pytest.raises(ReleaseError) as err:
        promote.verify(ledger_backend(project, LEDGERS), ["dev", "staging", "prod"], SHA_B)
    assert err.value.code == "release-not-accepted"
    assert "prod" in err.value.message


def test_verify_refuses_one_sha_with_two_images(project: Path) -> None:
    ledgers = {**LEDGERS, "staging": {"acceptedReleases": [entry(SHA_A, IMG_C)]}}
    with pytest.raises(ReleaseError) as err:
        promote.verify(ledger_backend(project, ledgers), ["dev", "staging"], SHA_A)
    assert err.value.code == "release-image-mismatch"


def test_verify_latest_requires_the_newest_own_entry(project: Path) -> None:
    backend = ledger_backend(project, LEDGERS)
    assert promote.verify(backend, ["dev"], SHA_B, latest=True).image == IMG_B
    with pytest.raises(ReleaseError) as err:
        promote.verify(backend, ["dev"], SHA_A, latest=True)
    assert err.value.code == "release-not-recorded"


@pytest.mark.parametrize("bad", ["", "abc1234", "A" * 40, "g" * 40, "a" * 39, SHA_A + "\n"])
def test_sha_format_is_refused_before_any_ledger_read(project: Path, bad: str) -> None:
    backend = Backend(project_dir=project, ledger_file=project / "missing.json")
    with pytest.raises(PromoteError) as err:
        promote.verify(backend, ["prod"], bad)
    assert err.value.code == "invalid-sha"


def test_malformed_ledger_is_an_error_not_an_empty_ledger(project: Path) -> None:
    backend = ledger_backend(project, {"prod": {"acceptedReleases": [{"sha": SHA_A}]}})
    with pytest.raises(ReleaseError) as err:
        promote.verify(backend, ["prod"], SHA_A)
    assert err.value.code == "release-ledger-invalid"


# -- configure / accept through the subprocess seam ---------------------------------------------

class FakeRunner:
    """In-process stand-in for the Pulumi CLI: records argv, answers config get."""

    def __init__(self, config: dict[str, str] | None = None, fail: str | None = None) -> None:
        self.config = dict(config or {})
        self.fail = fail
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        args = [a for a in argv[1:] if a not in ("--non-interactive", "--json")]
        del args[args.index("--cwd") : args.index("--cwd") + 2]
        self.calls.append(args)
        if self.fail and " ".join(args).startswith(self.fail):
            return subprocess.CompletedProcess(argv, 255, "", "error: boom\n")
        if args[:2] == ["config", "get"]:
            if args[2] not in self.config:
                return subprocess.CompletedProcess(argv, 255, "", "error: key not found\n")
            value = json.dumps({"value": self.config[args[2]]})
            return subprocess.CompletedProcess(argv, 0, value, "")
        if args[:2] == ["config", "set"]:
            self.config[args[2]] = args[3]
        return subprocess.CompletedProcess(argv, 0, "", "")


def test_configure_sets_the_release_and_clears_acceptance(project: Path) -> None:
    runner = FakeRunner()
    promote.configure(Backend(project_dir=project, run=runner), "dev", SHA_A, IMG_A, replay=True)
    assert runner.calls == [
        ["config", "set", "gated-release:releaseSha", SHA_A, "--stack", "dev"],
        ["config", "set", "gated-release:releaseImage", IMG_A, "--stack", "dev"],
        ["config", "set", "gated-release:replay", "true", "--stack", "dev"],
        ["config", "rm", "gated-release:acceptRelease", "--stack", "dev"],
    ]


def test_accept_refuses_a_sha_other_than_the_configured_release(project: Path) -> None:
    runner = FakeRunner({"gated-release:releaseSha": SHA_B})
    with pytest.raises(PromoteError) as err:
        promote.accept(Backend(project_dir=project, run=runner), "dev", SHA_A)
    assert err.value.code == "release-mismatch"
    assert not any(c[:2] == ["config", "set"] for c in runner.calls)


def test_accept_refuses_when_no_release_is_configured(project: Path) -> None:
    runner = FakeRunner()
    with pytest.raises(PromoteError) as err:
        promote.accept(Backend(project_dir=project, run=runner), "dev", SHA_A)
    assert err.value.code == "release-mismatch"


def test_accept_sets_accept_release(project: Path) -> None:
    runner = FakeRunner({"gated-release:releaseSha": SHA_A})
    promote.accept(Backend(project_dir=project, run=runner), "dev", SHA_A)
    assert runner.config["gated-release:acceptRelease"] == SHA_A


def test_a_failing_pulumi_command_is_reported_with_its_last_line(project: Path) -> None:
    runner = FakeRunner(fail="config set")
    with pytest.raises(PromoteError) as err:
        promote.configure(Backend(project_dir=project, run=runner), "dev", SHA_A, IMG_A)
    assert err.value.code == "pulumi-failed" and "boom" in err.value.message
    assert err.value.exit_code == promote.EXIT_BACKEND


# -- the CLI end to end, as the workflow runs it, with a fake pulumi executable -----------------

@pytest.fixture
def fake_pulumi(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    state = tmp_path / "pulumi-state.json"
    exe = tmp_path / "pulumi"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{HERE / "fake_pulumi.py"}" "$@"\n')
    exe.chmod(0o755)
    yield exe, state


def cli(args: list[str], exe: Path, state: Path, project: Path,
        extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FAKE_PULUMI_STATE": str(state), "GATED_RELEASE_PULUMI": str(exe),
           "GATED_RELEASE_PROJECT_DIR": str(project), **(extra_env or {})}
    env.pop("GATED_RELEASE_LEDGER_FILE", None)
    return subprocess.run([sys.executable, "-m", "infra.tools.promote", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def fake_up(exe: Path, state: Path, project: Path, stack: str) -> None:
    proc = subprocess.run([str(exe), "up", "--stack", stack, "--policy-pack", "policies", "--yes",
                           "--cwd", str(project)],
                          env={**os.environ, "FAKE_PULUMI_STATE": str(state)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def stage(exe: Path, state: Path, project: Path, stack: str, sha: str, image: str = "",
          replay: bool = False, checks_pass: bool = True) -> subprocess.CompletedProcess[str]:
    """The steps of .github/workflows/stage.yml, in order, with smoke/alerts as a boolean."""
    env = {"GATED_RELEASE_IMAGE": image, "GATED_RELEASE_REPLAY": "1" if replay else "0",
           "GITHUB_OUTPUT": str(state.parent / f"out-{stack}")}
    res = cli(["resolve", "--stack", stack, "--sha", sha, "--github-output"], exe, state, project,
              env)
    if res.returncode:
        return res
    outputs = dict(line.split("=", 1) for line in Path(env["GITHUB_OUTPUT"]).read_text().split())
    env["GATED_RELEASE_IMAGE"] = outputs["image"]
    res = cli(["configure", "--stack", stack, "--sha", sha], exe, state, project, env)
    assert res.returncode == 0, res.stderr
    fake_up(exe, state, project, stack)
    res = cli(["url", "--stack", stack], exe, state, project)
    assert res.stdout.strip() == f"https://api-{stack}.example.test", res.stderr
    if not checks_pass:
        return subprocess.CompletedProcess([], 1, "", "smoke failed")
    res = cli(["accept", "--stack", stack, "--sha", sha], exe, state, project)
    assert res.returncode == 0, res.stderr
    fake_up(exe, state, project, stack)
    return cli(["verify", "--latest", "--stack", stack, "--sha", sha], exe, state, project)


def seed_promotion_chain(state: Path) -> None:
    state.write_text(json.dumps({"config": {
        "staging": {"gated-release:promotesFrom": "dev"},
        "prod": {"gated-release:promotesFrom": "staging"},
    }}))


def ledger_shas(state: Path, stack: str) -> list[str]:
    data = json.loads(state.read_text())
    return [e["sha"] for e in data["outputs"].get(stack, {}).get("acceptedReleases", [])]


def test_deploy_promotes_through_the_stages(fake_pulumi: tuple[Path, Path], project: Path) -> None:
    exe, state = fake_pulumi
    seed_promotion_chain(state)
    for stack, image in (("dev", IMG_A), ("staging", ""), ("prod", "")):
        res = stage(exe, state, project, stack, SHA_A, image)
        assert res.returncode == 0, res.stderr
    assert [ledger_shas(state, s) for s in ("dev", "staging", "prod")] == [[SHA_A]] * 3
    prod = json.loads(state.read_text())["outputs"]["prod"]["acceptedReleases"][0]
    assert prod["image"] == IMG_A  # the image built once, never rebuilt


def test_failed_checks_leave_the_release_unaccepted_and_unpromotable(
    fake_pulumi: tuple[Path, Path], project: Path
) -> None:
    exe, state = fake_pulumi
    seed_promotion_chain(state)
    assert stage(exe, state, project, "dev", SHA_A, IMG_A).returncode == 0
    assert stage(exe, state, project, "dev", SHA_B, IMG_B, checks_pass=False).returncode == 1
    assert ledger_shas(state, "dev") == [SHA_A]
    cfg = json.loads(state.read_text())["config"]["dev"]
    assert "gated-release:acceptRelease" not in cfg  # configure cleared the previous acceptance
    res = stage(exe, state, project, "staging", SHA_B)
    assert res.returncode == promote.EXIT_REFUSED
    assert "error[release-not-promoted]" in res.stderr


def test_replay_cli_refuses_an_unaccepted_sha_and_replays_an_accepted_one(
    fake_pulumi: tuple[Path, Path], project: Path
) -> None:
    exe, state = fake_pulumi
    ledger = [entry(SHA_A, IMG_A), entry(SHA_B, IMG_B)]
    state.write_text(json.dumps({
        "config": {"staging": {"gated-release:promotesFrom": "dev"},
                   "prod": {"gated-release:promotesFrom": "staging"}},
        "outputs": {s: {"acceptedReleases": ledger, "release": {"sha": SHA_B, "image": IMG_B}}
                    for s in ("dev", "staging", "prod")},
    }))
    res = cli(["verify", "--stack", "dev,staging,prod", "--sha", SHA_C], exe, state, project)
    assert res.returncode == promote.EXIT_REFUSED
    assert res.stderr.startswith("error[release-not-accepted]: cannot replay release " + SHA_C)
    assert res.stderr.count("\n") == 1  # one line
    calls_before = len(json.loads(state.read_text())["calls"])
    res = stage(exe, state, project, "prod", SHA_C, replay=True)
    assert res.returncode == promote.EXIT_REFUSED
    calls = json.loads(state.read_text())["calls"][calls_before:]
    assert all(c[:2] == ["stack", "output"] for c in calls)  # refused before any mutation
    res = stage(exe, state, project, "prod", SHA_A, replay=True)
    assert res.returncode == 0, res.stderr
    assert ledger_shas(state, "prod") == [SHA_A, SHA_B, SHA_A]


def test_cli_verify_with_ledger_file_and_json(project: Path) -> None:
    path = project / "ledger.json"
    path.write_text(json.dumps(LEDGERS))
    out = subprocess.run(
        [sys.executable, "-m", "infra.tools.promote", "verify", "--stack", "prod", "--sha", SHA_A,
         "--ledger-file", str(path), "--project-dir", str(project), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["image"] == IMG_A


def test_url_is_the_api_revision_fqdn_over_https(project: Path) -> None:
    backend = ledger_backend(project, {"dev": {"appUrls": {"api": "gr-dev-api--r1.x.io"}}})
    assert promote.api_url(backend.outputs("dev"), "dev") == "https://gr-dev-api--r1.x.io"
    with pytest.raises(PromoteError) as err:
        promote.api_url(backend.outputs("staging"), "staging")
    assert err.value.code == "no-app-url"


def test_cli_missing_pulumi_says_what_to_do(project: Path) -> None:
    code = promote.main(["ledger", "--stack", "dev", "--pulumi", str(project / "nope"),
                         "--project-dir", str(project)])
    assert code == promote.EXIT_BACKEND


# -- drift -----------------------------------------------------------------------------------------

DEPLOYED = {"release": {"sha": SHA_B, "image": IMG_B},
            "acceptedReleases": [entry(SHA_A, IMG_A), entry(SHA_B, IMG_B)]}


def codes(findings: Sequence[promote.DriftFinding]) -> set[str]:
    return {f.code for f in findings}


def test_no_drift_when_the_deployed_release_is_accepted_and_nothing_is_pending() -> None:
    status = {"pending": [], "alert": {"level": "ok"},
              "recentRuns": [{"status": "SUCCESS", "migration": None, "releaseSha": SHA_B}]}
    assert promote.drift("prod", DEPLOYED, status) == []


def test_pending_migrations_behind_the_deployed_release_are_critical() -> None:
    status = {"pending": [{"name": "0003_add_index.sql", "version": "0003"}],
              "alert": {"level": "critical", "reasons": [
                  {"code": "pending", "level": "critical", "message": "1 migration pending"}]}}
    findings = promote.drift("prod", DEPLOYED, status)
    assert {"pending-migrations", "alert-critical"} <= codes(findings)
    text = promote.drift_markdown("prod", findings)
    assert "0003_add_index.sql" in text and "1 migration pending" in text


def test_unreadable_run_log_with_telemetry_enabled_is_a_warning() -> None:
    status = {"pending": [], "alert": {"level": "ok"},
              "telemetry": {"available": False, "enabled": True, "table": "t", "reason": "x"}}
    findings = promote.drift("prod", DEPLOYED, status)
    assert [(f.code, f.severity) for f in findings] == [("telemetry-unavailable", "warning")]
    status["telemetry"] = {"available": False, "enabled": False, "table": "t", "reason": "off"}
    assert promote.drift("prod", DEPLOYED, status) == []


def test_a_deployed_release_that_was_never_accepted_is_drift() -> None:
    outputs = {**DEPLOYED, "release": {"sha": SHA_C, "image": IMG_C}}
    findings = promote.drift("prod", outputs, {"pending": []})
    assert codes(findings) == {"unaccepted-release"}


def test_last_migrated_release_differs_from_deployed_is_a_warning() -> None:
    status = {"pending": [], "recentRuns": [{"status": "SUCCESS", "releaseSha": SHA_A}]}
    findings = promote.drift("prod", DEPLOYED, status)
    assert [(f.code, f.severity) for f in findings] == [("release-not-migrated", "warning")]


class OpsHandler(http.server.BaseHTTPRequestHandler):
    status_code = 503
    body: dict[str, Any] = {"pending": ["0002_x.sql"], "alert": {"level": "critical"}}
    seen_auth: list[str | None] = []

    def do_GET(self) -> None:
        OpsHandler.seen_auth.append(self.headers.get("Authorization"))
        payload = json.dumps(self.body).encode()
        self.send_response(self.status_code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ops_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OpsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_drift_cli_reads_a_503_status_and_writes_the_step_summary(
    project: Path, ops_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = project / "ledger.json"
    ledger.write_text(json.dumps({"prod": {**DEPLOYED, "appUrls": {"api": ops_server}}}))
    summary = project / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("DEPLOY_OPS_TOKEN", "t0ken")
    OpsHandler.seen_auth.clear()
    code = promote.main(["drift", "--stack", "prod", "--ledger-file", str(ledger),
                         "--project-dir", str(project)])
    assert code == promote.EXIT_DRIFT
    assert OpsHandler.seen_auth == ["Bearer t0ken"]
    text = summary.read_text()
    assert "FAILED" in text and "pending-migrations" in text and "0002_x.sql" in text


def test_drift_cli_reports_a_rejected_token(project: Path, ops_server: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OpsHandler, "status_code", 401)
    monkeypatch.setattr(OpsHandler, "body", {"error": "unauthorized"})
    ledger = project / "ledger.json"
    ledger.write_text(json.dumps({"prod": DEPLOYED}))
    code = promote.main(["drift", "--stack", "prod", "--ledger-file", str(ledger),
                         "--url", ops_server + "/api/ops/migrations"])
    assert code == promote.EXIT_BACKEND


def test_drift_cli_clean_status_file_exits_zero(project: Path) -> None:
    ledger = project / "ledger.json"
    ledger.write_text(json.dumps({"prod": DEPLOYED}))
    status = project / "status.json"
    status.write_text(json.dumps({"pending": [], "alert": {"level": "ok"}}))
    code = promote.main(["drift", "--stack", "prod", "--ledger-file", str(ledger),
                         "--status-file", str(status)])
    assert code == 0


def test_preview_outputs_accept_the_stack_files_release_upstream(project: Path) -> None:
    (project / "Pulumi.prod.yaml").write_text(
        "config:\n  gated-release:promotesFrom: staging\n"
        f"  gated-release:releaseSha: {SHA_A}\n  gated-release:releaseImage: {IMG_A}\n")
    backend = Backend(project_dir=project)
    outputs = promote.preview_outputs(backend, "prod")
    assert list(outputs) == ["staging"]
    (entry,) = outputs["staging"]["acceptedReleases"]
    assert (entry["sha"], entry["image"]) == (SHA_A, IMG_A)
    assert promote.preview_outputs(backend, "dev") == {}  # no upstream, nothing to answer


def test_stack_env_twin_does_not_merge_with_the_flag(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project / "ledger.json"
    path.write_text(json.dumps(LEDGERS))
    monkeypatch.setenv("GATED_RELEASE_STACK", "dev")
    monkeypatch.setenv("GATED_RELEASE_SHA", SHA_B)
    # B is accepted on dev only: the flag must replace the env, not add prod to it
    assert promote.main(["verify", "--ledger-file", str(path), "--project-dir", str(project)]) == 0
    assert promote.main(["verify", "--stack", "prod", "--ledger-file", str(path),
                         "--project-dir", str(project)]) == promote.EXIT_REFUSED
    assert "prod" in capsys.readouterr().err
