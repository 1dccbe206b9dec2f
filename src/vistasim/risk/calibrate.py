"""Calibration: fit model-mode parameters, with intervals, from runs' audit.jsonl (and results.json).

What is identifiable from an audit trail of attempts, and how (the README repeats this):

* **Network and overload rates.** A network fault makes an attempt fail as ``network_timeout``; an overload as
  ``resource_exhaustion`` (``system_unavailable`` in load). Both can also be drawn as ordinary error types, so
  they are measured on the stages whose error-type weights (the run's config, else the defaults) give that type
  no weight: there every such failure is a fault. ``overload`` is divided by 4 for big-bang runs.
* **Per-step first-attempt pass rates.** One attempt fails with 1 - (1-net)(1-over) r, the same at every attempt,
  so r = (1 - failures/attempts) / ((1-net)(1-over)), with the corruption catches (below) taken out.
* **Corruption.** Corrupted records fail their first attempt at validate/schema_check or data_integrity as
  data_corruption; the excess of first-attempt data_corruption at schema_check over what validate's weights
  explain, over half of the records reaching it, estimates the per-patient rate.
* **Error-type weights** per stage: the stage's failures by type, minus the expected fault counts, normalised.
* **Retries.** ``retry_attempts`` = the largest attempt seen minus 1 (exact once any record exhausts retries);
  ``retry_delay_seconds`` from the gap between an attempt and the first (delay x (2^(a-1) - 1)).
* **Durations** (staged or big-bang runs; a parallel run's rounds overlap): the gaps between successive rounds of
  a batch give round durations; minus the round's retry delay and divided by 1 + log10(max(1, m/10)) they are
  b x U(1-v, 1+v), so the stage's base duration is 4 x their mean and v is sqrt(3) x their relative spread.
  ``max_concurrent_patients`` is the largest round (divided by 4 for big-bang runs).
* Quality degradation is not in the audit trail: it is copied from the run's config.

Intervals are 95 %: Wilson for proportions (the uncertainty of net/over is not propagated into the step
rates), Student t for mean durations.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..config import MigrationConfig, _default_error_weights
from ..engine import STEPS
from ..errors import InputError
from ..model import ERROR_TYPES, STAGES, SUBSTAGES
from ..results import read_results
from .stats import interval, wilson

_STEP_INDEX = {(st, sub): i for i, (st, sub) in enumerate(STEPS)}
_TYPE_INDEX = {e: i for i, e in enumerate(ERROR_TYPES)}
_NT, _RE, _SU, _DC = (_TYPE_INDEX[e] for e in ("network_timeout", "resource_exhaustion", "system_unavailable",
                                                  "data_corruption"))
_SCHEMA_CHECK = _STEP_INDEX[("validate", "schema_check")]
_DATA_INTEGRITY = _STEP_INDEX[("validate", "data_integrity")]


def _overload_type(g: int) -> int:
    return _SU if STAGES[g] == "load" else _RE


@dataclass
class Counts:
    """Pooled attempt counts from one or more runs."""

    attempts: np.ndarray = field(default_factory=lambda: np.zeros(16, dtype=np.int64))
    first: np.ndarray = field(default_factory=lambda: np.zeros(16, dtype=np.int64))  # attempt-1 rows
    fails: np.ndarray = field(default_factory=lambda: np.zeros((16, 8), dtype=np.int64))
    first_fails: np.ndarray = field(default_factory=lambda: np.zeros((16, 8), dtype=np.int64))
    max_attempt: int = 0
    exhausted_attempt: int = 0  # largest attempt of a final failure of a transient type
    delay_samples: list[float] = field(default_factory=list)
    # per stage: normalised round durations b x U
    round_x: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    max_round: int = 0
    overload_factor: float = 1.0
    runs: int = 0
    duration_runs: int = 0


def _seconds_parser():  # type: ignore[no-untyped-def]
    cache: dict[str, float] = {}

    def parse(s: str) -> float:
        v = cache.get(s)
        if v is None:
            v = cache[s] = datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
        return v

    return parse


def _read_audit(path: Path) -> list[tuple[float, str, str, int, int, int, int]]:
    import orjson

    if not path.is_file():
        raise InputError(f"{str(path)!r} not found: calibration reads run folders written with --out (audit.jsonl)")
    parse = _seconds_parser()
    rows = []
    with open(path, "rb") as fh:
        for ln, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                r = orjson.loads(line)
                step = _STEP_INDEX[(r["stage"], r["substage"])]
                etype = -1 if r["error_type"] is None else _TYPE_INDEX[r["error_type"]]
                outcome = ("success", "retry", "failed").index(r["outcome"])
                rows.append((parse(r["time"]), r["batch_id"], r["patient_id"], step, int(r["attempt"]), outcome, etype))
            except (ValueError, KeyError, TypeError):
                raise InputError(f"{str(path)!r}, line {ln}: not an audit row (time, batch_id, patient_id, stage, "
                                 "substage, attempt, outcome, error_type); re-run the command that wrote it") from None
    return rows


def _scale(m: float) -> float:
    return 1.0 + math.log10(max(1.0, m / 10.0))


def add_run(counts: Counts, run: Path) -> dict[str, Any]:
    """Pool one run folder's audit rows into ``counts``; returns the run's results.json (for its config)."""
    doc = read_results(run)
    strategy = doc.get("strategy", "staged")
    cfg = doc.get("config", {})
    delay_cfg = float(cfg.get("retry_delay_seconds", 1.0))
    rows = _read_audit(Path(run) / "audit.jsonl")
    counts.runs += 1
    if strategy == "big_bang":
        counts.overload_factor = 4.0
    first_time: dict[tuple[str, str, int], float] = {}
    rounds: dict[tuple[str, int, float], list[int]] = defaultdict(lambda: [0, 1])  # size, max attempts
    for t, b, p, s, a, o, e in rows:
        counts.attempts[s] += 1
        counts.max_attempt = max(counts.max_attempt, a)
        if a == 1:
            counts.first[s] += 1
            rounds[(b, s, t)][0] += 1
            if o == 1:
                first_time[(b, p, s)] = t
        if o != 0:
            counts.fails[s, e] += 1
            if a == 1:
                counts.first_fails[s, e] += 1
            if o == 2 and e in (_NT, _RE, _SU):
                counts.exhausted_attempt = max(counts.exhausted_attempt, a)
        if a > 1:
            t1 = first_time.get((b, p, s))
            if t1 is not None:
                counts.delay_samples.append((t - t1) / (2.0 ** (a - 1) - 1.0))
                key = (b, s, t1)
                if key in rounds:
                    rounds[key][1] = max(rounds[key][1], a)
    if strategy in ("staged", "big_bang"):
        counts.duration_runs += 1
        factor = 4 if strategy == "big_bang" else 1
        by_batch: dict[str, list[tuple[int, float, int, int]]] = defaultdict(list)
        for (b, s, t), (m, amax) in rounds.items():
            by_batch[b].append((s, t, m, amax))
        for items in by_batch.values():
            items.sort(key=lambda x: (x[1], x[0]))  # barriers: steps and rounds follow one another in time
            for (s, t, m, amax), (_s2, t2, _m2, _a2) in zip(items, items[1:]):
                delay = delay_cfg * (2.0 ** (amax - 1) - 1.0)
                x = (t2 - t - delay) / _scale(m)
                if x > 0:
                    counts.round_x[s // 4].append(x)
                counts.max_round = max(counts.max_round, -(-m // factor))
            if items:
                counts.max_round = max(counts.max_round, -(-items[-1][2] // factor))
    return doc


def _w(stage_weights: dict[str, dict[str, float]], g: int, t: int) -> float:
    return float(stage_weights.get(STAGES[g], {}).get(ERROR_TYPES[t], 0.0))


def fit(counts: Counts, weights_used: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Point estimates and 95 % intervals of every identifiable parameter."""
    n_g = np.array([counts.attempts[4 * g:4 * g + 4].sum() for g in range(4)], dtype=np.float64)
    f_g = np.array([counts.fails[4 * g:4 * g + 4].sum(axis=0) for g in range(4)], dtype=np.float64)  # (4, 8)
    net_stages = [g for g in range(4) if _w(weights_used, g, _NT) == 0 and n_g[g] > 0]
    over_stages = [g for g in range(4) if _w(weights_used, g, _overload_type(g)) == 0 and n_g[g] > 0]
    k_net = int(sum(f_g[g, _NT] for g in net_stages))
    n_net = int(sum(n_g[g] for g in net_stages))
    net, net_ci = wilson(k_net, n_net) if n_net else (0.0, None)
    k_over = int(sum(f_g[g, _overload_type(g)] for g in over_stages))
    n_over = int(sum(n_g[g] for g in over_stages))
    p_over, p_over_ci = wilson(k_over, n_over) if n_over else (0.0, None)
    scale = (1.0 - net) * counts.overload_factor
    over = min(1.0, p_over / scale) if scale > 0 else 0.0
    over_ci = None if p_over_ci is None else [min(1.0, v / scale) for v in p_over_ci]

    # corruption: excess first-attempt data_corruption at schema_check over validate's own share of failures
    g_val = STAGES.index("validate")
    plain = [s for s in range(4 * g_val, 4 * g_val + 4) if s not in (_SCHEMA_CHECK, _DATA_INTEGRITY)]
    other = [t for t in range(8) if t not in (_NT, _overload_type(g_val))]
    plain_other = sum(counts.fails[s, other].sum() for s in plain)
    plain_dc = sum(counts.fails[s, _DC] for s in plain)
    w_dc = plain_dc / plain_other if plain_other else 0.0
    excess = {}
    for s in (_SCHEMA_CHECK, _DATA_INTEGRITY):
        dc1 = counts.first_fails[s, _DC]
        nondc1 = counts.first_fails[s, other].sum() - dc1
        expected = nondc1 * w_dc / (1.0 - w_dc) if w_dc < 1 else 0.0
        excess[s] = max(0.0, dc1 - expected)
    n_sc = counts.first[_SCHEMA_CHECK]
    corr = min(1.0, 2.0 * excess[_SCHEMA_CHECK] / n_sc) if n_sc else 0.0
    _, corr_ci_half = wilson(int(round(excess[_SCHEMA_CHECK])), int(n_sc)) if n_sc else (0.0, None)
    corr_ci = None if corr_ci_half is None else [min(1.0, 2 * v) for v in corr_ci_half]

    keep = (1.0 - net) * (1.0 - over * counts.overload_factor)
    rates: dict[tuple[str, str | None], dict[str, Any]] = {}
    for s, (stage, sub) in enumerate(STEPS):
        n = float(counts.attempts[s]) - excess.get(s, 0.0)
        k = float(counts.fails[s].sum()) - excess.get(s, 0.0)
        if n <= 0:
            rates[(stage, sub)] = {"estimate": None, "ci95": None, "attempts": 0}
            continue
        p_fail, ci = wilson(int(round(k)), int(round(n)))
        est = min(1.0, max(0.0, (1.0 - p_fail) / keep)) if keep > 0 else 0.0
        rates[(stage, sub)] = {"estimate": est, "ci95": [min(1.0, max(0.0, (1.0 - ci[1]) / keep)),
                                                         min(1.0, max(0.0, (1.0 - ci[0]) / keep))] if ci else None,
                               "attempts": int(round(n))}
    weights: dict[str, dict[str, Any]] = {}
    for g, stage in enumerate(STAGES):
        c = f_g[g].copy()
        c[_NT] -= net * n_g[g]
        c[_overload_type(g)] -= (1.0 - net) * over * counts.overload_factor * n_g[g]
        # where a fault was measured, its type has no weight by the identification rule
        if g in net_stages:
            c[_NT] = 0.0
        if g in over_stages:
            c[_overload_type(g)] = 0.0
        if stage == "validate":
            c[_DC] -= sum(excess.values())
        c = np.maximum(c, 0.0)
        total = c.sum()
        weights[stage] = {}
        for t, e in enumerate(ERROR_TYPES):
            if total <= 0 or c[t] <= 0:
                continue
            p, ci = wilson(int(round(c[t])), int(round(total)))
            weights[stage][e] = {"estimate": p, "ci95": ci}
    durations: dict[str, Any] = {}
    variances = []
    for g, stage in enumerate(STAGES):
        xs = counts.round_x.get(g, [])
        if len(xs) >= 2:
            st = interval(np.asarray(xs) * 4.0)
            durations[stage] = {"estimate": st["mean"], "ci95": st["ci95"], "rounds": len(xs)}
            u = np.asarray(xs) / np.mean(xs)
            variances.append(float(np.std(u, ddof=1)) * math.sqrt(3.0))
    delay = interval(counts.delay_samples) if counts.delay_samples else None
    return {
        "runs": counts.runs,
        "network_failure_rate": {"estimate": net, "ci95": net_ci, "measured_on": [STAGES[g] for g in net_stages]},
        "system_overload_rate": {"estimate": over, "ci95": over_ci, "measured_on": [STAGES[g] for g in over_stages]},
        "data_corruption_rate": {"estimate": corr, "ci95": corr_ci},
        "stage_success_rates": {st: rates[(st, None)] for st in STAGES},
        "substage_success_rates": {st: {u: rates[(st, u)] for u in SUBSTAGES[st]} for st in STAGES},
        "error_type_weights": weights,
        "stage_base_duration": durations,
        "duration_variance": {"estimate": min(0.99, float(np.mean(variances))) if variances else None},
        "retry_attempts": {"estimate": max(0, (counts.exhausted_attempt or counts.max_attempt) - 1),
                           "exact": counts.exhausted_attempt > 0},
        "retry_delay_seconds": {"estimate": delay["mean"] if delay else None, "ci95": delay["ci95"] if delay else None},
        "max_concurrent_patients": {"estimate": counts.max_round or None},
    }


def calibrate_runs(runs: Sequence[str | Path]) -> tuple[MigrationConfig, dict[str, Any]]:
    """Fit a MigrationConfig from run folders; returns it and the ``calibration`` dict (estimates, intervals)."""
    if not runs:
        raise InputError("calibrate needs at least one run folder (written by vistasim simulate/migrate --out)")
    counts = Counts()
    docs = [add_run(counts, Path(r)) for r in runs]
    base = docs[0].get("config") or {}
    weights_used = base.get("error_type_weights") or _default_error_weights()
    cal = fit(counts, weights_used)
    cfg = to_config(cal, base)
    cal["sources"] = [str(r) for r in runs]
    return cfg, cal


def to_config(cal: dict[str, Any], base: dict[str, Any]) -> MigrationConfig:
    """The fitted values as a MigrationConfig; what is not identified comes from the run's config."""
    from ..config import config_from_mapping

    def est(d: dict[str, Any], default: Any) -> Any:
        v = d.get("estimate")
        return default if v is None else v

    settings: dict[str, Any] = {}
    for key in ("quality_degradation_per_failure", "quality_degradation_per_success", "start_time"):
        if key in base:
            settings[key] = base[key]
    settings["stage_success_rates"] = {st: float(est(v, base.get("stage_success_rates", {}).get(st, 1.0)))
                                       for st, v in cal["stage_success_rates"].items()}
    settings["substage_success_rates"] = {
        st: {u: float(est(v, base.get("substage_success_rates", {}).get(st, {}).get(u, 1.0))) for u, v in subs.items()}
        for st, subs in cal["substage_success_rates"].items()}
    for key in ("network_failure_rate", "system_overload_rate", "data_corruption_rate"):
        settings[key] = float(est(cal[key], base.get(key, 0.0)))
    # a stage whose residual failures round to nothing keeps the run's (or default) weights
    w = {st: {e: v["estimate"] for e, v in ws.items() if v["estimate"] > 0} for st, ws in cal["error_type_weights"].items()}
    w = {st: ws for st, ws in w.items() if ws}
    if w:
        settings["error_type_weights"] = w
    d = {st: v["estimate"] for st, v in cal["stage_base_duration"].items()}
    if d:
        settings["stage_base_duration"] = d
    if cal["duration_variance"]["estimate"] is not None:
        settings["duration_variance"] = float(cal["duration_variance"]["estimate"])
    settings["retry_attempts"] = int(cal["retry_attempts"]["estimate"])
    if cal["retry_delay_seconds"]["estimate"] is not None:
        settings["retry_delay_seconds"] = max(0.0, float(cal["retry_delay_seconds"]["estimate"]))
    if cal["max_concurrent_patients"]["estimate"]:
        settings["max_concurrent_patients"] = int(cal["max_concurrent_patients"]["estimate"])
    cfg, _ = config_from_mapping(settings, "calibrated settings")
    return cfg


def config_yaml(cfg: MigrationConfig, cal: dict[str, Any]) -> str:
    """YAML loadable by ``vistasim simulate --config``, the 95 % intervals as comments."""
    import yaml

    def ci(d: dict[str, Any]) -> str:
        c = d.get("ci95")
        return "" if not c else f"  # 95% CI [{c[0]:.6g}, {c[1]:.6g}]"

    body = cfg.to_dict()
    lines = ["# Calibrated by vistasim calibrate from: " + ", ".join(cal.get("sources", [])),
             "# Intervals are 95 % (Wilson for rates, t for durations); see vistasim.risk.calibrate for the method.",
             "migration_settings:"]
    text = yaml.safe_dump({"x": body}, sort_keys=False, default_flow_style=False, width=200)
    notes = {
        "network_failure_rate": ci(cal["network_failure_rate"]),
        "system_overload_rate": ci(cal["system_overload_rate"]),
        "data_corruption_rate": ci(cal["data_corruption_rate"]),
        "retry_delay_seconds": ci(cal["retry_delay_seconds"]),
    }
    current_stage = None
    section = None
    for raw in text.splitlines()[1:]:
        line = raw
        stripped = raw.strip()
        key = stripped.split(":", 1)[0]
        indent = len(raw) - len(raw.lstrip())
        if indent == 2:
            section = key
            current_stage = None
            line += notes.get(key, "")
        elif indent == 4:
            current_stage = key
            if section == "stage_success_rates":
                line += ci(cal["stage_success_rates"].get(key, {}))
            elif section == "stage_base_duration":
                line += ci(cal["stage_base_duration"].get(key, {}))
        elif indent == 6 and section == "substage_success_rates" and current_stage:
            line += ci(cal["substage_success_rates"][current_stage].get(key, {}))
        elif indent == 6 and section == "error_type_weights" and current_stage:
            line += ci(cal["error_type_weights"].get(current_stage, {}).get(key, {}))
        lines.append(line)
    return "\n".join(lines) + "\n"
