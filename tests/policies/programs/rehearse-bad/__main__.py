"""Compliant stack with its own db/migrations, for the rehearsal tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _lib.stack import build

build()
