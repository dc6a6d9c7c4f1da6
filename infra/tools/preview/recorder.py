"""The resource monitor the program talks to during an offline preview: it records, it does not create.

Subclasses pulumi's ``MockMonitor`` but answers like the engine does during a preview of new
resources: the URN is built the engine's way (``MockMonitor.make_urn`` drops all but the last parent
type and puts ``pulumi:pulumi:Stack$`` in front of top-level resources), custom resources get no ID
and only their top-level scalar inputs echoed back as outputs (everything else stays unknown),
and components get nothing. Each RegisterResource request is kept as the engine received it: raw input
struct with unknown sentinels and secret markers, parent, dependencies, propertyDependencies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from google.protobuf import json_format, struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.proto import resource_pb2

ROOT_STACK_TYPE = "pulumi:pulumi:Stack"

# Invokes a preview really sends to the provider; offline they get placeholders, and the report
# lists every invoke so nobody mistakes a placeholder for Azure's answer.
_ZERO = "00000000-0000-0000-0000-000000000000"
INVOKE_PLACEHOLDERS: dict[str, dict[str, Any]] = {
    "azure-native:authorization:getClientConfig": {
        "clientId": _ZERO, "objectId": _ZERO, "subscriptionId": _ZERO, "tenantId": _ZERO,
    },
    "azure-native:authorization:getClientToken": {"token": "offline-preview"},
}


@dataclass
class Recorded:
    """One RegisterResource/ReadResource request as the engine sees it (JSON-ready)."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    inputs: dict[str, Any]  # the request's struct as JSON, sentinels and markers kept
    provider: str = ""
    version: str = ""
    read: bool = False
    protect: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    additional_secret_outputs: list[str] = field(default_factory=list)
    delete_before_replace: bool | None = None
    custom_timeouts: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _NoMocks(Mocks):
    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], None]:
        return dict(INVOKE_PLACEHOLDERS.get(args.token, {})), None

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return "", {}


def engine_urn(stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """The URN the engine builds (resource.NewURN): parent's full qualified type, except the stack."""
    qualified = type_
    if parent:
        parent_type = parent.split("::")[2]
        if parent_type != ROOT_STACK_TYPE:
            qualified = f"{parent_type}${type_}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


class RecordingMonitor(MockMonitor):
    """Records every registration; see the module docstring for how it answers."""

    def __init__(self, stack: str, project: str,
                 stack_outputs: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__(_NoMocks())
        self.stack = stack
        self.project = project
        self.stack_outputs = stack_outputs or {}
        self.recorded: list[Recorded] = []
        self.invokes: list[str] = []
        self._urns: set[str] = set()

    def _record(self, request: Any, urn: str, read: bool) -> None:
        if urn in self._urns:
            raise ValueError(f"duplicate resource URN {urn!r}; resource names must be unique "
                             "per type and parent")
        self._urns.add(urn)
        inputs = json_format.MessageToDict(request.properties if read else request.object)
        prop_deps: dict[str, list[str]] = {}
        deps = list(request.dependencies)
        if not read:
            prop_deps = {k: list(v.urns) for k, v in request.propertyDependencies.items()}
        timeouts: dict[str, str] = {}
        if not read and request.HasField("customTimeouts"):
            t = request.customTimeouts
            timeouts = {k: v for k, v in (("create", t.create), ("update", t.update),
                                          ("delete", t.delete)) if v}
        self.recorded.append(Recorded(
            urn=urn,
            type=request.type,
            name=request.name,
            custom=True if read else bool(request.custom),
            parent=request.parent,
            dependencies=deps,
            property_dependencies=prop_deps,
            inputs=inputs,
            provider=request.provider,
            version=request.version,
            read=read,
            protect=False if read else bool(request.protect),
            ignore_changes=[] if read else list(request.ignoreChanges),
            additional_secret_outputs=list(request.additionalSecretOutputs),
            delete_before_replace=(None if read or not request.deleteBeforeReplaceDefined
                                   else bool(request.deleteBeforeReplace)),
            custom_timeouts=timeouts,
        ))

    def RegisterResource(self, request: Any) -> Any:
        urn = engine_urn(self.stack, self.project, request.parent, request.type, request.name)
        self._record(request, urn, read=False)
        if not request.custom:
            return resource_pb2.RegisterResourceResponse(urn=urn)
        # A preview of a create: no ID yet and every output unknown, except top-level scalar
        # inputs echoed back (an output of the same name has the same value). Nested inputs are
        # not echoed: the provider reshapes them into outputs (a list of identity IDs becomes a
        # map of identity objects), which only its own Check/Create can do.
        echoed = struct_pb2.Struct()
        for key, value in request.object.fields.items():
            if value.WhichOneof("kind") in ("string_value", "number_value", "bool_value"):
                echoed.fields[key].CopyFrom(value)
        return resource_pb2.RegisterResourceResponse(urn=urn, id="", object=echoed)

    def ReadResource(self, request: Any) -> Any:
        urn = engine_urn(self.stack, self.project, request.parent, request.type, request.name)
        self._record(request, urn, read=True)
        if request.type == "pulumi:pulumi:StackReference":
            return resource_pb2.ReadResourceResponse(urn=urn, properties=self._stack_reference(
                request))
        # Offline there is nothing to read (.get() lookups): every output stays unknown.
        return resource_pb2.ReadResourceResponse(urn=urn)

    def _stack_reference(self, request: Any) -> struct_pb2.Struct:
        """A referenced stack's outputs: from --stack-outputs, else a stack never deployed.

        The engine reads real outputs during a preview, so they are known values there; offline
        the same holds for the outputs given, and a stack not given answers like a new stack
        (no outputs), never with unknowns.
        """
        name = request.properties.fields["name"].string_value if "name" in \
            request.properties.fields else request.id
        outputs = self.stack_outputs.get(name)
        if outputs is None:
            outputs = self.stack_outputs.get(name.rsplit("/", 1)[-1], {})
        result = struct_pb2.Struct()
        result.update({"name": name, "outputs": outputs, "secretOutputNames": []})
        return result

    def Invoke(self, request: Any) -> Any:
        if request.tok != "pulumi:pulumi:getResource":
            self.invokes.append(request.tok)
        return super().Invoke(request)  # type: ignore[no-untyped-call]

    def GetDeploymentInfo(self, request: Any) -> Any:
        info = super().GetDeploymentInfo(request)  # type: ignore[no-untyped-call]
        # Without resource references the SDK sends IDs/URNs in their place, which is what the
        # engine hands analyzers (it marshals with KeepResources=false).
        features = [f for f in info.supportedFeatures
                    if f != resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES]
        return resource_pb2.DeploymentInfo(supportedFeatures=features)

    def SupportsFeature(self, request: Any) -> Any:
        supported = request.id not in ("outputValues", "resourceReferences")
        return type("SupportsFeatureResponse", (object,), {"hasSupport": supported})


class LogCollector:
    """Stands in for the engine's Log endpoint inside the program process."""

    SEVERITIES = {0: "debug", 1: "info", 2: "warning", 3: "error"}

    def __init__(self) -> None:
        self.entries: list[dict[str, str]] = []

    def Log(self, request: Any) -> None:
        self.entries.append({
            "severity": self.SEVERITIES.get(request.severity, "info"),
            "message": request.message,
            "urn": request.urn,
        })
