"""A seeded corpus shaped like a real Prisma project's ``prisma/migrations`` history.

Modelled on the shape of large public Prisma applications (e.g. cal.com's
``packages/prisma/migrations``; generated here, nothing copied): one directory per
migration, ``<UTC YYYYMMDDHHMMSS>_<snake_name>/migration.sql``; a large ``init``; then mostly
small files, each a few statements under Prisma's ``-- CreateTable`` / ``-- AlterTable`` /
``-- CreateIndex`` / ``-- AddForeignKey`` comments, with quoted PascalCase identifiers,
``TIMESTAMP(3)`` columns, ``ADD COLUMN     "x"`` spacing, named ``_pkey``/``_key``/``_fkey``
constraints, implicit many-to-many tables (``_AToB`` with ``_AB_unique``), enums and
``ALTER TYPE ... ADD VALUE`` alone in its file, ``/* Warnings: ... */`` blocks, dropped and
re-added foreign keys, renamed indexes, and the occasional hand-written data fix. Prisma
never emits ``CONCURRENTLY`` or ``BEGIN``: every file runs in a transaction.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .corpus import Corpus, Migration

DEFAULT_PRISMA_COUNT = 160
_START = datetime(2021, 6, 5, 22, 50, 44, tzinfo=UTC)
_MODELS = ("User", "Team", "Membership", "EventType", "Booking", "Attendee", "Credential",
           "Schedule", "Availability", "Webhook", "ApiKey", "Payment", "Workflow",
           "WorkflowStep", "Feature", "Profile", "Organization", "Reminder", "Host",
           "Routing", "Form", "Response", "Invite", "Session", "Account", "Deployment")
_FIELDS = (("title", "TEXT"), ("locale", "TEXT"), ("timeZone", "TEXT NOT NULL DEFAULT "
           "'Europe/London'"), ("hidden", "BOOLEAN NOT NULL DEFAULT false"), ("position",
           "INTEGER NOT NULL DEFAULT 0"), ("metadata", "JSONB"), ("updatedAt", "TIMESTAMP(3)"),
           ("description", "TEXT"), ("slug", "TEXT"), ("price", "INTEGER NOT NULL DEFAULT 0"),
           ("currency", "TEXT NOT NULL DEFAULT 'usd'"), ("brandColor", "TEXT NOT NULL "
           "DEFAULT '#292929'"), ("theme", "TEXT"), ("disabled", "BOOLEAN NOT NULL DEFAULT "
           "false"), ("expiresAt", "TIMESTAMP(3)"), ("uid", "TEXT"), ("seats", "INTEGER"))
_ENUM_LABELS = ("ACTIVE", "PENDING", "CANCELLED", "ACCEPTED", "REJECTED", "MEMBER", "ADMIN",
                "OWNER", "EMAIL", "SMS", "WHATSAPP", "HOURS", "MINUTES", "DAYS", "OTHER")
_WEIGHTS = (("add_column", 30), ("create_table", 12), ("create_index", 12), ("create_enum", 6),
            ("add_enum_value", 6), ("refk", 8), ("alter_column", 10), ("join_table", 4),
            ("rename_index", 3), ("drop_column", 5), ("data_fix", 4))


@dataclass
class _Model:
    name: str
    columns: list[str] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)


class _Prisma:
    """The schema so far; each method returns one migration's text in Prisma's style."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.models: list[_Model] = []
        self.enums: dict[str, list[str]] = {}
        self.joins: list[str] = []
        """Implicit many-to-many tables: no id, never a target of anything else."""
        self.serial = 0

    def _model_name(self) -> str:
        self.serial += 1
        base = _MODELS[(self.serial - 1) % len(_MODELS)]
        return base if self.serial <= len(_MODELS) else f"{base}{self.serial}"

    def _pick(self) -> _Model:
        return self.rng.choice(self.models)

    def _table(self, m: _Model, refs: list[_Model]) -> str:
        cols = ['    "id" SERIAL NOT NULL', '    "name" TEXT NOT NULL',
                '    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP']
        m.columns += ["id", "name", "createdAt"]
        for r in refs:
            cols.append(f'    "{r.name[0].lower() + r.name[1:]}Id" INTEGER')
            m.columns.append(f"{r.name[0].lower() + r.name[1:]}Id")
        cols.append(f'\n    CONSTRAINT "{m.name}_pkey" PRIMARY KEY ("id")')
        out = f'-- CreateTable\nCREATE TABLE "{m.name}" (\n' + ",\n".join(cols) + "\n);\n\n"
        for r in refs:
            col = f"{r.name[0].lower() + r.name[1:]}Id"
            out += (f'-- CreateIndex\nCREATE INDEX "{m.name}_{col}_idx" ON "{m.name}"'
                    f'("{col}");\n\n')
            m.indexes.append(f"{m.name}_{col}_idx")
        for r in refs:
            out += self._fk(m, r, "CASCADE")
        return out

    def _fk(self, m: _Model, r: _Model, on_delete: str) -> str:
        col = f"{r.name[0].lower() + r.name[1:]}Id"
        return (f'-- AddForeignKey\nALTER TABLE "{m.name}" ADD CONSTRAINT "{m.name}_{col}_fkey" '
                f'FOREIGN KEY ("{col}") REFERENCES "{r.name}"("id") ON DELETE {on_delete} '
                "ON UPDATE CASCADE;\n\n")

    def init(self) -> str:
        out = ""
        for _ in range(10):
            m = _Model(self._model_name())
            refs = self.rng.sample(self.models, min(len(self.models), self.rng.randint(0, 2)))
            out += self._table(m, refs)
            self.models.append(m)
        out += (f'-- CreateIndex\nCREATE UNIQUE INDEX "{self.models[0].name}_name_key" ON '
                f'"{self.models[0].name}"("name");\n')
        return out

    def create_table(self) -> str:
        m = _Model(self._model_name())
        refs = self.rng.sample(self.models, self.rng.randint(1, 2))
        out = self._table(m, refs)
        self.models.append(m)
        return out

    def add_column(self) -> str:
        m = self._pick()
        new = [f for f in self.rng.sample(_FIELDS, self.rng.randint(1, 3))
               if f[0] not in m.columns]
        if not new:
            return self.alter_column()
        m.columns += [n for n, _ in new]
        adds = ",\nADD COLUMN     ".join(f'"{n}" {t}' for n, t in new)
        return f'-- AlterTable\nALTER TABLE "{m.name}" ADD COLUMN     {adds};\n'

    def create_index(self) -> str:
        m = self._pick()
        col = self.rng.choice(m.columns)
        unique = col == "uid" or self.rng.random() < 0.3
        name = f"{m.name}_{col}_{'key' if unique else 'idx'}{self.serial}"
        self.serial += 1
        m.indexes.append(name)
        kind = "UNIQUE INDEX" if unique and col in ("id", "uid") else "INDEX"
        return f'-- CreateIndex\nCREATE {kind} "{name}" ON "{m.name}"("{col}");\n'

    def create_enum(self) -> str:
        name = f"{self._pick().name}Status{len(self.enums) + 1}"
        labels = self.rng.sample(_ENUM_LABELS, 3)
        self.enums[name] = labels
        m = self._pick()
        col = f"status{len(self.enums)}"
        m.columns.append(col)
        quoted = ", ".join(f"'{x}'" for x in labels)
        return (f'-- CreateEnum\nCREATE TYPE "{name}" AS ENUM ({quoted});\n\n'
                f'-- AlterTable\nALTER TABLE "{m.name}" ADD COLUMN     "{col}" "{name}" NOT NULL '
                f"DEFAULT E'{labels[0]}';\n")

    def add_enum_value(self) -> str:
        if not self.enums:
            return self.create_enum()
        name = self.rng.choice(sorted(self.enums))
        free = [x for x in _ENUM_LABELS if x not in self.enums[name]]
        if not free:
            return self.add_column()
        label = self.rng.choice(free)
        self.enums[name].append(label)
        # Alone in its file, as Prisma writes it: the label is used only by later files.
        return f"-- AlterEnum\nALTER TYPE \"{name}\" ADD VALUE '{label}';\n"

    def refk(self) -> str:
        m = self._pick()
        refs = [c for c in m.columns if c.endswith("Id") and c != "id"]
        if not refs:
            return self.add_column()
        col = self.rng.choice(refs)
        target = next(x for x in self.models if f"{x.name[0].lower() + x.name[1:]}Id" == col)
        return (f'-- DropForeignKey\nALTER TABLE "{m.name}" DROP CONSTRAINT "{m.name}_{col}_fkey";'
                "\n\n" + self._fk(m, target, self.rng.choice(("SET NULL", "RESTRICT",
                                                                 "CASCADE"))))

    def alter_column(self) -> str:
        m = self._pick()
        col = self.rng.choice([c for c in m.columns if c not in ("id", "createdAt")] or ["name"])
        what = self.rng.choice(("DROP NOT NULL", "SET DEFAULT ''", "DROP DEFAULT")) \
            if col == "name" else "DROP DEFAULT"
        return f'-- AlterTable\nALTER TABLE "{m.name}" ALTER COLUMN "{col}" {what};\n'

    def join_table(self) -> str:
        a, b = sorted(self.rng.sample(self.models, 2), key=lambda x: x.name)
        name = f"_{a.name}To{b.name}"
        if name in self.joins:
            return self.create_index()
        self.joins.append(name)
        return (f'-- CreateTable\nCREATE TABLE "{name}" (\n    "A" INTEGER NOT NULL,\n'
                f'    "B" INTEGER NOT NULL\n);\n\n'
                f'-- CreateIndex\nCREATE UNIQUE INDEX "{name}_AB_unique" ON "{name}"("A", "B");'
                f'\n\n-- CreateIndex\nCREATE INDEX "{name}_B_index" ON "{name}"("B");\n\n'
                f'-- AddForeignKey\nALTER TABLE "{name}" ADD CONSTRAINT "{name}_A_fkey" FOREIGN '
                f'KEY ("A") REFERENCES "{a.name}"("id") ON DELETE CASCADE ON UPDATE CASCADE;\n\n'
                f'-- AddForeignKey\nALTER TABLE "{name}" ADD CONSTRAINT "{name}_B_fkey" FOREIGN '
                f'KEY ("B") REFERENCES "{b.name}"("id") ON DELETE CASCADE ON UPDATE CASCADE;\n')

    def rename_index(self) -> str:
        m = self._pick()
        if not m.indexes:
            return self.create_index()
        old = self.rng.choice(m.indexes)
        new = f"{old}_r{self.serial}"
        self.serial += 1
        m.indexes[m.indexes.index(old)] = new
        return f'-- RenameIndex\nALTER INDEX "{old}" RENAME TO "{new}";\n'

    def drop_column(self) -> str:
        m = self._pick()
        optional = [n for n, _ in _FIELDS if n in m.columns]
        if not optional:
            return self.add_column()
        col = self.rng.choice(optional)
        m.columns.remove(col)
        return ("/*\n  Warnings:\n\n  - You are about to drop the column `" + col + "` on the `"
                + m.name + "` table. All the data in the column will be lost.\n\n*/\n"
                f'-- AlterTable\nALTER TABLE "{m.name}" DROP COLUMN "{col}";\n')

    def data_fix(self) -> str:
        m = self._pick()
        return (f"-- Hand-written: back-fill before the application relies on it\n"
                f'UPDATE "{m.name}" SET "name" = trim("name") WHERE "name" <> trim("name");\n')


def _slug(kind: str, rng: random.Random) -> str:
    words = {"add_column": "add_fields", "create_table": "add_model", "create_index":
             "add_index", "create_enum": "add_status_enum", "add_enum_value": "add_enum_value",
             "refk": "update_relation", "alter_column": "alter_defaults", "join_table":
             "many_to_many", "rename_index": "rename_index", "drop_column": "remove_field",
             "data_fix": "backfill"}
    return words[kind] + ("" if rng.random() < 0.5 else f"_{rng.randint(1, 99)}")


def generate_prisma(root: Path, count: int = DEFAULT_PRISMA_COUNT, *, seed: int = 20210605,
                    dbmate: bool = True) -> Corpus:
    """Write ``count`` Prisma migrations under ``root/sql`` (directories), the same SQL as
    flat dbmate files under ``root/dbmate``, and ``root/psql.sql``."""
    if count < 1:
        raise ValueError("count must be at least 1")
    rng = random.Random(seed)
    schema = _Prisma(rng)
    sql_dir, dbmate_dir = root / "sql", root / "dbmate"
    sql_dir.mkdir(parents=True, exist_ok=True)
    if dbmate:
        dbmate_dir.mkdir(parents=True, exist_ok=True)
    when = _START
    migrations: list[Migration] = []
    kinds = [k for k, _ in _WEIGHTS]
    weights = [w for _, w in _WEIGHTS]
    for i in range(count):
        kind = "init" if i == 0 else rng.choices(kinds, weights)[0]
        text = schema.init() if i == 0 else getattr(schema, kind)()
        when += timedelta(seconds=rng.randint(600, 86_400 * 6))
        name = f"{when:%Y%m%d%H%M%S}_{'init' if i == 0 else _slug(kind, rng)}"
        (sql_dir / name).mkdir()
        (sql_dir / name / "migration.sql").write_text(text, encoding="utf-8")
        if dbmate:
            (dbmate_dir / f"{name}.sql").write_text(
                f"-- migrate:up\n{text}\n-- migrate:down\n", encoding="utf-8")
        migrations.append(Migration(name, kind, text))
    script = root / "psql.sql"
    script.write_text("".join(
        "\\i '" + str((sql_dir / m.name / "migration.sql").resolve()).replace("'", "\\'")
        + "'\n" for m in migrations), encoding="utf-8")
    return Corpus(root, sql_dir, dbmate_dir, script, migrations,
                  Counter(m.kind for m in migrations))
