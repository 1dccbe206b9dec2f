"""Data mode: the 16 steps do real work on real records, and the results take model mode's shapes.

:func:`run_data_mode` migrates source records (PatientRecords read from ZWR) into a load target,
wave by wave, and returns per-record outcome arrays of exactly the form ``engine.draw_outcomes``
gives (attempts per step, stopping step and error type, failed-attempt rows). The simulator then
lays them on the simulated clock with ``engine.schedule`` and assembles BatchMigrationStatus,
analytics, the report, the audit trail and results.json as in model mode. Nothing sleeps.

Where outcomes come from:

* **Transient outages** (network_timeout; resource_exhaustion, or system_unavailable in load) are drawn
  per attempt with keyed uniforms from ``network_failure_rate`` and ``system_overload_rate`` and
  retried ``retry_attempts`` times with ``retry_delay_seconds x 2^(attempt-1)`` of simulated backoff.
  The work itself is done once; an outage that exhausts the retries stops the record at that step.
* **Permanent failures** come from the real checks: the MPI/B query, mapping, schema_check,
  business_rules, data_integrity, production promotion and verification read-back. The first failing
  substage stops the person, typed by what it found (see :mod:`vistasim.pipeline.stages`).
* **Faults** (:mod:`vistasim.pipeline.faults`) change the data where they strike and are written to
  the answer key; whether anything noticed them is scored later by reconciliation.

Rules for a person (an ICN) with several site records: the records travel in one wave and one
Bundle; the person migrates completely or not at all, so when any of its records stops (an outage,
a failed check), every record of the person stops at that step with that error type, the reason
naming the cause. A record's disposition is ``migrated``, ``quarantined`` (stopped by a check on the
data in extract, transform or validate: it goes to the remediation queue) or ``failed`` (an outage,
or a load step: production, verification, a wave backed out).

Go/no-go: after verification, a wave in which fewer than ``go_no_go`` of the staged persons verified
is backed out of production; its promoted persons stop at the load hand-off (validation_failure),
and the backout's simulated duration is added to the clock before the next wave.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._gc import gc_paused
from ..config import MigrationConfig
from ..engine import ERROR_INDEX, N_STEPS, Outcomes, patient_quality
from ..model import ERROR_TYPES, PatientRecord, step_names
from ..rng import KeyedRNG, string_keys
from ..targets.base import prepare_person
from . import stages as S
from .faults import EXPORT_FAULTS, LOAD_FAULTS, TRANSFORM_FAULTS, FaultDraws, build_faults
from .settings import DataModeSettings
from .work import MIGRATED_STEP, AnswerEntry, PersonWork

__all__ = ["DataRun", "WaveReport", "plan_records", "run_data_mode", "transient_draws", "slice_outcomes"]

STEPS = step_names()
_NT, _RE, _SU = ERROR_INDEX["network_timeout"], ERROR_INDEX["resource_exhaustion"], ERROR_INDEX["system_unavailable"]
QUARANTINE_STEPS = range(1, 12)  # a check on the data (query .. validate hand-off) stopped the record


@dataclass
class WaveReport:
    wave_id: str
    persons: int
    records: int
    staged_persons: int = 0
    resources_staged: int = 0
    promoted_persons: int = 0
    verified_persons: int = 0
    verified_share: float | None = None
    go: bool | None = None
    backed_out: bool = False
    backout_removed: int = 0
    backout_restored: int = 0
    backout_seconds: float = 0.0
    backout_result: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DataRun:
    """Everything data mode measured, with outcomes in engine form (records in ``ids`` order)."""

    ids: list[str]
    batch_of: np.ndarray
    batch_ids: list[str]
    outcomes: Outcomes
    status: list[str]  # migrated / quarantined / failed per record
    reasons: dict[str, str]  # patient_id -> reason (non-migrated only)
    person_of: list[str]  # person id per record
    answer_key: list[AnswerEntry]
    waves: list[WaveReport]
    unknown_queue: list[tuple[str, str]]
    gap_counts: dict[str, int]
    resources_mapped: int
    resources_validated: int
    stage_wall: dict[str, float] = field(default_factory=dict)  # wall seconds per stage (benchmarks only)

    def backout_delays(self) -> np.ndarray:
        return np.array([w.backout_seconds for w in self.waves], dtype=np.float64)


def plan_records(records: Sequence[PatientRecord], batch_size: int) -> tuple[list[int], np.ndarray]:
    """The run order of the records (persons kept together) and each record's batch index."""
    groups = S.group_persons(records)
    waves = S.plan_waves(groups, batch_size)
    order: list[int] = []
    batch: list[int] = []
    for w, gidx in enumerate(waves):
        for gi in gidx:
            order.extend(groups[gi][1])
            batch.extend([w] * len(groups[gi][1]))
    return order, np.asarray(batch, dtype=np.int64)


def transient_draws(
    keys: np.ndarray, config: MigrationConfig, seed: int, overload_rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Failed attempts before the first success at each (record, step) and their error types.

    ``k[i, s] == retry_attempts + 1`` means every attempt failed (the outage outlasted the retries).
    """
    max_att = int(config.retry_attempts) + 1
    n = keys.shape[0]
    rng = KeyedRNG(seed)
    steps = np.arange(N_STEPS, dtype=np.int64)[None, :]
    load = steps >= 12
    k = np.zeros((n, N_STEPS), dtype=np.int8)
    types = np.full((n, N_STEPS, max_att), -1, dtype=np.int8)
    still = np.ones((n, N_STEPS), dtype=bool)
    kk = keys[:, None]
    net_rate, over_rate = float(config.network_failure_rate), float(overload_rate)
    for a in range(1, max_att + 1):
        net = rng.uniform("datamode:network", kk, steps, a) < net_rate
        over = rng.uniform("datamode:overload", kk, steps, a) < over_rate
        fail = (net | over) & still
        if not fail.any():
            break
        t = np.where(net, _NT, np.where(load, _SU, _RE)).astype(np.int8)
        types[:, :, a - 1] = np.where(fail, t, -1)
        k += fail
        still = fail
    return k, types


class _Clock:
    """Wall time per stage, for the benchmark's breakdown (never written to results)."""

    def __init__(self) -> None:
        self.t: dict[str, float] = {}

    def add(self, stage: str, t0: float) -> float:
        t1 = time.perf_counter()
        self.t[stage] = self.t.get(stage, 0.0) + (t1 - t0)
        return t1


def run_data_mode(
    records: Sequence[PatientRecord],
    *,
    config: MigrationConfig,
    seed: int,
    batch_ids: Sequence[str],
    batch_of: np.ndarray,
    target: Any,
    settings: DataModeSettings,
    overload_rate: float | None = None,
    earlier: Mapping[str, list[PatientRecord]] | None = None,
    progress: Callable[[int, int], None] | None = None,
    name_index: Mapping[str, Mapping[str, Sequence[int]]] | None = None,
    parse_failures: Mapping[str, Sequence[str]] | None = None,
) -> DataRun:
    """Migrate ``records`` (already in run order, persons contiguous) wave by wave into ``target``.

    ``progress(records done, records)`` is called after each wave.
    ``name_index`` (station -> NAME -> DFNs) is the ^DPT("B") cross-reference as read: query selects
    through it (without it, through the index FileMan would build for these records).
    ``parse_failures`` (patient_id -> reasons) are records whose FileMan nodes did not parse: their
    person stops at transform/parse.
    ``earlier``: records an earlier call migrated, by person. A person whose records arrive over several
    calls is re-mapped whole (earlier records + new ones), so production holds the merged person,
    never only the latest site record (the version it replaces is kept for backout).
    """

    # The source records are long-lived and acyclic: keep the cyclic collector from re-scanning them
    # every time a wave's bundles are built (it was a third of the map stage's time at 5,000 patients).
    # Bundles are trees of dicts (no cycles: reference counting frees each wave's), so the collector is
    # paused for the run; a per-wave pass over the wave's fresh objects alone cost ~5 % at 100,000.
    # No gc.collect() first: a full pass over the records costs ~0.4 s per 20,000 patients, and what it
    # could free is a little garbage that unfreeze hands back to the collector after the run.
    gc.freeze()
    try:
        with gc_paused():
            return _run(
                records, config, seed, batch_ids, batch_of, target, settings, overload_rate, earlier, progress,
                name_index, parse_failures,
            )
    finally:
        gc.unfreeze()


def _run(records, config, seed, batch_ids, batch_of, target, settings, overload_rate, earlier, progress=None,  # type: ignore[no-untyped-def]
         name_index=None, parse_failures=None):
    clock = _Clock()
    t0 = time.perf_counter()
    n = len(records)
    ids = [r.patient_id for r in records]
    keys = string_keys(ids)
    max_att = int(config.retry_attempts) + 1
    k, ttypes = transient_draws(
        keys, config, seed, float(config.system_overload_rate if overload_rate is None else overload_rate)
    )
    exhausted = k >= max_att
    t_stop = np.where(exhausted.any(axis=1), exhausted.argmax(axis=1), MIGRATED_STEP).astype(np.int64)
    as_of = settings.as_of or config.start_time.date().isoformat()
    tz = settings.timezone
    faults = build_faults(
        {name: settings.rate(name, config) for name in EXPORT_FAULTS + TRANSFORM_FAULTS + LOAD_FAULTS}
    )
    draws = FaultDraws(seed)
    index = S.SourceIndex(records, name_index)
    unparsed = parse_failures or {}
    answer: list[AnswerEntry] = []
    waves: list[WaveReport] = []
    gap_counts: dict[str, int] = {}
    # per person results, keyed by the person's first row
    person_rows: list[tuple[PersonWork, int, int, str]] = []  # (work, stop step, stop type index, reason)
    resources_mapped = resources_validated = 0
    t0 = clock.add("extract", t0)

    groups_all = S.group_persons(records)
    by_wave: dict[int, list[tuple[str, list[int]]]] = {}
    for pid, rows in groups_all:
        by_wave.setdefault(int(batch_of[rows[0]]), []).append((pid, rows))

    done_records = 0
    for w in range(len(batch_ids)):
        wave_id = batch_ids[w]
        groups = by_wave.get(w, [])
        persons = []
        for pid, rows in groups:
            before = list(earlier.get(pid, ())) if earlier else []
            persons.append(PersonWork(pid, list(rows), before + [records[i] for i in rows], n_earlier=len(before)))
        pt = {p.person_id: int(t_stop[p.rows].min()) for p in persons}
        report = WaveReport(wave_id, len(persons), sum(len(p.rows) for p in persons))

        def can_run(p: PersonWork, s: int, pt: dict[str, int] = pt) -> bool:
            return p.merged_into is None and pt[p.person_id] > s and p.stop_step > s

        # ---- extract: query through the cross-references, export (the export form; faults strike here)
        for p in persons:
            if can_run(p, 1):
                stop = index.select(p.person_id, p.rows, records)
                if stop:
                    p.stop(1, *stop)
        live = [p for p in persons if can_run(p, 2)]
        for name in EXPORT_FAULTS:
            if name in faults:
                answer.extend(faults[name].apply(live, draws))
        t0 = clock.add("extract", t0)
        # ---- transform/parse: records whose FileMan nodes did not decode stop their person
        if unparsed:
            for p in persons:
                reasons = [x for i in p.rows for x in unparsed.get(records[i].patient_id, ())]
                if reasons and can_run(p, 4):
                    p.stop(4, *S.parse_stop(reasons))
            clock.add("parse", t0)
        # ---- transform (map, standardize, the transform faults) and validate, then the load faults
        # and the staging rows: person by person, each step right after the one before, so the
        # person's fresh objects are still in the CPU cache (a stage-at-a-time pass over a wave reads
        # every object back from memory); see _PersonFlow
        flow = _PersonFlow(faults, draws, can_run, pt, tz, as_of, gap_counts)
        for p in persons:
            flow.add(p)
        flow.finish()
        S.forget_validated()
        answer.extend(flow.answer())
        resources_mapped += flow.mapped
        resources_validated += flow.validated
        prepared = flow.prepared
        for name, spent in flow.spent.items():
            clock.t[name] = clock.t.get(name, 0.0) + spent
        t0 = time.perf_counter()
        # ---- load
        t0 = _load_wave(wave_id, persons, can_run, target, prepared, report, settings, config, clock, t0)
        waves.append(report)
        for p in persons:
            person_rows.append(_person_fate(p, pt, exhausted, ttypes, k))
            p.bundle, p.extra_bundles, p.records = None, {}, []  # the wave is loaded: memory stays bounded
        t0 = clock.add("release", t0)  # freeing the wave's bundles (reference counting) is real work too
        done_records += report.records
        if progress is not None:
            progress(done_records, n)

    out, status, reasons, person_of = _assemble(n, ids, person_rows, k, ttypes, exhausted, max_att, config)
    clock.add("assemble", t0)
    unknown = list(faults["orders_unknown_queue"].queue) if "orders_unknown_queue" in faults else []  # type: ignore[attr-defined]
    # transient outages go to the answer key too: one row per (record, step) with failed attempts
    answer.extend(_transient_entries(ids, person_of, k, ttypes, out.attempts))
    return DataRun(
        list(ids),
        np.asarray(batch_of),
        list(batch_ids),
        out,
        status,
        reasons,
        person_of,
        answer,
        waves,
        unknown,
        dict(sorted(gap_counts.items())),
        resources_mapped,
        resources_validated,
        clock.t,
    )


class _PersonFlow:
    """One wave's persons through map, standardize, the transform faults, the three validate checks,
    the load faults and the staging rows, one person at a time, in the wave's order.

    Equivalent to running each step over the whole wave in turn (the order the outcomes, the answer
    key and the unknown queue are written in is the same): every fault but identity_merge is drawn
    per person; a merge joins a drawn person with the first later eligible person, so a drawn
    person waits (with those behind it) until that partner is mapped or the wave ends. A person is
    validated and staged ("finished") only once nobody before it waits.
    """

    def __init__(self, faults, draws, can_run, pt, tz, as_of, gap_counts):  # type: ignore[no-untyped-def]
        self.can_run, self.pt, self.tz, self.as_of, self.gap_counts = can_run, pt, tz, as_of, gap_counts
        self.draws = draws
        self.person_faults = [(n, faults[n]) for n in TRANSFORM_FAULTS if n in faults and n != "identity_merge"]
        self.merger = faults.get("identity_merge")
        self.load_faults = [faults[n] for n in LOAD_FAULTS if n in faults]
        self.entries: dict[str, list[AnswerEntry]] = {n: [] for n in TRANSFORM_FAULTS}
        self.load_entries: list[AnswerEntry] = []
        self.waiting: deque[PersonWork] = deque()  # persons not finished yet, in wave order
        self.drawn_open: deque[PersonWork] = deque()  # drawn for a merge, no partner yet, in wave order
        self.prepared: dict[str, Any] = {}
        self.mapped = self.validated = 0
        self.spent = dict.fromkeys(
            ("map", "standardize", "faults", "schema_check", "business_rules", "data_integrity",
             "staging: rows (JSON, digests)"), 0.0,
        )
        self.t0 = time.perf_counter()

    def _tick(self, stage: str) -> None:
        t1 = time.perf_counter()
        self.spent[stage] += t1 - self.t0
        self.t0 = t1

    def add(self, p: PersonWork) -> None:
        can_run = self.can_run
        if can_run(p, 5):
            p.bundle, stop = S.map_stage(p.records, self.tz)
            self._tick("map")
            if stop:
                p.stop(5, *stop)
            else:
                self.mapped += len(p.bundle["entry"])  # type: ignore[index]
                if can_run(p, 6):
                    p.bundle, gaps = S.standardize_stage(p.bundle)  # type: ignore[arg-type]
                    for g in gaps:
                        self.gap_counts[g.kind] = self.gap_counts.get(g.kind, 0) + 1
                self._tick("standardize")
        if can_run(p, 7) and p.bundle is not None:
            for name, fault in self.person_faults:
                self.entries[name].extend(fault.apply([p], self.draws))
            if self.merger is not None:
                self._merge_step(p)
            self._tick("faults")
        self.waiting.append(p)
        while self.waiting and not (self.drawn_open and self.waiting[0] is self.drawn_open[0]):
            self._finish(self.waiting.popleft())

    def _merge_step(self, p: PersonWork) -> None:
        m = self.merger
        if not m.eligible(p):  # type: ignore[union-attr]
            return
        # as a partner: of the earliest drawn person still open (a failed merge moves on to the next)
        while self.drawn_open and m.partner_ok(p):  # type: ignore[union-attr]
            a = self.drawn_open.popleft()
            got = m.merge(a, p)  # type: ignore[union-attr]
            if got:
                self.entries["identity_merge"].extend(got)
                # p's records now share a's fate
                self.pt[a.person_id] = min(self.pt[a.person_id], self.pt[p.person_id])
                a.rows.extend(p.rows)
                return
        if m.drawn(p, self.draws):  # type: ignore[union-attr]
            self.drawn_open.append(p)

    def finish(self) -> None:
        """The wave's end: drawn persons still open get no partner."""
        self.drawn_open.clear()
        while self.waiting:
            self._finish(self.waiting.popleft())

    def _finish(self, p: PersonWork) -> None:
        can_run = self.can_run
        if not can_run(p, 8):
            return
        bundles = p.all_bundles()
        stop, nres = S.schema_stage(bundles)
        self.validated += nres
        if stop:
            p.stop(8, *stop)
        self._tick("schema_check")
        if can_run(p, 9):
            stop = S.business_stage(bundles)
            if stop:
                p.stop(9, *stop)
            self._tick("business_rules")
        if can_run(p, 10):
            stop = S.integrity_stage(bundles, self.as_of)
            if stop:
                p.stop(10, *stop)
            self._tick("data_integrity")
        if can_run(p, 12):
            for fault in self.load_faults:  # drawn per person
                self.load_entries.extend(fault.apply([p], self.draws))
            for pid, b in p.all_bundles().items():
                row = self.prepared[pid] = prepare_person(pid, b)
                if row is not None:
                    # staging reads only the prepared row: free the person's objects now, while
                    # they are in cache (freeing a whole wave later reads them back from memory)
                    b.clear()
            self._tick("staging: rows (JSON, digests)")

    def answer(self) -> list[AnswerEntry]:
        """The wave's answer-key rows in the order the stage-at-a-time run wrote them."""
        out = [e for name in TRANSFORM_FAULTS for e in self.entries[name]]
        return out + self.load_entries


def _load_wave(wave_id, persons, can_run, target, prepared, report, settings, config, clock, t0):  # type: ignore[no-untyped-def]
    """Stage, promote and verify a validated wave (its load faults already applied, its persons' staging
    rows in ``prepared``), then go/no-go and backout."""
    backed_before = any(j.step == "backed_out" for j in target.journal(wave_id))
    stage_persons = [p for p in persons if can_run(p, 12)]
    bundles: dict[str, dict[str, Any]] = {}
    owner: dict[str, PersonWork] = {}
    for p in stage_persons:
        for pid, b in p.all_bundles().items():
            bundles[pid] = b
            owner[pid] = p
    report.staged_persons = len(stage_persons)
    if not bundles:
        return clock.add("load", t0)
    staged = target.staging(wave_id, bundles, prepared=prepared)
    report.resources_staged = staged.resources
    t0 = clock.add("staging: database write", t0)
    if backed_before:
        # An earlier run backed this wave out: its decision stands (the target keeps it backed out).
        for p in stage_persons:
            if can_run(p, 13):
                p.stop(15, "validation_failure", "load: wave backed out (go/no-go missed in an earlier run)")
        res = target.backout(wave_id)
        report.go, report.backed_out, report.backout_result = False, True, "already backed out"
        return clock.add("load", t0)
    promote = [pid for pid, p in owner.items() if can_run(p, 13)]
    promoted = target.production(wave_id, promote) if promote else None
    if promoted is not None:
        for pid, why in promoted.failed.items():
            owner[pid].stop(13, "validation_failure", f"production: {why}")
    t0 = clock.add("production", t0)
    verified_ok: dict[str, bool] = {}
    if promoted is not None and promoted.succeeded:
        check = target.verification(wave_id, list(promoted.succeeded))
        for pc in check.persons:
            verified_ok[pc.person_id] = pc.passed
            if not pc.passed and can_run(owner[pc.person_id], 14):
                kinds = sorted({m.kind for m in pc.mismatches})
                owner[pc.person_id].stop(14, "validation_failure", f"verification: {', '.join(kinds)}")
    t0 = clock.add("verification", t0)
    passed = [p for p in stage_persons if all(verified_ok.get(pid, False) for pid in p.all_bundles())]
    report.promoted_persons = len({id(owner[pid]) for pid in (promoted.succeeded if promoted else ())})
    report.verified_persons = len(passed)
    share = len(passed) / len(stage_persons) if stage_persons else None
    report.verified_share = share
    report.go = share is None or share >= settings.go_no_go
    if not report.go:
        res = target.backout(wave_id)
        report.backed_out = True
        report.backout_removed, report.backout_restored = len(res.removed), len(res.restored)
        m = len(res.removed) + len(res.restored)
        report.backout_seconds = config.base_duration("load") / 4.0 + settings.backout_seconds_per_person * m
        report.backout_result = "skipped (already backed out)" if res.skipped else "completed"
        why = f"load: wave backed out ({len(passed)}/{len(stage_persons)} verified < go/no-go {settings.go_no_go:g})"
        for p in stage_persons:
            p.stop(15, "validation_failure", why)
    return clock.add("load", t0)


def _person_fate(
    p: PersonWork, pt: dict[str, int], exhausted: np.ndarray, ttypes: np.ndarray, k: np.ndarray
) -> tuple[PersonWork, int, int, str]:
    """(work, stop step, error type index, reason) of a person; merged persons follow their owner later."""
    t = pt[p.person_id]
    if t < p.stop_step:
        # an outage outlasted the retries on one of the person's records
        rows = [i for i in p.rows if exhausted[i, t]]
        i = rows[0]
        etype = int(ttypes[i, t, int(k[i, t]) - 1])
        st, sub = STEPS[t]
        return p, t, etype, f"{st}/{sub or 'handoff'}: {ERROR_TYPES[etype]} (retries exhausted)"
    if p.stop_step < MIGRATED_STEP:
        st, sub = STEPS[p.stop_step]
        return p, p.stop_step, ERROR_INDEX[p.stop_type], f"{st}/{sub or 'handoff'}: {p.stop_type} ({p.stop_reason})"
    return p, MIGRATED_STEP, -1, ""


def _assemble(n, ids, person_rows, k, ttypes, exhausted, max_att, config):  # type: ignore[no-untyped-def]
    S_ = np.full(n, MIGRATED_STEP, dtype=np.int64)
    T_ = np.full(n, -1, dtype=np.int64)
    corrupted = np.zeros(n, dtype=bool)
    person_of = [""] * n
    fate = {p.person_id: (s, t, why) for p, s, t, why in person_rows}
    reasons: dict[str, str] = {}
    status = ["migrated"] * n
    for p, s, t, why in person_rows:
        if p.merged_into is not None:
            s, t, why = fate[p.merged_into]
            if s == MIGRATED_STEP:
                why = ""
        for i in p.rows:
            person_of[i] = p.person_id
            S_[i], T_[i] = s, t
            if s < MIGRATED_STEP:
                reasons[ids[i]] = why
                status[i] = "quarantined" if (s in QUARANTINE_STEPS and t >= 0 and not _transient(t)) else "failed"
        corrupted[p.corrupted_rows] = True
    own_exh = np.zeros(n, dtype=bool)
    stopped = S_ < MIGRATED_STEP
    idx = np.flatnonzero(stopped)
    own_exh[idx] = exhausted[idx, S_[idx]]
    steps = np.arange(N_STEPS)[None, :]
    kk = k.astype(np.int64)
    attempts = np.where(steps < S_[:, None], kk + 1, 0)
    at_stop = np.where(own_exh, max_att, np.minimum(kk[np.arange(n), np.minimum(S_, N_STEPS - 1)] + 1, max_att))
    attempts[idx, S_[idx]] = at_stop[idx]
    # the stopping type of a record stopped by its own exhausted outage is that outage's last type
    T_[own_exh] = ttypes[own_exh, S_[own_exh], max_att - 1]
    fp, fs, fa, ft = [], [], [], []
    for s in range(N_STEPS):
        reach = S_ >= s
        rows_p, rows_a, rows_t = [], [], []
        for a in range(1, max_att + 1):
            m = reach & (kk[:, s] >= a)
            pi = np.flatnonzero(m)
            if pi.size:
                rows_p.append(pi)
                rows_a.append(np.full(pi.size, a, dtype=np.int8))
                rows_t.append(ttypes[pi, s, a - 1])
        perm = np.flatnonzero((S_ == s) & ~own_exh)
        if perm.size:
            rows_p.append(perm)
            rows_a.append(at_stop[perm].astype(np.int8))
            rows_t.append(T_[perm].astype(np.int8))
        if rows_p:
            p_ = np.concatenate(rows_p)
            a_ = np.concatenate(rows_a)
            t_ = np.concatenate(rows_t)
            order = np.lexsort((a_, p_))
            fp.append(p_[order])
            fa.append(a_[order])
            ft.append(t_[order])
            fs.append(np.full(p_.size, s, dtype=np.int8))
    cat = lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dtype=dt)  # noqa: E731
    fail_step = S_.astype(np.int8)
    fail_type = T_.astype(np.int8)
    quality = patient_quality(fail_step, fail_type, corrupted, config)
    out = Outcomes(
        attempts.astype(np.int8),
        fail_step,
        fail_type,
        corrupted,
        quality,
        cat(fp, np.int64),
        cat(fs, np.int8),
        cat(fa, np.int8),
        cat(ft, np.int8),
    )
    return out, status, reasons, person_of


def _transient(t: int) -> bool:
    return ERROR_TYPES[t] in ("network_timeout", "system_unavailable", "resource_exhaustion")


def _transient_entries(
    ids: list[str], person_of: list[str], k: np.ndarray, ttypes: np.ndarray, attempts: np.ndarray
) -> list[AnswerEntry]:
    """One answer-key row per (record, step) an outage hit, typed by its first failed attempt."""
    out = []
    reached = attempts > 0
    rows, steps = np.nonzero((k > 0) & reached)
    for i, s in zip(rows.tolist(), steps.tolist()):
        st, sub = STEPS[s]
        out.append(
            AnswerEntry(
                "transient_outage",
                ERROR_TYPES[int(ttypes[i, s, 0])],
                person_of[i],
                ids[i],
                st,
                sub or "handoff",
                attempts=int(min(k[i, s], attempts[i, s])),
            )
        )
    return out


def slice_outcomes(out: Outcomes, lo: int, hi: int) -> Outcomes:
    """The outcomes of records lo..hi-1 (failed-attempt rows re-indexed), for the simulator's chunks."""
    m = (out.f_patient >= lo) & (out.f_patient < hi)
    return Outcomes(
        out.attempts[lo:hi],
        out.fail_step[lo:hi],
        out.fail_type[lo:hi],
        out.corrupted[lo:hi],
        out.quality[lo:hi],
        out.f_patient[m] - lo,
        out.f_step[m],
        out.f_attempt[m],
        out.f_type[m],
    )


def shift_for_backouts(sched: Any, batch_of: np.ndarray, delays: np.ndarray) -> None:
    """Add each backed-out batch's backout time to the clock: later batches start that much later."""
    if not delays.size or not delays.any():
        return
    before = np.concatenate(([0.0], np.cumsum(delays)[:-1]))
    shift = before[batch_of]
    sched.step_start += shift[:, None]
    sched.step_end += shift[:, None]
    # the backed-out batch's own hand-off ends when its backout does
    last = sched.step_end[:, N_STEPS - 1]
    sched.step_end[:, N_STEPS - 1] = np.where(np.isnan(last), last, last + delays[batch_of])
    if sched.reconcile_end is not None:
        sched.reconcile_end += shift
    if sched.wave_start.size == delays.size:
        sched.wave_start += before
        sched.wave_end += before + delays
    elif sched.wave_end.size:
        sched.wave_end[-1] += float(delays.sum())
    sched.end += float(delays.sum())
