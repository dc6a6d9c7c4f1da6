"""Apps switch the start-up migration on with WEB_DB_MIGRATE_ENABLED=1."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _lib.stack import IMAGE, build  # noqa: F401

build(app_env={"WEB_DB_MIGRATE_ENABLED": "1"})
