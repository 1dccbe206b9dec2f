"""The Markdown report: the dashboard's sections as well-formed GitHub tables with the same numbers."""

from __future__ import annotations

import re

from _report_fixtures import model_doc, rich_doc

from vistasim.report import render
from vistasim.report.markdown import render_markdown
from vistasim.report.sections import build_sections


def _tables(md: str):
    """Each table as a list of rows (list of cells), header first, separator dropped."""
    tables, cur = [], []
    for line in md.splitlines():
        if line.startswith("| "):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(re.fullmatch(r"-+:?", c) for c in cells):
                cur.append(cells)
        elif cur:
            tables.append(cur)
            cur = []
    if cur:
        tables.append(cur)
    return tables


def test_same_sections_as_the_dashboard():
    doc = rich_doc()
    md = render_markdown(doc)
    headings = [line[3:] for line in md.splitlines() if line.startswith("## ")]
    assert headings == [s.title for s in build_sections(doc)]
    assert render(doc, "md") == md


def test_tables_are_well_formed_and_hold_the_document_numbers():
    doc = model_doc()
    md = render_markdown(doc)
    tables = _tables(md)
    assert tables
    for t in tables:
        widths = {len(r) for r in t}
        assert len(widths) == 1, t[0]
    failure = next(t for t in tables if t[0][:2] == ["error type", "failed attempts"])
    got = {r[0]: int(r[1].replace(",", "")) for r in failure[1:]}
    assert got == {k: v for k, v in doc["failure_analysis"]["failure_types"].items() if v}
    stage = next(t for t in tables if t[0][0] == "stage" and "processed" in t[0])
    for row in stage[1:]:
        assert int(row[2].replace(",", "")) == doc["stage_performance"][row[0]]["records_processed"]
    batches = next(t for t in tables if t[0][0] == "batch" and "downtime" in t[0])
    assert len(batches) - 1 == len(doc["batches"])


def test_pipes_in_values_cannot_break_a_table():
    doc = model_doc()
    doc["failure_analysis"]["remediation_queue"] = {"load/production: a|b": 3}
    md = render_markdown(doc)
    assert "a\\|b" in md
    for t in _tables(md):
        assert len({len(r) for r in t}) == 1


def test_optional_sections_and_gates_in_words():
    md = render_markdown(rich_doc())
    assert "## Data mode" in md and "## Risk (Monte Carlo)" in md and "## Strategy comparison" in md
    assert "| suicide_risk_flags_transferred | 0.98 | 1 | FAIL |" in md
    assert "| staged | 52.0% | 51.0% to 53.0% | 49.0% to 55.0% |" in md


def test_deterministic():
    assert render_markdown(model_doc()) == render_markdown(model_doc())
