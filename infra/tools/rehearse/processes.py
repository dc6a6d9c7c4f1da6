"""The apps as real processes on 127.0.0.1: start, wait for readiness, stop (always).

Each app runs in its own session (process group), so a Ctrl-C in the terminal reaches only the
rehearsal, which then stops every app itself: SIGTERM to the group, as ACA does at a revision's
end, and SIGKILL after a grace period. Output goes to one log file per app; a failure quotes its
tail.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from infra.tools.rehearse.invocation import AppInvocation, RehearsalError

__all__ = ["AppProcess", "start_app", "stop_all"]

GRACE_S = 5.0
TAIL_LINES = 15


@dataclass
class AppProcess:
    app: AppInvocation
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def tail(self) -> str:
        self.log.flush()
        lines = self.log_path.read_text(errors="replace").splitlines()[-TAIL_LINES:]
        return "\n".join(f"    | {line}" for line in lines) or "    | (no output)"

    def wait_ready(self, deadline_s: float) -> float:
        """Seconds until the readiness path answered 2xx (or, without ingress, the process is
        still up after a second). Raises RehearsalError when it exits or the deadline passes."""
        start = time.monotonic()
        path = self.app.readiness_path or self.app.health_path
        last = "no answer yet"
        while True:
            code = self.process.poll()
            if code is not None:
                raise RehearsalError("app-exited", f"app {self.app.name!r} exited with {code} "
                                     f"before it was ready; its log ({self.log_path}):\n"
                                     f"{self.tail()}")
            elapsed = time.monotonic() - start
            if self.app.base_url is None or path is None:
                if elapsed >= 1.0:
                    return elapsed
            else:
                try:
                    with urllib.request.urlopen(self.app.base_url + path, timeout=2) as resp:
                        if 200 <= resp.status < 300:
                            return elapsed
                        last = f"HTTP {resp.status}"
                except urllib.error.HTTPError as e:
                    last = f"HTTP {e.code}"
                except OSError as e:
                    last = type(e).__name__
            if elapsed > deadline_s:
                raise RehearsalError("app-not-ready", f"app {self.app.name!r} was not ready on "
                                     f"{path or 'its process'} within {deadline_s:g}s ({last}); "
                                     f"its log ({self.log_path}):\n{self.tail()}")
            time.sleep(0.1)


def start_app(app: AppInvocation, base_env: Mapping[str, str], cwd: Path,
              log_dir: Path) -> AppProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{app.name}.log"
    log = log_path.open("wb")
    try:
        process = subprocess.Popen(app.argv, cwd=cwd, env={**base_env, **app.env},
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    except OSError as e:
        log.close()
        raise RehearsalError("app-start-failed", f"app {app.name!r}: cannot run "
                             f"{app.argv[0]!r}: {e.strerror or e} (is it installed here?)"
                             ) from None
    return AppProcess(app, process, log_path, log)


def _signal(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def stop_all(apps: list[AppProcess]) -> list[str]:
    """Stop every app (SIGTERM, then SIGKILL after the grace period); how each one ended."""
    for proc in apps:
        if proc.process.poll() is None:
            _signal(proc.process, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    ended: list[str] = []
    for proc in apps:
        try:
            code = proc.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            how = f"exited {code}"
        except subprocess.TimeoutExpired:
            _signal(proc.process, signal.SIGKILL)
            proc.process.wait()
            how = f"killed after {GRACE_S:g}s"
        # anything left in the app's group (a worker it forked) goes too
        _signal(proc.process, signal.SIGKILL)
        proc.log.close()
        ended.append(f"{proc.app.name}: {how}")
    return ended
