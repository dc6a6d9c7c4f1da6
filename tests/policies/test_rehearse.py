"""`python -m infra.tools.rehearse`: preview gate, then the previewed job's command against PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema

from infra.tools.preview import PROJECT_ROOT, PolicyPackProcess, run_preview
from infra.tools.rehearse import invocation

from .conftest import PROGRAMS


def rehearse(program: Path, database_url: str, artifacts: Path
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.tools.rehearse", "--program-dir", str(program),
         "--database-url", database_url, "--artifact-dir", str(artifacts)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False, timeout=300)


def test_invocation_maps_the_job_to_this_machine(pack: PolicyPackProcess, tmp_path: Path) -> None:
    result = run_preview("dev", program_dir=PROGRAMS / "compliant", packs=[pack])
    job = invocation(result, "postgresql://postgres:pw@/db?host=/tmp", PROGRAMS / "compliant",
                     tmp_path, PROJECT_ROOT / "policies")
    assert job.argv == [sys.executable, "-m", "migration", "up", "--check-order", "--lock"]
    assert job.env["DATABASE_URL"] == "postgresql://postgres:pw@/db?host=/tmp"
    assert job.env["MIGRATION_DIR"] == str(PROGRAMS / "compliant" / "db" / "migrations")
    assert job.env["MIGRATION_ARTIFACT_DIR"] == str(tmp_path)
    assert job.release_sha == "abc123"


def test_rehearsal_applies_the_migrations(database_url: str, tmp_path: Path) -> None:
    done = rehearse(PROGRAMS / "rehearse-ok", database_url, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    artifact = json.loads((tmp_path / "abc123" / "migration.json").read_text())
    schema = json.loads((PROJECT_ROOT / "schemas" / "migration.schema.json").read_text())
    jsonschema.validate(artifact, schema)
    assert artifact["executionStatus"] == "Succeeded"
    assert [m["file"] for m in artifact["executionSummary"]["applied"]] == [
        "0001_create_widgets.sql"]
    assert "rehearsal OK" in done.stdout


def test_failed_migration_fails_the_rehearsal(database_url: str, tmp_path: Path) -> None:
    done = rehearse(PROGRAMS / "rehearse-bad", database_url, tmp_path)
    assert done.returncode not in (0, 2), done.stderr[-2000:]
    artifact = json.loads((tmp_path / "abc123" / "migration.json").read_text())
    assert artifact["executionStatus"] == "Failed"
    assert artifact["executionSummary"]["failing"]["file"] == "0002_broken.sql"


def test_policy_violation_stops_before_the_database(database_url: str, tmp_path: Path) -> None:
    done = rehearse(PROGRAMS / "unpinned-image", database_url, tmp_path)
    assert done.returncode == 1
    assert "mandatory" in done.stdout
    assert not (tmp_path / "abc123").exists()
