"""Operations subcommands: `status`, `alerts`, `serve` (registered by cli.build_parser).

Exit codes (from errors.py): 0 ok or warning; 8 (EXIT_CRITICAL) critical; 7 database, or
the remote endpoint, unreachable; 2 usage/config error (bad flag, missing token, endpoint
off or token refused).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

from . import errors
from .errors import ConfigError
from .settings import (
    LOOKBACK_BOUNDS,
    LOOKBACK_DEFAULT,
    RECENT_RUNS_BOUNDS,
    RECENT_RUNS_DEFAULT,
    Settings,
    parse_bool,
    parse_int,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Any

# flag dest -> (env twin, default)
OPS_ENV: dict[str, tuple[str, str | None]] = {
    "lookback_minutes": ("DEPLOY_MIGRATION_ALERT_LOOKBACK_MINUTES", str(LOOKBACK_DEFAULT)),
    "strict": ("DEPLOY_MIGRATION_ALERT_STRICT", "0"),
    "url": ("DEPLOY_OPS_URL", None),
    "remote_timeout": ("DEPLOY_OPS_TIMEOUT_SECONDS", "10"),
    "runs": ("OPS_MIGRATION_RECENT_RUNS", str(RECENT_RUNS_DEFAULT)),
    "html": ("MIGRATION_STATUS_HTML", None),
    "host": ("OPS_MIGRATION_HOST", "127.0.0.1"),
    "port": ("OPS_MIGRATION_PORT", "8080"),
}
REMOTE_TOKEN_ENV = "DEPLOY_OPS_TOKEN"
SERVE_TOKEN_ENV = "OPS_MIGRATION_TOKEN"

AddCommon = Callable[[argparse.ArgumentParser], None]

EXIT_HELP = """\
exit codes: 0 ok or warning, 2 usage/config error, 7 database (or endpoint) unreachable,
8 critical (status always; alerts only with --strict)
"""


def _env_help(dest: str) -> str:
    env, default = OPS_ENV[dest]
    return f"env {env}" + (f", default {default}" if default is not None else "")


def _opt(args: argparse.Namespace, dest: str, env: Mapping[str, str] | None = None) -> str | None:
    given = getattr(args, dest, None)
    if given is not None:
        return str(given) if not isinstance(given, bool) else ("1" if given else "0")
    env = os.environ if env is None else env
    name, default = OPS_ENV[dest]
    value = env.get(name)
    return value if value not in (None, "") else default


def _lookback(args: argparse.Namespace) -> int:
    raw = _opt(args, "lookback_minutes") or str(LOOKBACK_DEFAULT)
    return parse_int(raw, name=f"--lookback-minutes / {OPS_ENV['lookback_minutes'][0]}",
                     lo=LOOKBACK_BOUNDS[0], hi=LOOKBACK_BOUNDS[1])


def _runs(args: argparse.Namespace) -> int:
    raw = _opt(args, "runs") or str(RECENT_RUNS_DEFAULT)
    return parse_int(raw, name=f"--runs / {OPS_ENV['runs'][0]}",
                     lo=RECENT_RUNS_BOUNDS[0], hi=RECENT_RUNS_BOUNDS[1])


def register(subparsers: Any, add_common: AddCommon) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser(
        "status", help="pending migrations, recent runs, alert summary",
        formatter_class=fmt, epilog=EXIT_HELP,
        description="Pending migrations (files not in the history table), whether the run log "
        "is readable, recent runs, and the alert summary: critical on pending migrations or on a "
        "FAILED/LOCK_TIMEOUT run within the lookback; warning on a stale RUNNING row, a retried "
        "attempt, or an applied file missing/edited. The same document as GET "
        "/api/ops/migrations. Without a database URL it reads the embedded default.")
    add_common(p)
    _lookback_flag(p)
    p.add_argument("--runs", type=int, help=f"recent run-log rows to show ({_env_help('runs')}; "
                   f"{RECENT_RUNS_BOUNDS[0]}..{RECENT_RUNS_BOUNDS[1]})")
    p.add_argument("--html", metavar="FILE",
                   help=f"also write the dashboard page to FILE ({_env_help('html')})")
    p.set_defaults(handler=cmd_status)

    p = subparsers.add_parser(
        "alerts", help="alert summary for CI (--strict exits 8 on critical)",
        formatter_class=fmt, epilog=EXIT_HELP,
        description="Print the alert summary. With --strict, exit 8 when it is critical (and 7 "
        "when the database or endpoint cannot be reached). With --url, ask a deployed ops "
        f"endpoint instead of the database; the bearer token comes from {REMOTE_TOKEN_ENV}.")
    add_common(p)
    _lookback_flag(p)
    p.add_argument("--strict", action="store_const", const=True,
                   help=f"non-zero exit on critical ({_env_help('strict')})")
    p.add_argument("--url", help="ops endpoint, e.g. https://api.example.com (the path "
                   f"/api/ops/migrations is added when missing) ({_env_help('url')})")
    p.add_argument("--remote-timeout", type=float,
                   help=f"seconds for the remote request ({_env_help('remote_timeout')})")
    p.set_defaults(handler=cmd_alerts)

    p = subparsers.add_parser(
        "serve", help="the ops HTTP endpoint and dashboard",
        formatter_class=fmt,
        description="Serve GET /api/ops/migrations (JSON; 503 when critical) and GET "
        "/ops/migrations (HTML dashboard) with the standard library's WSGI server. Both need "
        f"Authorization: Bearer <token>, the token taken from {SERVE_TOKEN_ENV} (deliberately "
        "no flag: it would show in the process list); the dashboard also accepts HTTP Basic "
        "with the token as password. Without a token both routes answer 404. /healthz is "
        "open and says only that the process is up.")
    add_common(p)
    _lookback_flag(p, what="default lookback when the request has no ?lookbackMinutes=")
    p.add_argument("--runs", type=int, help=f"recent run-log rows per answer "
                   f"({_env_help('runs')})")
    p.add_argument("--host", help=f"address to bind ({_env_help('host')})")
    p.add_argument("--port", type=int, help=f"port to bind; 0 picks a free one "
                   f"({_env_help('port')})")
    p.set_defaults(handler=cmd_serve)


def _lookback_flag(p: argparse.ArgumentParser, what: str = "failures this recent are "
                   "critical") -> None:
    p.add_argument("--lookback-minutes", type=int, metavar="N",
                   help=f"{what} ({_env_help('lookback_minutes')}; "
                   f"{LOOKBACK_BOUNDS[0]}..{LOOKBACK_BOUNDS[1]})")


# -- output --------------------------------------------------------------------------------

def _print_summary(doc: Mapping[str, Any], *, full: bool) -> None:
    alert = doc.get("alert") or {}
    print(f"alert: {str(alert.get('level', '?')).upper()} "
          f"(database {doc.get('database')}, lookback {doc.get('lookbackMinutes')} min)")
    for r in alert.get("reasons") or []:
        print(f"  {r.get('level')}: [{r.get('code')}] {r.get('message')}")
    if not full:
        return
    pending = doc.get("pending")
    if pending:
        print("pending:")
        for m in pending:
            print(f"  {m.get('name')}")
    t = doc.get("telemetry") or {}
    if not t.get("available"):
        print(f"run log: unavailable ({t.get('reason')})")
        return
    runs = doc.get("recentRuns") or []
    print(f"recent runs ({len(runs)}):" if runs else "recent runs: none")
    for run in runs:
        err = " ".join(x for x in (run.get("sqlstate"), run.get("message")) if x)
        print(f"  {run.get('startedAt')}  {run.get('status'):<12} "
              f"{str(run.get('runId'))[:8]}#{run.get('attempt')}  "
              f"{run.get('migration') or '-'}  {run.get('durationMs')} ms"
              f"{'  ' + err[:120] if err else ''}")


def _exit_for(doc: Mapping[str, Any], *, strict: bool) -> int:
    if not strict:
        return errors.EXIT_OK
    if doc.get("database") == "unreachable":
        return errors.EXIT_UNREACHABLE
    level = (doc.get("alert") or {}).get("level")
    return errors.EXIT_CRITICAL if level == "critical" else errors.EXIT_OK


# -- commands ------------------------------------------------------------------------------

def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from .status import read_status

    st = read_status(settings, lookback_minutes=_lookback(args), recent=_runs(args))
    doc = st.to_json()
    if st.diagnostic:
        print(f"error: {st.diagnostic}", file=sys.stderr)
    html = _opt(args, "html")
    if html:
        path = Path(html)
        path.parent.mkdir(parents=True, exist_ok=True)
        from . import dashboard  # only for --html: keeps `up` light

        path.write_text(dashboard.render(doc), encoding="utf-8")
        if not settings.json:
            print(f"dashboard: {path}", file=sys.stderr)
    if settings.json:
        print(json.dumps(doc, indent=2))
    else:
        _print_summary(doc, full=True)
    return _exit_for(doc, strict=True)


def cmd_alerts(settings: Settings, args: argparse.Namespace) -> int:
    strict = parse_bool(_opt(args, "strict") or "0",
                        name=f"--strict / {OPS_ENV['strict'][0]}")
    lookback = _lookback(args)
    url = _opt(args, "url")
    if url:
        doc = fetch_remote(url, lookback, _remote_timeout(args))
    else:
        from .status import read_status

        st = read_status(settings, lookback_minutes=lookback)
        if st.diagnostic:
            print(f"error: {st.diagnostic}", file=sys.stderr)
        doc = st.to_json()
    if settings.json:
        print(json.dumps({"alert": doc.get("alert"), "database": doc.get("database"),
                          "lookbackMinutes": doc.get("lookbackMinutes"),
                          "strict": strict}, indent=2))
    else:
        _print_summary(doc, full=False)
    return _exit_for(doc, strict=strict)


def _remote_timeout(args: argparse.Namespace) -> float:
    raw = _opt(args, "remote_timeout") or "10"
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.1 <= value <= 300:
        raise ConfigError(f"--remote-timeout / {OPS_ENV['remote_timeout'][0]}: {raw!r} is "
                          "outside 0.1..300 seconds")
    return value


class RemoteUnreachable(errors.ConnectError):
    pass


def endpoint_url(url: str, lookback: int) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--url {url!r} is not an http(s) URL",
                          hint="e.g. https://api.example.com/api/ops/migrations")
    if parts.username or parts.password:
        raise ConfigError("--url must not carry credentials",
                          hint=f"the token goes in {REMOTE_TOKEN_ENV}")
    # The bearer token must not cross the network in clear text.
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"--url {urlunsplit(parts._replace(query=''))!r} is plain http",
                          hint="use https (plain http is accepted only for loopback)")
    path = parts.path.rstrip("/")
    if not path.endswith("/api/ops/migrations"):
        path += "/api/ops/migrations"
    return urlunsplit((parts.scheme, parts.netloc, path,
                       urlencode({"lookbackMinutes": lookback}), ""))


def fetch_remote(url: str, lookback: int, timeout_s: float) -> dict[str, Any]:
    """The status document from a deployed endpoint (200 and 503 both carry one)."""
    token = os.environ.get(REMOTE_TOKEN_ENV)
    if not token:
        raise ConfigError(f"{REMOTE_TOKEN_ENV} is not set",
                          hint="export the ops endpoint's bearer token as " + REMOTE_TOKEN_ENV)
    target = endpoint_url(url, lookback)
    shown = urlunsplit(urlsplit(target)._replace(query="", fragment=""))
    import urllib.error  # remote mode only: keeps every other command light
    import urllib.request

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        # urllib would resend the Authorization header to wherever a redirect points.
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(_NoRedirect)
    req = urllib.request.Request(target, headers={"Authorization": f"Bearer {token}",
                                                  "Accept": "application/json"})
    try:
        with opener.open(req, timeout=timeout_s) as resp:
            status, body = resp.status, resp.read(2_000_000)
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read(2_000_000)
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise RemoteUnreachable(f"ops endpoint {shown} did not answer: {reason}",
                                hint="check --url and that the service is up") from None
    if 300 <= status < 400:
        raise ConfigError(f"ops endpoint {shown} redirected ({status}); the token is not "
                          "sent on", hint="pass the final URL with --url")
    if status == 401:
        raise ConfigError(f"ops endpoint {shown} refused the token (401)",
                          hint=f"check {REMOTE_TOKEN_ENV}")
    if status == 404:
        raise ConfigError(f"ops endpoint {shown} answered 404",
                          hint=f"check --url, and that {SERVE_TOKEN_ENV} is set on the service "
                               "(without it the endpoint is off)")
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if status not in (200, 503) or not isinstance(doc, dict) or "alert" not in doc:
        raise RemoteUnreachable(f"ops endpoint {shown} answered {status} without a status "
                                "document", hint="check --url")
    return doc


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from .source import discover
    from .web import OpsApp, make_ops_server

    host = _opt(args, "host") or "127.0.0.1"
    port = parse_int(_opt(args, "port") or "8080", name=f"--port / {OPS_ENV['port'][0]}",
                     lo=0, hi=65535)
    discover(settings.dir, settings.format)  # a wrong --dir is a startup error, not a 503 on every request
    token = os.environ.get(SERVE_TOKEN_ENV) or None
    if token is None:
        print(f"warning: {SERVE_TOKEN_ENV} is not set: /api/ops/migrations and /ops/migrations "
              "answer 404", file=sys.stderr)
    elif len(token) < 16:
        print(f"warning: {SERVE_TOKEN_ENV} is shorter than 16 characters; use a long random "
              "token (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)",
              file=sys.stderr)
    app = OpsApp(settings, token, default_lookback=_lookback(args), recent_runs=_runs(args))
    try:
        server = make_ops_server(app, host, port)
    except OSError as e:
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}",
                          hint="pick another --port / OPS_MIGRATION_PORT") from None
    bound_host, bound_port = server.server_address[:2]
    print(f"serving http://{bound_host!s}:{bound_port}/api/ops/migrations (dashboard: "
          "/ops/migrations)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return errors.EXIT_OK
