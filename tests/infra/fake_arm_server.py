"""A local stand-in for the ARM and Log Analytics endpoints the migration gate calls.

Threaded ``http.server`` on 127.0.0.1 speaking just enough of the real APIs for the real
``azure-mgmt-appcontainers`` and ``azure-monitor-query`` clients:

- ``POST .../providers/Microsoft.App/jobs/{job}/start`` -> 202 with a ``Location`` (an operation
  result URL) and NO body, as the published examples (``Job_Start.json``) answer; the execution
  runs the job's template (:attr:`Scenario.job_template`), or the request body when one was sent
- ``POST .../jobs/{job}/executions/{name}/stop`` -> 202 and ``Location``; the execution reads
  ``Stopped`` from then on (the path ``jobs.begin_stop_execution`` of azure-mgmt-appcontainers
  5.x uses)
- ``GET .../containerappOperationResults/{op}`` -> 202 (with ``Retry-After``) once, then 200 with
  the final state: ``{id, name}`` of the new execution (JobExecutionBase), or no body
- ``GET .../jobs/{job}/executions/{name}`` -> the execution, its status taken from the scenario
  (any string: values outside the published enum included)
- ``GET .../jobs/{job}/executions`` -> ``{value: [...], nextLink}`` pages of
  :attr:`Scenario.page_size` executions
- ``POST /v1/workspaces/{id}/query`` -> a Log Analytics table of console lines

Every ARM request must carry an ``api-version`` of an admitted azure-mgmt-appcontainers release
(:data:`API_VERSIONS`; else 400 with an ARM error body) and ``Authorization: Bearer <token>`` (else 401). ``faults`` injects answers (429 with
Retry-After, 5xx) before the real one, per route.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# the default api-version of each admitted azure-mgmt-appcontainers release: 3.1, 4.0, 5.0, 5.1
API_VERSIONS = ("2024-03-01", "2025-07-01", "2026-01-01", "2026-07-01")


def _sdk_api_version() -> str:
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

    client = ContainerAppsAPIClient(credential=object(), subscription_id="0")  # type: ignore[arg-type]
    return str(client._config.api_version)


API_VERSION = _sdk_api_version()  # the installed SDK's: what every request must carry
_JOB = r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.App/jobs/(?P<job>[^/]+)"
ROUTES = {
    "start": ("POST", re.compile(_JOB + r"/start$")),
    "execution": ("GET", re.compile(_JOB + r"/executions/(?P<name>[^/]+)$")),
    "stop": ("POST", re.compile(_JOB + r"/executions/(?P<name>[^/]+)/stop$")),
    "executions": ("GET", re.compile(_JOB + r"/executions$")),
    "operation": (
        "GET",
        re.compile(
            r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.App/locations/[^/]+"
            r"/containerappOperationResults/(?P<op>[^/]+)$"
        ),
    ),
    "query": ("POST", re.compile(r"/v1/workspaces/(?P<ws>[^/]+)/query$")),
    "roleassignment": ("GET", re.compile(
        r"^(?P<scope>/subscriptions/.+)/providers/Microsoft\.Authorization/roleAssignments/"
        r"(?P<name>[^/]+)$")),
}
ROLE_ASSIGNMENT_API = "2022-04-01"


# Log Analytics' answer for a workspace that never received a container log
MISSING_TABLE = {"error": {
    "code": "BadArgumentError", "message": "The request had some invalid properties",
    "innererror": {"code": "SemanticError", "message": "A semantic error occurred.",
                   "innererror": {"code": "SEM0100", "message": "'where' operator: Failed to "
                                  "resolve table or column expression named "
                                  "'ContainerAppConsoleLogs_CL'"}}}}


@dataclass
class Request:
    method: str
    route: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Scenario:
    """What the fake answers: the status sequence of the execution (the last one sticks)."""

    statuses: list[str] = field(default_factory=lambda: ["Running", "Succeeded"])
    message: str | None = None
    start_body_has_name: bool = True
    log_lines: list[str] = field(default_factory=list)
    # the Job resource's template; an execution started without an override runs it
    job_template: dict[str, Any] = field(default_factory=lambda: {"containers": []})
    # executions that exist before the gate starts one (ARM execution objects)
    existing: list[dict[str, Any]] = field(default_factory=list)
    # a brand-new execution has no startTime until its replica is scheduled
    new_start_time: str | None = "2030-01-01T00:00:00Z"
    # the listing lags: a started execution shows up only after this many list calls
    list_lag: int = 0
    # executions per page of the listing; the rest follows through nextLink
    page_size: int = 2
    # seconds the operation result's 202 asks the poller to wait (ARM's Retry-After)
    operation_retry_after: str = "0"
    # ingestion in batches: the i-th query sees the first log_batches[i] lines (the last sticks)
    log_batches: list[int] | None = None
    # a new workspace: the first this-many queries find no ContainerAppConsoleLogs_CL table
    missing_table_queries: int = 0
    # real time instead of poll counts: the execution runs this long after its start, then
    # ends with the last of `statuses`; its console lines are ingested `ingest_seconds` later
    run_seconds: float | None = None
    ingest_seconds: float = 0.0
    # role assignments answer 404 (not replicated yet) for this many reads each
    role_assignment_lag: int = 0


class FakeArm:
    def __init__(self, scenario: Scenario | None = None) -> None:
        self.scenario = scenario or Scenario()
        self.requests: list[Request] = []
        self.faults: dict[str, deque[tuple[int, dict[str, str]]]] = defaultdict(deque)
        self.executions: dict[str, dict[str, Any]] = {}
        self._polls: dict[str, int] = defaultdict(int)
        self._ops: dict[str, int] = defaultdict(int)
        self.op_names: dict[str, str] = {}
        self.stopped: set[str] = set()
        self._listed_after: dict[str, int] = {}
        self._started_at: dict[str, float] = {}
        self._lock = threading.Lock()
        for execution in self.scenario.existing:
            self.executions[execution["name"]] = json.loads(json.dumps(execution))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeArm:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fault(
        self, route: str, status: int, headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        for _ in range(times):
            self.faults[route].append((status, headers or {}))

    def _existing_names(self) -> set[str]:
        return {e["name"] for e in self.scenario.existing}

    def count(self, route: str) -> int:
        return sum(1 for r in self.requests if r.route == route)

    # -- answers -------------------------------------------------------------------------

    def _execution(self, m: re.Match[str], name: str, advance: bool) -> dict[str, Any]:
        with self._lock:
            execution = self.executions[name]
            if name in self.stopped:
                execution["properties"]["status"] = "Stopped"
            elif self.scenario.run_seconds is not None and name in self._started_at:
                done = time.monotonic() - self._started_at[name] >= self.scenario.run_seconds
                status = self.scenario.statuses[-1] if done else "Running"
                execution["properties"]["status"] = status
                if done and self.scenario.message:
                    execution["properties"]["message"] = self.scenario.message
            elif advance:
                i = min(self._polls[name], len(self.scenario.statuses) - 1)
                self._polls[name] += 1
                status = self.scenario.statuses[i]
                execution["properties"]["status"] = status
                if status in ("Succeeded", "Failed", "Stopped", "Degraded"):
                    execution["properties"]["endTime"] = "2030-01-01T00:05:00Z"
                    if self.scenario.message:
                        execution["properties"]["message"] = self.scenario.message
            return json.loads(json.dumps(execution))

    def answer(
        self, route: str, m: re.Match[str], body: Any, base: str, path: str,
        query: dict[str, list[str]] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        if route == "start":
            with self._lock:
                started = sum(1 for n in self.executions if n not in self._existing_names())
                name = f"{m['job']}-{started + 1:07d}"
                op = f"op-{len(self._ops) + 1}"
                ex_id = f"/subscriptions/{m['sub']}/resourceGroups/{m['rg']}/providers/Microsoft.App/jobs/{m['job']}/executions/{name}"
                props: dict[str, Any] = {
                    "status": "Processing",
                    "template": json.loads(json.dumps(body or self.scenario.job_template)),
                }
                if self.scenario.new_start_time:
                    props["startTime"] = self.scenario.new_start_time
                self.executions[name] = {
                    "id": ex_id,
                    "name": name,
                    "type": "Microsoft.App/jobs/executions",
                    "properties": props,
                }
                self._listed_after[name] = 0
                self._started_at[name] = time.monotonic()
                self._ops[op] = 0
                self.op_names[op] = name
            location = (
                f"{base}/subscriptions/{m['sub']}/providers/Microsoft.App/locations/westeurope"
                f"/containerappOperationResults/{op}?api-version={API_VERSION}"
            )
            return 202, {"Location": location, "Retry-After": self.scenario.operation_retry_after}, None
        if route == "stop":
            with self._lock:
                if m["name"] not in self.executions:
                    return 404, {}, {"error": {"code": "ResourceNotFound", "message": m["name"]}}
                self.stopped.add(m["name"])
                op = f"op-{len(self._ops) + 1}"
                self._ops[op] = 0
                self.op_names[op] = ""  # a stop operation has no result body
            location = (
                f"{base}/subscriptions/{m['sub']}/providers/Microsoft.App/locations/westeurope"
                f"/containerappOperationResults/{op}?api-version={API_VERSION}"
            )
            return 202, {"Location": location}, None
        if route == "operation":
            with self._lock:
                self._ops[m["op"]] += 1
                first = self._ops[m["op"]] == 1
                name = self.op_names[m["op"]]
            if first:
                return 202, {"Location": f"{base}{path}?api-version={API_VERSION}",
                             "Retry-After": self.scenario.operation_retry_after}, None
            if not name:
                return 200, {}, None
            ex = self.executions[name]
            if not self.scenario.start_body_has_name:
                return 200, {}, None
            return 200, {}, {"id": ex["id"], "name": name}
        if route == "execution":
            if m["name"] not in self.executions:
                return (
                    404,
                    {},
                    {"error": {"code": "ResourceNotFound", "message": "no such execution"}},
                )
            return 200, {}, self._execution(m, m["name"], advance=True)
        if route == "executions":
            with self._lock:
                visible = []
                for n in list(self.executions):
                    if n in self._listed_after:
                        self._listed_after[n] += 1
                        if self._listed_after[n] <= self.scenario.list_lag:
                            continue
                    visible.append(n)
            skip = int((query or {}).get("$skiptoken", ["0"])[0])
            size = max(self.scenario.page_size, 1)
            page = {"value": [self._execution(m, n, advance=False)
                              for n in visible[skip:skip + size]]}
            if skip + size < len(visible):
                page["nextLink"] = (f"{base}{path}?api-version={API_VERSION}"
                                    f"&$skiptoken={skip + size}")
            return 200, {}, page
        if route == "roleassignment":
            with self._lock:
                self._polls[path] += 1
                seen = self._polls[path]
            if seen <= self.scenario.role_assignment_lag:
                return 404, {}, {"error": {"code": "RoleAssignmentNotFound",
                                           "message": "The role assignment does not exist."}}
            return 200, {}, {"id": path, "name": m["name"],
                             "type": "Microsoft.Authorization/roleAssignments"}
        if route == "query":
            with self._lock:
                n = self._polls["__query__"]
                self._polls["__query__"] += 1
            if n < self.scenario.missing_table_queries:
                return 400, {}, MISSING_TABLE
            lines = self.scenario.log_lines
            if self.scenario.run_seconds is not None:
                ingested = self.scenario.run_seconds + self.scenario.ingest_seconds
                started = list(self._started_at.values())
                if not started or time.monotonic() - started[-1] < ingested:
                    lines = []
            if self.scenario.log_batches:
                lines = lines[: self.scenario.log_batches[min(n, len(self.scenario.log_batches) - 1)]]
            rows = [
                [f"2030-01-01T00:00:{i:02d}Z", line]
                for i, line in enumerate(lines)
            ]
            # Honour the query's order and limit, as Log Analytics does.
            kql = str((body or {}).get("query", ""))
            if "order by TimeGenerated desc" in kql:
                rows.reverse()
            take = re.search(r"\btake (\d+)", kql)
            if take:
                rows = rows[: int(take.group(1))]
            return (
                200,
                {},
                {
                    "tables": [
                        {
                            "name": "PrimaryResult",
                            "columns": [
                                {"name": "TimeGenerated", "type": "datetime"},
                                {"name": "Log_s", "type": "string"},
                            ],
                            "rows": rows,
                        }
                    ]
                },
            )
        raise AssertionError(route)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def _send(self, status: int, headers: dict[str, str], body: Any) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-ms-request-id", "fake")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                route, match = "unknown", None
                for name, (verb, pattern) in ROUTES.items():
                    found = pattern.match(parts.path)
                    if verb == method and found:
                        route, match = name, found
                        break
                query = parse_qs(parts.query)
                fake.requests.append(
                    Request(
                        method,
                        route,
                        parts.path,
                        query,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                if match is None:
                    return self._send(
                        404, {}, {"error": {"code": "NotFound", "message": parts.path}}
                    )
                if not (self.headers.get("Authorization") or "").startswith("Bearer "):
                    return self._send(
                        401,
                        {},
                        {"error": {"code": "AuthenticationFailed", "message": "no bearer token"}},
                    )
                wanted = ROLE_ASSIGNMENT_API if route == "roleassignment" else API_VERSION
                if route != "query" and query.get("api-version") != [wanted]:
                    # every request names the installed SDK's api-version (one of API_VERSIONS)
                    return self._send(
                        400,
                        {},
                        {
                            "error": {
                                "code": "InvalidApiVersionParameter",
                                "message": f"api-version {query.get('api-version')}",
                            }
                        },
                    )
                with fake._lock:
                    injected = fake.faults[route].popleft() if fake.faults[route] else None
                if injected is not None:
                    status, headers = injected
                    return self._send(
                        status, headers, {"error": {"code": "Injected", "message": str(status)}}
                    )
                status, headers, answer = fake.answer(route, match, body, fake.url, parts.path,
                                                      query)
                self._send(status, headers, answer)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        return Handler
