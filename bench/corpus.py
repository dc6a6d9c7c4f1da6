"""A realistic, seeded migration corpus, written once as plain SQL and once in dbmate's format.

The plain files are what the runner and psql apply; the dbmate copy holds the very same SQL
text under dbmate's ``-- migrate:up`` / ``-- migrate:down`` markers, with ``transaction:false``
where the file cannot run inside dbmate's own transaction (``CREATE INDEX CONCURRENTLY``, and
files that wrap themselves in BEGIN/COMMIT: lib/pq refuses a COMMIT inside its transaction).

The mix follows a real application's history: tables with identity keys and foreign keys,
enums and ``ALTER TYPE ... ADD VALUE`` (alone in its file, used only by later files), column
additions, indexes, ``NOT VALID`` + ``VALIDATE`` constraints, views, PL/pgSQL trigger functions
whose bodies hold semicolons, data back-fills, a few ``CREATE INDEX CONCURRENTLY`` files each
alone, and some files that wrap themselves in BEGIN/COMMIT. The same seed always yields the
same bytes, so runs compare like with like.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

DEFAULT_SEED = 20240501
_START = datetime(2023, 1, 2, 9, 0, 0, tzinfo=UTC)
_NOUNS = (
    "account", "invoice", "order", "product", "shipment", "customer", "payment", "refund",
    "coupon", "review", "address", "warehouse", "supplier", "ticket", "comment", "tag",
    "session", "device", "report", "plan", "subscription", "event", "audit", "webhook",
)
_LABELS = ("draft", "pending", "active", "paused", "archived", "failed", "queued", "done",
           "retrying", "cancelled", "expired", "blocked", "review", "approved", "rejected")
# (kind, weight) once the schema has a few tables; see _pick.
_WEIGHTS = (
    ("create_table", 14), ("create_enum", 4), ("add_enum_value", 5), ("add_column", 14),
    ("create_index", 14), ("create_index_concurrently", 3), ("add_foreign_key", 8),
    ("insert_rows", 10), ("update_rows", 9), ("create_view", 4), ("add_trigger", 3),
    ("comment", 3), ("add_check", 3), ("self_wrapped", 6),
)


@dataclass
class _Table:
    name: str
    columns: dict[str, str]
    """column -> kind: text, int, num, bool, ts, ref, enum:<type>"""
    has_rows: bool = False
    triggered: bool = False


@dataclass
class _Enum:
    name: str
    labels: list[str]
    """Labels committed by earlier files: safe to use now."""


@dataclass
class Migration:
    name: str
    kind: str
    sql: str
    transactional: bool = True
    self_wrapped: bool = False


@dataclass
class Corpus:
    """Where a generated corpus lives and what it holds."""

    root: Path
    sql_dir: Path
    dbmate_dir: Path
    psql_script: Path
    migrations: list[Migration]
    kinds: Counter[str] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return len(self.migrations)


class _Schema:
    """What earlier migrations created, so each new one builds on a consistent schema.

    Its methods write migration *file text* from names this module generated itself
    (letters, digits, underscores); nothing here is executed by Python, so plain text is
    the honest form (sql.Identifier would quote every name, which real files rarely do).
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.tables: list[_Table] = []
        self.enums: list[_Enum] = []
        self.serial = 0

    def next_id(self) -> int:
        self.serial += 1
        return self.serial

    def table(self) -> _Table:
        return self.rng.choice(self.tables)

    # -- statements: each returns SQL text and updates the model -----------------------
    def create_table(self) -> str:
        n = self.next_id()
        t = _Table(f"{self.rng.choice(_NOUNS)}s_{n}", {"name": "text", "created_at": "ts"})
        cols = [
            "    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
            "    name text NOT NULL DEFAULT ''",
            "    created_at timestamptz NOT NULL DEFAULT now()",
        ]
        if self.rng.random() < 0.6:
            cols.append("    amount numeric(12, 2) NOT NULL DEFAULT 0")
            t.columns["amount"] = "num"
        if self.rng.random() < 0.5:
            cols.append("    active boolean NOT NULL DEFAULT true")
            t.columns["active"] = "bool"
        if self.enums and self.rng.random() < 0.5:
            e = self.rng.choice(self.enums)
            cols.append(f"    state {e.name} NOT NULL DEFAULT '{e.labels[0]}'")
            t.columns["state"] = f"enum:{e.name}"
        if self.tables and self.rng.random() < 0.6:
            parent = self.table()
            cols.append(f"    {parent.name}_id bigint REFERENCES {parent.name} (id)"
                        " ON DELETE CASCADE")
            t.columns[f"{parent.name}_id"] = "ref"
        self.tables.append(t)
        return f"CREATE TABLE {t.name} (\n" + ",\n".join(cols) + "\n);\n"

    def create_enum(self) -> str:
        e = _Enum(f"status_{self.next_id()}", self.rng.sample(_LABELS, 3))
        self.enums.append(e)
        labels = ", ".join(f"'{lb}'" for lb in e.labels)
        return f"CREATE TYPE {e.name} AS ENUM ({labels});\n"

    def add_enum_value(self) -> str | None:
        candidates = [e for e in self.enums if len(e.labels) < len(_LABELS)]
        if not candidates:
            return None
        e = self.rng.choice(candidates)
        label = self.rng.choice([lb for lb in _LABELS if lb not in e.labels])
        # Usable by later files only: the value commits with this file.
        e.labels.append(label)
        return f"ALTER TYPE {e.name} ADD VALUE IF NOT EXISTS '{label}';\n"

    def add_column(self) -> str:
        t = self.table()
        n = self.next_id()
        kind = self.rng.choice(("text", "int", "ts", "bool", "num"))
        col = f"{kind}_col_{n}"
        ddl = {
            "text": "text",
            "int": "integer NOT NULL DEFAULT 0",
            "ts": "timestamptz",
            "bool": "boolean NOT NULL DEFAULT false",
            "num": "numeric(10, 3)",
        }[kind]
        t.columns[col] = kind
        return f"ALTER TABLE {t.name} ADD COLUMN {col} {ddl};\n"

    def create_index(self, *, concurrently: bool = False) -> str:
        t = self.table()
        col = self.rng.choice(list(t.columns))
        name = f"{t.name}_{col}_idx_{self.next_id()}"[:63]
        how = "CONCURRENTLY IF NOT EXISTS " if concurrently else ""
        return f"CREATE INDEX {how}{name} ON {t.name} ({col});\n"

    def add_foreign_key(self) -> str | None:
        if len(self.tables) < 2:
            return None
        child, parent = self.rng.sample(self.tables, 2)
        n = self.next_id()
        col = f"{parent.name}_ref_{n}"
        fk = f"{child.name}_{col}_fkey"[:63]
        child.columns[col] = "ref"
        # The zero-downtime form: add NOT VALID (brief lock), then validate (weaker lock).
        return (
            f"ALTER TABLE {child.name} ADD COLUMN {col} bigint;\n"
            f"ALTER TABLE {child.name}\n    ADD CONSTRAINT {fk} FOREIGN KEY ({col})\n"
            f"    REFERENCES {parent.name} (id) NOT VALID;\n"
            f"ALTER TABLE {child.name} VALIDATE CONSTRAINT {fk};\n"
        )

    def insert_rows(self) -> str:
        t = self.table()
        rows = self.rng.choice((50, 200, 500, 1000))
        cols, exprs = ["name"], ["'row ' || g"]
        if "amount" in t.columns:
            cols.append("amount")
            exprs.append("(g % 997) * 1.25")
        if "active" in t.columns:
            cols.append("active")
            exprs.append("g % 3 <> 0")
        t.has_rows = True
        return (f"INSERT INTO {t.name} ({', '.join(cols)})\n"
                f"SELECT {', '.join(exprs)}\nFROM generate_series(1, {rows}) AS g;\n")

    def update_rows(self) -> str:
        t = self.table()
        state = t.columns.get("state", "")
        if state.startswith("enum:") and self.rng.random() < 0.7:
            e = next(e for e in self.enums if e.name == state[5:])
            label = self.rng.choice(e.labels)
            return (f"UPDATE {t.name} SET state = '{label}'\n"  # noqa: S608 - file text
                    f"WHERE id % {self.rng.randint(2, 9)} = 0;\n")
        if "amount" in t.columns:
            return f"UPDATE {t.name} SET amount = amount * 1.1 WHERE amount > 100;\n"  # noqa: S608
        return (f"UPDATE {t.name} SET name = upper(name)\n"  # noqa: S608 - file text
                f"WHERE created_at < now() - interval '1 day' OR name LIKE 'row 1%';\n")

    def create_view(self) -> str:
        t = self.table()
        cols = ", ".join(["id"] + self.rng.sample(list(t.columns), min(2, len(t.columns))))
        return (f"CREATE OR REPLACE VIEW {t.name}_recent_{self.next_id()} AS\n"
                f"SELECT {cols} FROM {t.name}\nWHERE created_at > now() - interval '30 days';\n")

    def add_trigger(self) -> str | None:
        candidates = [t for t in self.tables if not t.triggered]
        if not candidates:
            return None
        t = self.rng.choice(candidates)
        t.triggered = True
        t.columns["updated_at"] = "ts"
        fn = f"{t.name}_touch"
        return (
            f"ALTER TABLE {t.name} ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();\n"
            f"CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger\nLANGUAGE plpgsql AS $$\n"
            "BEGIN\n    NEW.updated_at := now();\n    RETURN NEW;\nEND;\n$$;\n"
            f"CREATE TRIGGER {fn}_trg BEFORE UPDATE ON {t.name}\n"
            f"    FOR EACH ROW EXECUTE FUNCTION {fn}();\n"
        )

    def comment(self) -> str:
        t = self.table()
        return f"COMMENT ON TABLE {t.name} IS 'Owned by the {t.name.split('_')[0]} team; it''s live';\n"

    def add_check(self) -> str:
        t = self.table()
        name = f"{t.name}_name_len_{self.next_id()}"[:63]
        return (f"ALTER TABLE {t.name} ADD CONSTRAINT {name}\n"
                f"    CHECK (char_length(name) <= 500) NOT VALID;\n"
                f"ALTER TABLE {t.name} VALIDATE CONSTRAINT {name};\n")


_IN_WRAPPER = ("create_table", "add_column", "create_index", "add_foreign_key", "insert_rows",
               "update_rows", "create_view", "comment", "add_check")


def _pick(rng: random.Random, schema: _Schema, i: int) -> str:
    if len(schema.tables) < 3 or i < 5:
        return "create_enum" if i == 1 else "create_table"
    kinds = [k for k, _ in _WEIGHTS]
    return rng.choices(kinds, [w for _, w in _WEIGHTS])[0]


def _migration(rng: random.Random, schema: _Schema, i: int) -> Migration:
    while True:
        kind = _pick(rng, schema, i)
        if kind == "self_wrapped":
            parts = [getattr(schema, k)() for k in rng.sample(_IN_WRAPPER, rng.randint(2, 4))]
            body = "".join(p for p in parts if p)
            head = "-- Generated by a tool that wraps each migration in its own transaction.\n"
            return Migration("", kind, f"{head}BEGIN;\n{body}COMMIT;\n", self_wrapped=True)
        if kind == "create_index_concurrently":
            index = schema.create_index(concurrently=True)
            # Half declare it; the rest rely on the runner reading the statement itself.
            head = "-- migration: no-transaction\n" if rng.random() < 0.5 else ""
            return Migration("", kind, head + index, transactional=False)
        text: str | None = getattr(schema, kind)()
        if text is not None:
            return Migration("", kind, text)


def _dbmate_text(m: Migration) -> str:
    up = "-- migrate:up" + ("" if m.transactional and not m.self_wrapped
                           else " transaction:false")
    # Forward-only: the down section is empty, as in the runner's own convention.
    return f"{up}\n{m.sql}\n-- migrate:down\n"


def generate(root: Path, count: int, *, seed: int = DEFAULT_SEED, dbmate: bool = True
             ) -> Corpus:
    """Write ``count`` migrations under ``root`` (``sql/``, ``dbmate/``, ``psql.sql``)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    rng = random.Random(seed)
    schema = _Schema(rng)
    sql_dir, dbmate_dir = root / "sql", root / "dbmate"
    sql_dir.mkdir(parents=True, exist_ok=True)
    if dbmate:
        dbmate_dir.mkdir(parents=True, exist_ok=True)
    when = _START
    migrations: list[Migration] = []
    for i in range(count):
        m = _migration(rng, schema, i)
        when += timedelta(minutes=rng.randint(7, 60 * 24 * 3))
        m.name = f"{when:%Y%m%d%H%M%S}_{m.kind}_{i + 1:04d}.sql"
        (sql_dir / m.name).write_text(m.sql, encoding="utf-8")
        if dbmate:
            (dbmate_dir / m.name).write_text(_dbmate_text(m), encoding="utf-8")
        migrations.append(m)
    script = root / "psql.sql"
    # One psql session includes every file in order; quoting keeps odd paths intact.
    script.write_text("".join(
        "\\i '" + str((sql_dir / m.name).resolve()).replace("'", "\\'") + "'\n"
        for m in migrations), encoding="utf-8")
    return Corpus(root, sql_dir, dbmate_dir, script, migrations,
                  Counter(m.kind for m in migrations))
