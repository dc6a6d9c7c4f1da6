"""What counts as a migration command, enable flag, credential or pinned image (pure)."""

from __future__ import annotations

import pytest
from gated_policies import patterns

DEFAULTS = patterns.DEFAULT_MIGRATION_COMMAND_PATTERNS

MIGRATIONS = [
    "python -m migration up --check-order --lock",
    "python -Im migration up",
    "/usr/bin/python3.11 -u -B -m migration up --lock",
    "sh -c python -m migration up && exec gunicorn app:app",
    "/bin/sh -c 'cd /app && python3 -m migration up; exec uvicorn main:app'",
    "/usr/local/bin/python3.11 -u -m migration --json up",
    "gated-migrate up --lock",
    "alembic upgrade head",
    "alembic -c /app/alembic.ini upgrade head",
    "poetry run alembic upgrade head",
    "npx prisma migrate deploy",
    "node-pg-migrate up",
    "npx node-pg-migrate -m migrations",
    "flyway -url=jdbc:postgresql://db/app migrate",
    "npx knex migrate:latest",
    "npx drizzle-kit migrate",
    "drizzle-kit push",
    "dbmate up",
    "dbmate --wait migrate",
    "python manage.py migrate --noinput",
    "bash -lc 'python manage.py migrate && gunicorn site.wsgi'",
    "bundle exec rails db:migrate",
    "bin/rails db:prepare && bin/rails server",
    "rake db:migrate",
    "npx sequelize-cli db:migrate",
    "npm run migrate",
    "yarn db:migrate",
    "goose -dir db postgres $DATABASE_URL up",
    "migrate -path /m -database $DATABASE_URL up",
    "liquibase update",
    "atlas migrate apply --url $DATABASE_URL",
    "dotnet ef database update",
]

NOT_MIGRATIONS = [
    "gunicorn app:app",
    "python -m migration status --json",
    "python -m migration serve",
    "gated-migrate check",
    "uvicorn main:app --port 8000",
    "node-pg-migrate create add-users",
    "python manage.py collectstatic",
    "sh -c 'exec gunicorn --workers 2 app:app'",
    "python -m http.server",
]


@pytest.mark.parametrize("line", MIGRATIONS)
def test_migration_commands_are_found(line: str) -> None:
    assert patterns.find_migration_command(line, DEFAULTS) is not None


@pytest.mark.parametrize("line", NOT_MIGRATIONS)
def test_other_commands_are_not(line: str) -> None:
    assert patterns.find_migration_command(line, DEFAULTS) is None


@pytest.mark.parametrize("name,on", [
    ("WEB_DB_MIGRATE_ENABLED", True), ("API_DB_MIGRATE_ENABLED", True),
    ("DB_MIGRATE_ENABLED", True), ("RUN_MIGRATIONS", True), ("MIGRATE_ON_STARTUP", True),
    ("WEB_DB_MIGRATE_RUNNER", False), ("DB_MIGRATE_TELEMETRY_ENABLED", False),
    ("MIGRATION_TIMEOUT_SECONDS", False),
])
def test_enable_flag_names(name: str, on: bool) -> None:
    import re

    assert bool(re.search(patterns.DEFAULT_MIGRATE_ENABLE_ENV_PATTERN, name, re.I)) is on


def test_credentials_and_digests() -> None:
    assert patterns.looks_like_credential("postgresql://app:pw@db:5432/app")
    assert patterns.looks_like_credential("Host=db;Username=app;Password=pw")
    assert not patterns.looks_like_credential("https://kv.vault.azure.net/secrets/x")
    assert not patterns.looks_like_credential("postgresql://db/app")
    digest = "sha256:" + "0" * 64
    assert patterns.is_pinned(f"reg.azurecr.io/app@{digest}")
    assert patterns.is_pinned(f"reg.azurecr.io/app:1.2@{digest}")
    assert not patterns.is_pinned("reg.azurecr.io/app:latest")
    assert not patterns.is_pinned("reg.azurecr.io/app@sha256:abc")
