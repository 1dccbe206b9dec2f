"""MigrationSimulator: the spec's API over the model-mode engine.

``simulate_staged_migration`` runs one batch (as in the spec's examples); ``simulate_migration`` runs a
whole migration in waves under one of the three strategies. Successive calls on one simulator continue
one simulated timeline, and the results accumulate for ``get_migration_analytics`` and
``export_migration_report``.

Data mode (``MigrationSimulator(config, seed, mode="data", target="sqlite:///out.db")``): the same calls
take PatientRecords and do the real work on them (map to FHIR R4, validate, load into the target, read
back) with faults on the data (:mod:`vistasim.pipeline`); the per-record outcomes then go through the
same clock, batch assembly, analytics, report and audit trail as in model mode. Records of one person
(ICN) are kept in one wave, so the records may be reordered and a wave may exceed ``batch_size`` by the
rest of a person. ``data_runs`` holds what each call measured (answer key, waves, dispositions);
:func:`vistasim.pipeline.reconcile.reconcile` compares the target with the source. Pass
``source=read_source(...)`` as well to query through the ^DPT("B") cross-reference as read and to fail
records whose nodes did not parse (``bad_entries="quarantine"``) at transform/parse.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from . import analytics as _analytics
from .audit import AuditTrail
from .config import MigrationConfig, check_strategy
from .engine import (
    MIGRATED,
    N_STEPS,
    STEPS,
    Outcomes,
    draw_outcomes,
    retry_delay,
    schedule,
    strategy_params,
    wave_keys_for,
    waves_for,
)
from .errors import ConfigError
from .model import (
    ERROR_TYPES,
    STAGES,
    BatchMigrationStatus,
    MigrationRunResult,
    MigrationStageResult,
    PatientRecord,
)
from .rng import string_keys

PatientLike = PatientRecord | str
Progress = Callable[[int, int], None]

CHUNK_PATIENTS = 65536  # staged runs are processed in chunks of whole waves: bounded memory, exact results


def _patient_ids(patients: Sequence[PatientLike]) -> list[str]:
    ids: list[str] = []
    for p in patients:
        pid = p if isinstance(p, str) else getattr(p, "patient_id", None)
        if not isinstance(pid, str) or not pid:
            raise ConfigError(f"patients must be PatientRecord objects (or 'station:DFN' ids), got {type(p).__name__}")
        ids.append(pid)
    if len(set(ids)) != len(ids):
        dup = next(k for k, v in Counter(ids).items() if v > 1)
        raise ConfigError(f"patient {dup!r} appears more than once in the batch (each source record must appear once)")
    return ids


class MigrationSimulator:
    """Simulates VistA -> Oracle Health migrations in model mode (outcomes drawn from ``MigrationConfig``)."""

    def __init__(
        self,
        config: MigrationConfig | None = None,
        seed: int | None = None,
        keep_audit: bool = True,
        mode: str = "model",
        target: Any = None,
        data_settings: Any = None,
        source: Any = None,
    ) -> None:
        if mode not in ("model", "data"):
            raise ConfigError(f"mode must be 'model' or 'data', got {mode!r}")
        self.mode = mode
        self.target = None
        self.data_settings = data_settings
        # data mode: the read_source result the records came from, if any (its ^DPT("B") index as read
        # and the records whose nodes did not parse)
        self.source = source
        self.data_runs: list[Any] = []
        self._data_known: dict[str, list[PatientRecord]] = {}  # person -> records migrated by earlier calls
        if mode == "data":
            from .pipeline.settings import DataModeSettings
            from .targets import open_target

            self.target = open_target(target or "sqlite:///:memory:") if target is None or isinstance(target, str) else target
            self.data_settings = (data_settings or DataModeSettings()).validate()
        self.config = config if config is not None else MigrationConfig()
        self.config.validate()
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
            raise ConfigError(f"seed must be a whole number >= 0, got {seed!r}")
        self.seed = 0 if seed is None else seed
        self.keep_audit = keep_audit
        self.batch_results: list[BatchMigrationStatus] = []
        self.runs: list[MigrationRunResult] = []
        self.audit = AuditTrail(origin=self.config.start_time)
        self._clock = 0.0  # simulated seconds since config.start_time
        self._batch_counter = 0
        self._seen_ids: dict[str, int] = {}

    # ------------------------------------------------------------------ the spec's API

    def simulate_staged_migration(
        self,
        patients: Sequence[PatientLike],
        batch_id: str | None = None,
        migration_strategy: str = "staged",
    ) -> BatchMigrationStatus:
        """Migrate one batch of patients through the 16 steps; returns its status."""
        if batch_id is not None and not isinstance(batch_id, str):
            raise ConfigError(f"batch_id must be a string, got {batch_id!r}")
        run = self._run(
            patients,
            batch_size=max(1, len(patients)),
            strategy=migration_strategy,
            batch_ids=[batch_id] if batch_id else None,
        )
        if not run.batches:
            return self._empty_batch(batch_id or self._next_batch_id(), migration_strategy)
        return run.batches[0]

    def simulate_migration(
        self,
        patients: Sequence[PatientLike],
        batch_size: int = 100,
        migration_strategy: str = "staged",
        progress: Progress | None = None,
    ) -> MigrationRunResult:
        """Migrate all patients in waves of ``batch_size`` under a strategy; returns the whole run."""
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ConfigError(f"batch_size must be a whole number > 0, got {batch_size!r}")
        return self._run(patients, batch_size=batch_size, strategy=migration_strategy, progress=progress)

    def get_migration_analytics(self, batch_id: str | None = None) -> dict[str, Any]:
        """Summary, stage performance, failure analysis, quality trends and recommendations."""
        batches = self.batch_results
        if batch_id is not None:
            batches = [b for b in batches if b.batch_id == batch_id]
            if not batches:
                raise ConfigError(f"no batch {batch_id!r} in this simulator (known: {len(self.batch_results)} batches)")
        return _analytics.migration_analytics(batches, self.config, runs=self.runs if batch_id is None else [])

    def export_migration_report(self, path: str | Path) -> Path:
        """Write the plain-text report (the spec's sections) to ``path``; returns the path."""
        from .report.text import render_text_report
        from .runio import atomic_write_text

        analytics = self.get_migration_analytics()
        return atomic_write_text(Path(path), render_text_report(analytics, self.config))

    # ------------------------------------------------------------------ engine driver

    def _next_batch_id(self) -> str:
        self._batch_counter += 1
        return f"batch_{self._batch_counter:04d}"

    def _empty_batch(self, batch_id: str, strategy: str) -> BatchMigrationStatus:
        now = self.config.start_time + timedelta(seconds=self._clock)
        b = BatchMigrationStatus(
            batch_id=batch_id,
            batch_size=0,
            source_system=self.config.source_system,
            target_system=self.config.target_system,
            migration_strategy=strategy,
            started_at=now,
            completed_at=now,
            current_stage="completed",
        )
        self.batch_results.append(b)
        return b

    def _run(
        self,
        patients: Sequence[PatientLike],
        batch_size: int,
        strategy: str,
        batch_ids: list[str] | None = None,
        progress: Progress | None = None,
    ) -> MigrationRunResult:
        self.config.validate()
        strategy = check_strategy(strategy, "migration_strategy")
        ids = _patient_ids(patients)
        n = len(ids)
        params = strategy_params(strategy, self.config)
        origin = self.config.start_time
        run_start = self._clock
        data_run = None
        if self.mode == "data":
            patients, batch_of = self._data_plan(patients, batch_size)
            ids = [p.patient_id for p in patients]  # type: ignore[union-attr]
        else:
            batch_of = waves_for(n, batch_size)
        n_batches = int(batch_of[-1]) + 1 if n else 0
        if batch_ids is None:
            batch_ids = [self._next_batch_id() for _ in range(n_batches)]
        if self.mode == "data":
            data_run = self._data_run(patients, batch_ids, batch_of, params.overload_rate, progress)
            progress = None  # data mode reported its waves as they loaded
        keys = string_keys(ids)
        audit_base = len(self.audit.patient_ids)
        batch_base = len(self.audit.batch_ids)
        if self.keep_audit:
            self.audit.patient_ids.extend(ids)
            self.audit.batch_ids.extend(batch_ids)

        if params.barriers and not params.one_wave and data_run is None:
            # staged: waves are sequential and independent, so chunks of whole waves give exact results
            per_chunk = max(batch_size, (CHUNK_PATIENTS // batch_size) * batch_size)
        else:
            per_chunk = max(n, 1)
        batches: list[BatchMigrationStatus] = []
        downtime_sum = 0.0
        downtime_max = 0.0
        peak = 0
        total_errors = 0
        migrated = 0
        quality_sum = 0.0
        clock = run_start
        for lo in range(0, n, per_chunk):
            hi = min(n, lo + per_chunk)
            if data_run is None:
                out = draw_outcomes(keys[lo:hi], self.config, self.seed, overload_rate=params.overload_rate)
            else:
                from .pipeline.datamode import slice_outcomes

                out = slice_outcomes(data_run.outcomes, lo, hi)
            b_local = batch_of[lo:hi] - batch_of[lo]
            if params.one_wave:
                wave_of = np.zeros(hi - lo, dtype=np.int64)
                wkeys = wave_keys_for([batch_ids[int(batch_of[lo])]])
            else:
                wave_of = b_local
                wkeys = wave_keys_for(batch_ids[int(batch_of[lo]) : int(batch_of[hi - 1]) + 1])
            sched = schedule(out, self.config, params, wave_of, wkeys, self.seed)
            if data_run is not None:
                from .pipeline.datamode import shift_for_backouts

                shift_for_backouts(sched, batch_of[lo:hi], data_run.backout_delays())
            offset = clock
            if params.barriers:
                wave_span = sched.wave_end - sched.wave_start
                down = wave_span[wave_of]
            else:
                down = np.zeros(hi - lo)
            downtime_sum += float(down.sum())
            downtime_max = max(downtime_max, float(down.max()) if down.size else 0.0)
            peak = max(peak, sched.peak_concurrency)
            total_errors += int(out.f_patient.size)
            migrated += int(out.migrated.sum())
            quality_sum += float(out.quality.sum())
            chunk_batches = self._build_batches(
                ids[lo:hi],
                batch_ids[int(batch_of[lo]) : int(batch_of[hi - 1]) + 1],
                b_local,
                out,
                sched,
                offset,
                strategy,
                down,
            )
            batches.extend(chunk_batches)
            if self.keep_audit:
                self._record_audit(out, sched, offset, b_local + int(batch_of[lo]) + batch_base, audit_base + lo)
            clock = offset + sched.end
            if progress is not None:
                progress(hi, n)
        self._clock = clock
        self.batch_results.extend(batches)
        result = MigrationRunResult(
            strategy=strategy,
            batches=batches,
            started_at=origin + timedelta(seconds=run_start),
            completed_at=origin + timedelta(seconds=clock),
            patients=n,
            migrated=migrated,
            total_errors=total_errors,
            peak_concurrency=peak,
            downtime_max_seconds=downtime_max,
            downtime_mean_seconds=downtime_sum / n if n else 0.0,
            average_quality_score=quality_sum / n if n else None,
            extra={"concurrency": params.concurrency, "batch_size": batch_size, "seed": self.seed},
        )
        self.runs.append(result)
        return result

    # ------------------------------------------------------------------ data mode

    def _data_plan(self, patients: Sequence[PatientLike], batch_size: int) -> tuple[list[PatientRecord], np.ndarray]:
        from .pipeline.datamode import plan_records

        if not all(isinstance(p, PatientRecord) for p in patients):
            raise ConfigError("data mode migrates PatientRecord objects (read them with vistasim.vista.station.read_source)")
        order, batch_of = plan_records(patients, batch_size)  # type: ignore[arg-type]
        return [patients[i] for i in order], batch_of  # type: ignore[misc]

    def _data_run(self, records: Sequence[PatientLike], batch_ids: list[str], batch_of: np.ndarray,
                  overload_rate: float, progress: Progress | None = None) -> Any:
        from .pipeline.datamode import run_data_mode
        from .pipeline.stages import person_key

        known = self._data_known
        earlier = {k: known[k] for k in {person_key(r) for r in records} if k in known}  # type: ignore[arg-type]
        run = run_data_mode(records, config=self.config, seed=self.seed, batch_ids=batch_ids,  # type: ignore[arg-type]
                            batch_of=batch_of, target=self.target, settings=self.data_settings,
                            overload_rate=overload_rate, earlier=earlier, progress=progress,
                            name_index=getattr(self.source, "name_index", None) or None,
                            parse_failures=getattr(self.source, "parse_failures", None) or None)
        for r in records:
            known.setdefault(person_key(r), []).append(r)  # type: ignore[arg-type]
        self.data_runs.append(run)
        return run

    # ------------------------------------------------------------------ result assembly

    def _build_batches(
        self,
        ids: list[str],
        batch_ids: list[str],
        batch_of: np.ndarray,
        out: Outcomes,
        sched,  # type: ignore[no-untyped-def]
        offset: float,
        strategy: str,
        downtime: np.ndarray,
    ) -> list[BatchMigrationStatus]:
        n_b = len(batch_ids)
        origin = self.config.start_time
        reached = out.attempts > 0  # (n, 16)
        # per (batch, step) counts
        processed = np.zeros((n_b, N_STEPS), dtype=np.int64)
        failed_at = np.zeros((n_b, N_STEPS), dtype=np.int64)
        attempts = np.zeros((n_b, N_STEPS), dtype=np.int64)
        for s in range(N_STEPS):
            processed[:, s] = np.bincount(batch_of[reached[:, s]], minlength=n_b)
            attempts[:, s] = np.bincount(batch_of, weights=out.attempts[:, s], minlength=n_b).astype(np.int64)
        stopped = out.fail_step < MIGRATED
        np.add.at(failed_at, (batch_of[stopped], out.fail_step[stopped]), 1)
        n_types = len(ERROR_TYPES)
        err = np.bincount(
            (batch_of[out.f_patient] * N_STEPS + out.f_step) * n_types + out.f_type,
            minlength=n_b * N_STEPS * n_types,
        ).reshape(n_b, N_STEPS, n_types)
        # per (batch, step) time span, from the patients' rounds
        start = np.full((n_b, N_STEPS), np.inf)
        end = np.full((n_b, N_STEPS), -np.inf)
        for s in range(N_STEPS):
            idx = np.flatnonzero(reached[:, s])
            if idx.size:
                np.minimum.at(start[:, s], batch_of[idx], sched.step_start[idx, s])
                np.maximum.at(end[:, s], batch_of[idx], sched.step_end[idx, s])
        counts = np.bincount(batch_of, minlength=n_b)
        firsts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        migrated = out.migrated
        statuses = np.where(migrated, "migrated", "failed").tolist()
        quality = out.quality.tolist()
        b_quality = np.bincount(batch_of, weights=out.quality, minlength=n_b)
        b_migr = np.bincount(batch_of, weights=migrated, minlength=n_b)
        b_err = np.bincount(batch_of[out.f_patient], minlength=n_b)
        b_down = np.bincount(batch_of, weights=downtime, minlength=n_b)
        reasons = {}
        for i in np.flatnonzero(~migrated).tolist():
            st, sub = STEPS[int(out.fail_step[i])]
            reasons[i] = f"{st}/{sub or 'handoff'}: {ERROR_TYPES[int(out.fail_type[i])]}"
        if sched.reconcile_end is not None:
            rec_end = sched.reconcile_end
        else:
            rec_end = None

        results: list[BatchMigrationStatus] = []
        for b in range(n_b):
            lo, cnt = int(firsts[b]), int(counts[b])
            hi = lo + cnt
            stage_results: list[MigrationStageResult] = []
            for si, stage in enumerate(STAGES):
                steps = range(si * 4, si * 4 + 4)
                sub_results = []
                for s in steps:
                    sub = STEPS[s][1]
                    if sub is None:
                        continue
                    sub_results.append(
                        self._stage_result(
                            stage,
                            sub,
                            int(processed[b, s]),
                            int(failed_at[b, s]),
                            int(attempts[b, s]),
                            err[b, s],
                            start[b, s],
                            end[b, s],
                            offset,
                            origin,
                        )
                    )
                # the stage-level result covers the whole stage, its hand-off step included
                s0, s3 = si * 4, si * 4 + 3
                proc = int(processed[b, s0])
                fail = int(failed_at[b, s0 : s3 + 1].sum())
                t_first = float(start[b, s0])
                t_last = float(np.max(end[b, s0 : s3 + 1]))
                stage_results.append(
                    self._stage_result(
                        stage,
                        None,
                        proc,
                        fail,
                        int(attempts[b, s0 : s3 + 1].sum()),
                        err[b, s0 : s3 + 1].sum(axis=0),
                        t_first,
                        t_last,
                        offset,
                        origin,
                    )
                )
                stage_results.extend(sub_results)
            b_start = float(np.min(start[b])) if cnt else 0.0
            b_end = float(np.max(end[b])) if cnt else 0.0
            if rec_end is not None and cnt:
                b_end = max(b_end, float(np.nanmax(rec_end[lo:hi])) if np.any(~np.isnan(rec_end[lo:hi])) else b_end)
            bid = batch_ids[b]
            bstat = BatchMigrationStatus(
                batch_id=bid,
                batch_size=cnt,
                source_system=self.config.source_system,
                target_system=self.config.target_system,
                migration_strategy=strategy,
                started_at=origin + timedelta(seconds=offset + b_start),
                completed_at=origin + timedelta(seconds=offset + b_end),
                current_stage="completed",
                stage_results=stage_results,
                patient_statuses=dict(zip(ids[lo:hi], statuses[lo:hi])),
                overall_success_rate=float(b_migr[b] / cnt) if cnt else 0.0,
                average_quality_score=float(b_quality[b] / cnt) if cnt else None,
                total_errors=int(b_err[b]),
                patient_quality=dict(zip(ids[lo:hi], quality[lo:hi])),
                failure_reasons={ids[i]: reasons[i] for i in range(lo, hi) if i in reasons},
                downtime_seconds=float(b_down[b] / cnt) if cnt else 0.0,
                peak_concurrency=int(min(cnt, self._concurrency(strategy))),
            )
            results.append(bstat)
        return results

    def _concurrency(self, strategy: str) -> int:
        return strategy_params(strategy, self.config).concurrency

    @staticmethod
    def _stage_result(
        stage, sub, processed, failed, attempts, errors, start, end, offset, origin
    ) -> MigrationStageResult:  # type: ignore[no-untyped-def]
        successful = processed - failed
        errors_by_type = {ERROR_TYPES[i]: int(c) for i, c in enumerate(errors.tolist()) if c}
        n_err = sum(errors_by_type.values())
        if processed == 0:
            status = "pending"
            start = end = 0.0
        elif failed == 0:
            status = "completed"
        elif successful == 0:
            status = "failed"
        else:
            status = "partial_failure"
        top = max(errors_by_type, key=lambda k: (errors_by_type[k], k)) if errors_by_type else None
        where = f"{stage}/{sub}" if sub else stage
        message = (
            f"{failed} of {processed} records failed at {where}; {n_err} failed attempts "
            f"({', '.join(f'{k} {v}' for k, v in sorted(errors_by_type.items(), key=lambda kv: -kv[1]))})"
            if failed or n_err
            else None
        )
        t0 = origin + timedelta(seconds=offset + start)
        t1 = origin + timedelta(seconds=offset + end)
        return MigrationStageResult(
            stage=stage,
            substage=sub,
            status=status,
            start_time=t0,
            end_time=t1,
            duration_seconds=float(end - start),
            error_type=top,
            error_message=message,
            records_processed=processed,
            records_successful=successful,
            records_failed=failed,
            attempts=attempts,
            retries=max(0, attempts - processed),
            errors_by_type=errors_by_type,
        )

    def _record_audit(self, out: Outcomes, sched, offset: float, batch_global: np.ndarray, patient_base: int) -> None:  # type: ignore[no-untyped-def]
        delay = float(self.config.retry_delay_seconds)
        f_block_start = 0
        for s in range(N_STEPS):
            idx = np.flatnonzero(out.attempts[:, s] > 0)
            if idx.size == 0:
                continue
            k = out.attempts[idx, s].astype(np.int64)
            rows = np.repeat(idx, k)
            first = np.repeat(np.cumsum(k) - k, k)
            a = (np.arange(rows.size) - first + 1).astype(np.int8)
            last = a == np.repeat(k, k)
            passed = np.repeat(out.fail_step[idx] > s, k)
            success = last & passed
            outcome = np.where(success, 0, np.where(last, 2, 1)).astype(np.int8)
            error = np.full(rows.size, -1, dtype=np.int8)
            n_fail = int((~success).sum())
            error[~success] = out.f_type[f_block_start : f_block_start + n_fail]
            f_block_start += n_fail
            t = offset + sched.step_start[rows, s] + retry_delay(a, delay)
            self.audit.append(
                t, batch_global[rows], rows + patient_base, np.full(rows.size, s, dtype=np.int8), a, outcome, error
            )
