"""The HTML dashboard: one self-contained file (inline CSS and SVG, no scripts, fonts or network).

Built from :func:`vistasim.report.sections.build_sections`, so it shows the same sections as the
Markdown report. Every chart is followed by a table of its data. The output is a pure function of the
document: no random ids and no clock, so the same results.json gives the same bytes.
"""

from __future__ import annotations

from typing import Any

from .charts import esc, render_chart
from .sections import Bullets, Figure, Heading, Section, Table, build_sections, footer, report_title

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0; color: #1b1f24; background: #f6f7f9; }
header { background: #0b3d66; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; opacity: .9; }
nav { background: #fff; border-bottom: 1px solid #dde1e6; padding: 8px 28px; font-size: 14px; }
nav a { margin-right: 14px; color: #0b3d66; }
main { max-width: 1100px; margin: 0 auto; padding: 8px 28px 40px; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 6px 20px 16px; margin: 18px 0; }
h2 { font-size: 19px; border-bottom: 1px solid #e5e8ec; padding-bottom: 6px; }
h3 { font-size: 16px; margin-top: 20px; }
figure { margin: 14px 0; }
figcaption { font-weight: 600; margin-bottom: 6px; }
svg.chart { display: block; max-width: 100%; height: auto; background: #fff; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 13px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; white-space: nowrap; }
th, td { border: 1px solid #dde1e6; padding: 3px 8px; }
th { background: #eef1f4; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
details summary { cursor: pointer; color: #0b3d66; font-size: 13px; }
footer { color: #555; font-size: 12px; text-align: center; padding: 12px; }
@media print { nav { display: none; } details { display: block; } }
"""


def _table(t: Table) -> str:
    head = "".join(f'<th scope="col">{esc(c)}</th>' for c in t.columns)
    body = []
    for row in t.rows:
        cells = []
        for i, v in enumerate(row):
            if i == 0:
                cells.append(f'<th scope="row">{esc(v)}</th>')
            else:
                cells.append(f'<td class="num">{esc(v)}</td>' if t.is_numeric(i) else f"<td>{esc(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<table><caption>{esc(t.caption)}</caption><thead><tr>{head}</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )


def _figure(f: Figure) -> str:
    table = _table(f.table)
    if f.chart is None:
        return table
    chart_id = esc(f.chart.chart_id)
    open_attr = "" if f.collapsed else " open"
    return (
        f'<figure aria-labelledby="{chart_id}-cap"><figcaption id="{chart_id}-cap">{esc(f.chart.title)}</figcaption>\n'
        f"{render_chart(f.chart)}\n"
        f"<details{open_attr}><summary>Data table: {esc(f.table.caption)}</summary>{table}</details></figure>"
    )


def _section(sec: Section) -> str:
    out: list[str] = [
        f'<section id="{esc(sec.section_id)}" aria-labelledby="{esc(sec.section_id)}-h">',
        f'<h2 id="{esc(sec.section_id)}-h">{esc(sec.title)}</h2>',
    ]
    for item in sec.items:
        if isinstance(item, str):
            out.append(f"<p>{esc(item)}</p>")
        elif isinstance(item, Heading):
            out.append(f"<h3>{esc(item.text)}</h3>")
        elif isinstance(item, Bullets):
            tag = "ol" if item.ordered else "ul"
            out.append(f"<{tag}>" + "".join(f"<li>{esc(x)}</li>" for x in item.items) + f"</{tag}>")
        elif isinstance(item, Figure):
            out.append(_figure(item))
        elif isinstance(item, Table):
            out.append(_table(item))
    out.append("</section>")
    return "\n".join(out)


def render_html(doc: dict[str, Any]) -> str:
    """The dashboard for one results.json document, as a complete HTML page."""
    sections = build_sections(doc)
    title = report_title(doc)
    s = doc.get("summary") or {}
    sub = (
        f"{doc.get('strategy', '?')} strategy, seed {doc.get('seed', '?')}, {s.get('total_patients', 0):,} patients, "
        f"{doc.get('mode', '?')} mode"
    )
    nav = " ".join(f'<a href="#{esc(sec.section_id)}">{esc(sec.title)}</a>' for sec in sections)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # no network: forbid every fetch, so a stray URL can never leave the machine
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{esc(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        f"<header><h1>{esc(title)}</h1><p>{esc(sub)}</p></header>",
        f'<nav aria-label="Sections">{nav}</nav>',
        "<main>",
        *(_section(sec) for sec in sections),
        "</main>",
        f"<footer>{esc(footer(doc))}</footer>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)
