"""The benchmark harness end to end on a tiny corpus, and the corpus it generates.

No timing is asserted: these prove the harness runs every tool against a real server,
checks what they built, and reports; the numbers come from `make bench`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.commands import Command
from bench.corpus import generate
from bench.errors import BenchError
from bench.prisma import generate_prisma
from bench.report import MEASUREMENTS, TARGETS
from migration.checker import check
from migration.source import discover


def test_harness_runs_every_tool_on_a_tiny_corpus(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    # No --workdir: the server's files must not live under pytest's tmp root, whose
    # permissions other pytest sessions reset to 0700 (the server runs as another user).
    rc = main(["--count", "20", "--check-count", "20", "--prisma-count", "12", "--repeat", "1",
               "--latest", "", "--json", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert set(report["measurements"]) == set(MEASUREMENTS)
    for row in report["measurements"].values():
        assert len(row["samplesS"]) == 1 and row["medianS"] > 0
    assert [t["name"] for t in report["targets"]] == [t.name for t in TARGETS]
    assert report["corpus"]["count"] == 20
    # Every tool built the same schema as psql, and it is not empty.
    assert report["schemaFingerprint"]["relkind:r"] >= 3
    assert report["prismaSchemaFingerprint"]["relkind:r"] >= 10
    assert report["prismaCorpus"]["count"] == 12
    assert report["nodePgMigrate"] == "9.0.0"


def test_corpus_is_deterministic_and_covers_every_kind(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", 500)
    b = generate(tmp_path / "b", 500)
    assert [m.name for m in a.migrations] == [m.name for m in b.migrations]
    for m in a.migrations:
        assert (a.sql_dir / m.name).read_bytes() == (b.sql_dir / m.name).read_bytes()
    assert {"create_table", "create_enum", "add_enum_value", "add_foreign_key", "insert_rows",
            "update_rows", "create_index", "create_index_concurrently",
            "self_wrapped"} <= set(a.kinds)
    assert generate(tmp_path / "c", 50, seed=7).migrations[10].sql != a.migrations[10].sql


def test_corpus_passes_the_runners_check_and_marks_dbmate_exceptions(tmp_path: Path) -> None:
    corpus = generate(tmp_path, 500)
    files = discover(corpus.sql_dir)
    assert [f.name for f in files] == [m.name for m in corpus.migrations]
    result = check(files, None)
    assert result.problems == []
    non_tx = {n for n, a in result.analyses.items() if not a.transactional}
    assert non_tx == {m.name for m in corpus.migrations if m.kind == "create_index_concurrently"}
    for m in corpus.migrations:
        text = (corpus.dbmate_dir / m.name).read_text()
        first = text.splitlines()[0]
        # The same SQL, only dbmate's markers around it.
        assert m.sql in text and "-- migrate:down" in text
        assert first.endswith("transaction:false") == (not m.transactional or m.self_wrapped)
    lines = corpus.psql_script.read_text().splitlines()
    assert len(lines) == 500 and all(line.startswith("\\i '") for line in lines)


def test_a_failing_tool_stops_the_benchmark(tmp_path: Path) -> None:
    cmd = Command("broken tool", [sys.executable, "-c",
                                  "import sys; print('boom', file=sys.stderr); sys.exit(3)"],
                  tmp_path)
    with pytest.raises(BenchError) as e:
        cmd.timed()
    assert e.value.code == "tool-failed" and "boom" in e.value.message


def test_bad_repeat_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--repeat", "0", "--latest", ""]) == 2
    assert "at least 1" in capsys.readouterr().err


def test_prisma_corpus_is_shaped_like_prisma_and_passes_the_check(tmp_path: Path) -> None:
    corpus = generate_prisma(tmp_path / "a", 160)
    again = generate_prisma(tmp_path / "b", 160)
    assert [m.sql for m in corpus.migrations] == [m.sql for m in again.migrations]
    dirs = sorted(p.name for p in corpus.sql_dir.iterdir())
    assert dirs == [m.name for m in corpus.migrations] and dirs[0].endswith("_init")
    assert all((corpus.sql_dir / d / "migration.sql").is_file() for d in dirs)
    assert all(len(d.split("_", 1)[0]) == 14 for d in dirs)
    text = "".join(m.sql for m in corpus.migrations)
    for marker in ("-- CreateTable", "-- AlterTable", "-- CreateIndex", "-- AddForeignKey",
                   "-- CreateEnum", "-- AlterEnum", "_AB_unique", "TIMESTAMP(3)", "Warnings:"):
        assert marker in text
    files = discover(corpus.sql_dir)
    assert [f.name for f in files] == [f"{d}/migration.sql" for d in dirs]
    result = check(files, None)
    assert result.problems == []
    assert all(a.transactional for a in result.analyses.values())
    # ADD VALUE stays alone in its file, so no label is used in the transaction adding it.
    for m in corpus.migrations:
        if "ADD VALUE" in m.sql:
            assert m.sql.count(";") == 1
    assert len(corpus.psql_script.read_text().splitlines()) == 160
    assert sorted(p.name for p in corpus.dbmate_dir.iterdir()) == [f"{d}.sql" for d in dirs]
