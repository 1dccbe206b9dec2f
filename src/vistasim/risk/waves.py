"""One wave of a cutover plan, one replication: outcomes and an aggregate-only schedule, in bounded memory.

This is the scale path of model mode. Patients are integer keys (station, DFN), never strings or objects;
a staged wave is processed in chunks of whole batches (batches are sequential and independent, so chunks
give exact results); nothing of size (patients x 16) is kept but the int8 attempt counts of one chunk. What
comes out is counts and sums (:class:`WaveRun`), enough for every statistic ``vistasim risk`` reports and for
the model sections of results.json.

The draws are the engine's: :func:`vistasim.engine.draw_outcomes` with ``replication = r + (run << 40)``
(``run`` counts re-runs after a rollback) and round durations keyed by (seed, replication, wave/batch key,
step, round). So a (replication, wave) pair is a pure function of its inputs: tasks can run anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import MigrationConfig
from ..engine import (
    MIGRATED,
    N_STEPS,
    STEP_STAGE,
    _pipeline_step,
    draw_outcomes,
    retry_delay,
    round_durations,
    strategy_params,
)
from ..model import ERROR_TYPES, STAGES
from ..rng import hash_keys, name_key, uniform
from .plan import Plan

N_TYPES = len(ERROR_TYPES)
QBINS = 20
CHUNK_PATIENTS = 1 << 18  # staged waves are processed in chunks of whole batches of about this size
LINK_TRIES = 4  # draws to find a first record that is not itself a later record of someone else
_S_LINK, _S_LINK_SITE, _S_LINK_DFN = (name_key(n) for n in ("plan_shared_person", "plan_shared_site", "plan_shared_dfn"))
_S_PIPE = name_key("plan_pipeline")


def site_key(station: str) -> int:
    """The integer identity of a VistA instance in keyed draws."""
    return name_key(f"station:{station}")


def record_keys(station: str, dfn_lo: int, dfn_hi: int) -> np.ndarray:
    """Keys of records DFN lo..hi-1 at a station: integers, so 9 million of them cost 72 MB and no strings."""
    return hash_keys(site_key(station), np.arange(dfn_lo, dfn_hi, dtype=np.int64))


def rep_key(replication: int, run: int) -> int:
    """The replication index given to the draws of a wave's ``run``-th execution (0 = first, 1 = after a rollback)."""
    return int(replication) + (int(run) << 40)


@dataclass
class WaveRun:
    """Aggregates of one execution of one wave (every array is small: per step, per type, per stage)."""

    patients: int = 0
    migrated: int = 0
    quality_sum: float = 0.0
    quality_sq: float = 0.0
    qhist: np.ndarray = field(default_factory=lambda: np.zeros(QBINS, dtype=np.int64))
    processed: np.ndarray = field(default_factory=lambda: np.zeros(N_STEPS, dtype=np.int64))
    attempts: np.ndarray = field(default_factory=lambda: np.zeros(N_STEPS, dtype=np.int64))
    errors: np.ndarray = field(default_factory=lambda: np.zeros((N_STEPS, N_TYPES), dtype=np.int64))
    stopped: np.ndarray = field(default_factory=lambda: np.zeros((N_STEPS, N_TYPES), dtype=np.int64))
    step_time: np.ndarray = field(default_factory=lambda: np.zeros(N_STEPS))
    step_execs: np.ndarray = field(default_factory=lambda: np.zeros(N_STEPS, dtype=np.int64))
    stage_time: np.ndarray = field(default_factory=lambda: np.zeros(len(STAGES)))
    stage_execs: np.ndarray = field(default_factory=lambda: np.zeros(len(STAGES), dtype=np.int64))
    span: float = 0.0  # simulated seconds from the run's start to its last work
    down_max: float = 0.0
    down_sum: float = 0.0  # patient-seconds frozen in VistA
    peak: int = 0
    rounds: int = 0
    batches: int = 0
    linked_migrated: int = 0  # migrated records whose person was seen at an earlier wave
    # primary wave j -> counts, per run q of wave j, of migrated linked records whose first record migrated in q
    primary_hits: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass
class WaveResult:
    """A wave in one replication: its final execution, and what the go/no-go rule cost."""

    wave: int
    final: WaveRun
    runs: int
    rollbacks: int
    accepted: bool
    span: float  # every execution plus every rollback window, seconds
    down_max: float
    down_sum: float
    errors_all: np.ndarray  # failed attempts by type over every execution


# --------------------------------------------------------------------------- population of a wave


def _wave_layout(plan: Plan, k: int) -> tuple[list[str], np.ndarray]:
    stations = list(plan.waves[k].sites)
    counts = np.array([plan.sites[s].patients for s in stations], dtype=np.int64)
    return stations, np.concatenate(([0], np.cumsum(counts)))


def _chunk_records(stations: list[str], bounds: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keys, site positions and DFNs of wave positions lo..hi-1 (sites in wave order, DFN 1..n at each)."""
    keys, site_pos, dfns = [], [], []
    first = int(np.searchsorted(bounds, lo, side="right")) - 1
    for i in range(first, len(stations)):
        a, b = max(lo, int(bounds[i])), min(hi, int(bounds[i + 1]))
        if a >= b:
            if bounds[i] >= hi:
                break
            continue
        d_lo, d_hi = a - int(bounds[i]) + 1, b - int(bounds[i]) + 1
        keys.append(record_keys(stations[i], d_lo, d_hi))
        site_pos.append(np.full(b - a, i, dtype=np.int32))
        dfns.append(np.arange(d_lo, d_hi, dtype=np.int64))
    return np.concatenate(keys), np.concatenate(site_pos), np.concatenate(dfns)


def _is_linked(seed: int, frac: float, skeys: np.ndarray, dfns: np.ndarray) -> np.ndarray:
    return uniform(seed, _S_LINK, skeys, dfns) < frac


class _Links:
    """Which earlier-wave record a shared person's first record is (keyed by seed, station, DFN)."""

    def __init__(self, plan: Plan, k: int, seed: int) -> None:
        self.plan, self.k, self.seed = plan, k, seed
        self.frac = float(plan.shared_person_fraction)
        earlier = [s for j in range(k) for s in plan.waves[j].sites]
        self.active = k > 0 and self.frac > 0 and bool(earlier)
        if not self.active:
            return
        self.e_station = earlier
        self.e_wave = np.array([j for j in range(k) for _ in plan.waves[j].sites], dtype=np.int64)
        self.e_n = np.array([plan.sites[s].patients for s in earlier], dtype=np.int64)
        self.e_skey = np.array([site_key(s) for s in earlier], dtype=np.uint64)
        self.cdf = np.cumsum(self.e_n).astype(np.float64) / float(self.e_n.sum())
        self.first_wave_sites = set(plan.waves[0].sites)

    def primaries(self, skeys: np.ndarray, dfns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For linked records: index into the earlier sites, and the DFN of the person's first record there."""
        u = uniform(self.seed, _S_LINK_SITE, skeys, dfns)
        e = np.minimum(np.searchsorted(self.cdf, u, side="right"), len(self.cdf) - 1)
        n_e = self.e_n[e]
        chosen = np.zeros(skeys.size, dtype=np.int64)
        open_ = np.ones(skeys.size, dtype=bool)
        for t in range(LINK_TRIES):
            cand = 1 + np.minimum((uniform(self.seed, _S_LINK_DFN, skeys, dfns, t) * n_e).astype(np.int64), n_e - 1)
            # a first record must not itself be a later record of an even earlier person (wave 0 never is)
            linked = (self.e_wave[e] > 0) & _is_linked(self.seed, self.frac, self.e_skey[e], cand)
            take = open_ & (~linked | (t == LINK_TRIES - 1))
            chosen[take] = cand[take]
            open_ &= ~take
        return e, chosen


# --------------------------------------------------------------------------- schedules (aggregate only)


def _sequential(out, cfg: MigrationConfig, conc: int, batch_local: np.ndarray, batch_keys: np.ndarray, seed: int,
                repk: int) -> tuple[np.ndarray, int, int]:
    """Per-batch step durations of barrier strategies (batches, steps and rounds in sequence)."""
    n_b = int(batch_keys.shape[0])
    delay, var = float(cfg.retry_delay_seconds), float(cfg.duration_variance)
    step_dur = np.zeros((n_b, N_STEPS))
    peak = rounds = 0
    for s in range(N_STEPS):
        idx = np.flatnonzero(out.attempts[:, s] > 0)
        if idx.size == 0:
            continue
        w = batch_local[idx]
        change = np.flatnonzero(np.diff(w)) + 1
        starts = np.concatenate(([0], change))
        counts = np.diff(np.concatenate((starts, [idx.size])))
        rnd = (np.arange(idx.size) - np.repeat(starts, counts)) // conc
        new_round = np.concatenate(([True], (np.diff(w) != 0) | (np.diff(rnd) != 0)))
        r_first = np.flatnonzero(new_round)
        r_size = np.diff(np.concatenate((r_first, [idx.size]))).astype(np.float64)
        r_delay = np.maximum.reduceat(retry_delay(out.attempts[idx, s], delay), r_first)
        b = cfg.base_duration(STAGES[STEP_STAGE[s]]) / 4.0
        r_dur = round_durations(b, r_size, var, seed, batch_keys[w[r_first]], s, rnd[r_first], repk) + r_delay
        step_dur[:, s] = np.bincount(w[r_first], weights=r_dur, minlength=n_b)
        peak = max(peak, int(r_size.max()))
        rounds += int(r_dur.size)
    return step_dur, peak, rounds


def _pipeline(out, cfg: MigrationConfig, conc: int, wave_key: int, seed: int, repk: int, run: WaveRun) -> None:
    """A parallel wave: no barriers, each step serves rounds as patients become ready; plus reconciliation."""
    n = out.n
    delay, var = float(cfg.retry_delay_seconds), float(cfg.duration_variance)
    ready = np.zeros(n)
    ev_t: list[np.ndarray] = []
    ev_d: list[np.ndarray] = []
    st_lo = np.full(len(STAGES), np.inf)
    st_hi = np.full(len(STAGES), -np.inf)
    for s in range(N_STEPS + 1):
        if s < N_STEPS:
            idx = np.flatnonzero(out.attempts[:, s] > 0)
            d = retry_delay(out.attempts[idx, s], delay) if idx.size else np.zeros(0)
            b = cfg.base_duration(STAGES[STEP_STAGE[s]]) / 4.0
        else:
            idx = np.flatnonzero(out.migrated)
            d = np.zeros(idx.size)
            b = cfg.base_duration("load") / 4.0
        if idx.size == 0:
            continue
        order = np.argsort(ready[idx], kind="stable")
        idx, d = idx[order], d[order]
        r_first = np.arange(0, idx.size, conc)
        r_size = np.diff(np.concatenate((r_first, [idx.size]))).astype(np.float64)
        r_num = np.arange(r_first.size)
        keys = np.full(r_first.size, np.uint64(wave_key), dtype=np.uint64)
        r_dur = round_durations(b, r_size, var, seed, keys, s, r_num, repk) + np.maximum.reduceat(d, r_first)
        r_start, r_end = _pipeline_step(ready[idx], r_first, r_dur)
        ready[idx] = r_end[np.arange(idx.size) // conc]
        ev_t.extend((r_start, r_end))
        ev_d.extend((r_size, -r_size))
        run.rounds += int(r_dur.size)
        if s < N_STEPS:
            run.step_time[s] += float(r_end.max() - r_start.min())
            run.step_execs[s] += 1
            g = int(STEP_STAGE[s])
            st_lo[g] = min(st_lo[g], float(r_start.min()))
            st_hi[g] = max(st_hi[g], float(r_end.max()))
    for g in range(len(STAGES)):
        if np.isfinite(st_lo[g]):
            run.stage_time[g] += st_hi[g] - st_lo[g]
            run.stage_execs[g] += 1
    if ev_t:
        t = np.concatenate(ev_t)
        dl = np.concatenate(ev_d)
        o = np.lexsort((dl, t))
        run.peak = max(run.peak, int(np.cumsum(dl[o]).max()))
    run.span = float(ready.max()) if n else 0.0
    run.batches = 1


# --------------------------------------------------------------------------- one execution of a wave


def _count_outcomes(out, run: WaveRun) -> None:
    run.patients += out.n
    run.migrated += int(out.migrated.sum())
    run.quality_sum += float(out.quality.sum())
    run.quality_sq += float(np.dot(out.quality, out.quality))
    run.qhist += np.bincount(np.minimum(QBINS - 1, (out.quality * QBINS).astype(np.int64)), minlength=QBINS)
    run.processed += (out.attempts > 0).sum(axis=0)
    run.attempts += out.attempts.sum(axis=0, dtype=np.int64)
    run.errors += np.bincount(out.f_step.astype(np.int64) * N_TYPES + out.f_type, minlength=N_STEPS * N_TYPES
                              ).reshape(N_STEPS, N_TYPES)
    stop = out.fail_step < MIGRATED
    run.stopped += np.bincount(out.fail_step[stop].astype(np.int64) * N_TYPES + out.fail_type[stop],
                               minlength=N_STEPS * N_TYPES).reshape(N_STEPS, N_TYPES)


def _count_links(plan: Plan, links: _Links, out, skeys: np.ndarray, dfns: np.ndarray, seed: int, replication: int,
                 run: WaveRun) -> None:
    mig = out.migrated
    linked = mig & _is_linked(seed, links.frac, skeys, dfns)
    if not linked.any():
        return
    run.linked_migrated += int(linked.sum())
    e, pdfn = links.primaries(skeys[linked], dfns[linked])
    pwave = links.e_wave[e]
    pkeys = hash_keys(links.e_skey[e], pdfn)
    # outcomes depend on the primary wave's strategy (overload) and its run; group by those, not by wave
    for strat in sorted({plan.waves[j].strategy for j in np.unique(pwave).tolist()}):
        in_s = np.array([plan.waves[j].strategy == strat for j in pwave.tolist()], dtype=bool)
        over = strategy_params(strat, plan.config).overload_rate
        max_q = max(plan.waves[j].go_no_go.max_reruns for j in np.unique(pwave[in_s]).tolist())
        for q in range(max_q + 1):
            ok = draw_outcomes(pkeys[in_s], plan.config, seed, overload_rate=over, replication=rep_key(replication, q)).migrated
            hits = np.bincount(pwave[in_s][ok], minlength=links.k)
            for j in np.flatnonzero(hits).tolist():
                arr = run.primary_hits.setdefault(j, np.zeros(plan.waves[j].go_no_go.max_reruns + 1, dtype=np.int64))
                if q < arr.size:
                    arr[q] += int(hits[j])


def run_wave_once(plan: Plan, k: int, seed: int, replication: int, run_no: int) -> WaveRun:
    """Execute wave ``k`` once (its ``run_no``-th execution) and return its aggregates."""
    wave = plan.waves[k]
    cfg = plan.wave_config(k)
    params = strategy_params(wave.strategy, cfg)
    repk = rep_key(replication, run_no)
    stations, bounds = _wave_layout(plan, k)
    n = int(bounds[-1])
    skey_of = np.array([site_key(s) for s in stations], dtype=np.uint64)
    links = _Links(plan, k, seed)
    wave_key = int(hash_keys(name_key(f"{plan.name}/{wave.name}"), 0))
    run = WaveRun()
    if wave.strategy == "staged":
        bs = wave.batch_size
        per_chunk = max(bs, (CHUNK_PATIENTS // bs) * bs)
    else:
        bs = n if params.one_wave else wave.batch_size
        per_chunk = n
    for lo in range(0, n, per_chunk):
        hi = min(n, lo + per_chunk)
        keys, spos, dfns = _chunk_records(stations, bounds, lo, hi)
        out = draw_outcomes(keys, cfg, seed, overload_rate=params.overload_rate, replication=repk)
        _count_outcomes(out, run)
        if links.active:
            _count_links(plan, links, out, skey_of[spos], dfns, seed, replication, run)
        if not params.barriers:
            _pipeline(out, cfg, params.concurrency, wave_key, seed, repk, run)
            continue
        pos = np.arange(lo, hi, dtype=np.int64)
        b_global = pos // max(1, bs)
        b0 = int(b_global[0])
        b_local = b_global - b0
        n_b = int(b_local[-1]) + 1
        bkeys = hash_keys(wave_key, np.arange(b0, b0 + n_b, dtype=np.int64))
        step_dur, peak, rounds = _sequential(out, cfg, params.concurrency, b_local, bkeys, seed, repk)
        b_span = step_dur.sum(axis=1)
        b_size = np.bincount(b_local, minlength=n_b)
        run.step_time += step_dur.sum(axis=0)
        run.step_execs += (step_dur > 0).sum(axis=0)
        for g in range(len(STAGES)):
            part = step_dur[:, 4 * g: 4 * g + 4]
            run.stage_time[g] += float(part.sum())
            run.stage_execs[g] += int((part[:, 0] > 0).sum())
        run.span += float(b_span.sum())
        run.peak = max(run.peak, peak)
        run.rounds += rounds
        run.batches += n_b
        if params.one_wave:
            run.down_max = max(run.down_max, float(b_span.max()))
            run.down_sum += float(b_span.max()) * n
        else:
            run.down_max = max(run.down_max, float(b_span.max()))
            run.down_sum += float(np.dot(b_span, b_size))
    return run


def run_wave(plan: Plan, k: int, seed: int, replication: int) -> WaveResult:
    """Execute wave ``k`` under its go/no-go rule: roll back and re-run while below the bar, then accept or abandon."""
    gng = plan.waves[k].go_no_go
    rb = float(gng.rollback_hours) * 3600.0
    span = down_max = down_sum = 0.0
    errors_all = np.zeros(N_TYPES, dtype=np.int64)
    rollbacks = 0
    run_no = 0
    while True:
        run = run_wave_once(plan, k, seed, replication, run_no)
        span += run.span
        down_max += run.down_max
        down_sum += run.down_sum
        errors_all += run.errors.sum(axis=0)
        ok = gng.min_success is None or run.patients == 0 or run.migrated / run.patients >= gng.min_success
        if ok:
            return WaveResult(k, run, run_no + 1, rollbacks, True, span, down_max, down_sum, errors_all)
        # below the bar: the wave is rolled back (patients stay frozen while the target is restored)
        rollbacks += 1
        span += rb
        down_max += rb
        down_sum += rb * run.patients
        if run_no >= gng.max_reruns:
            return WaveResult(k, run, run_no + 1, rollbacks, False, span, down_max, down_sum, errors_all)
        run_no += 1


def run_block(plan: Plan, seed: int, replications: tuple[int, ...], waves: tuple[int, ...] | None = None
              ) -> list[tuple[int, int, WaveResult]]:
    """A task: the given waves in the given replications, as (replication, wave, result) rows."""
    ks = range(len(plan.waves)) if waves is None else waves
    return [(r, k, run_wave(plan, k, seed, r)) for r in replications for k in ks]
