"""The model sections of results.json (summary, stage and substage performance, failures, quality, timeline,
batches) built from one replication's wave aggregates, without per-patient objects.

The figures mean what :mod:`vistasim.analytics` means by them; the ``batches`` rows are one per wave (a plan's
waves are its units of cutover), while ``summary.total_batches`` counts the batches the waves ran.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import numpy as np

from .. import analytics as _analytics
from ..engine import STEPS
from ..model import ERROR_TYPES, STAGES, SUBSTAGES, TRANSIENT_ERRORS
from .plan import Plan
from .waves import QBINS, WaveResult


def _iso(dt) -> str:  # type: ignore[no-untyped-def]
    return dt.isoformat().replace("+00:00", "Z")


def _total(arrays: Iterable[np.ndarray]) -> np.ndarray:
    """Element-wise sum of per-wave count arrays."""
    return np.sum(np.stack(list(arrays)), axis=0)


def model_sections(plan: Plan, results: Sequence[WaveResult], wave_start: Sequence[float]) -> dict[str, Any]:
    """summary, stage_performance, substage_performance, failure_analysis, quality_trends, timeline,
    recommendations, batches and metrics of one replication."""
    finals = [x.final for x in results]
    processed = _total(f.processed for f in finals)
    attempts = _total(f.attempts for f in finals)
    errors = _total(f.errors for f in finals)
    stopped = _total(f.stopped for f in finals)
    step_time = _total(f.step_time for f in finals)
    step_execs = _total(f.step_execs for f in finals)
    stage_time = _total(f.stage_time for f in finals)
    stage_execs = _total(f.stage_execs for f in finals)
    patients = sum(f.patients for f in finals)
    migrated = sum(f.migrated if x.accepted else 0 for f, x in zip(finals, results))
    qsum = sum(f.quality_sum for f in finals)
    qsq = sum(f.quality_sq for f in finals)
    qhist = _total(f.qhist for f in finals)
    total_errors = int(errors.sum())
    failed_at = stopped.sum(axis=1)

    stage_perf: dict[str, Any] = {}
    sub_perf: dict[str, dict[str, Any]] = {s: {} for s in STAGES}
    for g, stage in enumerate(STAGES):
        s0 = 4 * g
        proc = int(processed[s0])
        ok = proc - int(failed_at[s0 : s0 + 4].sum())
        t = float(stage_time[g])
        stage_perf[stage] = {
            "success_rate": ok / proc if proc else 0.0,
            "average_duration": t / int(stage_execs[g]) if stage_execs[g] else 0.0,
            "total_executions": int(stage_execs[g]),
            "records_processed": proc,
            "records_successful": ok,
            "records_failed": proc - ok,
            "attempts": int(attempts[s0 : s0 + 4].sum()),
            "errors": int(errors[s0 : s0 + 4].sum()),
            "throughput_per_hour": ok / t * 3600.0 if t > 0 else 0.0,
        }
    for s, (stage, sub) in enumerate(STEPS):
        if sub is None:
            continue
        proc = int(processed[s])
        ok = proc - int(failed_at[s])
        sub_perf[stage][sub] = {
            "success_rate": ok / proc if proc else 0.0,
            "average_duration": float(step_time[s]) / int(step_execs[s]) if step_execs[s] else 0.0,
            "records_processed": proc,
            "records_successful": ok,
            "records_failed": proc - ok,
            "attempts": int(attempts[s]),
            "errors": {ERROR_TYPES[i]: int(c) for i, c in enumerate(errors[s].tolist()) if c},
        }
    for stage in STAGES:
        sub_perf[stage] = {u: sub_perf[stage][u] for u in SUBSTAGES[stage]}

    types = {e: int(errors[:, i].sum()) for i, e in enumerate(ERROR_TYPES)}
    by_stage = {st: int(errors[4 * g : 4 * g + 4].sum()) for g, st in enumerate(STAGES)}
    by_sub: dict[str, int] = {}
    remediation: dict[str, int] = {}
    for s, (stage, sub) in enumerate(STEPS):
        by_sub[f"{stage}/{sub or 'handoff'}"] = int(errors[s].sum())
        for i, e in enumerate(ERROR_TYPES):
            if stopped[s, i]:
                remediation[f"{stage}/{sub or 'handoff'}: {e}"] = int(stopped[s, i])
    failure = {
        "failure_types": types,
        "failure_by_stage": by_stage,
        "failure_by_substage": dict(sorted(by_sub.items())),
        "most_common_failure": max(types, key=lambda k: (types[k], k)) if total_errors else None,
        "most_common_failure_stage": max(by_stage, key=lambda k: (by_stage[k], k)) if total_errors else None,
        "total_failed_attempts": total_errors,
        "transient_failed_attempts": sum(types[e] for e in TRANSIENT_ERRORS),
        "patients_stopped_by_stage": {st: int(stopped[4 * g : 4 * g + 4].sum()) for g, st in enumerate(STAGES)},
        "remediation_queue": dict(sorted(remediation.items(), key=lambda kv: (-kv[1], kv[0]))),
    }

    series = [f.quality_sum / f.patients for f in finals if f.patients]
    mean_q = qsum / patients if patients else 0.0
    k = len(series)
    slope = 0.0
    if k > 1:
        xbar, ybar = (k - 1) / 2, sum(series) / k
        slope = sum((i - xbar) * (y - ybar) for i, y in enumerate(series)) / sum((i - xbar) ** 2 for i in range(k))
    quality = {
        "initial_quality": series[0] if series else None,
        "final_quality": series[-1] if series else None,
        "quality_trend": series[-1] - series[0] if series else 0.0,
        "quality_variance": max(0.0, qsq / patients - mean_q**2) if patients else 0.0,
        "quality_slope_per_batch": slope,
        "batch_quality": series,
        "distribution": {"edges": [i / QBINS for i in range(QBINS + 1)], "counts": [int(c) for c in qhist]},
    }

    origin = plan.config.start_time
    ends = [st + x.span for st, x in zip(wave_start, results)]
    first, last = (min(wave_start), max(ends)) if results else (0.0, 0.0)
    elapsed = last - first
    timeline = {
        "started_at": _iso(origin + timedelta(seconds=first)) if results else None,
        "completed_at": _iso(origin + timedelta(seconds=last)) if results else None,
        "elapsed_seconds": elapsed,
        "downtime_max_seconds": max((x.down_max for x in results), default=0.0),
        "downtime_mean_seconds": sum(x.down_sum for x in results) / patients if patients else 0.0,
        "peak_concurrency": max((f.peak for f in finals), default=0),
        "throughput_patients_per_hour": migrated / elapsed * 3600.0 if elapsed > 0 else 0.0,
    }
    summary = {
        "total_batches": int(sum(f.batches for f in finals)),
        "total_patients": int(patients),
        "migrated_patients": int(migrated),
        "failed_patients": int(patients - migrated),
        "overall_success_rate": migrated / patients if patients else 0.0,
        "average_quality_score": mean_q,
        "quality_measured": patients > 0,
        "total_errors": total_errors,
    }
    batches: list[dict[str, Any]] = []
    for k, (x, st) in enumerate(zip(results, wave_start)):
        f = x.final
        m = f.migrated if x.accepted else 0
        batches.append(
            {
                "batch_id": plan.waves[k].name,
                "patients": int(f.patients),
                "migrated": int(m),
                "started_at": _iso(origin + timedelta(seconds=st)),
                "completed_at": _iso(origin + timedelta(seconds=st + x.span)),
                "duration_seconds": x.span,
                "success_rate": m / f.patients if f.patients else 0.0,
                "average_quality_score": f.quality_sum / f.patients if f.patients else None,
                "total_errors": int(x.errors_all.sum()),
                "downtime_seconds": x.down_sum / f.patients if f.patients else 0.0,
            }
        )
    out: dict[str, Any] = {
        "summary": summary,
        "stage_performance": stage_perf,
        "substage_performance": sub_perf,
        "failure_analysis": failure,
        "quality_trends": quality,
        "timeline": timeline,
    }
    out["recommendations"] = _analytics.recommendations(out, plan.config)
    out["batches"] = batches
    out["metrics"] = {
        "success": summary["overall_success_rate"],
        "quality": mean_q if patients else None,
        "fidelity": None,
        "safety": None,
    }
    return out


def replication_metrics(sections: dict[str, Any], overall: dict[str, np.ndarray]) -> dict[str, Any]:
    """``sections`` with ``metrics`` (what --fail-under and --metrics read) as the mean over replications.

    The other sections show replication 0 in detail; gating on one replication of a Monte Carlo run
    would pass or fail by luck, so the gate sees the mean (the risk section holds its interval).
    """
    out = dict(sections)
    success = np.asarray(overall["success_rate"], dtype=np.float64)
    quality = np.asarray(overall["quality"], dtype=np.float64)
    out["metrics"] = {
        "success": float(success.mean()) if success.size else 0.0,
        "quality": float(quality.mean()) if quality.size and sections["metrics"]["quality"] is not None else None,
        "fidelity": None,
        "safety": None,
    }
    return out


def results_document(
    command: str,
    plan: Plan,
    seed: int,
    sections: dict[str, Any],
    extra: dict[str, Any],
    prov: dict[str, Any],
    strategy: str | None = None,
) -> dict[str, Any]:
    """A complete results.json document for ``risk`` / ``compare``."""
    from ..results import SCHEMA_VERSION

    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "mode": "model",
        "strategy": strategy or plan.main_strategy(),
        "seed": seed,
        "batch_size": plan.waves[0].batch_size,
        "config": plan.config.to_dict(),
    }
    for key in (
        "summary",
        "stage_performance",
        "substage_performance",
        "failure_analysis",
        "quality_trends",
        "timeline",
        "recommendations",
        "batches",
        "metrics",
    ):
        doc[key] = sections[key]
    doc["audit_rows"] = None
    doc["provenance"] = prov
    doc.update(extra)
    return doc


def _unused(_: np.ndarray) -> None:  # keep numpy imported for type checkers of the arrays above
    return None
