"""Compliant baseline: one migration job, a gate depending on it, gated apps, pinned images."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _lib.stack import build

build()
