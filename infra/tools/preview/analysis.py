"""Talking to a policy pack as the engine does: ConfigureStack, GetAnalyzerInfo, Configure,
Analyze per resource, AnalyzeStack with the whole graph.

Properties are marshalled like the engine's analyzer client (KeepUnknowns, KeepSecrets,
SkipInternalKeys; resource references already arrive as IDs/URNs). A diagnostic from ``Analyze``
without a URN (pulumi-policy's "can't run policy during preview" notice) is attributed to the
resource being analyzed, so every violation names a resource.
"""

from __future__ import annotations

from typing import Any

import grpc  # type: ignore[import-untyped]
from google.protobuf import empty_pb2, json_format, struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime.proto import analyzer_pb2

from .errors import PolicyPackError
from .model import Registration, Violation
from .packconfig import PolicyConfig, PolicyInfo
from .policypack import PolicyPackProcess

_LEVEL_NAMES = {analyzer_pb2.ADVISORY: "advisory", analyzer_pb2.MANDATORY: "mandatory",
                analyzer_pb2.REMEDIATE: "remediate", analyzer_pb2.DISABLED: "disabled"}
_LEVEL_VALUES = {v: k for k, v in _LEVEL_NAMES.items()}
_SEVERITY_NAMES = {analyzer_pb2.POLICY_SEVERITY_LOW: "low",
                   analyzer_pb2.POLICY_SEVERITY_MEDIUM: "medium",
                   analyzer_pb2.POLICY_SEVERITY_HIGH: "high",
                   analyzer_pb2.POLICY_SEVERITY_CRITICAL: "critical"}


def _strip_internal(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_internal(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_strip_internal(v) for v in value]
    return value


def _struct(props: dict[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(_strip_internal(props))
    return result


class Analyzer:
    """One pack, driven through its gRPC interface."""

    def __init__(self, pack: PolicyPackProcess) -> None:
        self.pack = pack
        self.name = ""
        self.policies: list[PolicyInfo] = []
        self.initial_config: dict[str, PolicyConfig] = {}

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self.pack.stub(), method)(request, timeout=120)
        except grpc.RpcError as exc:
            detail = exc.details() if hasattr(exc, "details") else str(exc)
            raise PolicyPackError(
                f"policy pack {self.pack.pack_dir} failed {method}: {detail}\n"
                f"{self.pack.stderr_tail().strip()[-2000:]}", pack=str(self.pack.pack_dir),
                method=method) from exc

    def configure_stack(self, project: str, stack: str, config: dict[str, str]) -> None:
        request = analyzer_pb2.AnalyzerStackConfigureRequest(
            stack=stack, project=project, organization="organization", dry_run=True)
        for key, value in config.items():
            request.config[key] = value
        try:
            self.pack.stub().ConfigureStack(request, timeout=120)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:  # older packs: the CLI skips it too
                raise PolicyPackError(f"ConfigureStack failed: {exc.details()}") from exc

    def load_info(self) -> None:
        info = self._call("GetAnalyzerInfo", empty_pb2.Empty())
        self.name = info.name
        self.policies = []
        for p in info.policies:
            schema = json_format.MessageToDict(p.configSchema)
            self.policies.append(PolicyInfo(
                name=p.name,
                description=p.description,
                enforcement_level=_LEVEL_NAMES.get(p.enforcementLevel, "advisory"),
                config_schema={"properties": schema.get("properties", {}),
                               "required": list(p.configSchema.required)},
                severity=_SEVERITY_NAMES.get(p.severity, ""),
                remediation=p.remediation_steps,
                kind="stack" if p.policy_type == analyzer_pb2.POLICY_TYPE_STACK else "resource",
            ))
        self.initial_config = {
            k: PolicyConfig(_LEVEL_NAMES.get(v.enforcementLevel) if v.enforcementLevel else None,
                            json_format.MessageToDict(v.properties))
            for k, v in info.initialConfig.items()
        }

    def configure(self, config: dict[str, PolicyConfig]) -> None:
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, cfg in config.items():
            entry = request.policyConfig[name]
            entry.enforcementLevel = _LEVEL_VALUES[cfg.enforcement_level or "advisory"]
            entry.properties.update(cfg.properties)
        self._call("Configure", request)

    def _options(self, r: Registration) -> analyzer_pb2.AnalyzerResourceOptions:
        timeouts = analyzer_pb2.AnalyzerResourceOptions.CustomTimeouts()
        for key in ("create", "update", "delete"):
            raw = r.custom_timeouts.get(key)
            if raw:
                setattr(timeouts, key, _seconds(raw))
        return analyzer_pb2.AnalyzerResourceOptions(
            protect=r.protect,
            ignoreChanges=list(r.ignore_changes),
            deleteBeforeReplace=bool(r.delete_before_replace),
            deleteBeforeReplaceDefined=r.delete_before_replace is not None,
            additionalSecretOutputs=list(r.additional_secret_outputs),
            customTimeouts=timeouts,
            parent=r.parent,
        )

    def _provider(self, r: Registration, by_urn: dict[str, Registration]
                  ) -> analyzer_pb2.AnalyzerProviderResource | None:
        if not r.provider:
            return None
        # A provider reference is "<urn>::<id>".
        prov = by_urn.get(r.provider.rsplit("::", 1)[0])
        if prov is None:
            return None
        return analyzer_pb2.AnalyzerProviderResource(
            type=prov.type, properties=_struct(prov.inputs), urn=prov.urn, name=prov.name)

    def analyze(self, resources: list[Registration]) -> list[Violation]:
        by_urn = {r.urn: r for r in resources}
        violations: list[Violation] = []
        for r in resources:
            if r.read or r.synthetic:
                continue
            request = analyzer_pb2.AnalyzeRequest(
                type=r.type, properties=_struct(r.inputs), urn=r.urn, name=r.name,
                options=self._options(r))
            provider = self._provider(r, by_urn)
            if provider is not None:
                request.provider.CopyFrom(provider)
            response = self._call("Analyze", request)
            violations.extend(self._violations(response, default_urn=r.urn))
        return violations

    def analyze_stack(self, resources: list[Registration]) -> list[Violation]:
        by_urn = {r.urn: r for r in resources}
        request = analyzer_pb2.AnalyzeStackRequest()
        for r in resources:
            item = request.resources.add()
            item.urn, item.type, item.name = r.urn, r.type, r.name
            item.properties.CopyFrom(_struct(r.inputs))
            item.options.CopyFrom(self._options(r))
            item.parent = r.parent
            item.dependencies.extend(r.dependencies)
            for key, urns in r.property_dependencies.items():
                if urns:
                    item.propertyDependencies[key].urns.extend(urns)
            provider = self._provider(r, by_urn)
            if provider is not None:
                item.provider.CopyFrom(provider)
        return self._violations(self._call("AnalyzeStack", request), default_urn="")

    def _violations(self, response: Any, default_urn: str) -> list[Violation]:
        result = []
        for d in response.diagnostics:
            # The diagnostic's own level counts, as in the engine (remediate reports mandatory).
            level = _LEVEL_NAMES.get(d.enforcementLevel, "advisory")
            if level == "remediate":
                level = "mandatory"
            result.append(Violation(policy=d.policyName, pack=d.policyPackName or self.name,
                                    level=level, urn=d.urn or default_urn, message=d.message,
                                    description=d.description))
        return result


def _seconds(text: str) -> float:
    """Go duration strings ('5m', '1h30m', '90s') to seconds, as customTimeouts carry them."""
    total, number = 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    for ch in text:
        if ch.isdigit() or ch == ".":
            number += ch
        elif ch in units and number:
            total, number = total + float(number) * units[ch], ""
    return total + (float(number) if number else 0.0)

