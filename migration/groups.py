"""Transaction groups: which pending migrations commit together, and the declared boundaries.

Without ``--single-transaction`` every migration is its own group. With it, consecutive
transactional migrations share one transaction, and a boundary is declared (logged, and listed
in the artifact's ``executionSummary.boundaries``; never a silent split) before a
non-transactional migration and before a migration that uses an enum label added earlier in
the group, which PostgreSQL refuses inside the adding transaction (SQLSTATE 55P04).
"""

from __future__ import annotations

from dataclasses import dataclass

from .analysis import Analysis, label_use
from .contract import BOUNDARY_ENUM_VALUE_USED_LATER, BOUNDARY_NON_TRANSACTIONAL


@dataclass
class Group:
    migrations: list[Analysis]
    transactional: bool
    durable: bool = True
    """False: commit without waiting for the WAL flush (a later durable commit covers it)."""


def plan_groups(pending: list[Analysis], single_transaction: bool
                ) -> tuple[list[Group], list[dict[str, str]]]:
    if not single_transaction:
        return [Group([a], a.transactional) for a in pending], []
    groups: list[Group] = []
    boundaries: list[dict[str, str]] = []
    current: list[Analysis] = []
    labels: list[tuple[str, str, str]] = []  # (label, type, added by)

    def flush() -> None:
        nonlocal current, labels
        if current:
            groups.append(Group(current, True))
        current, labels = [], []

    for a in pending:
        if not a.transactional:
            flush()
            how = ("statement by statement" if a.tx_mode == "per-statement"
                   else "outside a transaction")
            boundaries.append({"before": a.file.name, "reason": BOUNDARY_NON_TRANSACTIONAL,
                               "detail": f"{a.file.name} runs {how}"})
            groups.append(Group([a], False))
            continue
        used = [(lb, t, by) for lb, t, by in labels if label_use(a, t, lb) is not None]
        if used and current:
            lb, t, by = used[0]
            flush()
            boundaries.append({"before": a.file.name, "reason": BOUNDARY_ENUM_VALUE_USED_LATER,
                               "detail": f"uses label {lb!r} of {t} added by {by}, which must "
                                         "commit first"})
        current.append(a)
        labels += [(lb, t, a.file.name) for t, lb in a.enum_labels_added]
    flush()
    return groups, boundaries
