"""The Markdown report, for pull requests and wikis: the dashboard's sections as GitHub-flavoured tables.

Charts become their data tables (Markdown has no pictures we could embed without a file beside it);
bar-like tables get a small text bar so the shape still shows in a pull-request comment.
"""

from __future__ import annotations

from typing import Any

from .charts import mask_ssn
from .sections import Bullets, Figure, Heading, Table, build_sections, footer, report_title

BAR_WIDTH = 20


def _md(text: Any) -> str:
    """One table cell or line of text: SSNs masked, pipes and newlines made harmless."""
    return mask_ssn(str(text)).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _bar(value: float, top: float) -> str:
    n = 0 if top <= 0 else round(max(0.0, value) / top * BAR_WIDTH)
    return "█" * n


def _table(t: Table, bar_values: list[float] | None = None) -> list[str]:
    cols = list(t.columns)
    align = ["---:" if t.is_numeric(i) else "---" for i in range(len(cols))]
    if bar_values is not None:
        cols.append("")
        align.append("---")
    lines = [
        f"*{_md(t.caption)}*",
        "",
        "| " + " | ".join(_md(c) or " " for c in cols) + " |",
        "| " + " | ".join(align) + " |",
    ]
    top = max(bar_values or [0.0])
    for i, row in enumerate(t.rows):
        cells = [_md(c) for c in row]
        if bar_values is not None:
            cells.append(_bar(bar_values[i], top) if i < len(bar_values) else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def _figure(f: Figure) -> list[str]:
    c = f.chart
    bar_values = None
    if (
        c is not None
        and c.kind in ("bars", "pareto", "histogram")
        and c.value_format != "pct"
        and len(c.series) == 1
        and len(c.series[0][1]) == len(f.table.rows)
    ):
        bar_values = [float(v) for v in c.series[0][1]]
    lines = _table(f.table, bar_values)
    if f.collapsed and len(f.table.rows) > 12:
        # keep long tables out of the way in PR comments (GitHub renders <details>)
        return [
            "<details><summary>" + _md(f.table.caption) + f" ({len(f.table.rows)} rows)</summary>",
            "",
            *lines,
            "</details>",
            "",
        ]
    return lines


def render_markdown(doc: dict[str, Any]) -> str:
    """The Markdown report of one results.json document."""
    out: list[str] = [f"# {_md(report_title(doc))}", ""]
    for sec in build_sections(doc):
        out += [f"## {_md(sec.title)}", ""]
        for item in sec.items:
            if isinstance(item, str):
                out += [_md(item), ""]
            elif isinstance(item, Heading):
                out += [f"### {_md(item.text)}", ""]
            elif isinstance(item, Bullets):
                out += [f"{i}. {_md(x)}" if item.ordered else f"- {_md(x)}" for i, x in enumerate(item.items, 1)]
                out.append("")
            elif isinstance(item, Figure):
                out += _figure(item)
            elif isinstance(item, Table):
                out += _table(item)
    out += ["---", "", f"_{_md(footer(doc))}_", ""]
    return "\n".join(out)
