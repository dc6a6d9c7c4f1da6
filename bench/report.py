"""Medians, ratios and targets: the table a person reads and the JSON a machine reads."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .commands import Timing

SCHEMA_VERSION = 1

# measurement key -> what it times
MEASUREMENTS: dict[str, str] = {
    "psql_apply": "psql: apply all, one session (the floor)",
    "dbmate_apply": "dbmate up: apply all",
    "runner_apply": "runner up: apply all",
    "runner_apply_grouped": "runner up --single-transaction (info)",
    "dbmate_noop": "dbmate up: nothing pending",
    "runner_noop": "runner up: nothing pending",
    "runner_check": "runner check: files only",
    "nodepg_noop": "node-pg-migrate up: nothing pending",
    "prisma_psql_apply": "prisma corpus: psql, one session",
    "prisma_dbmate_apply": "prisma corpus: dbmate up",
    "prisma_runner_apply": "prisma corpus: runner up",
    "runner_help": "runner --help: process start",
}


@dataclass(frozen=True)
class Target:
    name: str
    text: str
    ratio: Callable[[Mapping[str, float]], float]
    """The measured value compared with ``limit``; pass when strictly below or at it."""
    limit: float
    strict: bool = False
    """True: pass only when strictly below the limit."""
    unit: str = "x"

    def evaluate(self, medians: Mapping[str, float]) -> dict[str, Any]:
        value = self.ratio(medians)
        ok = value < self.limit if self.strict else value <= self.limit
        return {"name": self.name, "target": self.text, "value": round(value, 4),
                "limit": self.limit, "unit": self.unit, "pass": ok}


TARGETS = (
    Target("apply-vs-psql", "runner apply <= 1.15x psql",
           lambda m: m["runner_apply"] / m["psql_apply"], 1.15),
    Target("prisma-apply-vs-psql", "prisma corpus: runner apply <= 1.15x psql",
           lambda m: m["prisma_runner_apply"] / m["prisma_psql_apply"], 1.15),
    Target("apply-vs-dbmate", "runner apply faster than dbmate",
           lambda m: m["runner_apply"] / m["dbmate_apply"], 1.0, strict=True),
    Target("noop-0.15s", "runner no-op up <= 0.15 s",
           lambda m: m["runner_noop"], 0.15, unit="s"),
    Target("noop-vs-node-pg-migrate", "runner no-op faster than node-pg-migrate's",
           lambda m: m["runner_noop"] / m["nodepg_noop"], 1.0, strict=True),
    Target("help-0.1s", "runner --help <= 0.1 s",
           lambda m: m["runner_help"], 0.1, unit="s"),
    Target("check-1000", "runner check of the check corpus < 1 s",
           lambda m: m["runner_check"], 1.0, strict=True, unit="s"),
)


def _ratios(m: Mapping[str, float]) -> dict[str, float]:
    return {
        "runnerApplyOverPsql": m["runner_apply"] / m["psql_apply"],
        "runnerApplyOverDbmate": m["runner_apply"] / m["dbmate_apply"],
        "runnerNoopOverDbmateNoop": m["runner_noop"] / m["dbmate_noop"],
        "dbmateApplyOverPsql": m["dbmate_apply"] / m["psql_apply"],
        "runnerGroupedApplyOverPsql": m["runner_apply_grouped"] / m["psql_apply"],
        "prismaRunnerApplyOverPsql": m["prisma_runner_apply"] / m["prisma_psql_apply"],
        "prismaRunnerApplyOverDbmate": m["prisma_runner_apply"] / m["prisma_dbmate_apply"],
        "runnerNoopOverNodePgMigrateNoop": m["runner_noop"] / m["nodepg_noop"],
    }


def summarize(samples: Mapping[str, list[Timing]], meta: Mapping[str, Any]) -> dict[str, Any]:
    walls = {k: [t.wall_s for t in v] for k, v in samples.items() if v}
    medians = {k: statistics.median(v) for k, v in walls.items()}
    stats = {
        k: {"label": MEASUREMENTS.get(k, k), "medianS": round(medians[k], 4),
            "minS": round(min(v), 4), "maxS": round(max(v), 4),
            "samplesS": [round(x, 4) for x in v],
            "cpuMedianS": round(statistics.median(t.cpu_s for t in samples[k]), 4)}
        for k, v in walls.items()
    }
    ratios = _ratios(medians)
    # Minimums are the least disturbed by other load; shown beside the medians.
    ratios_min = _ratios({k: min(v) for k, v in walls.items()})
    targets = [t.evaluate(medians) for t in TARGETS]
    return {
        "schemaVersion": SCHEMA_VERSION,
        **meta,
        "measurements": stats,
        "ratios": {k: round(v, 4) for k, v in ratios.items()},
        "ratiosOfMinimums": {k: round(v, 4) for k, v in ratios_min.items()},
        "targets": targets,
        "allTargetsPass": all(t["pass"] for t in targets),
    }


def table(report: Mapping[str, Any]) -> str:
    m = report["measurements"]
    count, check_count = report["corpus"]["count"], report["corpus"]["checkCount"]
    prisma = report.get("prismaCorpus", {}).get("count")
    lines = [
        f"{count} migrations, prisma corpus {prisma}, check {check_count} files; "
        f"{report['repeat']} repetition(s), PostgreSQL {report['postgres']}, "
        f"{report['dbmate']}, node-pg-migrate {report.get('nodePgMigrate')}",
        "",
        f"{'measurement':<44} {'median':>9} {'min':>9} {'max':>9} {'client CPU':>11}",
    ]
    for row in m.values():
        lines.append(f"{row['label']:<44} {row['medianS']:>8.3f}s {row['minS']:>8.3f}s "
                     f"{row['maxS']:>8.3f}s {row['cpuMedianS']:>10.3f}s")
    lines.append("")
    for title, r in (("ratios of medians", report["ratios"]),
                     ("ratios of minimums", report["ratiosOfMinimums"])):
        lines.append(
            f"{title + ':':<19} runner/psql {r['runnerApplyOverPsql']:.2f}x   "
            f"runner/dbmate {r['runnerApplyOverDbmate']:.2f}x   "
            f"no-op runner/dbmate {r['runnerNoopOverDbmateNoop']:.2f}x   "
            f"dbmate/psql {r['dbmateApplyOverPsql']:.2f}x   "
            f"grouped runner/psql {r['runnerGroupedApplyOverPsql']:.2f}x")
        lines.append(
            f"{'':<19} prisma runner/psql {r['prismaRunnerApplyOverPsql']:.2f}x   "
            f"prisma runner/dbmate {r['prismaRunnerApplyOverDbmate']:.2f}x   "
            f"no-op runner/node-pg-migrate {r['runnerNoopOverNodePgMigrateNoop']:.2f}x")
    load = report.get("machine", {})
    lines += [f"load average (1 min) before/after: {load.get('loadAverage1mBefore')}/"
              f"{load.get('loadAverage1mAfter')} on {load.get('cpus')} CPUs", ""]
    for t in report["targets"]:
        value = f"{t['value']:.3f}{t['unit']}"
        lines.append(f"{'PASS' if t['pass'] else 'FAIL'}  {t['target']:<44} measured {value}")
    return "\n".join(lines)
