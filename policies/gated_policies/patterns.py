"""What counts as "running a migration": command patterns, enable flags, secret-looking names.

A container's command and args are joined into one command line before matching, so a migration
hidden in a shell (``sh -c "python -m migration up && exec gunicorn app"``) is found as well as one
spelled out argument by argument. Patterns are case-insensitive regular expressions; the defaults
below are also the defaults of the policies' config schemas (``migrationCommandPatterns``), and
``extraMigrationCommandPatterns`` adds to them per stack.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

# Each entry: a regex matched with re.search against the joined command line. Keep the tool name
# anchored on a word boundary so paths (/usr/local/bin/alembic) and wrappers (npx, bundle exec,
# poetry run, sh -c) still match.
_NOT_SEP = r"[^\s;&|]"  # a token character that does not end a shell command
DEFAULT_MIGRATION_COMMAND_PATTERNS: tuple[str, ...] = (
    # this project's runner: python -m migration [flags] up, gated-migrate up
    # (short interpreter flags may be bundled with -m: python -Im migration up)
    rf"\bpython[0-9.]*(\s+-{_NOT_SEP}+)*?\s+-[A-Za-z]*m\s*migration(\.cli|\.__main__)?"
    rf"(\s+{_NOT_SEP}+)*?\s+up\b",
    rf"\bgated-migrate(\s+{_NOT_SEP}+)*?\s+up\b",
    r"\balembic\b.*\bupgrade\b",
    r"\bprisma\s+migrate\s+(deploy|dev|reset)\b",
    r"\bnode-pg-migrate\b(?!\s+(create|--help)\b)",
    r"\bflyway\b.*\bmigrate\b",
    r"\bknex\b.*\bmigrate:(latest|up|rollback)\b",
    r"\bdrizzle-kit\s+(migrate|push)\b",
    r"\bdbmate\b.*\b(up|migrate)\b",
    r"\bmanage\.py\s+migrate\b",
    r"\bdjango-admin\s+migrate\b",
    r"\b(rails|rake)\s+db:(migrate|prepare|setup)\b",
    r"\bsequelize(-cli)?\s+db:migrate\b",
    r"\btypeorm\b.*\bmigration:run\b",
    r"\bgoose\b.*\bup\b",
    r"\bmigrate\b.*\s-(database|source)\b.*\bup\b",
    r"\bliquibase\b.*\bupdate\b",
    r"\bsqitch\s+deploy\b",
    r"\bdotnet\s+ef\s+database\s+update\b",
    r"\batlas\s+migrate\s+apply\b",
    r"\b(npm|pnpm|yarn|bun)\s+(run\s+)?(db:)?migrat(e|ion|ions)(:\w+)?\b",
)

# An env var that switches a migration on at start-up (WEB_DB_MIGRATE_ENABLED=1, RUN_MIGRATIONS=true).
DEFAULT_MIGRATE_ENABLE_ENV_PATTERN = (
    r"^([A-Z0-9]+_)*(DB_)?MIGRAT(E|ION|IONS)_(ENABLED|ON_STARTUP|AT_STARTUP)$"
    r"|^RUN_(DB_)?MIGRATIONS$|^(AUTO_)?MIGRATE$"
)

TRUTHY = frozenset({"1", "true", "yes", "on", "y", "t", "enabled"})
FALSY = frozenset({"0", "false", "no", "off", "n", "f", "disabled"})

# Env var names whose value is a credential: they must come from a secretRef, never a literal.
DEFAULT_SECRET_ENV_NAME_PATTERN = (
    r"(^|_)(DATABASE_URL|DB_URL|PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|ACCESS_KEY|PRIVATE_KEY"
    r"|CONNECTION_STRING|CONN_STR|DSN|CREDENTIALS?)($|_)"
)

# A literal that carries a credential whatever its name: scheme://user:password@host, or a
# libpq / ADO.NET style "password=..." connection string.
_CREDENTIAL_VALUE = re.compile(
    r"^[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@|(^|[;\s])(password|pwd)\s*=\s*[^;\s]+",
    re.IGNORECASE,
)


@lru_cache(maxsize=64)
def _compile(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


def compile_patterns(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    """Compile (and cache) case-insensitive patterns; raises re.error on a bad one."""
    return _compile(tuple(patterns))


def command_line(command: Sequence[str], args: Sequence[str]) -> str:
    """The single line a container runs: command then args, joined by spaces."""
    return " ".join([*command, *args])


def find_migration_command(line: str, patterns: Iterable[str]) -> str | None:
    """The first pattern that matches ``line``, or None."""
    for compiled in compile_patterns(patterns):
        if compiled.search(line):
            return compiled.pattern
    return None


def is_truthy(value: str) -> bool:
    return value.strip().lower() in TRUTHY


def is_off(value: str) -> bool:
    """Only an explicit off counts as off: ``2`` or ``maybe`` may well mean on to the app."""
    return value.strip().lower() in FALSY


def looks_like_credential(value: str) -> bool:
    """True for a literal that embeds a password (URL user-info or password=...)."""
    return bool(_CREDENTIAL_VALUE.search(value))


IMAGE_DIGEST = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


def is_pinned(image: str) -> bool:
    """``registry/repo@sha256:<64 hex>``; a tag alongside the digest is allowed (repo:tag@sha256:...)."""
    return bool(IMAGE_DIGEST.match(image))
