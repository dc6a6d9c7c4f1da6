"""What a migration's SQL does, read from PostgreSQL's own parser (pglast, libpg_query).

For every statement: where it is (offset, line, column), whether it can run inside a
transaction, the strongest table lock it takes, and the enum labels it adds. Regular
expressions are never used to classify SQL: a ``CONCURRENTLY`` inside a comment, a string
or a function body does not count, and one on a second line still does.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from .errors import Location, MigrationError
from .formats.base import MigrationFile

# PostgreSQL's table lock modes, weakest first.
LOCK_MODES = (
    "NONE",
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
)

# AlterTableCmd subtypes that take less than ACCESS EXCLUSIVE (PostgreSQL docs, ALTER TABLE).
_ALTER_TABLE_LOCKS = {
    "AT_AddConstraint": "ACCESS EXCLUSIVE",  # refined below for FOREIGN KEY
    "AT_ValidateConstraint": "SHARE UPDATE EXCLUSIVE",
    "AT_SetStatistics": "SHARE UPDATE EXCLUSIVE",
    "AT_ClusterOn": "SHARE UPDATE EXCLUSIVE",
    "AT_DropCluster": "SHARE UPDATE EXCLUSIVE",
    "AT_SetRelOptions": "SHARE UPDATE EXCLUSIVE",
    "AT_ResetRelOptions": "SHARE UPDATE EXCLUSIVE",
    "AT_EnableTrig": "SHARE ROW EXCLUSIVE",
    "AT_DisableTrig": "SHARE ROW EXCLUSIVE",
    "AT_AttachPartition": "SHARE UPDATE EXCLUSIVE",
    "AT_DetachPartitionFinalize": "SHARE UPDATE EXCLUSIVE",
}


@dataclass(frozen=True)
class Statement:
    index: int
    start: int
    """Character offset of the statement in the file's normalized text."""
    end: int
    line: int
    column: int
    kind: str
    """The parse node's name, e.g. ``IndexStmt``."""
    sql: str
    non_transactional: str | None = None
    """Why it cannot run in a transaction block (e.g. ``CREATE INDEX CONCURRENTLY``)."""
    lock: str = "NONE"
    target: str | None = None
    tx_control: str | None = None
    """``BEGIN``/``COMMIT``/... for transaction-control statements."""
    enum_added: tuple[str, str] | None = None
    """(type name, label) for ``ALTER TYPE ... ADD VALUE``."""
    index_name: str | None = None
    """Qualified name of the index a ``CREATE INDEX`` builds, when the file names it."""
    client_copy: bool = False
    """``COPY ... FROM STDIN`` / ``TO STDOUT``: needs a client feeding or reading data."""


@dataclass
class Analysis:
    file: MigrationFile
    statements: list[Statement]
    transactional: bool
    """False for a dedicated non-transactional migration (header or content)."""
    body: list[Statement] = field(default_factory=list)
    """The statements the runner executes: a file's own leading BEGIN/trailing COMMIT are
    left out because the runner's transaction replaces them (the file itself is unchanged)."""
    self_wrapped: bool = False
    detected_from: str | None = None
    """``header`` or ``content`` when non-transactional."""

    @property
    def enum_labels_added(self) -> list[tuple[str, str]]:
        return [s.enum_added for s in self.statements if s.enum_added]


class _Lines:
    def __init__(self, text: str) -> None:
        self.starts = [0]
        pos = text.find("\n")
        while pos != -1:
            self.starts.append(pos + 1)
            pos = text.find("\n", pos + 1)

    def at(self, offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.starts, offset) - 1
        return i + 1, offset - self.starts[i] + 1


def location_of(mf: MigrationFile, offset: int) -> Location:
    line, col = _Lines(mf.text).at(max(0, min(offset, len(mf.text))))
    return Location(mf.name, line, col)


def _name(node: dict[str, Any]) -> str | None:
    rel = node.get("relation")
    if isinstance(rel, dict) and rel.get("relname"):
        schema = rel.get("schemaname")
        return f"{schema}.{rel['relname']}" if schema else str(rel["relname"])
    return None


def _defnames(items: list[Any] | None) -> list[str]:
    return [str(i.get("DefElem", {}).get("defname", "")) for i in items or ()]


def _fk_targets(node: dict[str, Any]) -> str | None:
    """The tables a new table's foreign keys reference: they are what gets locked."""
    names = []
    for e in node.get("tableElts") or ():
        for c in [e, *e.get("ColumnDef", {}).get("constraints", ())]:
            pk = c.get("Constraint", {}).get("pktable") if _is_fk(c) else None
            if pk and pk.get("relname"):
                names.append(f"{pk['schemaname']}.{pk['relname']}" if pk.get("schemaname")
                             else str(pk["relname"]))
    return ", ".join(dict.fromkeys(names)) or None


def _is_fk(item: dict[str, Any]) -> bool:
    return bool(item.get("Constraint", {}).get("contype") == "CONSTR_FOREIGN")


def _classify(kind: str, node: dict[str, Any]) -> tuple[str | None, str, str | None]:
    """(non-transactional reason, lock mode, transaction-control keyword)."""
    if kind == "TransactionStmt":
        return None, "NONE", str(node.get("kind", "")).replace("TRANS_STMT_", "")
    if kind == "IndexStmt":
        if node.get("concurrent"):
            return "CREATE INDEX CONCURRENTLY", "SHARE UPDATE EXCLUSIVE", None
        return None, "SHARE", None
    if kind == "DropStmt":
        if node.get("concurrent"):
            return "DROP INDEX CONCURRENTLY", "SHARE UPDATE EXCLUSIVE", None
        return None, "ACCESS EXCLUSIVE", None
    if kind == "ReindexStmt":
        if "concurrently" in _defnames(node.get("params")):
            return "REINDEX CONCURRENTLY", "SHARE UPDATE EXCLUSIVE", None
        if node.get("kind") in ("REINDEX_OBJECT_DATABASE", "REINDEX_OBJECT_SYSTEM"):
            return str(node["kind"]).replace("REINDEX_OBJECT_", "REINDEX "), "SHARE", None
        return None, "SHARE", None
    if kind == "VacuumStmt":
        if node.get("is_vacuumcmd"):
            full = "full" in _defnames(node.get("options"))
            return "VACUUM", "ACCESS EXCLUSIVE" if full else "SHARE UPDATE EXCLUSIVE", None
        return None, "SHARE UPDATE EXCLUSIVE", None
    if kind in ("CreatedbStmt", "DropdbStmt", "CreateTableSpaceStmt", "DropTableSpaceStmt",
                "AlterSystemStmt"):
        return kind.replace("Stmt", "").upper(), "NONE", None
    if kind == "CreateSubscriptionStmt":
        return "CREATE SUBSCRIPTION", "NONE", None
    if kind == "AlterTableStmt":
        strongest = "NONE"
        for item in node.get("cmds") or ():
            cmd = item.get("AlterTableCmd", {})
            sub = str(cmd.get("subtype", ""))
            mode = _ALTER_TABLE_LOCKS.get(sub, "ACCESS EXCLUSIVE")
            if sub == "AT_AddConstraint" and _is_fk(cmd.get("def") or {}):
                mode = "SHARE ROW EXCLUSIVE"
            if sub == "AT_DetachPartition" and (cmd.get("def") or {}).get(
                    "PartitionCmd", {}).get("concurrent"):
                return "DETACH PARTITION CONCURRENTLY", "SHARE UPDATE EXCLUSIVE", None
            if LOCK_MODES.index(mode) > LOCK_MODES.index(strongest):
                strongest = mode
        return None, strongest, None
    if kind in ("RenameStmt", "TruncateStmt", "ClusterStmt", "AlterTableMoveAllStmt"):
        return None, "ACCESS EXCLUSIVE", None
    if kind == "RefreshMatViewStmt":
        return None, "EXCLUSIVE" if node.get("concurrent") else "ACCESS EXCLUSIVE", None
    if kind == "CreateTrigStmt":
        return None, "SHARE ROW EXCLUSIVE", None
    if kind == "CommentStmt":
        return None, "SHARE UPDATE EXCLUSIVE", None
    if kind in ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"):
        return None, "ROW EXCLUSIVE", None
    if kind == "LockStmt":
        return None, LOCK_MODES[min(int(node.get("mode", 8)), len(LOCK_MODES) - 1)], None
    if kind == "CreateStmt":
        elements = node.get("tableElts") or ()
        fks = any(_is_fk(e) for e in elements) or any(
            _is_fk(c) for e in elements for c in e.get("ColumnDef", {}).get("constraints") or ())
        return None, "SHARE ROW EXCLUSIVE" if fks else "NONE", None
    return None, "NONE", None


def _parse_error(mf: MigrationFile, text: str) -> MigrationError:
    import pglast

    # The typed parser reports the error offset in characters (the JSON one in bytes).
    try:
        pglast.parse_sql(text)
    except pglast.parser.ParseError as e:
        offset = e.args[1] if len(e.args) > 1 and isinstance(e.args[1], int) else 0
        return MigrationError(
            f"syntax error: {e.args[0]}",
            location=location_of(mf, offset),
            sqlstate="42601",
            hint="fix the SQL; nothing was applied",
        )
    return MigrationError("the SQL parser failed", location=Location(mf.name))  # pragma: no cover


def analyze(mf: MigrationFile) -> Analysis:
    """Parse one file. Raises MigrationError pointing at file, line and column."""
    import json

    from pglast import parser  # heavy: imported only when a file has to be parsed

    # The up part only, blanked elsewhere: offsets, lines and columns stay the file's own.
    text = mf.executable_text
    try:
        # The JSON form is ~10x cheaper than building pglast's typed tree.
        tree = json.loads(parser.parse_sql_json(text))
    except parser.ParseError:
        raise _parse_error(mf, text) from None
    if text.isascii():
        def char(offset: int) -> int:
            return offset
    else:
        raw = text.encode("utf-8")

        def char(offset: int) -> int:
            return len(raw[:offset].decode("utf-8", "ignore"))

    lines = _Lines(text)
    stmts: list[Statement] = []
    for i, rs in enumerate(tree.get("stmts", ())):
        b_start = int(rs.get("stmt_location", 0))
        b_len = int(rs.get("stmt_len", 0))
        start = char(b_start)
        end = char(b_start + b_len) if b_len else len(text)
        snippet = text[start:end]
        # Leading comments/blank lines belong to the statement for PostgreSQL, not for
        # the location we report.
        lead = len(snippet) - len(snippet.lstrip())
        while snippet[lead:].startswith("--"):
            nl = snippet.find("\n", lead)
            if nl == -1:
                break
            lead = nl + 1
            lead += len(snippet[lead:]) - len(snippet[lead:].lstrip())
        line, col = lines.at(start + lead)
        ((kind, node),) = rs["stmt"].items()
        reason, lock, tx = _classify(kind, node)
        enum_added = None
        if kind == "AlterEnumStmt" and node.get("newVal") and not node.get("oldVal"):
            type_name = ".".join(str(n["String"]["sval"]) for n in node.get("typeName", ()))
            enum_added = (type_name, str(node["newVal"]))
        index_name = None
        if kind == "IndexStmt" and node.get("idxname"):
            schema = (node.get("relation") or {}).get("schemaname")
            index_name = f"{schema}.{node['idxname']}" if schema else str(node["idxname"])
        stmts.append(
            Statement(
                index=i, start=start, end=end, line=line, column=col, kind=kind, sql=snippet,
                non_transactional=reason, lock=lock,
                target=_fk_targets(node) if kind == "CreateStmt" and lock != "NONE"
                else _name(node), tx_control=tx,
                enum_added=enum_added, index_name=index_name,
                client_copy=kind == "CopyStmt" and not node.get("filename")
                and not node.get("is_program"),
            )
        )
    return _shape(mf, stmts)


def _shape(mf: MigrationFile, stmts: list[Statement]) -> Analysis:
    problems: list[MigrationError] = []
    body = list(stmts)
    self_wrapped = False
    tx = [s for s in stmts if s.tx_control in ("BEGIN", "START", "COMMIT", "ROLLBACK")]
    if tx:
        if (
            len(tx) == 2 and stmts[0] is tx[0] and tx[0].tx_control in ("BEGIN", "START")
            and stmts[-1] is tx[1] and tx[1].tx_control == "COMMIT"
        ):
            self_wrapped = True
            body = stmts[1:-1]
        else:
            bad = next(s for s in tx if s not in (stmts[0], stmts[-1])) if len(stmts) > 1 and any(
                s not in (stmts[0], stmts[-1]) for s in tx) else tx[0]
            problems.append(MigrationError(
                f"{bad.tx_control} here would end the runner's transaction part-way",
                location=Location(mf.name, bad.line, bad.column),
                hint="a file may wrap itself in one leading BEGIN and one trailing COMMIT; "
                     "otherwise split it into separate migrations",
            ))
    for s in body:
        if s.client_copy:
            problems.append(MigrationError(
                "COPY FROM STDIN / TO STDOUT needs a client streaming data and cannot run in a "
                "migration",
                location=Location(mf.name, s.line, s.column),
                hint="use INSERT ... SELECT or VALUES, or COPY from a server-side file",
            ))
    non_tx = [s for s in body if s.non_transactional]
    declared = mf.declared_no_transaction
    transactional = True
    detected_from = None
    if declared:
        transactional = False
        detected_from = "header"
        if len(body) != 1 or self_wrapped:
            where = body[1] if len(body) > 1 else (body[0] if body else None)
            problems.append(MigrationError(
                f"a no-transaction migration must hold exactly one statement, found {len(body)}",
                location=Location(mf.name, where.line, where.column) if where else Location(mf.name),
                hint="put each non-transactional statement in a migration of its own",
            ))
    elif non_tx:
        if len(body) == 1 and not self_wrapped:
            transactional = False
            detected_from = "content"
        else:
            s = non_tx[0]
            problems.append(MigrationError(
                f"{s.non_transactional} cannot run inside a transaction block",
                location=Location(mf.name, s.line, s.column),
                sqlstate="25001",
                hint="move it to a migration of its own (exactly one statement), "
                     "optionally with the header `-- migration: no-transaction`",
            ))
    if not body and not problems:
        problems.append(MigrationError(
            "the migration is empty (no SQL statement)",
            location=Location(mf.name),
            hint="add SQL or delete the file; a fix is a new migration",
        ))
    if problems:
        from .errors import CheckError

        raise CheckError(problems)
    return Analysis(mf, stmts, transactional, body, self_wrapped, detected_from)


def uses_label(mf: MigrationFile, label: str) -> bool:
    """True when the file holds ``label`` as a string literal (conservative: any use)."""
    return "'" + label.replace("'", "''") + "'" in mf.executable_text
