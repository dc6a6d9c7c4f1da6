"""Runner settings: one frozen value object, and the one place for every default.

Each setting has a command-line flag and an environment twin; the flag wins over the
environment, the environment over the default. Durations accept PostgreSQL's forms
(``500ms``, ``5s``, ``10min``, ``1h``) or a bare number of milliseconds.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ConfigError
from .value import Value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from collections.abc import Mapping

# name -> (env twin, default); the CLI and the docs are built from this table.
DEFAULTS: dict[str, tuple[str, str | None]] = {
    "dir": ("MIGRATION_DIR", "db/migrations"),
    "format": ("MIGRATION_FORMAT", "auto"),
    "database_url": ("DATABASE_URL", None),
    "embedded_dir": ("MIGRATION_EMBEDDED_DIR", ".pgdata"),
    "check_order": ("MIGRATION_CHECK_ORDER", "1"),
    "lock": ("MIGRATION_LOCK", "1"),
    "single_transaction": ("MIGRATION_SINGLE_TRANSACTION", "0"),
    "lock_timeout": ("MIGRATION_LOCK_TIMEOUT", "5s"),
    "statement_timeout": ("MIGRATION_STATEMENT_TIMEOUT", "10min"),
    "timeout": ("MIGRATION_TIMEOUT_SECONDS", "900"),
    "max_retries": ("MIGRATION_MAX_RETRIES", "3"),
    "release_sha": ("MIGRATION_RELEASE_SHA", "local"),
    "stack": ("MIGRATION_STACK", None),
    "artifact_dir": ("MIGRATION_ARTIFACT_DIR", ".artifacts/deploy"),
    "schema": ("MIGRATION_SCHEMA", "public"),
    # Not `schema_migrations`: that is dbmate's and golang-migrate's own table.
    "history_table": ("MIGRATION_HISTORY_TABLE", "gated_release_history"),
    "run_log_table": ("MIGRATION_RUN_LOG_TABLE", "migration_run_log"),
    "json": ("MIGRATION_JSON", "0"),
    "tool_history": ("MIGRATION_TOOL_HISTORY", "1"),
    "adopt_from": ("MIGRATION_ADOPT_FROM", "auto"),
    "allow_gaps": ("MIGRATION_ALLOW_GAPS", "0"),
    "dry_run": ("MIGRATION_DRY_RUN", "0"),
    "through": ("MIGRATION_BASELINE_THROUGH", None),
    "allow_unrecorded_objects": ("MIGRATION_ALLOW_UNRECORDED_OBJECTS", "0"),
    "enabled": ("MIGRATE_DB_MIGRATE_ENABLED", "1"),
    "runner": ("MIGRATE_DB_MIGRATE_RUNNER", "aca-migration-job"),
    "telemetry": ("DB_MIGRATE_TELEMETRY_ENABLED", "1"),
}

TIMEOUT_BOUNDS = (1, 86_400)
# The ops commands' bounds and defaults live here, not in status.py, so that building the
# CLI's parser (every command, `--help` included) never imports the database driver.
LOOKBACK_DEFAULT = 120
LOOKBACK_BOUNDS = (1, 10_080)  # one minute .. one week
RECENT_RUNS_DEFAULT = 20
RECENT_RUNS_BOUNDS = (1, 200)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h)?\s*$")
_UNITS_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, None: 1}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_duration_ms(value: str, *, name: str) -> int:
    m = _DURATION.match(value)
    if not m:
        raise ConfigError(
            f"{name}: cannot read {value!r} as a duration",
            hint="use e.g. 500ms, 5s, 10min, 1h, or a number of milliseconds",
        )
    ms = float(m.group(1)) * _UNITS_MS[m.group(2)]
    if ms < 0 or ms > 86_400_000:
        raise ConfigError(f"{name}: {value!r} is outside 0..24h")
    return int(ms)


def parse_bool(value: str, *, name: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ConfigError(f"{name}: expected 1/0 (or true/false), got {value!r}")


def parse_int(value: str, *, name: str, lo: int, hi: int) -> int:
    try:
        n = int(value.strip())
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, got {value!r}") from None
    if not lo <= n <= hi:
        raise ConfigError(f"{name}: {n} is outside {lo}..{hi}")
    return n


def parse_identifier(value: str, *, name: str) -> str:
    # Identifiers are always quoted with sql.Identifier; this only refuses surprises
    # (a dotted name meant as schema.table, trailing spaces) with a clear message.
    if not _IDENT.match(value):
        raise ConfigError(
            f"{name}: {value!r} is not a plain identifier",
            hint="use letters, digits and underscores; set the schema with --schema",
        )
    return value


_FIELDS = (
    "dir", "format", "database_url", "embedded_dir", "check_order", "lock", "single_transaction",
    "lock_timeout_ms", "statement_timeout_ms", "timeout_s", "max_retries", "release_sha",
    "stack", "artifact_dir", "schema", "history_table", "run_log_table", "json", "tool_history",
    "adopt_from", "allow_gaps", "dry_run", "through", "allow_unrecorded_objects", "enabled",
    "runner", "telemetry", "extra",
)


class Settings(Value):
    """Everything a command needs, resolved and validated (frozen; see value.Value)."""

    __slots__ = _FIELDS
    dir: Path
    format: str
    database_url: str | None
    embedded_dir: Path
    check_order: bool
    lock: bool
    single_transaction: bool
    lock_timeout_ms: int
    statement_timeout_ms: int
    timeout_s: int
    max_retries: int
    release_sha: str
    stack: str | None
    artifact_dir: Path | None
    schema: str
    history_table: str
    run_log_table: str
    json: bool
    tool_history: bool
    adopt_from: str
    allow_gaps: bool
    dry_run: bool
    through: str | None
    allow_unrecorded_objects: bool
    enabled: bool
    runner: str
    telemetry: bool
    extra: Mapping[str, str]

    def __init__(
        self,
        dir: Path = Path("db/migrations"),
        format: str = "auto",
        database_url: str | None = None,
        embedded_dir: Path = Path(".pgdata"),
        check_order: bool = True,
        lock: bool = True,
        single_transaction: bool = False,
        lock_timeout_ms: int = 5_000,
        statement_timeout_ms: int = 600_000,
        timeout_s: int = 900,
        max_retries: int = 3,
        release_sha: str = "local",
        stack: str | None = None,
        artifact_dir: Path | None = Path(".artifacts/deploy"),
        schema: str = "public",
        history_table: str = "gated_release_history",
        run_log_table: str = "migration_run_log",
        json: bool = False,
        tool_history: bool = True,
        adopt_from: str = "auto",
        allow_gaps: bool = False,
        dry_run: bool = False,
        through: str | None = None,
        allow_unrecorded_objects: bool = False,
        enabled: bool = True,
        runner: str = "aca-migration-job",
        telemetry: bool = True,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self._set(
            dir=dir, format=format, database_url=database_url, embedded_dir=embedded_dir,
            check_order=check_order, lock=lock, single_transaction=single_transaction,
            lock_timeout_ms=lock_timeout_ms, statement_timeout_ms=statement_timeout_ms,
            timeout_s=timeout_s, max_retries=max_retries, release_sha=release_sha, stack=stack,
            artifact_dir=artifact_dir, schema=schema, history_table=history_table,
            run_log_table=run_log_table, json=json, tool_history=tool_history,
            adopt_from=adopt_from, allow_gaps=allow_gaps, dry_run=dry_run, through=through,
            allow_unrecorded_objects=allow_unrecorded_objects, enabled=enabled, runner=runner,
            telemetry=telemetry, extra={} if extra is None else extra,
        )

    def with_(self, **changes: object) -> Settings:
        return self.replace(**changes)


def _format(value: str, name: str) -> str:
    from .formats import NAMES

    v = value.strip().lower()
    if v not in NAMES:
        raise ConfigError(f"{name}: unknown format {value!r}", hint="one of: " + ", ".join(NAMES))
    return v


_SHA = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def resolve(
    flags: Mapping[str, object | None], env: Mapping[str, str] | None = None
) -> Settings:
    """Build Settings from parsed flags (None = not given) and the environment."""
    env = os.environ if env is None else env

    def raw(key: str) -> str | None:
        given = flags.get(key)
        if given is not None:
            return str(given) if not isinstance(given, bool) else ("1" if given else "0")
        env_name, default = DEFAULTS[key]
        value = env.get(env_name)
        return value if value not in (None, "") else default

    def label(key: str) -> str:
        flag = "--" + key.replace("_", "-")
        return f"{flag} / {DEFAULTS[key][0]}"

    def req(key: str) -> str:
        v = raw(key)
        assert v is not None, key  # every key without a None default
        return v

    release_sha = req("release_sha")
    if not _SHA.match(release_sha):
        raise ConfigError(
            f"{label('release_sha')}: {release_sha!r} is not a release id",
            hint="use the commit SHA (letters, digits, . _ -; at most 64 characters)",
        )
    artifact_dir = raw("artifact_dir")
    return Settings(
        dir=Path(req("dir")),
        format=_format(req("format"), label("format")),
        database_url=raw("database_url"),
        embedded_dir=Path(req("embedded_dir")),
        check_order=parse_bool(req("check_order"), name=label("check_order")),
        lock=parse_bool(req("lock"), name=label("lock")),
        single_transaction=parse_bool(req("single_transaction"), name=label("single_transaction")),
        lock_timeout_ms=parse_duration_ms(req("lock_timeout"), name=label("lock_timeout")),
        statement_timeout_ms=parse_duration_ms(
            req("statement_timeout"), name=label("statement_timeout")
        ),
        timeout_s=parse_int(req("timeout"), name=label("timeout"), lo=TIMEOUT_BOUNDS[0],
                            hi=TIMEOUT_BOUNDS[1]),
        max_retries=parse_int(req("max_retries"), name=label("max_retries"), lo=0, hi=20),
        release_sha=release_sha,
        stack=raw("stack"),
        artifact_dir=Path(artifact_dir) if artifact_dir else None,
        schema=parse_identifier(req("schema"), name=label("schema")),
        history_table=parse_identifier(req("history_table"), name=label("history_table")),
        run_log_table=parse_identifier(req("run_log_table"), name=label("run_log_table")),
        json=parse_bool(req("json"), name=label("json")),
        tool_history=parse_bool(req("tool_history"), name=label("tool_history")),
        adopt_from=req("adopt_from").strip().lower(),
        allow_gaps=parse_bool(req("allow_gaps"), name=label("allow_gaps")),
        dry_run=parse_bool(req("dry_run"), name=label("dry_run")),
        through=raw("through"),
        allow_unrecorded_objects=parse_bool(req("allow_unrecorded_objects"),
                                            name=label("allow_unrecorded_objects")),
        enabled=parse_bool(req("enabled"), name=DEFAULTS["enabled"][0]),
        runner=req("runner"),
        telemetry=parse_bool(req("telemetry"), name=DEFAULTS["telemetry"][0]),
    )
