"""Strategies compared on common random numbers: the same population, seed and replication indices for each.

Every patient's uniforms are keyed by (seed, replication, patient, step, attempt), not by strategy, so two
strategies see the same luck and their per-replication difference carries only the effect of the strategy
(big-bang's fourfold overload, parallel's halved concurrency, barriers or none). That makes the interval of a
difference much narrower than with independent streams (``common_random_numbers=False``, kept for checking).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..model import STRATEGIES
from .montecarlo import METRICS, RiskRun, _metric_block, plan_summary, simulate_risk
from .plan import Plan
from .stats import interval

INDEPENDENT_OFFSET = 1 << 30  # replication index offset per strategy when streams are independent


def with_strategy(plan: Plan, strategy: str) -> Plan:
    """The same plan with every wave run under ``strategy``."""
    return Plan(plan.name, plan.sites, [replace(w, strategy=strategy) for w in plan.waves], plan.config,
                plan.shared_person_fraction, plan.description)


def parse_strategies(text: str) -> list[str]:
    items = [s.strip() for s in (text or "").split(",") if s.strip()]
    if len(items) < 2:
        raise ConfigError(f"--strategies {text!r} must name at least two of {', '.join(STRATEGIES)}, comma-separated")
    for s in items:
        if s not in STRATEGIES:
            raise ConfigError(f"--strategies: unknown strategy {s!r} (use {', '.join(STRATEGIES)})")
    if len(set(items)) != len(items):
        raise ConfigError(f"--strategies {text!r} names a strategy twice")
    return items


def compare_strategies(
    plan: Plan,
    strategies: Sequence[str],
    replications: int,
    seed: int,
    *,
    common_random_numbers: bool = True,
    executor: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, RiskRun], dict[str, Any]]:
    """Run each strategy R times on the same draws; return the runs and the ``comparison`` section.

    ``progress(done, total)`` counts tasks over all strategies (each strategy runs the same number of tasks).
    """
    runs: dict[str, RiskRun] = {}
    k = len(strategies)
    for i, s in enumerate(strategies):
        offset = 0 if common_random_numbers else i * INDEPENDENT_OFFSET
        step = None if progress is None else (lambda done, total, i=i: progress(i * total + done, k * total))
        runs[s] = simulate_risk(with_strategy(plan, s), replications, seed, executor=executor, workers=workers,
                                scheduler=scheduler, replication_offset=offset, progress=step)
    return runs, comparison_section(runs, list(strategies), replications, seed, common_random_numbers, plan)


def difference(a: RiskRun, b: RiskRun, metric: str) -> np.ndarray:
    """Per-replication difference b - a of an overall metric."""
    return b.overall[metric] - a.overall[metric]


def comparison_section(runs: dict[str, RiskRun], strategies: list[str], R: int, seed: int, crn: bool,
                       plan: Plan) -> dict[str, Any]:
    base = strategies[0]
    diffs = []
    for s in strategies[1:]:
        metrics = {m: interval(difference(runs[base], runs[s], m)) for m in METRICS}
        better = {}
        for m, sign in (("success_rate", 1), ("quality", 1), ("elapsed_hours", -1), ("downtime_max_hours", -1)):
            d = difference(runs[base], runs[s], m) * sign
            better[m] = float((d > 0).mean())
        diffs.append({"strategy": s, "baseline": base, "metrics": metrics, "share_of_replications_better": better})
    return {
        "strategies": strategies,
        "baseline": base,
        "replications": R,
        "seed": seed,
        "common_random_numbers": crn,
        "plan": plan_summary(plan),
        "per_strategy": {s: _metric_block(runs[s].overall, runs[s].overall_errors) for s in strategies},
        "differences": diffs,
    }
