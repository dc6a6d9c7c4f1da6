"""The gate works with every SDK release ``pyproject.toml`` admits, not only the locked one.

azure-mgmt-appcontainers changed its execution model between 3.1 (flattened, no ``message``),
4.0 (msrest-based), 5.0 (typespec, nested ``properties``, no ``message``) and 5.1 (the lock).
Each release is installed from PyPI (pip's cache) into a private directory that shadows the
venv's copy, and the gate's ARM tests run against it in a subprocess: the fake ARM then demands
that release's own api-version. The lower ends of azure-monitor-query and azure-identity run the
log and credential tests the same way. The newest releases are the locked ones (the main suite).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARM_TESTS = ("success or terminal or nextlink or outside_the_enum or five_seconds or retry_after "
             "or authentication or deadline or aborted or 202")
LOG_TESTS = "log or followup or console"
# (distribution==version, its own dependencies missing from the lock, the tests it must pass)
MATRIX = [
    ("azure-mgmt-appcontainers==3.1.0", ["azure-common==1.1.28"], "test_gate_arm.py", ARM_TESTS),
    ("azure-mgmt-appcontainers==4.0.0", ["msrest==0.7.1", "requests-oauthlib==2.0.0",
                                         "oauthlib==3.3.1"], "test_gate_arm.py", ARM_TESTS),
    ("azure-mgmt-appcontainers==5.0.0", [], "test_gate_arm.py", ARM_TESTS),
    ("azure-monitor-query==1.4.1", [], "test_gate_arm.py", LOG_TESTS),
    ("azure-identity==1.19.0", [], "test_gate_credentials.py", ""),
]


@pytest.mark.slow
@pytest.mark.parametrize(("dist", "extra", "tests", "select"), MATRIX,
                         ids=[m[0] for m in MATRIX])
def test_the_gate_with_an_admitted_sdk_release(
    tmp_path: Path, dist: str, extra: list[str], tests: str, select: str
) -> None:
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         dist, *extra], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    name, version = dist.split("==")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)])}
    probe = subprocess.run(
        [sys.executable, "-c", f"from importlib.metadata import version; print(version({name!r}))"],
        env=env, capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == version, probe.stderr  # the shadowing copy is the one used
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
           str(ROOT / "tests" / "infra" / tests)]
    if select:
        cmd += ["-k", select]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
