"""The pack starts as the CLI starts it and describes every policy over gRPC."""

from __future__ import annotations

import os
import subprocess
import sys

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from infra.tools.preview import DEFAULT_PACK, EngineServer


def test_cli_style_start_and_analyzer_info(engine: EngineServer) -> None:
    from gated_policies import POLICIES

    env = {**os.environ, "PULUMI_PROJECT": "p", "PULUMI_STACK": "dev", "PULUMI_DRY_RUN": "true",
           "PULUMI_CONFIG": "{}"}
    process = subprocess.Popen([sys.executable, "-m", "pulumi.policy", engine.address, "."],
                               cwd=DEFAULT_PACK, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        port = process.stdout.readline().decode().strip()
        assert port.isdigit()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            info = analyzer_pb2_grpc.AnalyzerStub(channel).GetAnalyzerInfo(empty_pb2.Empty())
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert info.name == "gated-release" and info.supportsConfig
    by_name = {p.name: p for p in info.policies}
    assert set(by_name) == {p.name for p in POLICIES}
    for spec in POLICIES:
        got = by_name[spec.name]
        assert got.enforcementLevel == analyzer_pb2.MANDATORY
        assert got.description and got.remediation_steps
        assert got.severity != analyzer_pb2.POLICY_SEVERITY_UNSPECIFIED
        assert set(got.configSchema.properties.keys()) == set(spec.config)
        assert "onUnknown" in got.configSchema.properties
        kind = (analyzer_pb2.POLICY_TYPE_STACK if spec.kind == "stack"
                else analyzer_pb2.POLICY_TYPE_RESOURCE)
        assert got.policy_type == kind
        assert spec.name == spec.name.lower() and " " not in spec.name


def test_pack_main_only_builds_the_pack() -> None:
    source = (DEFAULT_PACK / "__main__.py").read_text()
    assert "PolicyPack(" in source and "def " not in source
