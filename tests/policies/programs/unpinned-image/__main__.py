"""Apps and job run a tag, not a digest."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _lib.stack import IMAGE, build  # noqa: F401

build(app_image="gatedrelease.azurecr.io/app:latest", job_image="gatedrelease.azurecr.io/app:latest")
