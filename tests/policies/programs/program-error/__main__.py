"""A program that raises in user code (for the exit-2 path)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _lib.stack import IMAGE, build  # noqa: F401


def configure() -> dict:
    raise KeyError("apps")


configure()
