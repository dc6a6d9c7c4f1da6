"""Apps do not depend on the migration run; the run does not depend on the job."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _lib.stack import IMAGE, build  # noqa: F401

build(app_depends_on_gate=False, gate_depends_on_job=False)
