"""Apps migrate in an init container (alembic)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _lib.stack import IMAGE, build
from pulumi_azure_native import app

build(app_init_containers=[app.InitContainerArgs(
    name="migrate", image=IMAGE, command=["alembic", "upgrade", "head"])])
