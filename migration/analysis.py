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

from .errors import Location, MigrationError, Problem
from .formats.base import MigrationFile, TxMode

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
    """The file holds its own ``BEGIN; ... COMMIT;`` block(s), replaced by the runner's."""
    detected_from: str | None = None
    """``header`` or ``content`` when non-transactional."""
    tx_mode: TxMode = "transaction"
    steps: list[list[Statement]] = field(default_factory=list)
    """What commits on its own in a per-statement run: each statement, a file's own
    ``BEGIN; ... COMMIT;`` block as one step."""

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
        return Problem(
            "syntax-error", f"syntax error: {e.args[0]}",
            location=location_of(mf, offset),
            sqlstate="42601",
            hint="fix the SQL; nothing was applied",
        )
    return Problem("syntax-error", "the SQL parser failed",  # pragma: no cover
                   location=Location(mf.name))


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


def _blocks(mf: MigrationFile, stmts: list[Statement]
            ) -> tuple[list[tuple[int, int]], list[MigrationError]]:
    """The file's own ``BEGIN; ... COMMIT;`` blocks as (begin index, commit index) pairs.

    Blocks may sit anywhere (a whole-file wrapper, or Prisma's enum change in the middle);
    they must not nest, and ROLLBACK / an unmatched COMMIT would end the runner's
    transaction part-way: refused.
    """
    pairs: list[tuple[int, int]] = []
    problems: list[MigrationError] = []
    open_at: int | None = None
    for i, st in enumerate(stmts):
        kw = st.tx_control
        if kw in ("BEGIN", "START"):
            if open_at is not None:
                problems.append(Problem("transaction-control",
                                        f"{kw} inside the file's own open BEGIN block",
                                        location=Location(mf.name, st.line, st.column),
                                        hint="close the first block with COMMIT before the next"))
            open_at = i
        elif kw == "COMMIT" and open_at is not None:
            pairs.append((open_at, i))
            open_at = None
        elif kw in ("COMMIT", "ROLLBACK", "PREPARE", "COMMIT_PREPARED", "ROLLBACK_PREPARED"):
            problems.append(Problem(
                "transaction-control", f"{kw} here would end the runner's transaction part-way",
                location=Location(mf.name, st.line, st.column),
                hint="a file may hold BEGIN; ... COMMIT; blocks (the runner's transaction "
                     "replaces them); otherwise split it into separate migrations"))
    if open_at is not None:
        st = stmts[open_at]
        problems.append(Problem("transaction-control", "BEGIN without a matching COMMIT",
                                location=Location(mf.name, st.line, st.column),
                                hint="add the COMMIT, or remove the BEGIN"))
    return pairs, problems


def _shape(mf: MigrationFile, stmts: list[Statement]) -> Analysis:
    problems: list[MigrationError] = list(mf.parts.problems)
    pairs, tx_problems = _blocks(mf, stmts)
    problems += tx_problems
    own_tx = {i for pair in pairs for i in pair}
    body = [st for i, st in enumerate(stmts) if i not in own_tx]
    self_wrapped = bool(pairs)
    # In a per-statement run a file's own block stays one step (its statements commit together).
    steps: list[list[Statement]] = []
    inside: dict[int, int] = {}
    for b, c in pairs:
        for i in range(b + 1, c):
            inside[i] = b
    for i, st in enumerate(stmts):
        if i in own_tx:
            continue
        if i in inside and steps and inside.get(i - 1) == inside[i]:
            steps[-1].append(st)
        else:
            steps.append([st])
    for st in body:
        if st.client_copy:
            problems.append(Problem(
                "copy-stdin",
                "COPY FROM STDIN / TO STDOUT needs a client streaming data and cannot run in a "
                "migration",
                location=Location(mf.name, st.line, st.column),
                hint="use INSERT ... SELECT or VALUES, or COPY from a server-side file",
            ))
    non_tx = [st for st in body if st.non_transactional]
    declared = mf.declared_no_transaction
    tx_mode: TxMode = "transaction"
    detected_from = None
    if declared:
        detected_from = "header"
        if len(body) == 1 and not self_wrapped:
            tx_mode = "no-transaction"
        elif mf.statement_split and body:
            tx_mode = "per-statement"
            for b, c in pairs:
                for st in stmts[b + 1:c]:
                    if st.non_transactional:
                        problems.append(Problem(
                            "non-transactional-mixed",
                            f"{st.non_transactional} inside the file's own BEGIN block",
                            location=Location(mf.name, st.line, st.column), sqlstate="25001",
                            hint="move it out of the BEGIN; ... COMMIT; block"))
        else:
            where = body[1] if len(body) > 1 else (body[0] if body else None)
            problems.append(Problem(
                "non-transactional-mixed",
                f"a no-transaction migration must hold exactly one statement, found {len(body)}",
                location=Location(mf.name, where.line, where.column) if where else Location(mf.name),
                hint="put each non-transactional statement in a migration of its own",
            ))
    elif non_tx:
        if len(body) == 1 and not self_wrapped:
            tx_mode = "no-transaction"
            detected_from = "content"
        else:
            st = non_tx[0]
            problems.append(Problem(
                "non-transactional-mixed",
                f"{st.non_transactional} cannot run inside a transaction block",
                location=Location(mf.name, st.line, st.column),
                sqlstate="25001",
                hint="move it to a migration of its own (exactly one statement), "
                     "optionally with the header `-- migration: no-transaction`",
            ))
    if not body and not problems:
        problems.append(Problem(
            "empty-file",
            "the migration is empty (no SQL statement)",
            location=Location(mf.name),
            hint="add SQL or delete the file; a fix is a new migration",
        ))
    if problems:
        from .errors import CheckError

        raise CheckError(problems)
    return Analysis(mf, stmts, tx_mode == "transaction", body, self_wrapped, detected_from,
                    tx_mode, steps if tx_mode == "per-statement" else [[st] for st in body])


_ENUM_DDL = ("AlterEnumStmt", "CreateEnumStmt")


def label_use(a: Analysis, type_name: str, label: str, after: int = -1) -> Statement | None:
    """The first statement (starting after offset ``after``) that may use ``label`` of enum
    ``type_name``: any string literal equal to the label, except inside enum DDL (adding the
    same label to ANOTHER type, or creating a type that lists it, is no use of this one)."""
    literal = "'" + label.replace("'", "''") + "'"
    for st in a.body:
        if st.start <= after or st.kind in _ENUM_DDL:
            continue
        if literal in st.sql:
            return st
    return None
