"""Monte Carlo over a cutover plan: R replications of every wave, combined on the simulated calendar.

Replication ``r`` uses the engine's keyed draws with replication index ``r``; the population (which records are
shared persons) is the same in every replication. Per replication the waves are placed on the calendar (a wave
starts on its date, or when the previous one ends), the go/no-go outcome of each wave decides which of its
executions counts, and persons are counted once (see :mod:`vistasim.risk.plan`). The statistics are computed
from the per-replication values only, in replication order, so the output does not depend on how the
(replication, wave) tasks were spread over workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..distributed import Execution, resolve_executor, run_tasks, split
from ..errors import ConfigError
from ..model import ERROR_TYPES, STAGES, SUBSTAGES
from .plan import Plan
from .stats import interval, wilson
from .targets import Target
from .waves import N_TYPES, WaveResult, run_block

METRICS = ("success_rate", "quality", "errors", "elapsed_hours", "downtime_max_hours", "downtime_mean_hours",
           "rollbacks", "persons_created", "records_merged")
MAX_REPLICATIONS = 1_000_000


@dataclass
class RiskRun:
    """Per-replication values (arrays of length R) overall and per wave, and replication 0's wave results."""

    plan: Plan
    seed: int
    replications: int
    overall: dict[str, np.ndarray]
    overall_errors: np.ndarray  # (R, 8)
    waves: list[dict[str, np.ndarray]]
    wave_errors: list[np.ndarray]  # per wave (R, 8)
    wave_start: np.ndarray  # (R, waves) seconds after start_time
    rep0: list[WaveResult]
    execution: Execution = field(default_factory=lambda: Execution("inprocess"))


def is_deterministic(plan: Plan) -> bool:
    """True when no draw can change anything: every rate 1.0, no faults, no duration variance."""
    c = plan.config
    rates = [c.stage_rate(s) for s in STAGES] + [c.substage_rate(s, u) for s in STAGES for u in SUBSTAGES[s]]
    return (all(r == 1.0 for r in rates) and c.network_failure_rate == 0 and c.system_overload_rate == 0
            and c.data_corruption_rate == 0 and c.duration_variance == 0)


def plan_units(plan: Plan, replications: int, tasks: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Split (replication, wave) work into about ``tasks`` tasks: blocks of replications, or of waves when R is small."""
    n_w = len(plan.waves)
    reps = list(range(replications))
    if replications >= tasks or n_w == 1:
        return [(block, tuple(range(n_w))) for block in split(reps, tasks)]
    per_rep = max(1, tasks // replications)
    return [((r,), wb) for r in reps for wb in split(list(range(n_w)), per_rep)]


def _task(plan: Plan, seed: int, reps: tuple[int, ...], waves: tuple[int, ...]) -> list[tuple[int, int, WaveResult]]:
    return run_block(plan, seed, reps, waves)


def simulate_risk(
    plan: Plan,
    replications: int,
    seed: int,
    *,
    executor: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    tasks: int | None = None,
    replication_offset: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> RiskRun:
    """Run R replications of the plan and collect per-replication values (no statistics yet)."""
    if not isinstance(replications, int) or isinstance(replications, bool) or not 1 <= replications <= MAX_REPLICATIONS:
        raise ConfigError(f"--replications must be a whole number from 1 to {MAX_REPLICATIONS}, got {replications!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"--seed must be a whole number >= 0, got {seed!r}")
    plan.config.validate()
    executor = resolve_executor(executor, workers, scheduler)
    # in-process, one task unless a progress bar wants steps to show (results never depend on the split)
    n_tasks = tasks or ((min(replications * len(plan.waves), 100) if progress else 1) if executor == "inprocess"
                        else 4 * (workers or 2))
    units = plan_units(plan, replications, n_tasks)
    args = [(plan, seed, tuple(r + replication_offset for r in reps), waves) for reps, waves in units]
    results, execution = run_tasks(_task, args, executor=executor, workers=workers, scheduler=scheduler,
                                   progress=progress)
    table: dict[tuple[int, int], WaveResult] = {}
    for rows in results:
        for r, k, res in rows:
            table[(r - replication_offset, k)] = res
    return _combine(plan, seed, replications, table, execution)


def _combine(plan: Plan, seed: int, R: int, table: dict[tuple[int, int], WaveResult], execution: Execution) -> RiskRun:
    n_w = len(plan.waves)
    wv = [{m: np.zeros(R) for m in METRICS} for _ in range(n_w)]
    werr = [np.zeros((R, N_TYPES), dtype=np.int64) for _ in range(n_w)]
    ov = {m: np.zeros(R) for m in METRICS}
    oerr = np.zeros((R, N_TYPES), dtype=np.int64)
    wave_start = np.zeros((R, n_w))
    offsets = [plan.wave_offset_seconds(k) for k in range(n_w)]
    for r in range(R):
        res = [table[(r, k)] for k in range(n_w)]
        accepted_run = [x.runs - 1 if x.accepted else None for x in res]
        t = 0.0
        first = last = None
        pat = mig = qsum = dsum = 0.0
        dmax = 0.0
        for k, x in enumerate(res):
            f = x.final
            start = max(offsets[k], t)
            end = start + x.span
            t = end
            wave_start[r, k] = start
            first = start if first is None else first
            last = end
            migrated = f.migrated if x.accepted else 0
            merged = 0.0
            if x.accepted:
                for j, hits in f.primary_hits.items():
                    q = accepted_run[j]
                    if q is not None and q < hits.size:
                        merged += int(hits[q])
            n = max(1.0, float(f.patients))
            vals = {
                "success_rate": migrated / n,
                "quality": f.quality_sum / n,
                "errors": float(x.errors_all.sum()),
                "elapsed_hours": x.span / 3600.0,
                "downtime_max_hours": x.down_max / 3600.0,
                "downtime_mean_hours": x.down_sum / n / 3600.0,
                "rollbacks": float(x.rollbacks),
                "persons_created": float(migrated - merged),
                "records_merged": float(merged),
            }
            for m, v in vals.items():
                wv[k][m][r] = v
            werr[k][r] = x.errors_all
            pat += f.patients
            mig += migrated
            qsum += f.quality_sum
            dsum += x.down_sum
            dmax = max(dmax, x.down_max)
        n = max(1.0, pat)
        ov["success_rate"][r] = mig / n
        ov["quality"][r] = qsum / n
        ov["errors"][r] = sum(wv[k]["errors"][r] for k in range(n_w))
        ov["elapsed_hours"][r] = ((last or 0.0) - (first or 0.0)) / 3600.0
        ov["downtime_max_hours"][r] = dmax / 3600.0
        ov["downtime_mean_hours"][r] = dsum / n / 3600.0
        for m in ("rollbacks", "persons_created", "records_merged"):
            ov[m][r] = sum(wv[k][m][r] for k in range(n_w))
        oerr[r] = sum(werr[k][r] for k in range(n_w))
    rep0 = [table[(0, k)] for k in range(n_w)]
    return RiskRun(plan, seed, R, ov, oerr, wv, werr, wave_start, rep0, execution)


# --------------------------------------------------------------------------- statistics section


def _metric_block(values: dict[str, np.ndarray], errors: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {m: interval(values[m]) for m in METRICS}
    out["errors_by_type"] = {e: interval(errors[:, i].astype(np.float64)) for i, e in enumerate(ERROR_TYPES)}
    return out


def target_section(run: RiskRun, targets: Sequence[Target]) -> dict[str, Any]:
    point = is_deterministic(run.plan)
    rows = []
    all_met = np.ones(run.replications, dtype=bool)
    for t in targets:
        met = np.array([t.met(float(x)) for x in run.overall[t.metric]], dtype=bool)
        all_met &= met
        p, ci = wilson(int(met.sum()), run.replications, point)
        rows.append({"target": t.text, "metric": t.metric, "op": t.op, "value": t.value,
                     "replications_met": int(met.sum()), "probability": p, "ci95": ci})
    joint = None
    if targets:
        p, ci = wilson(int(all_met.sum()), run.replications, point)
        joint = {"replications_met": int(all_met.sum()), "probability": p, "ci95": ci}
    return {"targets": rows, "all_targets": joint, "interval_method": "point (deterministic model)" if point else "wilson"}


def plan_summary(plan: Plan) -> dict[str, Any]:
    return {
        "name": plan.name,
        "sites": len(plan.sites),
        "waves": len(plan.waves),
        "patients": plan.total_patients,
        "shared_person_fraction": plan.shared_person_fraction,
    }


def risk_section(run: RiskRun, targets: Sequence[Target], source: str) -> dict[str, Any]:
    """The results.json ``risk`` section."""
    plan = run.plan
    waves = []
    for k, w in enumerate(plan.waves):
        waves.append({
            "name": w.name,
            "date": w.date.date().isoformat(),
            "strategy": w.strategy,
            "batch_size": w.batch_size,
            "sites": list(w.sites),
            "patients": plan.wave_patients(k),
            "metrics": _metric_block(run.waves[k], run.wave_errors[k]),
        })
    return {
        "replications": run.replications,
        "seed": run.seed,
        "source": source,
        "plan": plan_summary(plan),
        "confidence": 0.95,
        "band_percentiles": [5, 95],
        "overall": _metric_block(run.overall, run.overall_errors),
        "waves": waves,
        **target_section(run, targets),
    }
