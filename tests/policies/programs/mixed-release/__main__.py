"""The apps run a different release image than the migration job."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _lib.stack import IMAGE, build  # noqa: F401

build(app_image="gatedrelease.azurecr.io/app@sha256:" + "b" * 64)
