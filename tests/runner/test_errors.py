"""How the runner refuses: edited or out-of-order files, bad SQL, bad input, unreachable or
pooled databases. Each refusal is one stderr line with the documented exit code, applies
nothing, and never shows the password (docs/runner.md, exit codes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import PgServer

from .safety_helpers import (
    HISTORY,
    RUN_LOG,
    Result,
    Runner,
    history,
    run_log,
    table_exists,
    text_columns,
    write_migrations,
)

PASSWORD = "S3cr3t-PW-xyz"


@pytest.fixture
def runner(tmp_path: Path, database_url: str) -> Runner:
    return Runner(tmp_path / "migrations", tmp_path / "artifacts", database_url)


def one_error_line(res: Result) -> str:
    lines = res.error_lines
    assert len(lines) == 1, f"expected one stderr line:\n{res}"
    assert lines[0].startswith("error: ") and "Traceback" not in res.stderr
    return lines[0]


# -- 6. applied files are immutable -----------------------------------------------------------

def test_edited_applied_file_fails_check_and_up(runner: Runner, database_url: str) -> None:
    write_migrations(runner.directory, {
        "0001_users.sql": "CREATE TABLE users (id int);\n",
        "0002_posts.sql": "CREATE TABLE posts (id int);\n",
    })
    assert runner.up().code == 0
    write_migrations(runner.directory, {
        "0001_users.sql": "CREATE TABLE users (id bigint);\n",
        "0003_more.sql": "CREATE TABLE more (id int);\n",
    })
    for res in (runner.run("check"), runner.up()):
        assert res.code == 3, str(res)
        line = one_error_line(res)
        assert "0001_users.sql" in line and "edited after it was applied" in line
    assert res.artifact is not None and res.artifact["reasonCode"] == "check-failed"
    assert res.artifact["executionSummary"]["failing"]["file"] == "0001_users.sql"
    assert history(database_url) == ["0001_users.sql", "0002_posts.sql"]
    assert not table_exists(database_url, "more")  # check failed: nothing applied


def test_line_endings_and_bom_alone_never_mismatch(runner: Runner, database_url: str) -> None:
    text = "-- users\nCREATE TABLE users (\n  id int\n);\n"
    write_migrations(runner.directory, {"0001_users.sql": text})
    assert runner.up().code == 0
    for variant in (text.replace("\n", "\r\n").encode(), b"\xef\xbb\xbf" + text.encode(),
                    text.replace("\n", "\r").encode()):
        write_migrations(runner.directory, {"0001_users.sql": variant})
        res = runner.run("check")
        assert res.code == 0, str(res)
        res = runner.up()
        assert res.code == 0, str(res)
        assert "nothing pending (1 applied)" in res.stdout
    # ...while one changed character inside a line does.
    write_migrations(runner.directory, {"0001_users.sql": text.replace("id int", "id  int")})
    assert runner.run("check").code == 3


# -- 7. order -----------------------------------------------------------------------------------

def test_out_of_order_is_refused_naming_both_files(runner: Runner, database_url: str) -> None:
    write_migrations(runner.directory, {
        "20240101000000_a.sql": "CREATE TABLE a (id int);\n",
        "20240301000000_c.sql": "CREATE TABLE c (id int);\n",
    })
    assert runner.up().code == 0
    write_migrations(runner.directory, {"20240201000000_b.sql": "CREATE TABLE b (id int);\n"})
    for res in (runner.up(), runner.run("check")):
        assert res.code == 3, str(res)
        line = one_error_line(res)
        assert "20240201000000_b.sql" in line and "20240301000000_c.sql" in line
        assert "--no-check-order" in line
    assert not table_exists(database_url, "b")

    res = runner.up("--no-check-order")
    assert res.code == 0, str(res)
    assert res.artifact is not None
    assert [a["file"] for a in res.artifact["executionSummary"]["applied"]] == \
        ["20240201000000_b.sql"]
    assert table_exists(database_url, "b")
    # Applied now; the order check no longer has anything to say.
    assert runner.up().code == 0


# -- 8. malformed SQL -------------------------------------------------------------------------

BAD_SQL = (
    "-- café: a comment with multibyte characters\n"
    "CREATE TABLE b (id int);\n"
    "SELECT 'ünï' AS x FROM WHERE y = 1;\n"
)
# Line 3, column 24 in characters (the bytes before "WHERE" on that line are 27).
BAD_AT = (3, 24)


def test_malformed_sql_names_file_line_column_and_applies_nothing(
        runner: Runner, database_url: str) -> None:
    write_migrations(runner.directory, {"0001_a.sql": "CREATE TABLE a (id int);\n"})
    assert runner.up().code == 0
    write_migrations(runner.directory, {
        "0002_ok.sql": "CREATE TABLE ok (id int);\n",
        "0003_bad.sql": BAD_SQL,
        "0004_later.sql": "CREATE TABLE later (id int);\n",
    })
    for res in (runner.up(), runner.run("check")):
        assert res.code == 3, str(res)
        line = one_error_line(res)
        assert f"0003_bad.sql:{BAD_AT[0]}:{BAD_AT[1]}:" in line and "WHERE" in line
    # `up` checks every pending file before applying any: the good 0002 is not applied either.
    assert history(database_url) == ["0001_a.sql"]
    for t in ("ok", "b", "later"):
        assert not table_exists(database_url, t)
    res = runner.up()
    assert res.artifact is not None and res.artifact["reasonCode"] == "check-failed"
    failing = res.artifact["executionSummary"]["failing"]
    assert (failing["file"], failing["line"], failing["column"], failing["sqlstate"]) == \
        ("0003_bad.sql", *BAD_AT, "42601")
    assert res.artifact["executionSummary"]["applied"] == []


def test_malformed_sql_on_a_fresh_database_touches_nothing(
        runner: Runner, database_url: str) -> None:
    write_migrations(runner.directory, {"0001_a.sql": "CREATE TABLE a (id int);\n",
                                        "0002_bad.sql": BAD_SQL})
    res = runner.up()
    assert res.code == 3, str(res)
    assert not table_exists(database_url, "a")
    assert history(database_url) == []


# -- 9. bad input -----------------------------------------------------------------------------

def test_non_utf8_file(runner: Runner, database_url: str) -> None:
    write_migrations(runner.directory, {"0001_latin1.sql": "-- ok\nSELECT 'é';\n".encode("latin-1")})
    for res in (runner.up(), runner.run("check")):
        assert res.code == 3, str(res)
        line = one_error_line(res)
        assert "0001_latin1.sql:2:9:" in line and "UTF-8" in line
    assert history(database_url) == []


def test_empty_file(runner: Runner, database_url: str) -> None:
    write_migrations(runner.directory, {"0001_a.sql": "CREATE TABLE a (id int);\n",
                                        "0002_empty.sql": "", "0003_comment.sql": "-- only\n"})
    res = runner.up()
    assert res.code == 3, str(res)
    lines = res.error_lines
    assert [ln.split(":")[1].strip() for ln in lines] == ["0002_empty.sql", "0003_comment.sql"]
    assert all("empty" in ln for ln in lines)
    assert not table_exists(database_url, "a")


def test_missing_directory(runner: Runner, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    for command in ("up", "check"):
        res = runner.run(command, "--dir", str(missing))
        assert res.code == 2, str(res)
        line = one_error_line(res)
        assert str(missing) in line and "--dir" in line


def unreachable_urls(tmp_path: Path, password: str = "") -> list[str]:
    empty = tmp_path / "no-server"
    empty.mkdir(exist_ok=True)
    return [f"postgresql://postgres:{password}@/app?host={empty}",
            f"postgresql://app:{password}@127.0.0.1:1/app"]


def test_unreachable_database(runner: Runner, tmp_path: Path) -> None:
    write_migrations(runner.directory, {"0001_a.sql": "CREATE TABLE a (id int);\n"})
    socket_dir, tcp = unreachable_urls(tmp_path)
    for url, commands in ((socket_dir, ("up", "check", "plan")), (tcp, ("up", "check"))):
        for command in commands:
            res = runner.run(command, url=url)
            assert res.code == 7, str(res)
            line = one_error_line(res)
            assert "cannot connect" in line and "DATABASE_URL" in line
            if command == "up":
                assert res.artifact is not None
                assert res.artifact["reasonCode"] == "database-unreachable"
                assert res.artifact["executionStatus"] == "Failed"


@pytest.mark.parametrize(("url", "says"), [
    ("postgresql://u:p@h:notaport/db", "port 'notaport' is not a number"),
    ("mysql://u:p@h/db", "scheme 'mysql' is not PostgreSQL"),
    ("postgresql://u@h:5432/db?nosuchoption=1", "malformed"),
    ("host=h port=5432 nonsense", "malformed"),
])
def test_bad_url_is_a_config_error(runner: Runner, url: str, says: str) -> None:
    write_migrations(runner.directory, {"0001_a.sql": "CREATE TABLE a (id int);\n"})
    for command in ("up", "check"):
        res = runner.run(command, url=url)
        assert res.code == 2, str(res)
        assert says in one_error_line(res)
    res = runner.up(url=url)
    assert res.artifact is not None and res.artifact["reasonCode"] == "config-error"
    # The one-letter password "p" is masked where it stands alone, not inside "port".
    assert "***ort" not in res.stderr + json.dumps(res.artifact)


def test_bad_flag_values_are_config_errors(runner: Runner) -> None:
    write_migrations(runner.directory, {"0001_a.sql": "SELECT 1;\n"})
    for args in (["--lock-timeout", "soon"], ["--timeout", "0"], ["--max-retries", "-1"],
                 ["--release-sha", "a b"]):
        res = runner.up(*args)
        assert res.code == 2, str(res)
        one_error_line(res)


# -- 12. transaction poolers ----------------------------------------------------------------

def test_pooler_port_is_refused(runner: Runner, pg: PgServer, dbname: str) -> None:
    write_migrations(runner.directory, {"0001_a.sql": "CREATE TABLE a (id int);\n"})
    for url in (f"postgresql://postgres:{PASSWORD}@127.0.0.1:6432/{dbname}",
                f"postgresql://postgres@/{dbname}?host={pg.socket_dir}&port=6432",
                f"host=127.0.0.1,127.0.0.2 port=5432,6432 dbname={dbname}"):
        res = runner.up(url=url)
        assert res.code == 7, str(res)
        assert "6432" in one_error_line(res) and "PgBouncer" in res.stderr
        assert res.artifact is not None
        assert res.artifact["reasonCode"] == "pooler-unsupported"
        assert PASSWORD not in res.stdout + res.stderr + json.dumps(res.artifact)
    assert not table_exists(pg.url(dbname), "a")


# -- 10. the password never appears ---------------------------------------------------------

def test_password_never_appears(runner: Runner, pg: PgServer, dbname: str,
                                tmp_path: Path) -> None:
    url = pg.url(dbname, password=PASSWORD)
    encoded = "S3cr3t%2FPW%40xyz"  # S3cr3t/PW@xyz, percent-encoded in the URL
    url_encoded = pg.url(dbname, password=encoded)
    kv = f"host={pg.socket_dir} dbname={dbname} user=postgres password={PASSWORD}"
    secrets = [PASSWORD, encoded, "S3cr3t/PW@xyz"]
    write_migrations(runner.directory, {"0001_a.sql": "CREATE TABLE a (id int);\n"})
    outputs: list[str] = []

    def run(command: str, *args: str, url: str | None = None,
            env: dict[str, str] | None = None, codes: tuple[int, ...] = (0,)) -> Result:
        res = runner.run(command, *args, url=url, env=env)
        assert res.code in codes, str(res)
        outputs.extend([res.stdout, res.stderr])
        if res.artifact is not None:
            outputs.append(json.dumps(res.artifact))
        return res

    run("up", url=url)
    run("up", "--json", url="", env={"DATABASE_URL": url})
    run("check", url=url)
    run("check", "--json", url=url)
    run("plan", url=url)
    run("up", url=url_encoded)
    run("up", url=kv)
    write_migrations(runner.directory, {"0002_fails.sql": "INSERT INTO missing VALUES (1);\n"})
    run("up", url=url, codes=(1,))
    run("up", "--json", url=url_encoded, codes=(1,))
    run("status", url=url, codes=(0, 8))
    run("status", "--json", url=url, codes=(0, 8))
    for bad in unreachable_urls(tmp_path, PASSWORD) + unreachable_urls(tmp_path, encoded):
        run("up", "--json", url=bad, codes=(7,))
    run("check", url=unreachable_urls(tmp_path, PASSWORD)[1], codes=(7,))
    run("up", url=f"host=127.0.0.1 port=1 user=u password={PASSWORD} dbname=d", codes=(7,))
    run("up", url=f"postgresql://u:{PASSWORD}@h:notaport/db", codes=(2,))
    run("up", url=f"mysql://u:{PASSWORD}@h/db", codes=(2,))
    run("up", url=f"postgresql://u:{PASSWORD}@h:6432/db", codes=(7,))
    run("check", url=f"postgresql://u:{PASSWORD}@h:6432/db", codes=(7,))

    assert len(outputs) > 30
    rows = text_columns(url, [HISTORY, RUN_LOG])
    assert len(rows) >= 5 and len(run_log(url)) >= 4
    everything = "\n".join(outputs + rows)
    for secret in secrets:
        assert secret not in everything, f"{secret!r} leaked"
    # The runner did talk about the failures (so the search above had something to read).
    assert "missing" in everything and "cannot connect" in everything
