"""Deterministic inline SVG charts for the HTML report, drawn in pure Python.

Every chart is a function ``Chart -> str`` returning one ``<svg>`` element that needs nothing from the
network (no fonts, scripts or images). Each plotted data point is one element of class ``datum``
carrying ``data-label`` and ``data-value``, and the ``<svg>`` says how many it holds
(``data-points``): tests and screen readers can tell what a chart shows without looking at it.
Coordinates are rounded to 0.1 px and nothing random or time-based goes in, so the same chart gives the
same bytes. Strings pass through :func:`esc`, which also masks anything shaped like an SSN.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# An SSN-like run of 9 digits (or 3-2-4 with dashes) that is not part of a longer number or a decimal.
_SSN = re.compile(r"(?<!\d)(?<!\d\.)(?:\d{3}-\d{2}-\d{4}|\d{9})(?!\d)(?!\.\d)")
SSN_MASK = "***-**-****"

WIDTH = 760
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
OK, BAD, NEUTRAL, GRID = "#009E73", "#D55E00", "#0072B2", "#d0d4da"


def mask_ssn(text: str) -> str:
    """Replace every SSN-shaped digit run by a mask (defence in depth: reports never show SSNs)."""
    return _SSN.sub(SSN_MASK, text)


def esc(value: Any) -> str:
    """HTML-escape a value for text or attribute use, with SSN-like numbers masked."""
    return html.escape(mask_ssn(str(value)), quote=True)


def _f(x: float) -> str:
    """A coordinate with one decimal, without '-0.0' (so bytes do not depend on float sign noise)."""
    s = f"{x:.1f}"
    return "0.0" if s == "-0.0" else s


def _v(x: Any) -> str:
    """A data value for a ``data-value`` attribute: integers exact, floats to 6 significant digits."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    return format(float(x), ".6g")


@dataclass(frozen=True)
class Chart:
    """What to draw. ``kind`` picks the drawing function; ``labels`` and ``series`` hold the data.

    kinds: ``bars`` (one series, horizontal), ``stacked`` (several series per label, horizontal),
    ``pareto`` (descending bars + cumulative share), ``histogram`` (``extra['edges']``), ``line``
    (one series over ordered labels), ``gantt`` (``extra['rows']``: (label, start_s, end_s,
    downtime_s)), ``bands`` (``extra['rows']``: (label, mean, ci_lo, ci_hi, p_lo, p_hi)), ``gates``
    (``extra['rows']``: (label, value or None, threshold or None, passed)).
    """

    kind: str
    chart_id: str
    title: str
    labels: tuple[str, ...] = ()
    series: tuple[tuple[str, tuple[float, ...]], ...] = ()
    value_format: str = "num"  # num | pct | int | sec
    scale_max: float | None = None  # fixed axis maximum (e.g. 1.0 for rates)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def points(self) -> int:
        if self.kind in ("gantt", "bands", "gates"):
            return len(self.extra.get("rows", ()))
        return sum(len(vals) for _, vals in self.series)


def fmt_value(x: float | None, kind: str = "num") -> str:
    """Human formatting shared by charts and tables."""
    if x is None:
        return "n/a"
    if kind == "pct":
        return f"{x:.1%}"
    if kind == "int":
        return f"{int(round(x)):,}"
    if kind == "sec":
        return fmt_seconds(x)
    if isinstance(x, int) or (abs(x) >= 1000 and float(x).is_integer()):
        return f"{int(x):,}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:,.1f}"
    return f"{x:.4g}"


def fmt_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.2f} h"
    return f"{seconds / 86400:.2f} d"


def _label_width(labels: Sequence[str]) -> float:
    longest = max((len(str(x)) for x in labels), default=4)
    return min(280.0, 16.0 + 6.6 * longest)


def _open(chart: Chart, height: float) -> list[str]:
    cid = esc(chart.chart_id)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{cid}" class="chart chart-{esc(chart.kind)}" '
        f'viewBox="0 0 {WIDTH} {_f(height)}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'role="img" aria-labelledby="{cid}-title {cid}-desc" data-points="{chart.points}" '
        f'font-family="{esc(FONT)}" font-size="12">',
        f'<title id="{cid}-title">{esc(chart.title)}</title>',
        f'<desc id="{cid}-desc">{esc(chart.extra.get("desc", chart.title))}; {chart.points} data points; '
        "the table below the chart holds the same numbers.</desc>",
    ]


def _axis_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        if t >= lo - step * 1e-9:
            ticks.append(round(t, 12))
        t += step
    return ticks


def _time_ticks(lo: float, hi: float) -> list[float]:
    """Ticks on round minutes, hours or days rather than round seconds."""
    span = hi - lo
    unit = 86400.0 if span >= 3 * 86400 else 3600.0 if span >= 7200 else 60.0 if span >= 120 else 1.0
    return [t * unit for t in _axis_ticks(lo / unit, hi / unit)]


def _x_axis(x0: float, x1: float, lo: float, hi: float, y: float, fmt: str, y_top: float) -> list[str]:
    out = [f'<line x1="{_f(x0)}" y1="{_f(y)}" x2="{_f(x1)}" y2="{_f(y)}" stroke="#555"/>']
    for t in _time_ticks(lo, hi) if fmt == "sec" else _axis_ticks(lo, hi):
        x = x0 + (t - lo) / (hi - lo) * (x1 - x0) if hi > lo else x0
        out.append(
            f'<line x1="{_f(x)}" y1="{_f(y_top)}" x2="{_f(x)}" y2="{_f(y)}" stroke="{GRID}" stroke-dasharray="2 3"/>'
        )
        out.append(
            f'<text x="{_f(x)}" y="{_f(y + 14)}" text-anchor="middle" fill="#333">{esc(fmt_value(t, fmt))}</text>'
        )
    return out


def _legend(names: Sequence[str], colors: Sequence[str], x: float, y: float) -> list[str]:
    out = []
    for name, color in zip(names, colors):
        out.append(f'<rect x="{_f(x)}" y="{_f(y - 9)}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{_f(x + 14)}" y="{_f(y)}" fill="#222">{esc(name)}</text>')
        x += 24 + 6.6 * len(name)
    return out


def bars(chart: Chart, stacked: bool = False) -> str:
    """Horizontal bars, one row per label; with ``stacked`` each series is a segment of the row."""
    labels = chart.labels
    names = [n for n, _ in chart.series]
    colors = chart.extra.get("colors") or PALETTE
    totals = [
        sum(vals[i] for _, vals in chart.series) if stacked else max((vals[i] for _, vals in chart.series), default=0)
        for i in range(len(labels))
    ]
    hi = chart.scale_max if chart.scale_max is not None else max([*totals, 0.0]) or 1.0
    lw = _label_width(labels)
    x0, x1 = lw, WIDTH - 70.0
    row, top = 22.0, 28.0 if (stacked and len(names) > 1) else 8.0
    height = top + row * len(labels) + 26
    out = _open(chart, height)
    if stacked and len(names) > 1:
        out += _legend(names, colors, x0, 16)
    out += _x_axis(x0, x1, 0.0, hi, top + row * len(labels) + 4, chart.value_format, top)
    for i, label in enumerate(labels):
        y = top + i * row
        out.append(f'<text x="{_f(x0 - 6)}" y="{_f(y + 15)}" text-anchor="end" fill="#222">{esc(label)}</text>')
        x = x0
        for k, (name, vals) in enumerate(chart.series):
            v = float(vals[i])
            w = max(0.0, v / hi * (x1 - x0)) if hi else 0.0
            bx = x if stacked else x0
            out.append(
                f'<rect class="datum" x="{_f(bx)}" y="{_f(y + 3)}" width="{_f(w)}" height="{_f(row - 6)}" '
                f'fill="{colors[k % len(colors)]}" data-label="{esc(label)}" data-series="{esc(name)}" '
                f'data-value="{_v(vals[i])}"><title>{esc(label)} {esc(name)}: '
                f"{esc(fmt_value(vals[i], chart.value_format))}</title></rect>"
            )
            if stacked:
                x += w
        shown = totals[i] if (stacked or len(names) == 1) else None
        if shown is not None:
            end = x if stacked else x0 + max(0.0, shown / hi * (x1 - x0))
            out.append(
                f'<text x="{_f(end + 4)}" y="{_f(y + 15)}" fill="#333">{esc(fmt_value(shown, chart.value_format))}</text>'
            )
    out.append("</svg>")
    return "\n".join(out)


def pareto(chart: Chart) -> str:
    """Vertical bars in descending order with the cumulative share as a line (right axis 0-100 %)."""
    labels = chart.labels
    vals = [float(v) for v in chart.series[0][1]] if chart.series else []
    total = sum(vals) or 1.0
    hi = max(vals, default=1.0) or 1.0
    x0, x1, top, base = 56.0, WIDTH - 56.0, 14.0, 190.0
    height = base + 24 + 3.4 * max((len(s) for s in labels), default=4)  # labels slant at 30 degrees
    out = _open(chart, height)
    for t in _axis_ticks(0.0, hi):
        y = base - t / hi * (base - top)
        out.append(
            f'<line x1="{_f(x0)}" y1="{_f(y)}" x2="{_f(x1)}" y2="{_f(y)}" stroke="{GRID}" stroke-dasharray="2 3"/>'
        )
        out.append(
            f'<text x="{_f(x0 - 4)}" y="{_f(y + 4)}" text-anchor="end" fill="#333">{esc(fmt_value(t, chart.value_format))}</text>'
        )
    for p in (0, 50, 80, 100):
        y = base - p / 100 * (base - top)
        out.append(f'<text x="{_f(x1 + 4)}" y="{_f(y + 4)}" fill="{BAD}">{p}%</text>')
    n = max(1, len(vals))
    slot = (x1 - x0) / n
    cum, pts = 0.0, []
    for i, (label, v) in enumerate(zip(labels, vals)):
        x = x0 + i * slot
        h = v / hi * (base - top)
        out.append(
            f'<rect class="datum" x="{_f(x + slot * 0.15)}" y="{_f(base - h)}" width="{_f(slot * 0.7)}" '
            f'height="{_f(h)}" fill="{NEUTRAL}" data-label="{esc(label)}" data-value="{_v(chart.series[0][1][i])}">'
            f"<title>{esc(label)}: {esc(fmt_value(v, chart.value_format))} ({v / total:.1%})</title></rect>"
        )
        cum += v
        cy = base - cum / total * (base - top)
        pts.append((x + slot / 2, cy))
        lx, ly = x + slot / 2, base + 12
        out.append(
            f'<text x="{_f(lx)}" y="{_f(ly)}" text-anchor="end" transform="rotate(-30 {_f(lx)} {_f(ly)})" '
            f'fill="#222">{esc(label)}</text>'
        )
    if pts:
        out.append(
            '<polyline class="cumulative" fill="none" stroke="{}" stroke-width="2" points="{}"/>'.format(
                BAD, " ".join(f"{_f(x)},{_f(y)}" for x, y in pts)
            )
        )
        out += [f'<circle class="cum-point" cx="{_f(x)}" cy="{_f(y)}" r="3" fill="{BAD}"/>' for x, y in pts]
    out.append(f'<line x1="{_f(x0)}" y1="{_f(base)}" x2="{_f(x1)}" y2="{_f(base)}" stroke="#555"/>')
    out.append("</svg>")
    return "\n".join(out)


def histogram(chart: Chart) -> str:
    """Vertical bars over bins; ``extra['edges']`` has one more entry than the counts."""
    counts = [float(c) for c in chart.series[0][1]] if chart.series else []
    edges = list(chart.extra.get("edges") or range(len(counts) + 1))
    hi = max(counts, default=1.0) or 1.0
    x0, x1, top, base = 56.0, WIDTH - 16.0, 12.0, 180.0
    out = _open(chart, base + 34)
    for t in _axis_ticks(0.0, hi):
        y = base - t / hi * (base - top)
        out.append(
            f'<line x1="{_f(x0)}" y1="{_f(y)}" x2="{_f(x1)}" y2="{_f(y)}" stroke="{GRID}" stroke-dasharray="2 3"/>'
        )
        out.append(
            f'<text x="{_f(x0 - 4)}" y="{_f(y + 4)}" text-anchor="end" fill="#333">{esc(fmt_value(t, "int"))}</text>'
        )
    n = max(1, len(counts))
    slot = (x1 - x0) / n
    every = max(1, math.ceil(n / 10))
    for i, c in enumerate(counts):
        x = x0 + i * slot
        h = c / hi * (base - top)
        label = f"{edges[i]:g}-{edges[i + 1]:g}"
        out.append(
            f'<rect class="datum" x="{_f(x + 1)}" y="{_f(base - h)}" width="{_f(max(1.0, slot - 2))}" height="{_f(h)}" '
            f'fill="{NEUTRAL}" data-label="{esc(label)}" data-value="{_v(chart.series[0][1][i])}">'
            f"<title>{esc(label)}: {esc(fmt_value(c, 'int'))}</title></rect>"
        )
    for i in range(0, len(edges), every):
        x = x0 + i * slot
        out.append(f'<text x="{_f(x)}" y="{_f(base + 16)}" text-anchor="middle" fill="#333">{edges[i]:g}</text>')
    out.append(f'<line x1="{_f(x0)}" y1="{_f(base)}" x2="{_f(x1)}" y2="{_f(base)}" stroke="#555"/>')
    out.append("</svg>")
    return "\n".join(out)


def line(chart: Chart) -> str:
    """One series over ordered labels, autoscaled on y with a margin; a marker per point."""
    vals = [float(v) for v in chart.series[0][1]] if chart.series else []
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    pad = (hi - lo) * 0.15 or max(abs(hi) * 0.01, 0.01)
    lo, hi = lo - pad, hi + pad
    x0, x1, top, base = 64.0, WIDTH - 16.0, 12.0, 170.0
    out = _open(chart, base + 34)
    for t in _axis_ticks(lo, hi, 4):
        y = base - (t - lo) / (hi - lo) * (base - top)
        out.append(
            f'<line x1="{_f(x0)}" y1="{_f(y)}" x2="{_f(x1)}" y2="{_f(y)}" stroke="{GRID}" stroke-dasharray="2 3"/>'
        )
        out.append(
            f'<text x="{_f(x0 - 4)}" y="{_f(y + 4)}" text-anchor="end" fill="#333">{esc(fmt_value(t, chart.value_format))}</text>'
        )
    n = len(vals)
    step = (x1 - x0) / max(1, n - 1)
    pts = [
        (x0 + i * step if n > 1 else (x0 + x1) / 2, base - (v - lo) / (hi - lo) * (base - top))
        for i, v in enumerate(vals)
    ]
    if pts:
        out.append(
            '<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>'.format(
                NEUTRAL, " ".join(f"{_f(x)},{_f(y)}" for x, y in pts)
            )
        )
    r = 3.0 if n <= 120 else 1.5
    for (x, y), label, raw in zip(pts, chart.labels, chart.series[0][1] if chart.series else ()):
        out.append(
            f'<circle class="datum" cx="{_f(x)}" cy="{_f(y)}" r="{r}" fill="{NEUTRAL}" data-label="{esc(label)}" '
            f'data-value="{_v(raw)}"><title>{esc(label)}: {esc(fmt_value(raw, chart.value_format))}</title></circle>'
        )
    every = max(1, math.ceil(n / 8))
    for i in range(0, n, every):
        out.append(
            f'<text x="{_f(pts[i][0])}" y="{_f(base + 16)}" text-anchor="middle" fill="#333">{esc(chart.labels[i])}</text>'
        )
    out.append(f'<line x1="{_f(x0)}" y1="{_f(base)}" x2="{_f(x1)}" y2="{_f(base)}" stroke="#555"/>')
    out.append("</svg>")
    return "\n".join(out)


def gantt(chart: Chart) -> str:
    """Batches over simulated time: one bar per row from start to end, its downtime as a strip under
    it, and below them the number of batches in flight (a step line) so overlap is visible."""
    rows = chart.extra.get("rows", [])
    end = max([r[2] for r in rows] + [float(chart.extra.get("elapsed", 0.0)), 1e-9])
    labels = [r[0] for r in rows]
    lw = max(120.0, _label_width(labels))
    x0, x1 = lw, WIDTH - 20.0
    row = 16.0 if len(rows) <= 40 else 10.0
    top = 26.0
    lane = top + row * len(rows)
    flight_h = 40.0
    height = lane + flight_h + 40
    sx = (x1 - x0) / end
    out = _open(chart, height)
    out += _legend(["batch running", "legacy frozen (downtime)"], [NEUTRAL, BAD], x0, 14)
    for i, (label, start, stop, down) in enumerate(rows):
        y = top + i * row
        if len(rows) <= 40 or i % max(1, len(rows) // 20) == 0:
            out.append(
                f'<text x="{_f(x0 - 6)}" y="{_f(y + row * 0.7)}" text-anchor="end" fill="#222" '
                f'font-size="{10 if row < 16 else 12}">{esc(label)}</text>'
            )
        w = max(0.5, (stop - start) * sx)
        out.append(
            f'<rect class="datum" x="{_f(x0 + start * sx)}" y="{_f(y + 1)}" width="{_f(w)}" height="{_f(row * 0.55)}" '
            f'fill="{NEUTRAL}" data-label="{esc(label)}" data-value="{_v(stop - start)}" data-start="{_v(start)}" '
            f'data-end="{_v(stop)}"><title>{esc(label)}: +{esc(fmt_seconds(start))} to +{esc(fmt_seconds(stop))}'
            f"</title></rect>"
        )
        if down > 0:
            out.append(
                f'<rect class="downtime" x="{_f(x0 + start * sx)}" y="{_f(y + 1 + row * 0.6)}" '
                f'width="{_f(max(0.5, down * sx))}" height="{_f(row * 0.25)}" fill="{BAD}" data-value="{_v(down)}"/>'
            )
    # batches in flight: a step function over the batch intervals
    deltas: dict[float, int] = {}
    for r in rows:  # net change per instant, so back-to-back batches do not dip to zero
        deltas[r[1]] = deltas.get(r[1], 0) + 1
        deltas[r[2]] = deltas.get(r[2], 0) - 1
    level, peak, pts = 0, 1, [(0.0, 0)]
    for t in sorted(deltas):
        pts.append((t, level))
        level += deltas[t]
        pts.append((t, level))
        peak = max(peak, level)
    fy0 = lane + flight_h
    path = " ".join(f"{_f(x0 + t * sx)},{_f(fy0 - lv / peak * (flight_h - 8))}" for t, lv in pts)
    out.append(f'<polyline class="in-flight" fill="none" stroke="{OK}" stroke-width="1.5" points="{path}"/>')
    out.append(f'<text x="{_f(x0 - 6)}" y="{_f(fy0 - 22)}" text-anchor="end" fill="{OK}">batches in</text>')
    out.append(f'<text x="{_f(x0 - 6)}" y="{_f(fy0 - 8)}" text-anchor="end" fill="{OK}">flight (max {peak})</text>')
    out += _x_axis(x0, x1, 0.0, end, fy0 + 4, "sec", top)
    out.append("</svg>")
    return "\n".join(out)


def bands(chart: Chart) -> str:
    """Monte Carlo intervals per row: 5-95 percentile band (light), 95 % CI of the mean (dark), mean (dot)."""
    rows = chart.extra.get("rows", [])
    vals = [v for r in rows for v in r[1:] if v is not None]
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    pad = (hi - lo) * 0.08 or max(abs(hi) * 0.05, 0.01)
    lo, hi = lo - pad, hi + pad
    labels = [r[0] for r in rows]
    lw = _label_width(labels)
    x0, x1 = lw, WIDTH - 24.0
    row, top = 24.0, 26.0
    height = top + row * len(rows) + 28
    sx = (x1 - x0) / (hi - lo)
    out = _open(chart, height)
    out += _legend(["5-95 percentile band", "95% CI of the mean", "mean"], ["#9cc3e4", "#0b4f84", BAD], x0, 14)
    out += _x_axis(x0, x1, lo, hi, top + row * len(rows) + 4, chart.value_format, top)
    for i, (label, mean, c_lo, c_hi, p_lo, p_hi) in enumerate(rows):
        y = top + i * row
        out.append(f'<text x="{_f(x0 - 6)}" y="{_f(y + 16)}" text-anchor="end" fill="#222">{esc(label)}</text>')
        out.append(f'<g class="datum" data-label="{esc(label)}" data-value="{_v(mean)}">')
        if p_lo is not None and p_hi is not None:
            out.append(
                f'<rect class="band" x="{_f(x0 + (p_lo - lo) * sx)}" y="{_f(y + 5)}" '
                f'width="{_f(max(1.0, (p_hi - p_lo) * sx))}" height="14" fill="#9cc3e4"/>'
            )
        if c_lo is not None and c_hi is not None:
            out.append(
                f'<rect class="ci" x="{_f(x0 + (c_lo - lo) * sx)}" y="{_f(y + 8)}" '
                f'width="{_f(max(1.0, (c_hi - c_lo) * sx))}" height="8" fill="#0b4f84"/>'
            )
        if mean is not None:
            out.append(f'<circle cx="{_f(x0 + (mean - lo) * sx)}" cy="{_f(y + 12)}" r="4" fill="{BAD}"/>')
        out.append(f"<title>{esc(label)}: mean {esc(fmt_value(mean, chart.value_format))}</title></g>")
    out.append("</svg>")
    return "\n".join(out)


def gates(chart: Chart) -> str:
    """Pass/fail gates: a bar for the measured value (green pass, orange fail, with a PASS/FAIL word so
    colour is never the only cue) and a tick at the threshold; a square when a gate has no value."""
    rows = chart.extra.get("rows", [])
    vals = [v for r in rows for v in (r[1], r[2]) if v is not None]
    hi = max([1.0, *vals])
    labels = [r[0] for r in rows]
    lw = _label_width(labels)
    x0, x1 = lw, WIDTH - 110.0
    row, top = 22.0, 8.0
    height = top + row * len(rows) + 26
    sx = (x1 - x0) / hi
    out = _open(chart, height)
    out += _x_axis(x0, x1, 0.0, hi, top + row * len(rows) + 4, chart.value_format, top)
    for i, (label, value, threshold, passed) in enumerate(rows):
        y = top + i * row
        color = OK if passed else BAD
        out.append(f'<text x="{_f(x0 - 6)}" y="{_f(y + 15)}" text-anchor="end" fill="#222">{esc(label)}</text>')
        if value is not None:
            out.append(
                f'<rect class="datum" x="{_f(x0)}" y="{_f(y + 4)}" width="{_f(max(0.0, value * sx))}" height="14" '
                f'fill="{color}" data-label="{esc(label)}" data-value="{_v(value)}" data-passed="{_v(bool(passed))}"/>'
            )
        else:
            out.append(
                f'<rect class="datum" x="{_f(x0)}" y="{_f(y + 4)}" width="14" height="14" fill="{color}" '
                f'data-label="{esc(label)}" data-value="" data-passed="{_v(bool(passed))}"/>'
            )
        if threshold is not None:
            tx = x0 + threshold * sx
            out.append(
                f'<line class="threshold" x1="{_f(tx)}" y1="{_f(y + 1)}" x2="{_f(tx)}" y2="{_f(y + 21)}" '
                'stroke="#000" stroke-width="2"/>'
            )
        word = "PASS" if passed else "FAIL"
        shown = "" if value is None else " " + fmt_value(value, chart.value_format)
        out.append(
            f'<text x="{_f(x1 + 8)}" y="{_f(y + 15)}" fill="{color}" font-weight="bold">{word}{esc(shown)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def render_chart(chart: Chart) -> str:
    """Draw a chart by its kind."""
    drawers = {
        "bars": bars,
        "stacked": lambda c: bars(c, stacked=True),
        "pareto": pareto,
        "histogram": histogram,
        "line": line,
        "gantt": gantt,
        "bands": bands,
        "gates": gates,
    }
    if chart.kind not in drawers:
        raise ValueError(f"unknown chart kind {chart.kind!r}")
    return drawers[chart.kind](chart)
