"""The preview's result: resources as the engine registered them, and the policy violations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .packconfig import PolicyInfo

SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
UNKNOWN_SENTINELS = frozenset({
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7", "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9", "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
    "030794c1-ac77-496b-92df-f27374a8bd58", "e48ece36-62e2-4504-bad9-02848725956a",
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
})

# What an offline preview cannot see, printed with every report.
LIMITS = (
    "the providers' Check step does not run: auto-names (e.g. resourceGroupName from a "
    "ResourceGroup without an explicit name), location and other provider defaults stay unknown "
    "or absent, and provider-side validation errors are not reported",
    "no Azure state is read: every resource is previewed as a create, outputs are unknown, "
    "replacements and diffs against the live stack are not computed",
    "invokes get offline placeholders (listed below); a StackReference reads the outputs given "
    "with --stack-outputs, or none (a stack never deployed)",
    "encrypted (secure:) stack config cannot be decrypted and is passed as '[secret]'",
    "AnalyzeStack gets the registered inputs; the engine sends each resource's outputs (for an "
    "unchanged resource on a deployed stack, the state's Azure-shaped values), so stack policies "
    "that read provider-computed fields would see them only under the CLI",
)


@dataclass(frozen=True)
class Registration:
    """One resource as the engine saw its RegisterResource (or ReadResource) request."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    dependencies: tuple[str, ...]
    property_dependencies: dict[str, list[str]]
    inputs: dict[str, Any]
    provider: str = ""
    version: str = ""
    read: bool = False
    protect: bool = False
    ignore_changes: tuple[str, ...] = ()
    additional_secret_outputs: tuple[str, ...] = ()
    delete_before_replace: bool | None = None
    custom_timeouts: dict[str, str] = field(default_factory=dict)
    synthetic: bool = False  # a default provider the engine would create

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Registration:
        return cls(
            urn=data["urn"], type=data["type"], name=data["name"], custom=data["custom"],
            parent=data["parent"], dependencies=tuple(data["dependencies"]),
            property_dependencies=data["property_dependencies"], inputs=data["inputs"],
            provider=data.get("provider", ""), version=data.get("version", ""),
            read=data.get("read", False), protect=data.get("protect", False),
            ignore_changes=tuple(data.get("ignore_changes", ())),
            additional_secret_outputs=tuple(data.get("additional_secret_outputs", ())),
            delete_before_replace=data.get("delete_before_replace"),
            custom_timeouts=data.get("custom_timeouts", {}),
        )

    def redacted_inputs(self) -> Any:
        return redact(self.inputs)


def redact(value: Any) -> Any:
    """Inputs for humans and JSON: secrets as "[secret]", unknowns as "[unknown]"."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG_KEY) == SECRET_SIG:
            return "[secret]"
        return {k: redact(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str) and value in UNKNOWN_SENTINELS:
        return "[unknown]"
    return value


@dataclass(frozen=True)
class Violation:
    policy: str
    pack: str
    level: str  # advisory | mandatory (remediate is reported as mandatory)
    urn: str
    message: str
    description: str = ""

    def to_json(self) -> dict[str, str]:
        return {"policy": self.policy, "pack": self.pack, "level": self.level, "urn": self.urn,
                "message": self.message}


@dataclass
class PreviewResult:
    project: str
    stack: str
    resources: list[Registration]
    violations: list[Violation]
    policies: dict[str, list[PolicyInfo]]  # pack name -> policies with effective levels
    invokes: list[str] = field(default_factory=list)
    logs: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    @property
    def exit_code(self) -> int:
        return 1 if self.mandatory else 0

    def resource(self, urn: str) -> Registration | None:
        return next((r for r in self.resources if r.urn == urn), None)

    def find(self, type_: str, name: str | None = None) -> list[Registration]:
        return [r for r in self.resources
                if r.type == type_ and (name is None or r.name == name)]

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "stack": self.stack,
            "resources": [
                {"urn": r.urn, "type": r.type, "name": r.name, "custom": r.custom,
                 "parent": r.parent or None, "dependencies": list(r.dependencies),
                 "propertyDependencies": r.property_dependencies,
                 "provider": r.provider or None, "read": r.read, "synthetic": r.synthetic,
                 "inputs": r.redacted_inputs()}
                for r in self.resources
            ],
            "violations": [v.to_json() for v in self.violations],
            "summary": {
                "resources": len([r for r in self.resources if not r.synthetic]),
                "mandatory": len(self.mandatory),
                "advisory": len(self.violations) - len(self.mandatory),
            },
            "policies": {pack: [{"name": p.name, "enforcementLevel": p.enforcement_level}
                                for p in infos] for pack, infos in self.policies.items()},
            "invokes": self.invokes,
            "warnings": self.warnings,
            "limits": list(LIMITS),
            "timings": self.timings,
        }
