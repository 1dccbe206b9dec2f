"""What the HTML and Markdown reports show: a results.json document turned into sections of text,
charts and tables, independent of the output format.

One builder feeds both renderers, so the dashboard and the pull-request Markdown always carry the same
sections and the same numbers. Every chart comes with a table of the same data (its accessible
equivalent). Sections written by other commands (``data_mode``, ``risk``, ``comparison``,
``calibration``) are shown generically, whatever keys they hold:

* a dict with a numeric ``mean`` and an interval (``ci95``/``ci``/``ci_low``+``ci_high``..., and/or
  ``p5``+``p95``/``p05``+``p95``/``band``/``p5_p95``...) is a Monte Carlo estimate: drawn as a band;
* a dict or list of records with a boolean ``passed``/``pass``/``ok``/``met`` is a set of gates;
* a dict of records (``{domain: {source: 10, target: 9, ...}}``) or a list of records is a table, with
  a bar chart of its first rate-like column;
* scalars are key/value rows; anything nested deeper becomes a sub-heading.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..model import STAGES
from .charts import Chart, fmt_seconds, fmt_value

Cell = str
MAX_GANTT_ROWS = 60
MAX_LINE_POINTS = 200
MAX_QUEUE_ROWS = 15


@dataclass(frozen=True)
class Table:
    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    numeric: tuple[bool, ...] = ()  # right-align these columns

    def is_numeric(self, i: int) -> bool:
        return i < len(self.numeric) and self.numeric[i]


@dataclass(frozen=True)
class Figure:
    """A chart and the table holding its data (the chart may be None when there is nothing to plot)."""

    chart: Chart | None
    table: Table
    collapsed: bool = False  # long tables start folded in HTML


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]
    ordered: bool = False


Item = str | Figure | Table | Heading | Bullets


@dataclass
class Section:
    section_id: str
    title: str
    items: list[Item] = field(default_factory=list)


# --- small helpers --------------------------------------------------------------------------------


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x))


def _cell(x: Any, kind: str = "auto") -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if _num(x):
        if kind == "auto":
            kind = "int" if isinstance(x, int) else "num"
        return fmt_value(x, kind)
    if isinstance(x, (list, tuple)):
        return ", ".join(_cell(v) for v in x)
    if isinstance(x, dict):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in x.items())
    return str(x)


def _title(key: str) -> str:
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class _Ids:
    """Stable chart ids: section id + a counter, so the same document gives the same ids."""

    def __init__(self, prefix: str) -> None:
        self.prefix = re.sub(r"[^a-z0-9-]+", "-", prefix.lower()).strip("-") or "s"
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return f"{self.prefix}-chart-{self.n}"


def _groups(n: int, max_groups: int) -> list[tuple[int, int]]:
    """Split range(n) into at most max_groups consecutive [a, b) runs of near-equal size."""
    if n <= max_groups:
        return [(i, i + 1) for i in range(n)]
    bounds = [round(i * n / max_groups) for i in range(max_groups + 1)]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


# --- the model-mode sections ------------------------------------------------------------------------


def overview(doc: dict[str, Any]) -> Section:
    s = doc.get("summary", {})
    t = doc.get("timeline") or {}
    m = doc.get("metrics") or {}
    sec = Section("overview", "Overview")
    sec.items.append(
        f"{_title(doc.get('command', 'run'))} run in {doc.get('mode', '?')} mode, {doc.get('strategy', '?')} strategy, "
        f"seed {doc.get('seed', '?')}, batch size {doc.get('batch_size', '?')}: "
        f"{s.get('migrated_patients', 0):,} of {s.get('total_patients', 0):,} patients migrated "
        f"({fmt_value(s.get('overall_success_rate'), 'pct')})."
    )
    rows: list[tuple[str, str]] = [
        ("Patients", _cell(s.get("total_patients"))),
        ("Batches", _cell(s.get("total_batches"))),
        ("Migrated patients", _cell(s.get("migrated_patients"))),
        ("Failed patients", _cell(s.get("failed_patients"))),
        ("Overall success rate", fmt_value(s.get("overall_success_rate"), "pct")),
        (
            "Average quality score",
            fmt_value(s.get("average_quality_score") if s.get("quality_measured", True) else None, "num"),
        ),
        ("Failed attempts (retried included)", _cell(s.get("total_errors"))),
    ]
    if t.get("started_at"):
        rows += [
            ("Simulated window", f"{t['started_at']} to {t.get('completed_at')}"),
            ("Elapsed (simulated)", fmt_seconds(t.get("elapsed_seconds", 0.0))),
            (
                "Downtime, max / patient-weighted mean",
                f"{fmt_seconds(t.get('downtime_max_seconds', 0.0))} / {fmt_seconds(t.get('downtime_mean_seconds', 0.0))}",
            ),
            ("Peak concurrency", f"{t.get('peak_concurrency', 0):,} patients"),
            ("Throughput", f"{t.get('throughput_patients_per_hour', 0.0):,.0f} migrated patients per hour"),
        ]
    sec.items.append(Table("Key figures", ("measure", "value"), tuple(rows), (False, True)))
    names = ("success", "quality", "fidelity", "safety")
    measured = [k for k in names if _num(m.get(k))]
    table = Table(
        "Gate metrics (what --fail-under checks); n/a = not measured by this kind of run",
        ("metric", "value", "measured"),
        tuple(
            (k, fmt_value(m.get(k), "pct" if k in ("success", "safety") else "num"), "yes" if k in measured else "no")
            for k in names
        ),
        (False, True, False),
    )
    chart = (
        Chart(
            "bars",
            "overview-chart-1",
            "Gate metrics (0 to 1)",
            tuple(measured),
            (("value", tuple(float(m[k]) for k in measured)),),
            "num",
            1.0,
            {"desc": "Measured gate metrics on a 0-1 scale"},
        )
        if measured
        else None
    )
    sec.items.append(Figure(chart, table))
    return sec


def stages(doc: dict[str, Any]) -> Section:
    sec = Section("stages", "Success and failures by stage")
    sp = doc.get("stage_performance") or {}
    names = [st for st in STAGES if st in sp] + [st for st in sp if st not in STAGES]
    ok = tuple(float(sp[st].get("records_successful", 0)) for st in names)
    bad = tuple(float(sp[st].get("records_failed", 0)) for st in names)
    chart = Chart(
        "stacked",
        "stages-chart-1",
        "Records by stage: successful and failed",
        tuple(names),
        (("successful", ok), ("failed", bad)),
        "int",
        None,
        {"colors": ("#009E73", "#D55E00"), "desc": "Per stage, records that passed and records that stopped there"},
    )
    rows = tuple(
        (
            st,
            fmt_value(p.get("success_rate"), "pct") if p.get("records_processed") else "n/a",
            _cell(p.get("records_processed")),
            _cell(p.get("records_successful")),
            _cell(p.get("records_failed")),
            _cell(p.get("attempts")),
            _cell(p.get("errors")),
            fmt_seconds(float(p.get("average_duration", 0.0))),
            fmt_value(p.get("throughput_per_hour"), "num"),
        )
        for st, p in ((st, sp[st]) for st in names)
    )
    table = Table(
        "Stage performance",
        (
            "stage",
            "success",
            "processed",
            "successful",
            "failed",
            "attempts",
            "failed attempts",
            "avg duration",
            "throughput / h",
        ),
        rows,
        (False,) + (True,) * 8,
    )
    sec.items.append(Figure(chart if names else None, table))

    sub = doc.get("substage_performance") or {}
    labels, rates, srows = [], [], []
    for st in [s for s in STAGES if s in sub] + [s for s in sub if s not in STAGES]:
        for name, p in sub[st].items():
            label = f"{st}/{name}"
            rate = float(p.get("success_rate", 0.0)) if p.get("records_processed") else 0.0
            labels.append(label)
            rates.append(rate)
            errs = p.get("errors") or {}
            top = max(errs.items(), key=lambda kv: (kv[1], kv[0]))[0] if errs else "-"
            srows.append(
                (
                    label,
                    fmt_value(p.get("success_rate"), "pct") if p.get("records_processed") else "n/a",
                    _cell(p.get("records_processed")),
                    _cell(p.get("records_failed")),
                    _cell(p.get("attempts")),
                    _cell(sum(errs.values()) if errs else 0),
                    top,
                )
            )
    if labels:
        chart = Chart(
            "bars",
            "stages-chart-2",
            "Success rate by substage",
            tuple(labels),
            (("success rate", tuple(rates)),),
            "pct",
            1.0,
            {"desc": "Share of records processed by each substage that passed it"},
        )
        sec.items.append(
            Figure(
                chart,
                Table(
                    "Substage performance",
                    ("substage", "success", "processed", "failed", "attempts", "failed attempts", "main error"),
                    tuple(srows),
                    (False, True, True, True, True, True, False),
                ),
            )
        )
    return sec


def failures(doc: dict[str, Any]) -> Section:
    sec = Section("failures", "Failure analysis")
    fa = doc.get("failure_analysis") or {}
    ft = fa.get("failure_types") or {}
    total = sum(ft.values())
    if not total:
        sec.items.append("No failed attempts.")
    else:
        ranked = sorted(((k, v) for k, v in ft.items() if v), key=lambda kv: (-kv[1], kv[0]))
        chart = Chart(
            "pareto",
            "failures-chart-1",
            "Failure types (Pareto)",
            tuple(k for k, _ in ranked),
            (("failed attempts", tuple(float(v) for _, v in ranked)),),
            "int",
            None,
            {"desc": "Failed attempts by error type, largest first, with the cumulative share"},
        )
        cum, rows = 0, []
        for k, v in ranked:
            cum += v
            rows.append((k, f"{v:,}", f"{v / total:.1%}", f"{cum / total:.1%}"))
        sec.items.append(
            f"{total:,} failed attempts ({fa.get('transient_failed_attempts', 0):,} transient, retried); "
            f"most common: {fa.get('most_common_failure')} (stage with most failed attempts: "
            f"{fa.get('most_common_failure_stage')})."
        )
        sec.items.append(
            Figure(
                chart,
                Table(
                    "Failure types",
                    ("error type", "failed attempts", "share", "cumulative"),
                    tuple(rows),
                    (False, True, True, True),
                ),
            )
        )
    fbs = fa.get("failure_by_substage") or {}
    if fbs:
        order = {st: i for i, st in enumerate(STAGES)}
        keys = sorted(fbs, key=lambda k: (order.get(k.split("/")[0], 99), k))
        chart = Chart(
            "bars",
            "failures-chart-2",
            "Failed attempts by stage and substage",
            tuple(keys),
            (("failed attempts", tuple(float(fbs[k]) for k in keys)),),
            "int",
            None,
            {"desc": "Failed attempts at each step; 'handoff' is the stage-level commit step"},
        )
        step_rows = tuple((k, f"{fbs[k]:,}") for k in keys)
        sec.items.append(
            Figure(
                chart,
                Table("Failed attempts by step", ("step", "failed attempts"), step_rows, (False, True)),
                collapsed=len(step_rows) > 20,
            )
        )
    stopped = fa.get("patients_stopped_by_stage") or {}
    if stopped:
        keys = [k for k in STAGES if k in stopped] + [k for k in stopped if k not in STAGES]
        chart = Chart(
            "bars",
            "failures-chart-3",
            "Patients stopped, by stage",
            tuple(keys),
            (("patients", tuple(float(stopped[k]) for k in keys)),),
            "int",
            None,
            {"desc": "Patients whose migration stopped in each stage"},
        )
        sec.items.append(
            Figure(
                chart,
                Table(
                    "Patients stopped by stage",
                    ("stage", "patients"),
                    tuple((k, f"{stopped[k]:,}") for k in keys),
                    (False, True),
                ),
            )
        )
    queue = fa.get("remediation_queue") or {}
    if queue:
        items = sorted(queue.items(), key=lambda kv: (-kv[1], kv[0]))
        queue_rows = [(reason, f"{cnt:,}") for reason, cnt in items[:MAX_QUEUE_ROWS]]
        if len(items) > MAX_QUEUE_ROWS:
            rest = items[MAX_QUEUE_ROWS:]
            queue_rows.append((f"{len(rest)} more reasons", f"{sum(c for _, c in rest):,}"))
        sec.items.append(
            Table(
                f"Remediation queue: {sum(queue.values()):,} patients, by where and why they stopped",
                ("step: reason", "patients"),
                tuple(queue_rows),
                (False, True),
            )
        )
    return sec


def quality(doc: dict[str, Any]) -> Section:
    sec = Section("quality", "Quality")
    qt = doc.get("quality_trends") or {}
    if qt.get("initial_quality") is None:
        sec.items.append("No quality evidence in this run (quality is unknown, not 100 %).")
        return sec
    sec.items.append(
        f"Initial batch quality {qt['initial_quality']:.4f}, final {qt['final_quality']:.4f} "
        f"(trend {qt.get('quality_trend', 0.0):+.4f}, slope {qt.get('quality_slope_per_batch', 0.0):+.5f} per batch); "
        f"variance across patients {qt.get('quality_variance', 0.0):.6f}."
    )
    dist = qt.get("distribution") or {}
    edges, counts = list(dist.get("edges") or []), list(dist.get("counts") or [])
    if counts and len(edges) == len(counts) + 1:
        labels = tuple(f"{edges[i]:g}-{edges[i + 1]:g}" for i in range(len(counts)))
        chart = Chart(
            "histogram",
            "quality-chart-1",
            "Quality score distribution (patients per bin)",
            labels,
            (("patients", tuple(float(c) for c in counts)),),
            "int",
            None,
            {"edges": tuple(edges), "desc": "Number of patients per quality-score bin"},
        )
        total = sum(counts) or 1
        rows = tuple((labels[i], f"{counts[i]:,}", f"{counts[i] / total:.1%}") for i in range(len(counts)))
        sec.items.append(
            Figure(
                chart,
                Table("Quality distribution", ("quality bin", "patients", "share"), rows, (False, True, True)),
                collapsed=True,
            )
        )
    bq = list(qt.get("batch_quality") or [])
    if bq:
        groups = _groups(len(bq), MAX_LINE_POINTS)
        labels = tuple(str(a + 1) if b - a == 1 else f"{a + 1}-{b}" for a, b in groups)
        values = tuple(sum(bq[a:b]) / (b - a) for a, b in groups)
        title = "Average quality by batch" + (
            "" if len(groups) == len(bq) else f" (means of {len(bq)} batches in {len(groups)} groups)"
        )
        chart = Chart(
            "line",
            "quality-chart-2",
            title,
            labels,
            (("quality", values),),
            "num",
            None,
            {"desc": "Average quality score of each batch, in the order the batches ran"},
        )
        batch_rows = tuple((lab, f"{v:.4f}") for lab, v in zip(labels, values))
        sec.items.append(
            Figure(
                chart,
                Table("Quality by batch", ("batch", "average quality"), batch_rows, (False, True)),
                collapsed=len(batch_rows) > 12,
            )
        )
    return sec


def timeline(doc: dict[str, Any]) -> Section:
    sec = Section("timeline", "Timeline of the simulated run")
    t = doc.get("timeline") or {}
    batches = doc.get("batches") or []
    t0 = _parse_time(t.get("started_at")) or (_parse_time(batches[0].get("started_at")) if batches else None)
    spans = []
    for b in batches:
        s, e = _parse_time(b.get("started_at")), _parse_time(b.get("completed_at"))
        if t0 is None or s is None or e is None:
            continue
        spans.append((b, (s - t0).total_seconds(), (e - t0).total_seconds()))
    if t.get("started_at"):
        sec.items.append(
            f"Simulated time from {t['started_at']} to {t.get('completed_at')} ({fmt_seconds(t.get('elapsed_seconds', 0.0))}); "
            f"peak concurrency {t.get('peak_concurrency', 0):,} patients; legacy downtime max "
            f"{fmt_seconds(t.get('downtime_max_seconds', 0.0))}, patient-weighted mean {fmt_seconds(t.get('downtime_mean_seconds', 0.0))}."
        )
    if not spans:
        sec.items.append("No batch timing in this document.")
        return sec
    rows, trows = [], []
    for a, b in _groups(len(spans), MAX_GANTT_ROWS):
        part = spans[a:b]
        first, last = part[0][0].get("batch_id", str(a + 1)), part[-1][0].get("batch_id", str(b))
        label = first if b - a == 1 else f"{first}..{last}"
        start, end = min(p[1] for p in part), max(p[2] for p in part)
        down = max(float(p[0].get("downtime_seconds", 0.0)) for p in part)
        patients = sum(int(p[0].get("patients", 0)) for p in part)
        migrated = sum(int(p[0].get("migrated", 0)) for p in part)
        rows.append((label, start, end, down))
        trows.append(
            (
                label,
                f"+{fmt_seconds(start)}",
                f"+{fmt_seconds(end)}",
                fmt_seconds(end - start),
                f"{patients:,}",
                f"{migrated:,}",
                fmt_value(migrated / patients if patients else None, "pct"),
                fmt_seconds(down),
            )
        )
    note = "" if len(rows) == len(spans) else f" ({len(spans)} batches in {len(rows)} groups)"
    chart = Chart(
        "gantt",
        "timeline-chart-1",
        f"Batches over simulated time{note}",
        tuple(r[0] for r in rows),
        (),
        "sec",
        None,
        {
            "rows": tuple(rows),
            "elapsed": float(t.get("elapsed_seconds", 0.0)),
            "desc": "Each batch from start to end, its legacy downtime, and batches in flight",
        },
    )
    sec.items.append(
        Figure(
            chart,
            Table(
                "Batches (times from the start of the run)",
                ("batch", "start", "end", "duration", "patients", "migrated", "success", "downtime"),
                tuple(trows),
                (False,) + (True,) * 7,
            ),
            collapsed=len(trows) > 12,
        )
    )
    return sec


def recommendations(doc: dict[str, Any]) -> Section:
    sec = Section("recommendations", "Recommendations")
    recs = doc.get("recommendations") or []
    sec.items.append(Bullets(tuple(str(r) for r in recs), ordered=True) if recs else "No recommendations.")
    return sec


# --- generic sections (data mode, risk, comparison, calibration) -----------------------------------

_PASS_KEYS = ("passed", "pass", "ok", "met")
_VALUE_KEYS = ("value", "measured", "observed", "actual", "rate")
_THRESHOLD_KEYS = ("threshold", "target", "minimum", "required", "min")
# names of 0-1 values shown as percentages (a quality score stays a score)
_PCT_HINTS = ("rate", "fidelity", "match", "ratio", "share", "success", "safety", "probability")
_RATE_HINTS = ("rate", "fidelity", "match", "ratio", "score", "share", "success", "safety", "quality", "probability")


def _pair(x: Any) -> tuple[float, float] | None:
    if isinstance(x, (list, tuple)) and len(x) == 2 and all(_num(v) for v in x):
        return float(x[0]), float(x[1])
    if isinstance(x, dict):
        for lo_k, hi_k in (("low", "high"), ("lo", "hi"), ("lower", "upper"), ("p5", "p95"), ("p05", "p95")):
            if _num(x.get(lo_k)) and _num(x.get(hi_k)):
                return float(x[lo_k]), float(x[hi_k])
    return None


def as_band(d: Any) -> tuple[float, float | None, float | None, float | None, float | None] | None:
    """(mean, ci_lo, ci_hi, p_lo, p_hi) when ``d`` looks like a Monte Carlo estimate, else None."""
    if not isinstance(d, dict) or not _num(d.get("mean")):
        return None
    ci = None
    for k in ("ci95", "ci_95", "ci", "confidence_interval", "mean_ci"):
        ci = ci or _pair(d.get(k))
    for lo_k, hi_k in (("ci_low", "ci_high"), ("ci95_low", "ci95_high"), ("ci_lower", "ci_upper"), ("ci_lo", "ci_hi")):
        if ci is None and _num(d.get(lo_k)) and _num(d.get(hi_k)):
            ci = (float(d[lo_k]), float(d[hi_k]))
    band = None
    for k in ("band", "p5_p95", "p05_p95", "band_5_95", "percentiles", "pi90", "range_5_95"):
        band = band or _pair(d.get(k))
    for lo_k, hi_k in (("p5", "p95"), ("p05", "p95"), ("p_5", "p_95"), ("q05", "q95")):
        if band is None and _num(d.get(lo_k)) and _num(d.get(hi_k)):
            band = (float(d[lo_k]), float(d[hi_k]))
    if ci is None and band is None:
        return None
    return (float(d["mean"]), *(ci or (None, None)), *(band or (None, None)))  # type: ignore[return-value]


def _collect_bands(obj: Any, path: tuple[str, ...], out: list[tuple[tuple[str, ...], tuple]]) -> None:
    b = as_band(obj)
    if b is not None:
        out.append((path, b))
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            _collect_bands(v, path + (str(k),), out)


def _kind_for(name: str, values: Sequence[float]) -> str:
    low = name.lower()
    if any(h in low for h in ("seconds", "_s", "duration", "elapsed", "downtime")) and not low.endswith("hours"):
        return "sec" if "seconds" in low or low.endswith("_s") else "num"
    if values and all(0.0 <= v <= 1.0 for v in values) and any(h in low for h in _PCT_HINTS):
        return "pct"
    return "num"


def _band_items(obj: dict[str, Any], ids: _Ids) -> tuple[list[Item], set]:
    found: list[tuple[tuple[str, ...], tuple]] = []
    _collect_bands(obj, (), found)
    items: list[Item] = []
    by_metric: dict[str, list[tuple[str, tuple]]] = {}
    paths: dict[str, list[tuple[tuple[str, ...], tuple]]] = {}
    for path, b in found:
        # a breakdown dict ("errors_by_type": {type: band}) names the metric with its parent, and the
        # rows are what comes before it (the strategy, the wave)
        cut_at = max((i for i, part in enumerate(path[:-1]) if "by_" in part), default=None)
        if cut_at is not None:
            paths.setdefault(f"{path[cut_at]}: {path[-1]}", []).append((path[:cut_at], b))
        else:
            paths.setdefault(path[-1] if path else "value", []).append((path[:-1], b))
    for metric, rows_ in paths.items():
        # drop the leading path parts every row shares ("strategies / staged" -> "staged")
        cut = 0
        while len(rows_) > 1 and all(len(p) > cut + 1 for p, _ in rows_) and len({p[cut] for p, _ in rows_}) == 1:
            cut += 1
        by_metric[metric] = [(" / ".join(p[cut:]) or metric, b) for p, b in rows_]
    for metric, rows in by_metric.items():
        vals = [v for _, b in rows for v in b if v is not None]
        kind = _kind_for(metric, vals)
        chart = Chart(
            "bands",
            ids.next(),
            f"{_title(metric)}: mean, 95% CI and 5-95 percentile band",
            tuple(r[0] for r in rows),
            (),
            kind,
            None,
            {"rows": tuple((lab, *b) for lab, b in rows), "desc": f"Monte Carlo estimate of {metric} for each row"},
        )
        trows = tuple(
            (
                lab,
                fmt_value(b[0], kind),
                "n/a" if b[1] is None else f"{fmt_value(b[1], kind)} to {fmt_value(b[2], kind)}",
                "n/a" if b[3] is None else f"{fmt_value(b[3], kind)} to {fmt_value(b[4], kind)}",
            )
            for lab, b in rows
        )
        items.append(
            Figure(
                chart,
                Table(
                    _title(metric),
                    ("", "mean", "95% CI of the mean", "5-95 percentile band"),
                    trows,
                    (False, True, True, True),
                ),
            )
        )
    return items, {p for p, _ in found}


_NUMERATORS = ("intact", "fields_intact", "matched", "found", "target", "loaded", "migrated")
_DENOMINATORS = ("expected", "source", "total", "fields")


def _ratio_columns(columns: Sequence[str]) -> tuple[str, str] | None:
    """A (numerator, denominator) pair of count columns, e.g. intact / expected, for a share chart."""
    num = next((c for c in _NUMERATORS if c in columns), None)
    den = next((c for c in _DENOMINATORS if c in columns and c != num), None)
    return (num, den) if num and den else None


def _ratio(rec: dict[str, Any], pair: tuple[str, str] | None) -> float | None:
    if pair is None or not _num(rec.get(pair[0])) or not _num(rec.get(pair[1])) or not rec[pair[1]]:
        return None
    return float(rec[pair[0]]) / float(rec[pair[1]])


def _gate_row(label: str, rec: dict[str, Any]) -> tuple[str, float | None, float | None, bool] | None:
    flag = next((rec[k] for k in _PASS_KEYS if isinstance(rec.get(k), bool)), None)
    if flag is None:
        return None
    value = next((float(rec[k]) for k in _VALUE_KEYS if _num(rec.get(k))), None)
    if value is None:
        value = _ratio(rec, _ratio_columns(list(rec)))
    threshold = next((float(rec[k]) for k in _THRESHOLD_KEYS if _num(rec.get(k))), None)
    return (label, value, threshold, bool(flag))


def _records_table(caption: str, records: list[tuple[str, dict[str, Any]]], ids: _Ids, first_col: str) -> list[Item]:
    columns: list[str] = []
    for _, rec in records:
        for k, v in rec.items():
            if k not in columns and not isinstance(v, dict):
                columns.append(k)
    numeric = tuple([False] + [all(_num(r.get(c)) or r.get(c) is None for _, r in records) for c in columns])
    gates = [_gate_row(label, rec) for label, rec in records]
    is_gates = bool(records) and all(g is not None for g in gates)

    def cell(rec: dict[str, Any], c: str) -> str:
        if c not in rec:
            return ""
        if is_gates and c in _PASS_KEYS and isinstance(rec[c], bool):
            return "PASS" if rec[c] else "FAIL"  # words, not only colour
        return _cell(rec[c])

    rows = tuple((label, *(cell(rec, c) for c in columns)) for label, rec in records)
    table = Table(caption, (first_col, *columns), rows, numeric)
    if is_gates:
        chart = Chart(
            "gates",
            ids.next(),
            f"{caption}: pass/fail",
            tuple(g[0] for g in gates if g is not None),
            (),
            "num",
            None,
            {"rows": tuple(gates), "desc": f"{caption}: each gate's measured value against its threshold"},
        )
        return [Figure(chart, table)]
    # chart the first rate-like numeric column, else the first numeric column
    num_cols = [c for c, is_num in zip(columns, numeric[1:]) if is_num and any(_num(r.get(c)) for _, r in records)]
    pick = next((c for c in num_cols if any(h in c.lower() for h in _RATE_HINTS)), None)
    pair = _ratio_columns(num_cols) if pick is None else None
    if pair is not None:  # reconciliation counts: chart the share that arrived intact
        vals = [_ratio(r, pair) or 0.0 for _, r in records]
        pick, kind = f"{pair[0]}_share_of_{pair[1]}", "pct"
    else:
        pick = pick or (num_cols[0] if num_cols else None)
        if pick is None or len(records) < 1:
            return [table]
        vals = [float(r[pick]) if _num(r.get(pick)) else 0.0 for _, r in records]
        kind = _kind_for(pick, vals)
    chart = Chart(
        "bars",
        ids.next(),
        f"{caption}: {pick.replace('_', ' ')}",
        tuple(lab for lab, _ in records),
        ((pick, tuple(vals)),),
        kind,
        1.0 if kind == "pct" else None,
        {"desc": f"{caption}, {pick} per row"},
    )
    return [Figure(chart, table, collapsed=len(rows) > 20)]


# what a migration team looks at first in a nested section, and what is background
_FIRST = ("safety", "gate", "reconcil", "fidelity", "domain", "target", "overall", "per_strategy", "difference")
_LAST = ("settings", "config", "source", "plan", "provenance")


def _priority(key: str) -> int:
    low = key.lower()
    if any(h in low for h in _FIRST):
        return 0
    return 2 if any(h in low for h in _LAST) else 1


def generic_items(
    obj: Any, ids: _Ids, path: tuple[str, ...] = (), depth: int = 0, skip: set | None = None
) -> list[Item]:
    """Items for any JSON value: bands, gates, record tables, key/value tables, sub-headings."""
    items: list[Item] = []
    if depth == 0:
        band_items, skip = _band_items(obj, ids) if isinstance(obj, dict) else ([], set())
        items += band_items
    skip = skip or set()
    if isinstance(obj, list):
        if obj and all(isinstance(r, dict) for r in obj):
            name_key = next(
                (
                    k
                    for k in (
                        "name",
                        "gate",
                        "domain",
                        "id",
                        "metric",
                        "strategy",
                        "label",
                        "target",
                        *(c for c in obj[0] if c.endswith(("_id", "_name"))),
                    )
                    if isinstance(obj[0].get(k), str)
                ),
                None,
            )
            recs = [
                (str(r.get(name_key, i + 1)) if name_key else str(i + 1), {k: v for k, v in r.items() if k != name_key})
                for i, r in enumerate(obj)
            ]
            return items + _records_table(_title(path[-1]) if path else "Records", recs, ids, name_key or "#")
        return items + [", ".join(_cell(v) for v in obj) or "(empty)"]
    if not isinstance(obj, dict):
        return items + [_cell(obj)]
    scalars = [(k, v) for k, v in obj.items() if not isinstance(v, (dict, list)) and path + (k,) not in skip]
    if scalars:
        caption = _title(path[-1]) if path else "Values"
        table = Table(caption, ("key", "value"), tuple((str(k), _cell(v)) for k, v in scalars), (False, True))
        if path and len(scalars) >= 2 and len(scalars) == len(obj) and all(_num(v) for _, v in scalars):
            # a breakdown such as fidelity_by_domain: chart it
            vals = [float(v) for _, v in scalars]
            kind = _kind_for(path[-1], vals)
            chart = Chart(
                "bars",
                ids.next(),
                caption,
                tuple(str(k) for k, _ in scalars),
                ((path[-1], tuple(vals)),),
                kind,
                1.0 if kind == "pct" else None,
                {"desc": f"{caption} per key"},
            )
            items.append(Figure(chart, table, collapsed=len(scalars) > 20))
        else:
            items.append(table)
    simple_lists = [
        (k, v) for k, v in obj.items() if isinstance(v, list) and not any(isinstance(x, (dict, list)) for x in v)
    ]
    if simple_lists:
        items.append(
            Table(
                f"{_title(path[-1]) if path else 'Values'} (lists)",
                ("key", "values"),
                tuple((str(k), _cell(v)) for k, v in simple_lists),
                (False, False),
            )
        )
    for k, v in sorted(obj.items(), key=lambda kv: _priority(str(kv[0]))):
        sub = path + (str(k),)
        if sub in skip or not isinstance(v, (dict, list)) or (isinstance(v, list) and (k, v) in simple_lists):
            continue
        if _all_skipped(v, sub, skip):
            continue
        if (
            isinstance(v, dict)
            and v
            and all(isinstance(r, dict) for r in v.values())
            and all(not isinstance(x, dict) or as_band(x) is not None for r in v.values() for x in r.values())
        ):
            recs = [
                (str(name), {c: x for c, x in r.items() if sub + (str(name), c) not in skip}) for name, r in v.items()
            ]
            recs = [(n, r) for n, r in recs if r]
            if recs:  # the chart's caption names it; no extra heading
                items += _records_table(_title(k), recs, ids, "")
            continue
        inner = generic_items(v, ids, sub, depth + 1, skip)
        if inner:
            items.append(Heading(" / ".join(_title(p) for p in sub)))
            items += inner
    return items


def _all_skipped(obj: Any, path: tuple[str, ...], skip: set) -> bool:
    if path in skip:
        return True
    if isinstance(obj, dict) and obj:
        return all(_all_skipped(v, path + (str(k),), skip) for k, v in obj.items())
    return False


GENERIC_SECTIONS = (
    ("data_mode", "Data mode: reconciliation, fidelity and safety-critical gates"),
    ("comparison", "Strategy comparison"),
    ("risk", "Risk (Monte Carlo)"),
    ("calibration", "Calibration"),
)


def generic_section(key: str, title: str, obj: Any) -> Section:
    sec = Section(key.replace("_", "-"), title)
    sec.items = generic_items(obj, _Ids(key)) or ["(empty section)"]
    return sec


def configuration(doc: dict[str, Any]) -> Section | None:
    cfg = doc.get("config")
    if not isinstance(cfg, dict):
        return None
    sec = Section("configuration", "Configuration")
    rows = []
    for k, v in cfg.items():
        if isinstance(v, dict):
            if all(not isinstance(x, dict) for x in v.values()):
                rows.append((k, ", ".join(f"{a} {_cell(b)}" for a, b in v.items())))
            else:
                rows.append(
                    (
                        k,
                        "; ".join(
                            f"{a}: " + ", ".join(f"{c} {_cell(d)}" for c, d in b.items())
                            if isinstance(b, dict)
                            else f"{a}: {_cell(b)}"
                            for a, b in v.items()
                        ),
                    )
                )
        else:
            rows.append((k, _cell(v)))
    sec.items.append(Table("Configuration of the run", ("setting", "value"), tuple(rows), (False, False)))
    return sec


def build_sections(doc: dict[str, Any]) -> list[Section]:
    """All sections of a report, in reading order; optional sections only when the document has them."""
    out = [overview(doc)]
    for key, title in GENERIC_SECTIONS:
        if key == "data_mode" and isinstance(doc.get(key), dict):
            out.append(generic_section(key, title, doc[key]))
    out += [stages(doc), failures(doc), quality(doc), timeline(doc)]
    for key, title in GENERIC_SECTIONS:
        if key != "data_mode" and isinstance(doc.get(key), dict):
            out.append(generic_section(key, title, doc[key]))
    out.append(recommendations(doc))
    cfg = configuration(doc)
    if cfg is not None:
        out.append(cfg)
    return out


def report_title(doc: dict[str, Any]) -> str:
    return f"VistA -> Oracle Health migration: {doc.get('command', 'run')} report"


def footer(doc: dict[str, Any]) -> str:
    # provenance's wall-clock fields stay out, so re-running a seed gives a byte-identical report
    prov = doc.get("provenance") or {}
    return (
        f"Generated by vistasim {prov.get('vistasim_version', '?')} from results.json "
        f"(schema {doc.get('schema_version', '?')}); simulated times only."
    )
