"""Stack outputs and config through the Pulumi CLI, behind seams that tests replace."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.errors import InfraError, ReleaseError
from infra.release import AcceptedRelease, parse_ledger

PROJECT = "gated-release"
KEY_SHA = f"{PROJECT}:releaseSha"
KEY_IMAGE = f"{PROJECT}:releaseImage"
KEY_FROM = f"{PROJECT}:promotesFrom"
KEY_ACCEPT = f"{PROJECT}:acceptRelease"
KEY_REPLAY = f"{PROJECT}:replay"
LEDGER_OUTPUT = "acceptedReleases"
OPS_PATH = "/api/ops/migrations"

# A full SHA-1 or SHA-256 commit id: CI records github.sha, so a short SHA would never match.
SHA_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
IMAGE_RE = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")

EXIT_OK, EXIT_USAGE, EXIT_REFUSED, EXIT_BACKEND, EXIT_DRIFT = 0, 2, 3, 4, 5


class PromoteError(InfraError):
    """A refusal or failure: a stable ``code``, the process exit status, context for the message."""

    def __init__(self, code: str, message: str, exit_code: int, **context: Any) -> None:
        super().__init__(code, message, **context)
        self.exit_code = exit_code


def exit_code_of(error: InfraError) -> int:
    if isinstance(error, PromoteError):
        return error.exit_code
    if error.code == "release-ledger-invalid":
        return EXIT_BACKEND
    return EXIT_REFUSED if isinstance(error, ReleaseError) else EXIT_USAGE


def check_sha(sha: str) -> str:
    if not SHA_RE.fullmatch(sha):
        raise PromoteError(
            "invalid-sha",
            f"{sha!r} is not a full commit SHA; pass the 40-character lowercase hex SHA "
            "(git rev-parse <ref>)",
            EXIT_USAGE,
            sha=sha,
        )
    return sha


def check_image(image: str) -> str:
    if not IMAGE_RE.fullmatch(image):
        raise PromoteError(
            "invalid-image",
            f"{image!r} is not pinned by digest; pass registry/repository@sha256:<64 hex>",
            EXIT_USAGE,
            image=image,
        )
    return image


def _recent(ledger: Sequence[AcceptedRelease]) -> str:
    return ", ".join(e.sha[:12] for e in ledger[-5:][::-1]) or "none"


# -- the Pulumi seam ---------------------------------------------------------------------------

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _subprocess_runner(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise PromoteError(
            "pulumi-missing",
            f"{argv[0]} not found; install the Pulumi CLI or pass --ledger-file for offline use",
            EXIT_BACKEND,
        ) from exc


@dataclass
class Backend:
    """Stack outputs and stack config, from the Pulumi CLI or (outputs only) a JSON ledger file.

    The ledger file maps a stack name to what ``pulumi stack output --json --stack <name>``
    prints, e.g. ``{"dev": {"acceptedReleases": [...], "release": {"sha": ..., "image": ...},
    "appUrls": {"api": "<fqdn>"}}}`` (the exports of infra/program.py).
    """

    pulumi: str = "pulumi"
    project_dir: Path = Path(".")
    ledger_file: Path | None = None
    run: Runner = _subprocess_runner
    calls: list[list[str]] = field(default_factory=list)

    def _pulumi(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [self.pulumi, *args, "--cwd", str(self.project_dir), "--non-interactive"]
        self.calls.append(argv)
        return self.run(argv)

    def _checked(self, *args: str) -> str:
        proc = self._pulumi(*args)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise PromoteError(
                "pulumi-failed",
                f"`pulumi {' '.join(args)}` exited {proc.returncode}: "
                f"{detail[-1] if detail else 'no output'}",
                EXIT_BACKEND,
            )
        return proc.stdout

    def outputs(self, stack: str) -> dict[str, Any]:
        if self.ledger_file is not None:
            try:
                data = json.loads(self.ledger_file.read_text())
            except (OSError, ValueError) as exc:
                raise PromoteError(
                    "ledger-unreadable", f"{self.ledger_file}: {exc}", EXIT_BACKEND
                ) from exc
            value = data.get(stack, {}) if isinstance(data, dict) else None
        else:
            text = self._checked("stack", "output", "--json", "--stack", stack)
            try:
                value = json.loads(text or "{}")
            except ValueError as exc:
                raise PromoteError(
                    "ledger-unreadable", f"stack {stack}: outputs are not JSON", EXIT_BACKEND
                ) from exc
        if not isinstance(value, dict):
            raise PromoteError(
                "ledger-unreadable", f"stack {stack}: outputs are not an object", EXIT_BACKEND
            )
        return value

    def ledger(self, stack: str) -> tuple[AcceptedRelease, ...]:
        return parse_ledger(self.outputs(stack).get(LEDGER_OUTPUT))

    def config_get(self, stack: str, key: str) -> str | None:
        proc = self._pulumi("config", "get", key, "--json", "--stack", stack)
        if proc.returncode != 0:
            if "not found" in (proc.stderr + proc.stdout):
                return None
            raise PromoteError(
                "pulumi-failed", f"`pulumi config get {key}` failed: {proc.stderr.strip()}",
                EXIT_BACKEND,
            )
        value = json.loads(proc.stdout).get("value")
        return None if value is None else str(value)

    def config_set(self, stack: str, key: str, value: str) -> None:
        self._checked("config", "set", key, value, "--stack", stack)

    def config_rm(self, stack: str, key: str) -> None:
        self._checked("config", "rm", key, "--stack", stack)

    def stack_file_config(self, stack: str) -> dict[str, Any]:
        """The committed ``Pulumi.<stack>.yaml`` config (no CLI); empty when there is none."""
        path = self.project_dir / f"Pulumi.{stack.rsplit('/', 1)[-1]}.yaml"
        if not path.is_file():
            return {}
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        return dict(config) if isinstance(config, dict) else {}

    def promotes_from(self, stack: str) -> str | None:
        """``gated-release:promotesFrom`` from the committed stack file."""
        value = self.stack_file_config(stack).get(KEY_FROM)
        return str(value) if value else None


# -- the operations ------------------------------------------------------------------------------
