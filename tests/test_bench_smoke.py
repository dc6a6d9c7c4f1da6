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
from bench.report import MEASUREMENTS, TARGETS
from migration.checker import check
from migration.source import discover


def test_harness_runs_every_tool_on_a_tiny_corpus(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    # No --workdir: the server's files must not live under pytest's tmp root, whose
    # permissions other pytest sessions reset to 0700 (the server runs as another user).
    rc = main(["--count", "20", "--check-count", "20", "--repeat", "1",
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
