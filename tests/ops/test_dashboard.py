"""The HTML dashboard: escaping, and a real headless Chromium rendering the served page.

Chromium is required (Debian package `chromium`); deselect with `-m "not browser"` on a
machine without it rather than letting the test skip silently.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from migration import dashboard
from migration.settings import Settings

from .conftest import TOKEN, insert_run

EVIL = '<script>alert("x")</script>&<img src=x onerror=alert(1)>'


def test_everything_is_escaped() -> None:
    doc = {
        "alert": {"level": "critical", "reasons": [
            {"code": EVIL, "level": "critical", "message": EVIL}]},
        "database": EVIL, "checkedAt": EVIL, "lookbackMinutes": EVIL,
        "pending": [{"name": EVIL, "version": "1"}],
        "applied": {"count": EVIL},
        "telemetry": {"available": True, "table": EVIL},
        "recentRuns": [{"id": EVIL, "runId": EVIL, "attempt": EVIL, "status": EVIL,
                        "startedAt": EVIL, "durationMs": EVIL, "lockWaitMs": 10,
                        "sqlstate": EVIL, "message": EVIL, "migration": EVIL,
                        "releaseSha": EVIL, "stale": True}],
    }
    page = dashboard.render(doc)
    assert "<script" not in page and "<img" not in page
    assert page.count("&lt;script&gt;") >= 10
    # the only style is the inline sheet the CSP allows by hash; no style attributes at all
    assert " style=" not in page
    assert page.count("<style>") == 1


def test_unknown_level_renders_as_critical() -> None:
    page = dashboard.render({"alert": {"level": "bogus\" onload=\"x"}})
    assert '<header class="critical"' in page


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("headless Chromium is required for this test: apt-get install -y chromium "
                    "(or deselect with -m 'not browser')")
    return exe


def _chrome(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={tmp / 'profile'}",
           "--window-size=1200,900", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.browser
def test_served_dashboard_in_headless_chromium(applied: Settings, database_url: str,
                                               serve: Any, tmp_path: Path) -> None:
    insert_run(database_url, "FAILED", minutes_ago=10, sqlstate="42P07",
               message='relation "items" already exists <b>bold</b>',
               migration="0003_dup.sql", lock_wait_ms=120)
    insert_run(database_url, "LOCK_TIMEOUT", minutes_ago=20, sqlstate="55P03",
               message="canceling statement due to lock timeout", migration="0002_index.sql",
               lock_wait_ms=5000)
    (applied.dir / "0003_dup.sql").write_text("CREATE TABLE items (id int);\n")
    live = serve(applied)
    host = live.base.removeprefix("http://")
    # HTTP Basic with the token as password: what a browser sends after its login prompt.
    url = f"http://ops:{TOKEN}@{host}/ops/migrations"

    dom = _chrome(["--dump-dom", url], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert 'id="alert-level">CRITICAL<' in html
    rows = re.findall(r'<tr( class="stale")? data-run-id="\d+">(.*?)</tr>', html, re.S)
    statuses = [re.search(r'class="badge s-(\w+)"', r[1]).group(1) for r in rows]  # type: ignore[union-attr]
    assert statuses[:3] == ["FAILED", "LOCK_TIMEOUT", "SUCCESS"]  # newest first
    assert "55P03" in html and "5.0 s" in html  # lock wait shown in the timeline
    assert "&lt;b&gt;bold&lt;/b&gt;" in html  # escaped, not rendered as markup
    assert "0003_dup.sql" in html.split('id="pending"', 1)[1].split("</section>", 1)[0]

    png = tmp_path / "dashboard.png"
    shot = _chrome([f"--screenshot={png}", url], tmp_path)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert png.exists() and png.stat().st_size > 10_000  # a rendered page, not a blank one
    assert _png_size(png) == (1200, 900)
    keep = Path(__file__).resolve().parents[2] / ".artifacts" / "ops"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(png, keep / "dashboard.png")


@pytest.mark.browser
def test_dashboard_without_credentials_shows_no_data(applied: Settings, serve: Any,
                                                     tmp_path: Path) -> None:
    live = serve(applied)
    host = live.base.removeprefix("http://")
    for url in (f"http://{host}/ops/migrations", f"http://ops:wrong@{host}/ops/migrations",
                f"http://{host}/ops/migrations?token={TOKEN}"):
        dom = _chrome(["--dump-dom", url], tmp_path)
        # headless cannot show the login prompt: the load fails (401), and no data leaks
        assert "0001_init.sql" not in dom.stdout
        assert "ERR_INVALID_AUTH_CREDENTIALS" in dom.stderr or "unauthorized" in dom.stdout


def test_status_html_file(applied: Settings, tmp_path: Path) -> None:
    from migration.cli import main

    out = tmp_path / "page" / "status.html"
    code = main(["status", "--dir", str(applied.dir), "--database-url",
                 str(applied.database_url), "--html", str(out)])
    assert code == 0
    page = out.read_text()
    assert 'id="alert-level">OK<' in page and "SUCCESS" in page
