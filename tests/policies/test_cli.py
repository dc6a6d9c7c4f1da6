"""`python -m infra.tools.preview`: exit codes, report, JSON, shortened program tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from infra.tools.preview import PROJECT_ROOT

from .conftest import PROGRAMS


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra.tools.preview", *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, check=False, timeout=300)


def test_mandatory_violation_exits_1_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "preview.json"
    done = run("--stack", "dev", "--program-dir", str(PROGRAMS / "plaintext-secret"),
               "--json", str(out))
    assert done.returncode == 1
    assert "[mandatory]" in done.stdout and "no-plaintext-secret-env" in done.stdout
    assert "Offline preview cannot see" in done.stdout and "Check" in done.stdout
    data = json.loads(out.read_text())
    assert data["summary"]["mandatory"] == 3
    api = next(r for r in data["resources"] if r["name"] == "api")
    assert api["dependencies"] and api["inputs"]["template"]["containers"][0]["image"]
    assert "[secret]" in json.dumps(api["inputs"])
    assert "hunter2" not in json.dumps(api["inputs"])


def test_compliant_exits_0(tmp_path: Path) -> None:
    done = run("--stack", "dev", "--program-dir", str(PROGRAMS / "compliant"))
    assert done.returncode == 0, done.stderr
    assert "OK: no mandatory violations" in done.stdout
    assert "azure-native:app:ContainerApp" in done.stdout


def test_program_error_exits_2_with_the_users_frame() -> None:
    done = run("--stack", "dev", "--program-dir", str(PROGRAMS / "program-error"))
    assert done.returncode == 2
    assert "program-failed" in done.stderr and "KeyError" in done.stderr
    assert "program-error/__main__.py" in done.stderr and 'raise KeyError("apps")' in done.stderr
    assert "site-packages" not in done.stderr and "programhost" not in done.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run().returncode == 2
    done = run("--stack", "dev", "--program-dir", str(tmp_path))
    assert done.returncode == 2 and "project-invalid" in done.stderr
    done = run("--stack", "dev", "--program-dir", str(PROGRAMS / "compliant"),
               "--config-file", str(tmp_path / "missing.yaml"))
    assert done.returncode == 2


def test_help_teaches() -> None:
    done = run("--help")
    assert done.returncode == 0
    for word in ("--policy-pack-config", "--stack-outputs", "PREVIEW_STACK", "examples"):
        assert word in done.stdout
