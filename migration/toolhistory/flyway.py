"""Flyway's ``flyway_schema_history``: one row per applied script, with Flyway's checksum.

Verified in flyway/flyway: ``database/postgresql/createMetaDataTable.sql`` (columns, NOT NULLs,
the ``<table>_pk`` primary key on installed_rank and the ``<table>_s_idx`` index on success),
``ChecksumCalculator.java`` (CRC32 fed each line's UTF-8 bytes without its line break, the BOM
filtered from the first line, returned as a signed int), ``ResourceNameParser``/
``MigrationVersion`` (``V<version>__<description>.sql``, ``_`` in a version means ``.``, parts
compare as integers, trailing zero parts do not count; ``R__<description>.sql`` repeatables).
A versioned row with ``success`` true is applied; ``success`` false is a failed migration that
Flyway refuses to migrate past; a ``BASELINE`` row covers every version up to its own. A
repeatable is applied when its newest row's checksum equals the file's (Flyway re-runs it when
the checksum changes).
"""

from __future__ import annotations

import re
import zlib
from typing import Any

from psycopg import sql

from .base import ToolHistory, ToolProblem, ToolState, gaps_of, missing_file

_NAME = re.compile(r"^(?P<kind>[VR])(?P<version>.*?)__(?P<description>.*)\.sql$", re.S)
_APPLIED_TYPES = {"SQL", "JDBC", "SPRING_JDBC", "SCRIPT", "CUSTOM"}
_BASELINE_TYPES = {"BASELINE", "SQL_BASELINE", "JDBC_BASELINE"}


def checksum(raw: bytes) -> int:
    """Flyway's checksum of a script's bytes (UTF-8), as the signed int it stores."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    # BufferedReader.readLine ends a line at \n, \r or \r\n and drops the ending; CRC32 is fed
    # the lines back to back, so it is the CRC32 of the text without any line-break byte.
    crc = zlib.crc32(raw.replace(b"\r", b"").replace(b"\n", b""))
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def version_key(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in version.replace("_", ".").split(".") if p != ""]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def parse_name(name: str) -> tuple[str | None, str]:
    """(version with dots or None for a repeatable, description) of a script name."""
    base = name.rsplit("/", 1)[-1]
    m = _NAME.match(base)
    if m is None:
        raise ValueError(f"not a Flyway script name: {name!r}")
    version = m["version"].replace("_", ".") if m["kind"] == "V" else None
    return version, m["description"].replace("_", " ")


def _repeatable(f: Any) -> bool:
    return bool(getattr(f, "repeatable", False)) or f.name.rsplit("/", 1)[-1].startswith("R__")


class FlywayHistory(ToolHistory):
    tool = "flyway"
    default_table = "flyway_schema_history"
    columns = frozenset({"installed_rank", "version", "script", "checksum", "type", "success"})
    source = ("flyway/flyway: createMetaDataTable.sql (postgresql), ChecksumCalculator.java, "
              "ResourceNameParser.java, MigrationVersion.java")

    def read(self, conn: Any, files: list[Any]) -> ToolState:
        rows = conn.execute(sql.SQL(
            "SELECT installed_rank, version, script, checksum, type, success FROM {}"
            " ORDER BY installed_rank").format(self.ident)).fetchall()
        st = ToolState(self.tool, self.qualified, exists=True, rows=len(rows))
        versioned: dict[tuple[int, ...], Any] = {}
        repeatables: dict[str, Any] = {}
        for f in files:
            if _repeatable(f):
                repeatables[f.name] = f
            else:
                version, _ = parse_name(f.name)
                assert version is not None
                versioned[version_key(version)] = f
        applied: set[str] = set()
        baseline: tuple[int, ...] | None = None
        newest_repeatable: dict[str, tuple[int | None, bool, str]] = {}
        for rank, version, script, crc, kind, success in rows:
            desc = f"installed_rank={rank} version={version} script={script} type={kind}"
            if kind == "SCHEMA":
                continue  # the marker of a schema Flyway created
            if kind in _BASELINE_TYPES and version is not None:
                baseline = version_key(version)
                continue
            if kind not in _APPLIED_TYPES and kind not in _BASELINE_TYPES:
                st.problems.append(ToolProblem(
                    "unsupported-history-row",
                    f"Flyway history row of type {kind!r} is not understood by adoption",
                    hint="run `flyway repair`/`flyway info` with the tool first so the history "
                         "holds only SQL and BASELINE rows", row=desc))
                continue
            if version is None:
                newest_repeatable[str(script)] = (crc, bool(success), desc)
                continue
            f = versioned.get(version_key(version))
            if not success:
                st.problems.append(ToolProblem(
                    "failed-migration",
                    f"Flyway recorded version {version} as FAILED: it may be half-applied",
                    hint="inspect the schema, finish or undo the migration by hand, run "
                         "`flyway repair` to remove the failed row, then adopt again",
                    file=f.name if f else None, row=desc))
                continue
            if f is None:
                st.problems.append(missing_file(self.tool, desc, str(version)))
                continue
            current = checksum(f.raw)
            if crc is not None and int(crc) != current:
                st.problems.append(ToolProblem(
                    "checksum-mismatch",
                    f"the file differs from what Flyway applied (checksum {crc}, file now "
                    f"{current})",
                    hint="restore the applied text from version control; a fix is a new "
                         "migration (or `flyway repair` if the edit was only cosmetic)",
                    file=f.name, row=desc))
                continue
            applied.add(f.name)
        if baseline is not None:
            applied |= {f.name for k, f in versioned.items() if k <= baseline}
        for script, (crc, success, desc) in newest_repeatable.items():
            f = repeatables.get(script)
            if f is None:
                st.warnings.append(f"Flyway applied repeatable {script} whose file is gone")
                continue
            if not success:
                st.problems.append(ToolProblem(
                    "failed-migration", f"Flyway recorded repeatable {script} as FAILED",
                    hint="fix it, run `flyway repair`, then adopt again", file=f.name, row=desc))
            elif crc is not None and int(crc) == checksum(f.raw):
                applied.add(f.name)
            # A changed repeatable stays pending: Flyway would run it again, so will we.
        st.applied = [f for f in files if f.name in applied]
        return st

    def gaps(self, files: list[Any], applied: list[Any]) -> list[Any]:
        return gaps_of([f for f in files if not _repeatable(f)],
                       [f for f in applied if not _repeatable(f)])

    def create(self) -> list[sql.Composed]:
        pk = sql.Identifier(f"{self.table}_pk")
        idx = sql.Identifier(f"{self.table}_s_idx")
        return [
            sql.SQL("""CREATE TABLE IF NOT EXISTS {t} (
    installed_rank INT NOT NULL,
    version VARCHAR(50),
    description VARCHAR(200) NOT NULL,
    type VARCHAR(20) NOT NULL,
    script VARCHAR(1000) NOT NULL,
    checksum INTEGER,
    installed_by VARCHAR(100) NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT now(),
    execution_time INTEGER NOT NULL,
    success BOOLEAN NOT NULL
)""").format(t=self.ident),
            # Idempotent (the statements travel with every migration of a run that found no
            # table, and a retried transaction sends them again).
            sql.SQL("DO $gr$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid ="
                    " to_regclass(format('%I.%I', {s}, {n})) AND contype = 'p') THEN ALTER TABLE {t} ADD CONSTRAINT {pk}"
                    " PRIMARY KEY (installed_rank); END IF; END $gr$").format(
                s=sql.Literal(self.schema), n=sql.Literal(self.table), t=self.ident, pk=pk),
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (success)").format(idx, self.ident),
        ]

    def record(self, mf: Any) -> list[sql.Composed]:
        version, description = parse_name(mf.name)
        return [sql.SQL(
            "INSERT INTO {t} (installed_rank, version, description, type, script, checksum,"
            " installed_by, execution_time, success) SELECT coalesce(max(installed_rank), 0) + 1,"
            " {version}, {description}, 'SQL', {script}, {crc}, current_user, 0, true FROM {t}"
        ).format(t=self.ident, version=sql.Literal(version),
                 description=sql.Literal(description[:200]), script=sql.Literal(mf.name),
                 crc=sql.Literal(checksum(mf.raw)))]
