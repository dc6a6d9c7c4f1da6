"""The preview-like text report: resource tree, violations, summary, what offline cannot see."""

from __future__ import annotations

from collections import defaultdict

from .errors import PreviewError, ProgramError
from .model import LIMITS, PreviewResult, Registration


def _short(urn: str) -> str:
    # "<type>::<name>" is what a reader recognises; the stack/project prefix is the same everywhere.
    parts = urn.split("::")
    return "::".join(parts[2:]) if len(parts) >= 4 else urn


def _tree_lines(result: PreviewResult) -> list[str]:
    children: dict[str, list[Registration]] = defaultdict(list)
    shown = [r for r in result.resources if not r.synthetic]
    urns = {r.urn for r in shown}
    roots: list[Registration] = []
    for r in shown:
        if r.parent and r.parent in urns:
            children[r.parent].append(r)
        else:
            roots.append(r)
    lines: list[str] = []

    def visit(r: Registration, depth: int) -> None:
        op = "read" if r.read else "+"
        deps = [d.split("::")[-1] for d in r.dependencies if d != r.parent]
        suffix = f"  (depends on: {', '.join(sorted(set(deps)))})" if deps else ""
        lines.append(f"  {'    ' * depth}{op:<5}{r.type:<48} {r.name}{suffix}")
        for child in children.get(r.urn, []):
            visit(child, depth + 1)

    for root in roots:
        visit(root, 0)
    return lines


def render(result: PreviewResult) -> str:
    out = [f"Previewing {result.project}/{result.stack} offline (mock engine, dry run)", "",
           "     Type                                             Name"]
    out.extend(_tree_lines(result))
    out.append("")
    if result.violations:
        out.append("Policy Violations:")
        for v in result.violations:
            head, _, rest = v.message.partition("\n")
            out.append(f"    [{v.level}]  {v.pack}/{v.policy}  ({_short(v.urn) or 'stack'})")
            out.append(f"    {v.urn or '(the stack)'}")
            for line in (rest or head).splitlines():
                out.append(f"      {line}")
        out.append("")
    for warning in result.warnings:
        out.append(f"warning: {warning}")
    for log in result.logs:
        if log["severity"] in ("warning", "error"):
            out.append(f"{log['severity']}: {log['message']}")
    created = len([r for r in result.resources if not r.synthetic and not r.read])
    mandatory = len(result.mandatory)
    advisory = len(result.violations) - mandatory
    policies = sum(len(p) for p in result.policies.values())
    out.append("Summary:")
    out.append(f"    + {created} to create (offline: every resource previews as a create)")
    out.append(f"    {policies} policies in {len(result.policies)} pack(s): {mandatory} mandatory, "
               f"{advisory} advisory violation(s)")
    out.append(f"    {result.timings.get('totalSeconds', 0):.2f}s")
    out.append("")
    out.append("Offline preview cannot see:")
    for limit in LIMITS:
        out.append(f"    - {limit}")
    if result.invokes:
        out.append(f"    - invokes answered with placeholders: {', '.join(result.invokes)}")
    out.append("")
    out.append("FAILED: mandatory policy violations" if mandatory else "OK: no mandatory violations")
    return "\n".join(out)


def render_error(error: PreviewError) -> str:
    lines = [f"error [{error.code}]: {error.message}"]
    if isinstance(error, ProgramError) and error.frames:
        lines.insert(0, "Program traceback (your code only):")
        lines[1:1] = [f.rstrip("\n") for f in error.frames]
    return "\n".join(lines)
