"""The telemetry dashboard: one self-contained HTML page rendered from the status JSON.

Plain HTML and CSS, no JavaScript. Every value from the database or the file system is
HTML-escaped; the stylesheet is inline and allowed by its hash in the Content-Security-Policy
(``CSP``), so the page runs under ``default-src 'none'``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from html import escape
from typing import Any

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;
background:#f5f6f8}
header{padding:16px 24px;color:#fff;background:#2d6a4f}
header.warning{background:#9a6700}header.critical{background:#b42318}
header h1{margin:0;font-size:20px}header p{margin:4px 0 0}
main{padding:16px 24px;max-width:1100px}
section{background:#fff;border:1px solid #d8dce3;border-radius:6px;padding:12px 16px;
margin-bottom:16px}
h2{font-size:16px;margin:0 0 8px}
ul.reasons li{margin:2px 0}
.lvl{display:inline-block;min-width:64px;font-weight:600}
.lvl.critical{color:#b42318}.lvl.warning{color:#9a6700}.lvl.ok{color:#2d6a4f}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #eceef2;vertical-align:top}
th{font-size:12px;text-transform:uppercase;color:#5b6475}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;
color:#fff;background:#5b6475}
.s-SUCCESS{background:#2d6a4f}.s-FAILED{background:#b42318}.s-LOCK_TIMEOUT{background:#c2410c}
.s-RUNNING{background:#1d4ed8}.s-SKIPPED{background:#6b7280}
.bar{height:8px;background:#eceef2;border-radius:4px;min-width:120px}
.bar span{display:block;height:8px;border-radius:4px;background:#c2410c;width:0}
.bar .w1{width:10%} .bar .w2{width:20%} .bar .w3{width:30%} .bar .w4{width:40%} .bar .w5{width:50%}
.bar .w6{width:60%} .bar .w7{width:70%} .bar .w8{width:80%} .bar .w9{width:90%} .bar .w10{width:100%}
td.when{white-space:nowrap;font-variant-numeric:tabular-nums}
.err{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;color:#b42318;
white-space:pre-wrap;word-break:break-word}
.muted{color:#5b6475}
tr.stale td{background:#fff7e6}
""".strip()

CSP = (
    "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()}'; "
    "img-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _ms(value: object) -> str:
    if not isinstance(value, int):
        return "—"
    if value < 1000:
        return f"{value} ms"
    if value < 120_000:
        return f"{value / 1000:.1f} s"
    return f"{value / 60_000:.1f} min"


def _when(iso: object) -> object:
    # "2024-05-01T10:00:00.123Z" -> "2024-05-01 10:00:00Z": the timeline reads by the second.
    if isinstance(iso, str) and len(iso) >= 19 and iso[10] == "T":
        return f"{iso[:10]} {iso[11:19]}Z"
    return iso


def render(status: Mapping[str, Any], *, title: str = "Database migrations") -> str:
    """The page for a status document (``Status.to_json()``)."""
    alert = status.get("alert") or {}
    level = str(alert.get("level", "critical"))
    if level not in ("ok", "warning", "critical"):
        level = "critical"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        '<meta name="robots" content="noindex">',
        f"<title>{_e(title)} — {_e(level)}</title>",
        f"<style>{CSS}</style></head><body>",
        f'<header class="{level}" id="summary"><h1>{_e(title)}: '
        f'<span id="alert-level">{_e(level.upper())}</span></h1>',
        f"<p>database {_e(status.get('database'))} · checked {_e(status.get('checkedAt'))} · "
        f"lookback {_e(status.get('lookbackMinutes'))} min</p></header><main>",
    ]
    reasons = alert.get("reasons") or []
    parts.append('<section id="reasons"><h2>Alert reasons</h2>')
    if reasons:
        parts.append('<ul class="reasons">')
        for r in reasons:
            lv = _e(r.get("level"))
            parts.append(f'<li><span class="lvl {lv}">{lv}</span> <code>{_e(r.get("code"))}'
                         f"</code> {_e(r.get('message'))}</li>")
        parts.append("</ul>")
    else:
        parts.append('<p class="muted">none: nothing pending, no failures in the lookback</p>')
    parts.append("</section>")

    pending = status.get("pending")
    parts.append('<section id="pending"><h2>Pending migrations</h2>')
    if pending is None:
        parts.append('<p class="muted">unknown (the database could not be read)</p>')
    elif not pending:
        parts.append('<p class="muted">none</p>')
    else:
        parts.append("<ol>")
        parts.extend(f"<li><code>{_e(p.get('name'))}</code></li>" for p in pending)
        parts.append("</ol>")
    applied = status.get("applied")
    if applied:
        parts.append(f'<p class="muted">{_e(applied.get("count"))} applied</p>')
    parts.append("</section>")

    telemetry = status.get("telemetry") or {}
    runs = status.get("recentRuns") or []
    parts.append('<section id="runs"><h2>Recent runs</h2>')
    if not telemetry.get("available"):
        parts.append(f'<p class="muted">run log {_e(telemetry.get("table"))} unavailable: '
                     f"{_e(telemetry.get('reason'))}</p>")
    elif not runs:
        parts.append('<p class="muted">no runs recorded</p>')
    else:
        longest = max((r.get("lockWaitMs") or 0 for r in runs), default=0) or 1
        parts.append("<table><thead><tr><th>started</th><th>status</th><th>run / attempt</th>"
                     "<th>migration</th><th>duration</th><th>lock wait</th><th>release</th>"
                     "<th>error</th></tr></thead><tbody>")
        for r in runs:
            st = str(r.get("status"))
            cls = st if st in ("SUCCESS", "FAILED", "LOCK_TIMEOUT", "RUNNING", "SKIPPED") else ""
            wait = r.get("lockWaitMs")
            # Widths come from classes (w0..w10): the CSP allows no inline style attributes.
            tenth = round(10 * (wait or 0) / longest)
            err = " ".join(x for x in (r.get("sqlstate"), r.get("message")) if x)
            row_cls = ' class="stale"' if r.get("stale") else ""
            parts.append(
                f'<tr{row_cls} data-run-id="{_e(r.get("id"))}">'
                f'<td class="when">{_e(_when(r.get("startedAt")))}</td>'
                f'<td><span class="badge s-{cls}">{_e(st)}</span>'
                f"{' (stale)' if r.get('stale') else ''}</td>"
                f"<td><code>{_e(str(r.get('runId'))[:8])}</code> #{_e(r.get('attempt'))}</td>"
                f"<td><code>{_e(r.get('migration'))}</code></td>"
                f"<td>{_e(_ms(r.get('durationMs')))}</td>"
                f'<td>{_e(_ms(wait))}<div class="bar"><span class="w{tenth}"></span>'
                "</div></td>"
                f"<td><code>{_e(r.get('releaseSha'))}</code></td>"
                f'<td class="err">{_e(err)}</td></tr>'
            )
        parts.append("</tbody></table>")
    parts.append("</section></main></body></html>")
    return "\n".join(parts)
