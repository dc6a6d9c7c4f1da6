"""The migration job may run twice: parallelism 2, ACA retries, short timeout."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _lib.stack import IMAGE, build  # noqa: F401

build(parallelism=2, replica_retry_limit=3, replica_timeout=600, trigger_type="Schedule")
