"""What counts as "running a migration": command patterns, enable flags, secret-looking names.

A container's command and args are joined into one command line before matching, so a migration
hidden in a shell (``sh -c "python -m migration up && exec gunicorn app"``) is found as well as one
spelled out argument by argument. Two layers, so detection does not depend on knowing each tool:

1. tool patterns (case-insensitive; ``migrationCommandPatterns``, extended per stack by
   ``extraMigrationCommandPatterns``) for tools whose verb is not a migration word
   (``alembic upgrade``, ``goose up``, ``liquibase update``, ``prisma db push``);
2. fail closed on the word: every shell command of the line (split at ``&&``, ``||``, ``;``,
   ``|``) that contains a migration word (``migrate``, ``migrations``, ``db:migrate``,
   ``migrate.mjs``, ``runMigrations``, not ``immigration``: ``migrationWordPattern``) is a
   migration, unless it matches one of ``safeCommandPatterns`` (this runner's read-only
   subcommands). A false positive is allowed per app and exact command by the stack's
   ``allowedAppCommands``.

Credentials are looked for in env values and, with :func:`credential_in_command`, in command and
args (``postgres://user:pass@``, ``--password=...``, ``PGPASSWORD=...`` inside ``sh -c``).
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
    r"\bprisma\s+db\s+push\b",
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
    # a schema change by another name in a script or npm script: db:up, db-push.sh, schema:sync
    # (TypeORM), database:update, db_deploy; fail closed, the allow-list covers false positives
    r"(?i)(?<![A-Za-z0-9])(db|database|schema)[:_-](up|push|deploy|upgrade|sync|update)(?![a-z])",
)

# The fail-closed layer: a migration word anywhere in a shell command. Case-sensitive on purpose
# (camelCase "runMigrations" counts, "immigration" does not); config replaces it whole.
DEFAULT_MIGRATION_WORD_PATTERN = (
    r"(?:(?<![A-Za-z0-9])(?i:migrat)|(?<=[a-z0-9])Migrat)(?i:e|es|ed|ing|ions?|ors?)(?![a-z])"
)
# Shell commands that carry the word but are known not to migrate (case-insensitive).
_FLAGS = r"(\s+--?[\w-]+(=[^\s;&|]+)?)*"
DEFAULT_SAFE_COMMAND_PATTERNS: tuple[str, ...] = (
    rf"\bpython[0-9.]*(\s+-{_NOT_SEP}+)*?\s+-[A-Za-z]*m\s*migration(\.cli|\.__main__)?{_FLAGS}"
    r"\s+(serve|status|alerts|check|plan|new|embedded)\b",
    rf"\bgated-migrate{_FLAGS}\s+(serve|status|alerts|check|plan|new)\b",
    r"\bnode-pg-migrate\s+(create|--help)\b",
)
_SHELL_SEP = re.compile(r"&&|\|\||[;|\n]")

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


@lru_cache(maxsize=16)
def _word(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def detect_migration(line: str, patterns: Iterable[str],
                     word: str = DEFAULT_MIGRATION_WORD_PATTERN,
                     safe: Iterable[str] = DEFAULT_SAFE_COMMAND_PATTERNS) -> str | None:
    """Why ``line`` runs a migration (a tool pattern, or a shell command with a migration word
    that no safe pattern covers), or None."""
    matched = find_migration_command(line, patterns)
    if matched is not None:
        return f"matches {matched!r}"
    safe_patterns = compile_patterns(safe)
    for segment in _SHELL_SEP.split(line):
        hit = _word(word).search(segment)
        if hit is None or any(p.search(segment) for p in safe_patterns):
            continue
        return (f"{segment.strip()!r} contains the migration word {hit.group(0)!r} "
                "(a team's own migration script, npm script or wrapper)")
    return None


# Credentials spelled out in a command line: URL user-info, a password/token flag, a secret-looking
# env assignment in a shell, or a libpq "password=". A $VARIABLE reference is not a literal.
_CREDENTIAL_IN_COMMAND = (
    re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:(?![$'\"])[^/\s@'\"]+@", re.IGNORECASE),
    re.compile(r"(?<![\w-])--?[\w-]*(password|passwd|pwd|secret|token|api[-_]?key)(=|\s+)"
               r"(?![-$'\"\s])[^\s'\"]+", re.IGNORECASE),
    re.compile(r"(?<![\w$])[A-Z][A-Z0-9_]*(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY)[A-Z0-9_]*="
               r"['\"]?(?![$'\"\s])[^\s'\"]+"),
    re.compile(r"(^|[;\s'\"])(password|pwd)\s*=\s*(?![$'\"])[^;\s'\"]+", re.IGNORECASE),
)


def credential_in_command(line: str) -> str | None:
    """The kind of literal credential ``line`` carries, or None (never the value itself)."""
    kinds = ("a URL with a password", "a password/token flag with a literal value",
             "a secret env assignment with a literal value", "a password= literal")
    for kind, pattern in zip(kinds, _CREDENTIAL_IN_COMMAND, strict=True):
        if pattern.search(line):
            return kind
    return None


def redact_command(line: str) -> str:
    """``line`` with every literal credential replaced, for messages."""
    for pattern in _CREDENTIAL_IN_COMMAND:
        line = pattern.sub("[redacted]", line)
    return line


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
