"""DATABASE_URL as a literal (secret output) env value, and a literal ACA secret."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import pulumi
from _lib.stack import IMAGE, build  # noqa: F401

build(app_literal_env={"DATABASE_URL_RO": pulumi.Output.secret("postgresql://app:hunter2@db/app")},
      job_secret_value="postgresql://migrator:hunter2@db/app")
