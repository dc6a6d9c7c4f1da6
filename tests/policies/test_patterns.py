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


HIDDEN = [
    "node db/scripts/migrate.mjs up",
    "./scripts/migrate.sh",
    "bin/rails db:migrate",
    "pnpm db:migrate",
    "yarn migrate:up",
    'sh -c "node scripts/runMigrations.js && node dist/index.js"',
    "migrate -path db/migrations up",
    "npx prisma db push",
    "deno run -A tools/migrations.ts",
    "MIGRATE_ONLY=1 ./bin/start",
    "alembic upgrade head",
    "npm run db:up",
    "sh -c './scripts/db-up.sh && node dist/index.js'",
    "npx typeorm schema:sync",
    "pnpm run database:update",
]
NOT_HIDDEN = [
    "node dist/index.js",
    "node dist/immigration-service.js",
    "sh -c 'python -m migration status && exec node dist/index.js'",
    "python -m migration --json alerts --strict",
    "gunicorn app:app",
    "npm start",
    "node dist/db-client.js",
    "python -m sample_app",
]


@pytest.mark.parametrize("line", HIDDEN)
def test_a_migration_word_fails_closed_whatever_the_tool(line: str) -> None:
    assert patterns.detect_migration(line, DEFAULTS) is not None


@pytest.mark.parametrize("line", NOT_HIDDEN + NOT_MIGRATIONS)
def test_safe_commands_and_other_words_pass(line: str) -> None:
    assert patterns.detect_migration(line, DEFAULTS) is None


@pytest.mark.parametrize("line,kind", [
    ("psql postgres://app:pw@db/app", "a URL with a password"),
    ("node dist/index.js --db-password=pw", "a password/token flag with a literal value"),
    ("node dist/index.js --api-key pw", "a password/token flag with a literal value"),
    ("sh -c 'PGPASSWORD=pw psql -h db'", "a secret env assignment with a literal value"),
    ("psql host=db password=pw", "a password= literal"),
    ("psql postgres://app:$PW@db/app", None),
    ("sh -c 'PGPASSWORD=$DB_PASSWORD psql -h db'", None),
    ("node dist/index.js --token-file /run/secrets/t --no-password --lock", None),
])
def test_credentials_in_a_command_line(line: str, kind: str | None) -> None:
    assert patterns.credential_in_command(line) == kind
    assert "pw@" not in patterns.redact_command(line) or kind is None
