"""Runs a Pulumi program under the recording monitor, in its own process (the "language host").

``python -m infra.tools.preview.programhost REQUEST.json RESULT.json``. The request names the program
directory, project, stack and the program's main; config arrives the way the CLI passes it
(``PULUMI_CONFIG``, ``PULUMI_CONFIG_SECRET_KEYS`` in the environment). A fresh process per preview
sidesteps the SDK's process-wide state (the root stack that ``set_mocks`` keeps, the config cache,
modules the program imported), which is also how the CLI runs programs.
"""

from __future__ import annotations

import asyncio
import json
import os
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.mocks import MockSettings
from pulumi.runtime.stack import run_in_stack

from .recorder import LogCollector, RecordingMonitor


def _user_frames(exc: BaseException, program_dir: Path) -> list[str]:
    """Traceback lines of the frames inside the program (not the SDK, not this host)."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = Path(__file__).resolve().parent
    keep = []
    for frame in frames:
        path = Path(frame.filename).resolve()
        if "site-packages" in path.parts or path.is_relative_to(own):
            continue
        if path.is_relative_to(program_dir):
            keep.append(frame)
    if not keep and frames:
        # No frame of the program (the error surfaced in an SDK callback): show the innermost.
        return ["  (no frame of the program; innermost frame:)\n",
                *traceback.format_list(frames[-1:])]
    return traceback.format_list(keep)


def _describe(exc: BaseException, program_dir: Path) -> dict[str, Any]:
    # Exceptions raised inside an apply resurface wrapped; report the innermost cause.
    inner = exc
    while inner.__cause__ is not None and isinstance(inner, pulumi.RunError | RuntimeError):
        inner = inner.__cause__
    return {
        "type": type(inner).__name__,
        "message": str(inner),
        "frames": _user_frames(inner, program_dir),
    }


def run(request: dict[str, Any]) -> dict[str, Any]:
    program_dir = Path(request["programDir"]).resolve()
    main = Path(request.get("main") or program_dir)
    main = main if main.is_absolute() else program_dir / main
    monitor = RecordingMonitor(stack=request["stack"], project=request["project"],
                               stack_outputs=request.get("stackOutputs"))
    logs = LogCollector()
    pulumi_settings.configure(MockSettings(  # type: ignore[no-untyped-call]
        monitor=monitor,
        engine=logs,
        project=request["project"],
        stack=request["stack"],
        organization=request.get("organization", "organization"),
        root_directory=str(program_dir),
        dry_run=True,
        parallel=1,
        monitor_features=set(),
        callbacks=None,
    ))
    # set_mocks would keep a root stack left over from an earlier run; start from none.
    pulumi_settings.ROOT.set(None)
    os.chdir(program_dir)
    sys.path.insert(0, str(main if main.is_dir() else main.parent))
    error: dict[str, Any] | None = None
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def program() -> None:
        runpy.run_path(str(main), run_name="__main__")

    try:
        loop.run_until_complete(run_in_stack(program))
    except SystemExit as exc:
        if exc.code not in (0, None):
            error = {"type": "SystemExit", "message": f"program exited with {exc.code}",
                     "frames": []}
    except BaseException as exc:
        error = _describe(exc, program_dir)
    finally:
        loop.close()
    errors_logged = [e for e in logs.entries if e["severity"] == "error"]
    if error is None and errors_logged:
        error = {"type": "pulumi.log.error", "message": errors_logged[0]["message"], "frames": []}
    return {
        "resources": [r.to_json() for r in monitor.recorded],
        "invokes": monitor.invokes,
        "logs": logs.entries,
        "error": error,
    }


def main(argv: list[str]) -> int:
    request_path, result_path = argv[1], argv[2]
    request = json.loads(Path(request_path).read_text())
    result = run(request)
    Path(result_path).write_text(json.dumps(result))
    return 0 if result["error"] is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
