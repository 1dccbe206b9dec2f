"""Analytics: pure functions from batch results to the figures a migration team acts on.

The spec's keys (summary, stage_performance, failure_analysis, quality_trends, recommendations) plus
substage performance, the remediation queue and the timeline. Rates are fractions; summary rates
are weighted by patients. A quality figure with no evidence (no patients) is None, never 1.0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .config import MigrationConfig
from .model import ERROR_TYPES, STAGES, SUBSTAGES, TRANSIENT_ERRORS, BatchMigrationStatus, MigrationRunResult

SUCCESS_TARGET = 0.80
QUALITY_TARGET = 0.85
CONCENTRATION = 0.25

# What to do about each error type, for the recommendation that names the dominant one.
_ADVICE = {
    "network_timeout": "add connection pooling and check the VistA/Oracle network path; transient faults cost time, "
    "and exhausted retries cost patients",
    "system_unavailable": "schedule waves outside target maintenance windows and confirm target capacity before each wave",
    "resource_exhaustion": "lower concurrency or add capacity on the target; overload grows with concurrent load",
    "data_corruption": "profile source encodings and add checksum validation at extract",
    "mapping_error": "review the VistA-to-FHIR map tables for unmapped codes before the next mock conversion",
    "validation_failure": "run the target's validation rules earlier (pre-validate in a mock conversion)",
    "security_violation": "verify service-account access and certificates on both ends before cutover",
    "hipaa_compliance_error": "review minimum-necessary filters and audit configuration",
}


def _weighted(values: Sequence[tuple[float, int]]) -> float | None:
    total = sum(w for _, w in values)
    if total == 0:
        return None
    return sum(v * w for v, w in values) / total


def summary(batches: Sequence[BatchMigrationStatus]) -> dict[str, Any]:
    patients = sum(b.batch_size for b in batches)
    migrated = sum(round(b.overall_success_rate * b.batch_size) for b in batches)
    quality = _weighted(
        [(b.average_quality_score, b.batch_size) for b in batches if b.average_quality_score is not None]
    )
    return {
        "total_batches": len(batches),
        "total_patients": patients,
        "migrated_patients": migrated,
        "failed_patients": patients - migrated,
        "overall_success_rate": migrated / patients if patients else 0.0,
        "average_quality_score": quality if quality is not None else 0.0,
        "quality_measured": quality is not None,
        "total_errors": sum(b.total_errors for b in batches),
    }


def stage_performance(batches: Sequence[BatchMigrationStatus]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        rows = [r for b in batches for r in b.stage_results if r.stage == stage and r.substage is None]
        ran = [r for r in rows if r.records_processed > 0]
        processed = sum(r.records_processed for r in rows)
        ok = sum(r.records_successful for r in rows)
        durations = [r.duration_seconds for r in ran]
        total_time = sum(durations)
        out[stage] = {
            "success_rate": ok / processed if processed else 0.0,
            "average_duration": sum(durations) / len(durations) if durations else 0.0,
            "total_executions": len(ran),
            "records_processed": processed,
            "records_successful": ok,
            "records_failed": processed - ok,
            "attempts": sum(r.attempts for r in rows),
            "errors": sum(sum(r.errors_by_type.values()) for r in rows),
            "throughput_per_hour": ok / total_time * 3600.0 if total_time > 0 else 0.0,
        }
    return out


def substage_performance(batches: Sequence[BatchMigrationStatus]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {s: {} for s in STAGES}
    acc: dict[tuple, list[Any]] = {}
    for b in batches:
        for r in b.stage_results:
            if r.substage is not None:
                acc.setdefault((r.stage, r.substage), []).append(r)
    for stage in STAGES:
        for sub in SUBSTAGES[stage]:
            rows = acc.get((stage, sub), [])
            ran = [r for r in rows if r.records_processed > 0]
            processed = sum(r.records_processed for r in rows)
            ok = sum(r.records_successful for r in rows)
            attempts = sum(r.attempts for r in rows)
            errors: Counter[str] = Counter()
            for r in rows:
                errors.update(r.errors_by_type)
            out[stage][sub] = {
                "success_rate": ok / processed if processed else 0.0,
                "average_duration": sum(r.duration_seconds for r in ran) / len(ran) if ran else 0.0,
                "records_processed": processed,
                "records_successful": ok,
                "records_failed": processed - ok,
                "attempts": attempts,
                "errors": dict(sorted(errors.items())),
            }
    return out


def failure_analysis(batches: Sequence[BatchMigrationStatus]) -> dict[str, Any]:
    types: Counter = Counter({e: 0 for e in ERROR_TYPES})
    by_stage: Counter = Counter({s: 0 for s in STAGES})
    by_substage: Counter = Counter()
    for b in batches:
        for r in b.stage_results:
            if r.substage is None:
                continue
            n = sum(r.errors_by_type.values())
            by_substage[f"{r.stage}/{r.substage}"] += n
        for r in b.stage_results:
            if r.substage is None:
                types.update(r.errors_by_type)
                by_stage[r.stage] += sum(r.errors_by_type.values())
    # hand-off errors are in the stage totals only; list them beside the substages
    for stage in STAGES:
        handoff = by_stage[stage] - sum(v for k, v in by_substage.items() if k.startswith(stage + "/"))
        by_substage[f"{stage}/handoff"] += handoff
    remediation: Counter = Counter()
    stopped_by_stage: Counter = Counter({s: 0 for s in STAGES})
    for b in batches:
        for reason in b.failure_reasons.values():
            remediation[reason] += 1
            stopped_by_stage[reason.split("/", 1)[0]] += 1
    total = sum(types.values())
    most = max(types, key=lambda k: (types[k], k)) if total else None
    transient = sum(types[e] for e in TRANSIENT_ERRORS)
    return {
        "failure_types": dict(types),
        "failure_by_stage": dict(by_stage),
        "failure_by_substage": dict(sorted(by_substage.items())),
        "most_common_failure": most,
        "most_common_failure_stage": max(by_stage, key=lambda k: (by_stage[k], k)) if total else None,
        "total_failed_attempts": total,
        "transient_failed_attempts": transient,
        "patients_stopped_by_stage": dict(stopped_by_stage),
        "remediation_queue": dict(remediation.most_common()),
    }


def quality_trends(batches: Sequence[BatchMigrationStatus]) -> dict[str, Any]:
    scored = [b for b in batches if b.average_quality_score is not None and b.batch_size > 0]
    if not scored:
        return {
            "initial_quality": None,
            "final_quality": None,
            "quality_trend": 0.0,
            "quality_variance": 0.0,
            "quality_slope_per_batch": 0.0,
            "batch_quality": [],
            "distribution": _histogram([]),
        }
    series = [float(b.average_quality_score) for b in scored]  # type: ignore[arg-type]
    scores = [q for b in scored for q in b.patient_quality.values()]
    mean = sum(scores) / len(scores) if scores else 0.0
    variance = sum((q - mean) ** 2 for q in scores) / len(scores) if scores else 0.0
    k = len(series)
    if k > 1:
        xbar = (k - 1) / 2
        ybar = sum(series) / k
        slope = sum((i - xbar) * (y - ybar) for i, y in enumerate(series)) / sum((i - xbar) ** 2 for i in range(k))
    else:
        slope = 0.0
    return {
        "initial_quality": series[0],
        "final_quality": series[-1],
        "quality_trend": series[-1] - series[0],
        "quality_variance": variance,
        "quality_slope_per_batch": slope,
        "batch_quality": series,
        "distribution": _histogram(scores),
    }


def _histogram(scores: Sequence[float], bins: int = 20) -> dict[str, list[Any]]:
    counts = [0] * bins
    for q in scores:
        counts[min(bins - 1, int(q * bins))] += 1
    return {"edges": [i / bins for i in range(bins + 1)], "counts": counts}


def timeline(runs: Sequence[MigrationRunResult], batches: Sequence[BatchMigrationStatus]) -> dict[str, Any]:
    if not batches:
        return {
            "started_at": None,
            "completed_at": None,
            "elapsed_seconds": 0.0,
            "downtime_max_seconds": 0.0,
            "downtime_mean_seconds": 0.0,
            "peak_concurrency": 0,
            "throughput_patients_per_hour": 0.0,
        }
    start = min(b.started_at for b in batches if b.started_at)
    end = max(b.completed_at for b in batches if b.completed_at)
    elapsed = (end - start).total_seconds()
    patients = sum(b.batch_size for b in batches)
    migrated = sum(round(b.overall_success_rate * b.batch_size) for b in batches)
    if runs:
        down_max = max(r.downtime_max_seconds for r in runs)
        down_mean = sum(r.downtime_mean_seconds * r.patients for r in runs) / max(1, sum(r.patients for r in runs))
        peak = max(r.peak_concurrency for r in runs)
    else:
        down_max = max(b.downtime_seconds for b in batches)
        down_mean = sum(b.downtime_seconds * b.batch_size for b in batches) / max(1, patients)
        peak = max(b.peak_concurrency for b in batches)
    return {
        "started_at": start.isoformat().replace("+00:00", "Z"),
        "completed_at": end.isoformat().replace("+00:00", "Z"),
        "elapsed_seconds": elapsed,
        "downtime_max_seconds": down_max,
        "downtime_mean_seconds": down_mean,
        "peak_concurrency": peak,
        "throughput_patients_per_hour": migrated / elapsed * 3600.0 if elapsed > 0 else 0.0,
    }


def _round_scale(m: float) -> float:
    return 1.0 + math.log10(max(1.0, m / 10.0))


def recommendations(analytics: dict[str, Any], config: MigrationConfig) -> list[str]:
    """Recommendations that fire on evidence, each naming the numbers behind it."""
    s = analytics["summary"]
    f = analytics["failure_analysis"]
    t = analytics.get("timeline", {})
    recs: list[str] = []
    n = s["total_patients"]
    if n == 0:
        return ["No patients have been simulated yet: run a batch before reading recommendations."]
    rate = s["overall_success_rate"]
    stopped = f["patients_stopped_by_stage"]
    worst_stage = max(stopped, key=lambda k: (stopped[k], k)) if any(stopped.values()) else None
    if rate < SUCCESS_TARGET:
        where = (
            f"; {stopped[worst_stage]} of the {s['failed_patients']} failed patients stopped in {worst_stage}"
            if worst_stage
            else ""
        )
        recs.append(
            f"Success rate {rate:.1%} is below the {SUCCESS_TARGET:.0%} target ({s['failed_patients']} of {n} patients "
            f"did not migrate{where}): reduce batch sizes, add error handling at that stage and work the remediation "
            "queue before the next wave."
        )
    q = s["average_quality_score"] if s.get("quality_measured", True) else None
    if q is not None and q < QUALITY_TARGET:
        recs.append(
            f"Average quality {q:.3f} is below {QUALITY_TARGET}: each permanent failure costs "
            f"{config.quality_degradation_per_failure:.2f} and each stage passed {config.quality_degradation_per_success:.2f}; "
            "add validation checkpoints after transform and review the transformation rules."
        )
    total = f["total_failed_attempts"]
    if total:
        top = f["most_common_failure"]
        share = f["failure_types"][top] / total
        recs.append(
            f"{top} is the most common failure: {f['failure_types'][top]} of {total} failed attempts ({share:.0%}); "
            f"{_ADVICE[top]}."
        )
        by_sub = f.get("failure_by_substage", {})
        sub, cnt = max(by_sub.items(), key=lambda kv: (kv[1], kv[0])) if by_sub else ("", 0)
        if cnt / total >= CONCENTRATION:  # one of 16 steps holding a quarter of the failures stands out
            recs.append(
                f"Failures concentrate in {sub}: {cnt} of {total} failed attempts ({cnt / total:.0%}); "
                f"raising its success rate is the largest single lever."
            )
        exhausted = sum(
            v for k, v in f.get("remediation_queue", {}).items() if k.rsplit(": ", 1)[-1] in TRANSIENT_ERRORS
        )
        if exhausted:
            recs.append(
                f"{exhausted} {'patient' if exhausted == 1 else 'patients'} failed on transient errors after "
                f"{config.retry_attempts} {'retry' if config.retry_attempts == 1 else 'retries'} "
                f"(backoff {config.retry_delay_seconds:g} s doubling): one more retry would recover most of them at the cost "
                f"of {config.retry_delay_seconds * 2**config.retry_attempts:g} s more backoff per affected round."
            )
    c = int(config.max_concurrent_patients)
    elapsed = t.get("elapsed_seconds") or 0.0
    if elapsed > 0:
        gain = 1.0 - (_round_scale(2 * c) / 2.0) / _round_scale(c)
        overload_share = (f["failure_types"].get("resource_exhaustion", 0) / total) if total else 0.0
        if overload_share > 0.25:
            recs.append(
                f"resource_exhaustion is {overload_share:.0%} of failed attempts at {c} concurrent patients: "
                "lower max_concurrent_patients or add target capacity before raising throughput."
            )
        else:
            recs.append(
                f"Throughput is {t.get('throughput_patients_per_hour', 0.0):,.0f} migrated patients per simulated hour "
                f"at {c} concurrent patients ({elapsed / 3600.0:,.1f} h elapsed, peak {t.get('peak_concurrency', 0)}); "
                f"doubling concurrency to {2 * c} would cut step time by about {gain:.0%} (a round of {2 * c} lasts "
                f"{_round_scale(2 * c):.2f}x a round of {c}), if the target can absorb the load."
            )
    if rate >= SUCCESS_TARGET and (q is None or q >= QUALITY_TARGET) and total == 0:
        recs.append(
            f"No action needed: success {rate:.1%} and quality {q:.3f} meet their targets with no failed attempts."
        )
    return recs


def migration_analytics(
    batches: Sequence[BatchMigrationStatus], config: MigrationConfig, runs: Sequence[MigrationRunResult] = ()
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "summary": summary(batches),
        "stage_performance": stage_performance(batches),
        "substage_performance": substage_performance(batches),
        "failure_analysis": failure_analysis(batches),
        "quality_trends": quality_trends(batches),
        "timeline": timeline(runs, batches),
    }
    out["recommendations"] = recommendations(out, config)
    return out
