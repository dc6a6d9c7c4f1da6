"""Starting a policy pack the way the Pulumi CLI does, and the engine endpoint it is given.

The CLI starts ``pulumi-analyzer-policy-python <engine-address> .`` in the pack directory, which
runs ``python -m pulumi.policy <engine-address> .`` with ``PULUMI_PROJECT``, ``PULUMI_STACK``,
``PULUMI_DRY_RUN`` and ``PULUMI_CONFIG`` set; the pack prints its gRPC port on the first stdout
line. The engine address must answer the Engine service (``Log``, root-resource calls), so a small
:class:`EngineServer` runs here and keeps what the pack logs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.protobuf import empty_pb2  # type: ignore[import-untyped]
from pulumi.runtime.proto import analyzer_pb2_grpc, engine_pb2, engine_pb2_grpc

from .errors import PolicyPackError

_SEVERITIES = {engine_pb2.DEBUG: "debug", engine_pb2.INFO: "info",
               engine_pb2.WARNING: "warning", engine_pb2.ERROR: "error"}


class _EngineServicer(engine_pb2_grpc.EngineServicer):
    def __init__(self, sink: list[dict[str, str]]) -> None:
        self._sink = sink
        self._root = ""

    def Log(self, request: Any, context: Any) -> Any:
        self._sink.append({"severity": _SEVERITIES.get(request.severity, "info"),
                           "message": request.message, "urn": request.urn})
        return empty_pb2.Empty()

    def GetRootResource(self, request: Any, context: Any) -> Any:
        return engine_pb2.GetRootResourceResponse(urn=self._root)

    def SetRootResource(self, request: Any, context: Any) -> Any:
        self._root = request.urn
        return engine_pb2.SetRootResourceResponse()

    def RequirePulumiVersion(self, request: Any, context: Any) -> Any:
        return empty_pb2.Empty()


class EngineServer:
    """The Engine gRPC service on 127.0.0.1, collecting log entries."""

    def __init__(self) -> None:
        self.logs: list[dict[str, str]] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        engine_pb2_grpc.add_EngineServicer_to_server(_EngineServicer(self.logs), self._server)
        port = self._server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{port}"
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None)


class PolicyPackProcess:
    """A running pack: ``python -m pulumi.policy <engine> .`` with cwd = the pack directory."""

    def __init__(self, pack_dir: Path, env: dict[str, str], engine: EngineServer,
                 python: str = sys.executable, start_timeout: float = 60.0) -> None:
        self.pack_dir = pack_dir.resolve()
        if not (self.pack_dir / "PulumiPolicy.yaml").is_file():
            raise PolicyPackError(f"{pack_dir} is not a policy pack (no PulumiPolicy.yaml)",
                                  pack=str(pack_dir))
        self.engine = engine
        self._stderr: list[str] = []
        self.process = subprocess.Popen(
            [python, "-m", "pulumi.policy", engine.address, "."],
            cwd=self.pack_dir,
            # the pack prints its port with a plain print(): on a pipe, unflushed until exit
            # unless unbuffered (GitHub's runners do not set PYTHONUNBUFFERED)
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._port: str | None = None
        self._ready = threading.Event()
        self._start_timeout = start_timeout
        threading.Thread(target=self._read_port, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self._channel: grpc.Channel | None = None

    def _read_port(self) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode().strip()
        self._port = line if line.isdigit() else None
        self._ready.set()
        for _ in self.process.stdout:  # keep the pipe drained
            pass

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            self._stderr.append(raw.decode(errors="replace"))

    def stderr_tail(self, lines: int = 20) -> str:
        return "".join(self._stderr[-lines:])

    def stub(self) -> analyzer_pb2_grpc.AnalyzerStub:
        """The Analyzer client, once the pack has printed its port."""
        if self._channel is None:
            if not self._ready.wait(self._start_timeout) or self._port is None:
                self.process.poll()
                raise PolicyPackError(
                    f"policy pack {self.pack_dir} did not start "
                    f"(exit {self.process.returncode}): {self.stderr_tail().strip()[-2000:]}",
                    pack=str(self.pack_dir))
            self._channel = grpc.insecure_channel(
                f"127.0.0.1:{self._port}",
                options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)])
        return analyzer_pb2_grpc.AnalyzerStub(self._channel)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> PolicyPackProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
