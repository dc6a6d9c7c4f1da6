"""Apps run the migration hidden in a shell before exec'ing the server."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _lib.stack import IMAGE, build  # noqa: F401

build(app_command=["sh", "-c", "python -m migration up && exec gunicorn app:app"])
