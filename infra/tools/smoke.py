"""API smoke check after a rollout: `python -m infra.tools.smoke --base-url URL --release-sha SHA`.

Checks the health endpoint and the OpenAPI document, retrying through the propagation window
(a new revision takes a while to receive traffic) with bounded attempts and one overall
deadline; every request's timeout is clamped to the time left. Writes
``<artifact-dir>/<sha>/api-smoke.json`` (schema: ``schemas/api-smoke.schema.json``).

Assertions, by stable id: ``health-status`` (2xx), ``health-content-type`` (JSON or plain
text), ``openapi-status`` (2xx), ``openapi-content-type`` (JSON), ``openapi-parses`` (a JSON
object), ``openapi-version`` (``openapi`` and ``info.version`` present; equal to
``--expect-version`` when given). With ``--data-path`` (e.g. ``/api/documents``, an endpoint that
reads a table the migrations create) also ``data-status`` (2xx) and ``data-parses`` (a JSON object
or array): the app sees the migrated schema, not only its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

SCHEMA_VERSION = 1
ARTIFACT_NAME = "api-smoke.json"
SNIPPET_MAX = 512
BODY_MAX = 5_000_000
ATTEMPTS_BOUNDS = (1, 50)
MIN_REQUEST_S = 0.2  # an attempt with less time than this left cannot tell anything
ASSERTION_IDS = ("health-status", "health-content-type", "openapi-status",
                 "openapi-content-type", "openapi-parses", "openapi-version")
DATA_ASSERTION_IDS = ("data-status", "data-parses")

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_HEALTH = 4
EXIT_OPENAPI = 5
EXIT_ARTIFACT = 6
EXIT_DATA = 7
EXIT_CODES = {None: EXIT_OK, "unreachable": EXIT_UNREACHABLE, "health-failed": EXIT_HEALTH,
              "openapi-failed": EXIT_OPENAPI, "data-failed": EXIT_DATA}

# flag dest -> (env twin, default)
ENV: dict[str, tuple[str, str | None]] = {
    "base_url": ("SMOKE_BASE_URL", None),
    "release_sha": ("SMOKE_RELEASE_SHA", None),
    "attempts": ("SMOKE_ATTEMPTS", "10"),
    "interval": ("SMOKE_INTERVAL_SECONDS", "5"),
    "deadline": ("SMOKE_DEADLINE_SECONDS", "120"),
    "request_timeout": ("SMOKE_REQUEST_TIMEOUT_SECONDS", "10"),
    "artifact_dir": ("SMOKE_ARTIFACT_DIR", ".artifacts/deploy"),
    "health_path": ("SMOKE_HEALTH_PATH", "/healthz"),
    "openapi_path": ("SMOKE_OPENAPI_PATH", "/openapi.json"),
    "data_path": ("SMOKE_DATA_PATH", None),
    "expect_version": ("SMOKE_EXPECT_VERSION", None),
    "json": ("SMOKE_JSON", "0"),
}
_SHA = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json$")


class UsageError(Exception):
    pass


@dataclass(frozen=True)
class Options:
    base_url: str
    release_sha: str
    attempts: int = 10
    interval_s: float = 5.0
    deadline_s: float = 120.0
    request_timeout_s: float = 10.0
    artifact_dir: Path | None = Path(".artifacts/deploy")
    health_path: str = "/healthz"
    openapi_path: str = "/openapi.json"
    expect_version: str | None = None
    data_path: str | None = None


@dataclass
class Response:
    url: str
    status: int | None = None
    content_type: str | None = None
    body: bytes = b""
    truncated: bool = False
    error: str | None = None
    elapsed_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        text = self.body.decode("utf-8", "replace")
        return {"url": self.url, "status": self.status, "contentType": self.content_type,
                "elapsedMs": self.elapsed_ms, "error": self.error,
                "snippet": text[:SNIPPET_MAX],
                "snippetTruncated": len(text) > SNIPPET_MAX or self.truncated}


@dataclass
class Assertion:
    id: str
    passed: bool
    expected: str
    actual: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "target": self.id.split("-", 1)[0], "passed": self.passed,
                "expected": self.expected, "actual": self.actual,
                "detail": None if self.passed else
                f"{self.id}: expected {self.expected}, got {self.actual}"}


@dataclass
class Outcome:
    options: Options
    started_at: datetime
    timeline: list[dict[str, Any]] = field(default_factory=list)
    assertions: list[Assertion] = field(default_factory=list)
    health: Response | None = None
    openapi: Response | None = None
    data: Response | None = None
    stopped_by: str | None = None
    finished_at: datetime | None = None

    @property
    def reason_code(self) -> str | None:
        failed = [a.id for a in self.assertions if not a.passed]
        if not failed:
            return None
        if all(r is None or r.status is None for r in (self.health, self.openapi)):
            return "unreachable"
        if any(f.startswith("health") for f in failed):
            return "health-failed"
        return "openapi-failed" if any(f.startswith("openapi") for f in failed) \
            else "data-failed"

    def reason(self) -> str | None:
        failed = [a for a in self.assertions if not a.passed]
        if not failed:
            return None
        tries = f"after {len(self.timeline)} attempt(s)"
        stop = f", stopped by the {self.stopped_by}" if self.stopped_by else ""
        return f"{failed[0].id}: expected {failed[0].expected}, got " \
               f"{failed[0].actual} ({tries}{stop}; {len(failed)} assertion(s) failed)"

    def to_json(self) -> dict[str, Any]:
        o = self.options
        end = self.finished_at or datetime.now(UTC)
        return {
            "schemaVersion": SCHEMA_VERSION, "releaseSha": o.release_sha,
            "baseUrl": public_url(o.base_url), "ok": self.reason_code is None,
            "reasonCode": self.reason_code, "reason": self.reason(),
            "stoppedBy": self.stopped_by,
            "startedAt": _iso(self.started_at), "finishedAt": _iso(end),
            "elapsedMs": int((end - self.started_at).total_seconds() * 1000),
            "limits": {"attempts": o.attempts, "intervalSeconds": o.interval_s,
                       "deadlineSeconds": o.deadline_s,
                       "requestTimeoutSeconds": o.request_timeout_s},
            "expectVersion": o.expect_version,
            "assertions": [a.to_json() for a in self.assertions],
            "timeline": self.timeline,
            "health": self.health.to_json() if self.health else None,
            "openapi": self.openapi.to_json() if self.openapi else None,
            "dataPath": o.data_path,
            "data": self.data.to_json() if self.data else None,
        }


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def public_url(url: str) -> str:
    """The URL without user info, query or fragment (nothing secret lands in the artifact)."""
    p = urlsplit(url)
    host = p.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{p.port}" if p.port else "")
    return urlunsplit((p.scheme, netloc, p.path, "", ""))


Fetch = Callable[[str, float], Response]


def fetch(url: str, timeout_s: float) -> Response:
    start = time.monotonic()
    r = Response(public_url(url))
    req = urllib.request.Request(url, headers={"Accept": "application/json, */*;q=0.5",
                                               "User-Agent": "gated-release-smoke/1"})
    try:
        try:
            resp = urllib.request.urlopen(req, timeout=timeout_s)
        except urllib.error.HTTPError as e:
            resp = e
        with resp:
            r.status = resp.status
            r.content_type = resp.headers.get("Content-Type")
            r.body = resp.read(BODY_MAX + 1)
            r.truncated = len(r.body) > BODY_MAX
            r.body = r.body[:BODY_MAX]
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        r.error = f"{type(reason).__name__}: {reason}"[:300] if str(reason) else \
            type(reason).__name__
    r.elapsed_ms = int((time.monotonic() - start) * 1000)
    return r


def _media_type(ct: str | None) -> str:
    return (ct or "").split(";", 1)[0].strip().lower()


def assess(health: Response, openapi: Response, expect_version: str | None) -> list[Assertion]:
    def status(id_: str, r: Response) -> Assertion:
        actual = str(r.status) if r.status is not None else f"no answer ({r.error})"
        return Assertion(id_, r.status is not None and 200 <= r.status < 300, "2xx", actual)

    ht = _media_type(health.content_type)
    ot = _media_type(openapi.content_type)
    out = [
        status("health-status", health),
        Assertion("health-content-type", bool(_JSON_TYPE.match(ht)) or ht == "text/plain",
                  "application/json or text/plain", health.content_type),
        status("openapi-status", openapi),
        Assertion("openapi-content-type", bool(_JSON_TYPE.match(ot)), "application/json",
                  openapi.content_type),
    ]
    doc: Any = None
    parse_error: str | None = "no body"
    if openapi.truncated:
        parse_error = f"larger than {BODY_MAX} bytes"
    elif openapi.body:
        try:
            doc = json.loads(openapi.body)
            parse_error = None if isinstance(doc, dict) else f"a JSON {type(doc).__name__}"
        except ValueError as e:
            parse_error = f"invalid JSON ({str(e)[:120]})"
    out.append(Assertion("openapi-parses", parse_error is None, "a JSON object",
                         parse_error or "a JSON object"))
    spec = doc.get("openapi") if isinstance(doc, dict) else None
    info = doc.get("info") if isinstance(doc, dict) else None
    version = info.get("version") if isinstance(info, dict) else None
    if not isinstance(spec, str) or not spec:
        actual = "no `openapi` field"
    elif not isinstance(version, str) or not version:
        actual = "no `info.version`"
    else:
        actual = f"openapi {spec[:20]}, info.version {version[:80]}"
    ok = actual.startswith("openapi ") and (expect_version is None or version == expect_version)
    expected = "`openapi` and `info.version`" + (
        f" == {expect_version!r}" if expect_version is not None else "")
    out.append(Assertion("openapi-version", ok, expected, actual))
    return out


def assess_data(data: Response) -> list[Assertion]:
    """The data endpoint answers 2xx with a JSON document (it read the migrated tables)."""
    actual = str(data.status) if data.status is not None else f"no answer ({data.error})"
    out = [Assertion("data-status", data.status is not None and 200 <= data.status < 300,
                     "2xx", actual)]
    parsed = "no body"
    if data.body and not data.truncated:
        try:
            doc = json.loads(data.body)
            parsed = "a JSON document" if isinstance(doc, dict | list) else \
                f"a JSON {type(doc).__name__}"
        except ValueError as e:
            parsed = f"invalid JSON ({str(e)[:120]})"
    elif data.truncated:
        parsed = f"larger than {BODY_MAX} bytes"
    out.append(Assertion("data-parses", parsed == "a JSON document",
                         "a JSON object or array", parsed))
    return out


def run(opts: Options, *, fetcher: Fetch = fetch, sleep: Callable[[float], None] = time.sleep,
        echo: Callable[[str], None] | None = None) -> Outcome:
    """Check until every assertion passes, the attempts run out, or the deadline passes."""
    echo = echo or (lambda _line: None)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    deadline = t0 + opts.deadline_s
    out = Outcome(opts, started)
    base = opts.base_url.rstrip("/") + "/"
    urls = {"health": urljoin(base, opts.health_path.lstrip("/")),
            "openapi": urljoin(base, opts.openapi_path.lstrip("/"))}
    if opts.data_path:
        urls["data"] = urljoin(base, opts.data_path.lstrip("/"))
    for attempt in range(1, opts.attempts + 1):
        at = datetime.now(UTC)
        got: dict[str, Response] = {}
        for name, url in urls.items():
            left = deadline - time.monotonic()
            if left < MIN_REQUEST_S:
                got[name] = Response(public_url(url), error="deadline reached before the request")
                continue
            got[name] = fetcher(url, min(opts.request_timeout_s, left))
        out.health, out.openapi, out.data = got["health"], got["openapi"], got.get("data")
        out.assertions = assess(out.health, out.openapi, opts.expect_version)
        if out.data is not None:
            out.assertions += assess_data(out.data)
        failed = [a.id for a in out.assertions if not a.passed]
        out.timeline.append({
            "attempt": attempt, "at": _iso(at),
            "elapsedMs": int((time.monotonic() - t0) * 1000), "passed": not failed,
            "failed": failed,
            "healthStatus": out.health.status, "openapiStatus": out.openapi.status,
            "error": (out.health.error or out.openapi.error or "")[:200] or None,
        })
        echo(f"attempt {attempt}: " + ("ok" if not failed else "failed " + ", ".join(failed)))
        if not failed:
            break
        if attempt == opts.attempts:
            out.stopped_by = "attempts"
            break
        if deadline - time.monotonic() - opts.interval_s < MIN_REQUEST_S:
            out.stopped_by = "deadline"
            break
        sleep(opts.interval_s)
    out.finished_at = datetime.now(UTC)
    return out


def write_artifact(out: Outcome, root: Path) -> Path:
    path = root / out.options.release_sha / ARTIFACT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


# -- command line --------------------------------------------------------------------------

def _help(dest: str) -> str:
    env, default = ENV[dest]
    return f"env {env}" + (f", default {default}" if default is not None else "")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m infra.tools.smoke", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 every assertion passed, 2 usage error, 3 no HTTP answer "
        "(unreachable), 4 health failed, 5 OpenAPI failed, 6 artifact not written, 7 the data "
        "endpoint failed")
    p.add_argument("--base-url", help=f"the deployed API, e.g. https://api.example.com "
                   f"({_help('base_url')})")
    p.add_argument("--release-sha", help=f"release being checked; names the artifact directory "
                   f"({_help('release_sha')})")
    p.add_argument("--attempts", help=f"at most this many attempts, "
                   f"{ATTEMPTS_BOUNDS[0]}..{ATTEMPTS_BOUNDS[1]} ({_help('attempts')})")
    p.add_argument("--interval", help=f"seconds between attempts ({_help('interval')})")
    p.add_argument("--deadline", help=f"seconds for everything, the propagation window "
                   f"({_help('deadline')})")
    p.add_argument("--request-timeout", help=f"seconds per request, clamped to the time left "
                   f"({_help('request_timeout')})")
    p.add_argument("--artifact-dir", help=f"artifact root; '' disables ({_help('artifact_dir')})")
    p.add_argument("--health-path", help=f"({_help('health_path')})")
    p.add_argument("--openapi-path", help=f"({_help('openapi_path')})")
    p.add_argument("--data-path", help=f"an endpoint that reads the migrated tables, e.g. "
                   f"/api/documents; unset: not checked ({_help('data_path')})")
    p.add_argument("--expect-version", help=f"require info.version to equal this, so an old "
                   f"revision still serving does not pass ({_help('expect_version')})")
    p.add_argument("--json", action="store_const", const=True,
                   help=f"print the artifact on stdout ({_help('json')})")
    return p


def _number(raw: str, name: str, lo: float, hi: float) -> float:
    try:
        v = float(raw)
    except ValueError:
        raise UsageError(f"{name}: expected a number, got {raw!r}") from None
    if not lo <= v <= hi:
        raise UsageError(f"{name}: {raw} is outside {lo:g}..{hi:g}")
    return v


def options_from(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[Options, bool]:
    def get(dest: str) -> str | None:
        v = getattr(args, dest, None)
        if v is not None:
            return "1" if v is True else str(v)
        name, default = ENV[dest]
        return env.get(name) or default

    def label(dest: str) -> str:
        return f"--{dest.replace('_', '-')} / {ENV[dest][0]}"

    base = get("base_url")
    parts = urlsplit(base or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{label('base_url')}: need an http(s) URL, got {public_url(base or '')!r}")
    if parts.username is not None or parts.query or parts.fragment:
        # Credentials or a query would end up in logs and the artifact; the checks need neither.
        raise UsageError(f"{label('base_url')}: give scheme, host, port and path only "
                         f"(no user info, query or fragment), e.g. {public_url(base or '')}")
    sha = get("release_sha") or env.get("GITHUB_SHA")
    if not sha or not _SHA.match(sha):
        raise UsageError(f"{label('release_sha')}: need the release SHA (letters, digits, . _ -)")
    attempts = int(_number(get("attempts") or "10", label("attempts"), *ATTEMPTS_BOUNDS))
    art = get("artifact_dir")
    opts = Options(
        base_url=str(base), release_sha=sha, attempts=attempts,
        interval_s=_number(get("interval") or "5", label("interval"), 0, 600),
        deadline_s=_number(get("deadline") or "120", label("deadline"), 0.1, 3600),
        request_timeout_s=_number(get("request_timeout") or "10", label("request_timeout"),
                                  0.1, 300),
        artifact_dir=Path(art) if art else None,
        health_path=get("health_path") or "/healthz",
        openapi_path=get("openapi_path") or "/openapi.json",
        data_path=get("data_path") or None,
        expect_version=get("expect_version"),
    )
    as_json = (get("json") or "0").strip().lower() in ("1", "true", "yes", "on")
    return opts, as_json


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        opts, as_json = options_from(args, os.environ if env is None else env)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    out = run(opts, echo=lambda line: print(line, file=sys.stderr, flush=True))
    doc = out.to_json()
    code = EXIT_CODES[out.reason_code]
    if opts.artifact_dir is not None:
        try:
            path = write_artifact(out, opts.artifact_dir)
            print(f"artifact: {path}", file=sys.stderr)
        except OSError as e:
            print(f"error: cannot write the artifact: {e}", file=sys.stderr)
            code = code or EXIT_ARTIFACT
    if as_json:
        print(json.dumps(doc, indent=2))
    elif doc["ok"]:
        print(f"ok: {public_url(opts.base_url)} passed {len(out.assertions)} assertions "
              f"in {len(out.timeline)} attempt(s)")
    else:
        print(f"error: [{doc['reasonCode']}] {doc['reason']}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
