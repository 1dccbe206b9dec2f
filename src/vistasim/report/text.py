"""The plain-text migration report: the spec's sections, laid out for a manager to read."""

from __future__ import annotations

from typing import Any

from ..model import STAGES


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _hours(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def render_text_report(
    analytics: dict[str, Any],
    config: Any | None = None,
    title: str = "VistA -> Oracle Health Migration Simulation Report",
) -> str:
    s = analytics["summary"]
    lines: list[str] = [title, "=" * len(title), ""]
    lines += ["EXECUTIVE SUMMARY", "-----------------"]
    lines.append(f"Total batches:          {s['total_batches']:,}")
    lines.append(f"Total patients:         {s['total_patients']:,}")
    lines.append(f"Migrated patients:      {s.get('migrated_patients', 0):,}")
    lines.append(f"Overall success rate:   {_pct(s['overall_success_rate'])}")
    q = s["average_quality_score"] if s.get("quality_measured", True) else None
    lines.append(f"Average quality score:  {'n/a' if q is None else f'{q:.4f}'}")
    lines.append(f"Total errors:           {s['total_errors']:,} failed attempts (retried ones included)")
    t = analytics.get("timeline") or {}
    if t.get("started_at"):
        lines.append(
            f"Simulated window:       {t['started_at']} to {t['completed_at']} ({_hours(t['elapsed_seconds'])})"
        )
        lines.append(
            f"Downtime:               max {_hours(t['downtime_max_seconds'])}, "
            f"patient-weighted mean {_hours(t['downtime_mean_seconds'])}"
        )
        lines.append(f"Peak concurrency:       {t['peak_concurrency']} patients")
        lines.append(f"Throughput:             {t['throughput_patients_per_hour']:,.0f} migrated patients per hour")
    lines.append("")

    lines += ["STAGE PERFORMANCE", "-----------------"]
    lines.append(f"{'stage':<12}{'success':>10}{'processed':>12}{'failed':>9}{'avg duration':>15}{'errors':>9}")
    for stage in STAGES:
        p = analytics["stage_performance"][stage]
        lines.append(
            f"{stage:<12}{_pct(p['success_rate']) if p['records_processed'] else 'n/a':>10}"
            f"{p['records_processed']:>12,}{p['records_failed']:>9,}{_hours(p['average_duration']):>15}"
            f"{p['errors']:>9,}"
        )
    sp = analytics.get("substage_performance")
    if sp:
        lines.append("")
        lines.append(f"  {'substage':<26}{'success':>10}{'processed':>12}{'attempts':>10}")
        for stage in STAGES:
            for sub, p in sp[stage].items():
                lines.append(
                    f"  {stage + '/' + sub:<26}{_pct(p['success_rate']) if p['records_processed'] else 'n/a':>10}"
                    f"{p['records_processed']:>12,}{p['attempts']:>10,}"
                )
    lines.append("")

    f = analytics["failure_analysis"]
    lines += ["FAILURE ANALYSIS", "----------------"]
    total = f.get("total_failed_attempts", sum(f["failure_types"].values()))
    if total:
        lines.append(
            f"Most common failure: {f['most_common_failure']} "
            f"(stage with most failed attempts: {f.get('most_common_failure_stage')})"
        )
        for etype, cnt in sorted(f["failure_types"].items(), key=lambda kv: -kv[1]):
            if cnt:
                lines.append(f"  {etype:<26}{cnt:>9,}  {cnt / total:6.1%}")
        lines.append("Failed attempts by stage: " + ", ".join(f"{k} {v:,}" for k, v in f["failure_by_stage"].items()))
    else:
        lines.append("No failed attempts.")
    queue = f.get("remediation_queue") or {}
    if queue:
        lines.append("")
        lines.append(f"Remediation queue ({sum(queue.values()):,} patients), by where and why they stopped:")
        for reason, cnt in list(queue.items())[:12]:
            lines.append(f"  {cnt:>8,}  {reason}")
    lines.append("")

    qt = analytics["quality_trends"]
    lines += ["QUALITY TRENDS", "--------------"]
    if qt["initial_quality"] is None:
        lines.append("No quality evidence yet.")
    else:
        lines.append(f"Initial batch quality:  {qt['initial_quality']:.4f}")
        lines.append(f"Final batch quality:    {qt['final_quality']:.4f}")
        lines.append(f"Trend (final-initial):  {qt['quality_trend']:+.4f}")
        lines.append(f"Variance (patients):    {qt['quality_variance']:.6f}")
    lines.append("")

    lines += ["RECOMMENDATIONS", "---------------"]
    for i, rec in enumerate(analytics["recommendations"], 1):
        lines.append(f"{i}. {rec}")
    lines.append("")
    if config is not None:
        cfg = config if isinstance(config, dict) else config.to_dict()
        lines += ["CONFIGURATION", "-------------"]
        lines.append(
            "Stage success rates:    " + ", ".join(f"{k} {v:.2f}" for k, v in cfg["stage_success_rates"].items())
        )
        lines.append(
            f"Failure rates:          network {cfg['network_failure_rate']:.3f}, overload "
            f"{cfg['system_overload_rate']:.3f}, corruption {cfg['data_corruption_rate']:.3f}"
        )
        lines.append(
            f"Concurrency and retry:  {cfg['max_concurrent_patients']} concurrent patients, "
            f"{cfg['retry_attempts']} retries, {cfg['retry_delay_seconds']:g} s backoff doubling"
        )
        lines.append(
            f"Quality degradation:    {cfg['quality_degradation_per_failure']:+.3f} per failure, "
            f"{cfg['quality_degradation_per_success']:+.3f} per stage passed"
        )
        lines.append("")
    return "\n".join(lines)
