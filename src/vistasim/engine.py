"""The model-mode engine: keyed outcomes per patient and step, then rounds on a simulated clock.

Nothing here sleeps. Time is a number of simulated seconds since the run's ``start_time``; it moves
only by adding round durations. The work is done in two vectorised passes:

1. **Outcomes** (:func:`draw_outcomes`): for each of the 16 steps and each attempt, the patients still
   at that step draw success, a network fault, an overload and an error type from keyed uniforms
   (seed, replication, patient key, step, attempt). Transient errors are retried up to
   ``retry_attempts`` times; a permanent error (or an exhausted retry) stops the patient. These draws
   never depend on batch split, call order or worker.
2. **Timing** (:func:`schedule`): a batch passes a step in rounds of at most ``c`` patients; a round of
   ``m`` lasts ``b x (1 + log10(max(1, m/10))) x U(1-v, 1+v)`` plus the longest retry delay in it,
   ``b`` being a quarter of the stage's base duration. Staged and big-bang runs are fully sequential
   (waves, then steps with barriers, then rounds); a parallel run is a pipeline in which each step
   serves rounds as soon as their patients are ready (a max-plus scan).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import MigrationConfig
from .model import ERROR_TYPES, STAGES, TRANSIENT_ERRORS, step_names
from .rng import hash_keys, name_key

STEPS = step_names()
N_STEPS = len(STEPS)  # 16
STEP_STAGE = np.array([STAGES.index(st) for st, _ in STEPS], dtype=np.int8)
ERROR_INDEX = {e: i for i, e in enumerate(ERROR_TYPES)}
TRANSIENT_MASK = np.array([e in TRANSIENT_ERRORS for e in ERROR_TYPES], dtype=bool)
NETWORK_TIMEOUT = ERROR_INDEX["network_timeout"]
RESOURCE_EXHAUSTION = ERROR_INDEX["resource_exhaustion"]
SYSTEM_UNAVAILABLE = ERROR_INDEX["system_unavailable"]
DATA_CORRUPTION = ERROR_INDEX["data_corruption"]
# Steps at which validate catches a corrupted record: schema_check or data_integrity.
CORRUPTION_CHECK_STEPS = (STEPS.index(("validate", "schema_check")), STEPS.index(("validate", "data_integrity")))
MIGRATED = N_STEPS  # fail_step value of a patient that passed every step

_S_NET, _S_OVER, _S_OK, _S_TYPE = (np.uint64(name_key(n)) for n in ("network", "overload", "success", "error_type"))
_S_CORRUPT, _S_CORRUPT_AT = name_key("corruption"), name_key("corruption_step")
_S_ROUND = name_key("round_duration")


def _mix(h: np.ndarray) -> np.ndarray:
    from .rng import _mix as mix

    return mix(h)


def _u(h: np.ndarray) -> np.ndarray:
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / float(1 << 53))


@dataclass
class StrategyParams:
    """What a strategy changes in the engine (DESIGN.md "Strategies")."""

    name: str
    concurrency: int
    overload_rate: float
    barriers: bool
    reconciliation: bool
    one_wave: bool


def strategy_params(strategy: str, config: MigrationConfig) -> StrategyParams:
    c = int(config.max_concurrent_patients)
    if strategy == "big_bang":
        return StrategyParams("big_bang", 4 * c, min(1.0, 4 * float(config.system_overload_rate)), True, False, True)
    if strategy == "parallel":
        return StrategyParams("parallel", max(1, c // 2), float(config.system_overload_rate), False, True, False)
    return StrategyParams("staged", c, float(config.system_overload_rate), True, False, False)


@dataclass
class Outcomes:
    """Per-patient outcomes of one migration, independent of batching."""

    attempts: np.ndarray  # (n, 16) int8: attempts made at each step, 0 = step not reached
    fail_step: np.ndarray  # (n,) int8: step where the patient stopped, MIGRATED (16) if it passed all
    fail_type: np.ndarray  # (n,) int8: error type index of the stopping failure, -1 if migrated
    corrupted: np.ndarray  # (n,) bool: data corrupted at extract
    quality: np.ndarray  # (n,) float64
    # failed attempts, one row each, sorted by (step, patient, attempt)
    f_patient: np.ndarray
    f_step: np.ndarray
    f_attempt: np.ndarray
    f_type: np.ndarray

    @property
    def n(self) -> int:
        return int(self.fail_step.shape[0])

    @property
    def migrated(self) -> np.ndarray:
        return self.fail_step == MIGRATED

    def stages_passed(self) -> np.ndarray:
        """Number of whole stages each patient passed (0-4)."""
        return (self.fail_step.astype(np.int16) // 4).astype(np.int8)


def patient_base_hashes(keys: np.ndarray, seed: int, replication: int = 0) -> np.ndarray:
    return hash_keys(seed, replication, keys)


def draw_outcomes(
    keys: np.ndarray,
    config: MigrationConfig,
    seed: int,
    overload_rate: float | None = None,
    replication: int = 0,
) -> Outcomes:
    """Draw every patient's path through the 16 steps (vectorised, keyed)."""
    n = int(keys.shape[0])
    retry = int(config.retry_attempts)
    max_attempts = retry + 1
    net_rate = float(config.network_failure_rate)
    over_rate = float(config.system_overload_rate if overload_rate is None else overload_rate)
    base = patient_base_hashes(keys, seed, replication)

    with np.errstate(over="ignore"):
        corrupted = _u(_mix(base ^ np.uint64(_S_CORRUPT))) < float(config.data_corruption_rate)
        check_at = np.where(
            _u(_mix(base ^ np.uint64(_S_CORRUPT_AT))) < 0.5, CORRUPTION_CHECK_STEPS[0], CORRUPTION_CHECK_STEPS[1]
        ).astype(np.int8)

    attempts = np.zeros((n, N_STEPS), dtype=np.int8)
    fail_step = np.full(n, MIGRATED, dtype=np.int8)
    fail_type = np.full(n, -1, dtype=np.int8)
    fp: list[np.ndarray] = []
    fs: list[int] = []
    fa: list[np.ndarray] = []
    ft: list[np.ndarray] = []
    fcount: list[int] = []

    alive = np.arange(n, dtype=np.int64)
    for s, (stage, sub) in enumerate(STEPS):
        if alive.size == 0:
            break
        rate = config.substage_rate(stage, sub) if sub is not None else config.stage_rate(stage)
        weights = config.error_weights(stage)
        w_types = np.array([ERROR_INDEX[e] for e in weights], dtype=np.int8)
        cdf = np.cumsum(np.array(list(weights.values()), dtype=np.float64))
        cdf /= cdf[-1]
        overload_type = SYSTEM_UNAVAILABLE if stage == "load" else RESOURCE_EXHAUSTION
        pending = alive
        step_failed: list[np.ndarray] = []
        step_fp: list[np.ndarray] = []
        step_fa: list[np.ndarray] = []
        step_ft: list[np.ndarray] = []
        for a in range(1, max_attempts + 1):
            if pending.size == 0:
                break
            attempts[pending, s] = a
            with np.errstate(over="ignore"):
                h = _mix(base[pending] ^ np.uint64((s << 8) | a))
                u_net = _u(_mix(h ^ _S_NET))
                u_over = _u(_mix(h ^ _S_OVER))
                u_ok = _u(_mix(h ^ _S_OK))
                u_type = _u(_mix(h ^ _S_TYPE))
            net = u_net < net_rate
            over = u_over < over_rate
            fail = net | over | (u_ok >= rate)
            etype = np.where(
                net,
                NETWORK_TIMEOUT,
                np.where(over, overload_type, w_types[np.minimum(np.searchsorted(cdf, u_type, "right"), len(cdf) - 1)]),
            ).astype(np.int8)
            if a == 1 and s in CORRUPTION_CHECK_STEPS:
                caught = corrupted[pending] & (check_at[pending] == s)
                fail |= caught
                etype[caught] = DATA_CORRUPTION
            if not fail.any():
                break
            failed_idx = pending[fail]
            failed_type = etype[fail]
            step_fp.append(failed_idx)
            step_fa.append(np.full(failed_idx.size, a, dtype=np.int8))
            step_ft.append(failed_type)
            retryable = TRANSIENT_MASK[failed_type] & (a < max_attempts)
            stop = failed_idx[~retryable]
            if stop.size:
                fail_step[stop] = s
                fail_type[stop] = failed_type[~retryable]
                step_failed.append(stop)
            pending = failed_idx[retryable]
        if step_fp:
            p = np.concatenate(step_fp)
            at = np.concatenate(step_fa)
            ty = np.concatenate(step_ft)
            order = np.lexsort((at, p))
            fp.append(p[order])
            fa.append(at[order])
            ft.append(ty[order])
            fs.append(s)
            fcount.append(p.size)
        if step_failed:
            stopped = np.concatenate(step_failed)
            keep = np.ones(n, dtype=bool)
            keep[stopped] = False
            alive = alive[keep[alive]]

    f_patient = np.concatenate(fp) if fp else np.zeros(0, dtype=np.int64)
    f_attempt = np.concatenate(fa) if fa else np.zeros(0, dtype=np.int8)
    f_type = np.concatenate(ft) if ft else np.zeros(0, dtype=np.int8)
    f_step = np.repeat(np.array(fs, dtype=np.int8), fcount) if fs else np.zeros(0, dtype=np.int8)
    quality = patient_quality(fail_step, fail_type, corrupted, config)
    return Outcomes(attempts, fail_step, fail_type, corrupted, quality, f_patient, f_step, f_attempt, f_type)


def patient_quality(
    fail_step: np.ndarray, fail_type: np.ndarray, corrupted: np.ndarray, config: MigrationConfig
) -> np.ndarray:
    """Quality per DESIGN.md: 1.0, minus the corruption, minus one success step per stage passed, minus the
    stopping failure if it is of a permanent type; clipped to [0, 1] at every event. Moving in one direction,
    the clip is absorbing, so k equal steps clip like one step of k times the size."""
    f = float(config.quality_degradation_per_failure)
    s = float(config.quality_degradation_per_success)
    q = np.ones(fail_step.shape[0], dtype=np.float64)
    q = np.where(corrupted, np.clip(q - f, 0.0, 1.0), q)
    passed = (fail_step.astype(np.int16) // 4).astype(np.float64)
    q = np.clip(q - s * passed, 0.0, 1.0)
    permanent = (fail_type >= 0) & ~TRANSIENT_MASK[np.maximum(fail_type, 0)]
    q = np.where(permanent, np.clip(q - f, 0.0, 1.0), q)
    return q


# --------------------------------------------------------------------------- timing


@dataclass
class Schedule:
    """When each patient's steps ran, in simulated seconds from the run's start."""

    step_start: np.ndarray  # (n, 16) float64, NaN where not reached: start of the patient's round
    step_end: np.ndarray  # (n, 16) float64, NaN where not reached
    end: float  # simulated seconds at which the last work of the run ended
    peak_concurrency: int
    rounds: int
    wave_start: np.ndarray  # (waves,)
    wave_end: np.ndarray  # (waves,)
    reconcile_end: np.ndarray | None = None  # parallel: when each migrated patient's reconciliation ended
    round_log: dict = field(default_factory=dict)  # optional: per-round arrays for timelines


def retry_delay(attempts: np.ndarray, delay: float) -> np.ndarray:
    """Total backoff before the last of ``attempts`` attempts: sum of delay x 2^(j-1), j < attempts."""
    k = np.maximum(attempts.astype(np.int64), 1)
    return delay * (np.exp2(k - 1) - 1.0)


def round_durations(
    b: float,
    m: np.ndarray,
    variance: float,
    seed: int,
    wave_keys: np.ndarray,
    step: int,
    rnd: np.ndarray,
    replication: int,
) -> np.ndarray:
    """Duration of rounds of ``m`` patients: b x (1 + log10(max(1, m/10))) x U(1 - v, 1 + v)."""
    u = _u(hash_keys(seed, replication, _S_ROUND, wave_keys, step, rnd))
    scale = 1.0 + np.log10(np.maximum(1.0, m / 10.0))
    return b * scale * (1.0 - variance + 2.0 * variance * u)


def schedule(
    outcomes: Outcomes,
    config: MigrationConfig,
    params: StrategyParams,
    wave_of: np.ndarray,
    wave_keys: np.ndarray,
    seed: int,
    replication: int = 0,
    keep_rounds: bool = False,
) -> Schedule:
    """Lay the patients' steps on the simulated clock (seconds from 0)."""
    if params.barriers:
        return _schedule_sequential(outcomes, config, params, wave_of, wave_keys, seed, replication, keep_rounds)
    return _schedule_pipeline(outcomes, config, params, wave_of, wave_keys, seed, replication, keep_rounds)


def _step_b(config: MigrationConfig, s: int) -> float:
    return config.base_duration(STAGES[STEP_STAGE[s]]) / 4.0


def _schedule_sequential(outcomes, config, params, wave_of, wave_keys, seed, replication, keep_rounds) -> Schedule:
    n = outcomes.n
    n_waves = int(wave_keys.shape[0])
    c = params.concurrency
    delay = float(config.retry_delay_seconds)
    var = float(config.duration_variance)
    step_start = np.full((n, N_STEPS), np.nan)
    step_end = np.full((n, N_STEPS), np.nan)
    per_step_rounds: list[Any] = []  # (s, idx, round_of_patient, round_wave, round_dur, round_size)
    step_dur = np.zeros((n_waves, N_STEPS))
    peak = 0
    total_rounds = 0
    for s in range(N_STEPS):
        idx = np.flatnonzero(outcomes.attempts[:, s] > 0)
        if idx.size == 0:
            per_step_rounds.append(None)
            continue
        w = wave_of[idx]
        # rank of each patient among its wave's patients at this step (idx is sorted, waves are contiguous)
        change = np.flatnonzero(np.diff(w)) + 1
        starts = np.concatenate(([0], change))
        counts = np.diff(np.concatenate((starts, [idx.size])))
        rank = np.arange(idx.size) - np.repeat(starts, counts)
        rnd = rank // c
        # rounds: one per (wave, rnd); rows are already in (wave, rnd) order
        new_round = np.concatenate(([True], (np.diff(w) != 0) | (np.diff(rnd) != 0)))
        rid = np.cumsum(new_round) - 1
        r_first = np.flatnonzero(new_round)
        r_wave = w[r_first]
        r_num = rnd[r_first]
        r_size = np.bincount(rid).astype(np.float64)
        d = retry_delay(outcomes.attempts[idx, s], delay)
        r_delay = np.maximum.reduceat(d, r_first)
        r_dur = (
            round_durations(_step_b(config, s), r_size, var, seed, wave_keys[r_wave], s, r_num, replication) + r_delay
        )
        np.add.at(step_dur[:, s], r_wave, r_dur)
        peak = max(peak, int(r_size.max()))
        total_rounds += r_dur.size
        per_step_rounds.append((idx, rid, r_wave, r_dur, r_size))
    wave_dur = step_dur.sum(axis=1)
    wave_start = np.concatenate(([0.0], np.cumsum(wave_dur)[:-1]))
    wave_end = wave_start + wave_dur
    step_offset = wave_start[:, None] + np.concatenate(
        (np.zeros((n_waves, 1)), np.cumsum(step_dur, axis=1)[:, :-1]), axis=1
    )
    log: dict[str, Any] = {"start": [], "end": [], "size": [], "step": [], "wave": []} if keep_rounds else {}
    for s, item in enumerate(per_step_rounds):
        if item is None:
            continue
        idx, rid, r_wave, r_dur, r_size = item
        # start of each round = its (wave, step) offset + the durations of the earlier rounds of that wave/step
        cum = np.cumsum(r_dur)
        first_of_wave = np.concatenate(([True], np.diff(r_wave) != 0))
        base_cum = np.maximum.accumulate(np.where(first_of_wave, cum - r_dur, 0.0))
        r_start = step_offset[r_wave, s] + (cum - r_dur - base_cum)
        r_end = r_start + r_dur
        step_start[idx, s] = r_start[rid]
        step_end[idx, s] = r_end[rid]
        if keep_rounds:
            log["start"].append(r_start)
            log["end"].append(r_end)
            log["size"].append(r_size)
            log["step"].append(np.full(r_dur.size, s, dtype=np.int8))
            log["wave"].append(r_wave)
    if keep_rounds:
        log = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in log.items()}
    end = float(wave_end[-1]) if n_waves else 0.0
    return Schedule(step_start, step_end, end, peak, total_rounds, wave_start, wave_end, None, log)


def _pipeline_step(ready: np.ndarray, r_first: np.ndarray, r_dur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rounds served one after another by one step: round k starts at max(its last patient ready, end of k-1)."""
    r_ready = np.maximum.reduceat(ready, r_first)
    cum = np.cumsum(r_dur)
    end = cum + np.maximum.accumulate(r_ready - (cum - r_dur))
    return end - r_dur, end


def _schedule_pipeline(outcomes, config, params, wave_of, wave_keys, seed, replication, keep_rounds) -> Schedule:
    n = outcomes.n
    n_waves = int(wave_keys.shape[0])
    c = params.concurrency
    delay = float(config.retry_delay_seconds)
    var = float(config.duration_variance)
    step_start = np.full((n, N_STEPS), np.nan)
    step_end = np.full((n, N_STEPS), np.nan)
    ready = np.zeros(n)
    ev_t: list[np.ndarray] = []
    ev_d: list[np.ndarray] = []
    log: dict[str, Any] = {"start": [], "end": [], "size": [], "step": [], "wave": []} if keep_rounds else {}
    total_rounds = 0
    pipeline_key = np.array([name_key("pipeline")], dtype=np.uint64)
    n_total_steps = N_STEPS + 1
    reconcile_end = None
    for s in range(n_total_steps):
        if s < N_STEPS:
            idx = np.flatnonzero(outcomes.attempts[:, s] > 0)
            d = retry_delay(outcomes.attempts[idx, s], delay) if idx.size else np.zeros(0)
            b = _step_b(config, s)
        else:  # the reconciliation step of a parallel run: each migrated patient, duration b of load
            idx = np.flatnonzero(outcomes.migrated)
            d = np.zeros(idx.size)
            b = config.base_duration("load") / 4.0
        if idx.size == 0:
            continue
        # patients keep their order through the pipeline, and ready times are non-decreasing in that order
        order = np.argsort(ready[idx], kind="stable")
        idx = idx[order]
        d = d[order]
        rnd = np.arange(idx.size) // c
        r_first = np.arange(0, idx.size, c)
        r_size = np.diff(np.concatenate((r_first, [idx.size]))).astype(np.float64)
        r_delay = np.maximum.reduceat(d, r_first)
        r_num = np.arange(r_first.size)
        r_dur = (
            round_durations(b, r_size, var, seed, np.repeat(pipeline_key, r_first.size), s, r_num, replication)
            + r_delay
        )
        r_start, r_end = _pipeline_step(ready[idx], r_first, r_dur)
        if s < N_STEPS:
            step_start[idx, s] = r_start[rnd]
            step_end[idx, s] = r_end[rnd]
        else:
            reconcile_end = np.full(n, np.nan)
            reconcile_end[idx] = r_end[rnd]
        ready[idx] = r_end[rnd]
        ev_t.extend((r_start, r_end))
        ev_d.extend((r_size, -r_size))
        total_rounds += r_dur.size
        if keep_rounds:
            log["start"].append(r_start)
            log["end"].append(r_end)
            log["size"].append(r_size)
            log["step"].append(np.full(r_dur.size, s, dtype=np.int8))
            log["wave"].append(wave_of[idx[r_first]])
    if keep_rounds:
        log = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in log.items()}
    peak = 0
    if ev_t:
        t = np.concatenate(ev_t)
        dl = np.concatenate(ev_d)
        order = np.lexsort((dl, t))  # at equal times, ends (negative) before starts
        peak = int(np.cumsum(dl[order]).max())
    end = float(np.nanmax(ready)) if n else 0.0
    wave_start = np.zeros(n_waves)
    wave_end = np.zeros(n_waves)
    if n:
        first = np.nanmin(step_start, axis=1)
        last = np.nanmax(step_end, axis=1)
        if reconcile_end is not None:
            last = np.fmax(last, reconcile_end)
        wave_start = np.full(n_waves, np.inf)
        wave_end = np.full(n_waves, -np.inf)
        np.minimum.at(wave_start, wave_of, first)
        np.maximum.at(wave_end, wave_of, last)
    return Schedule(step_start, step_end, end, peak, total_rounds, wave_start, wave_end, reconcile_end, log)


def waves_for(n: int, batch_size: int) -> np.ndarray:
    """Wave index of each of n patients taken in order, batch_size at a time."""
    return (np.arange(n, dtype=np.int64) // max(1, int(batch_size))).astype(np.int64)


def wave_keys_for(batch_ids: Sequence[str]) -> np.ndarray:
    return np.array([name_key(b) for b in batch_ids], dtype=np.uint64)
