"""The HTML dashboard: self-contained, deterministic, every chart's data points and table, SSNs masked."""

from __future__ import annotations

import copy
import json
import re
from html.parser import HTMLParser

import pytest
from _report_fixtures import COMPARISON_BANDS, RISK_BANDS, model_doc, rich_doc
from hypothesis import given, settings
from hypothesis import strategies as st

from vistasim.cli import build_parser, main
from vistasim.report import render
from vistasim.report.charts import mask_ssn
from vistasim.report.html import render_html


class _Charts(HTMLParser):
    """Collect, per <svg class="chart">, its id, data-points and the number of .datum elements."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, dict[str, int]] = {}
        self.current: str = ""
        self.tags: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg" and "chart" in (a.get("class") or ""):
            self.current = a["id"]
            kind = a["class"].split("chart-")[-1]
            self.charts[self.current] = {"points": int(a["data-points"]), "datum": 0, "kind": kind}
        elif self.current and "datum" in (a.get("class") or "").split():
            self.charts[self.current]["datum"] += 1
        if tag == "table":
            self.tables += 1
        self.tags.append(tag)

    def handle_endtag(self, tag):
        if tag == "svg":
            self.current = ""


def _charts(html: str) -> _Charts:
    p = _Charts()
    p.feed(html)
    return p


def test_every_chart_draws_one_element_per_data_point_of_the_document():
    doc = model_doc()
    p = _charts(render_html(doc))
    for cid, c in p.charts.items():
        assert c["points"] == c["datum"], cid
    fa = doc["failure_analysis"]
    expected = {
        "overview-chart-1": 2,  # success and quality measured; fidelity and safety are not (model mode)
        "stages-chart-1": 2 * len(doc["stage_performance"]),  # successful + failed per stage
        "stages-chart-2": sum(len(v) for v in doc["substage_performance"].values()),
        "failures-chart-1": sum(1 for v in fa["failure_types"].values() if v),
        "failures-chart-2": len(fa["failure_by_substage"]),
        "failures-chart-3": len(fa["patients_stopped_by_stage"]),
        "quality-chart-1": len(doc["quality_trends"]["distribution"]["counts"]),
        "quality-chart-2": len(doc["quality_trends"]["batch_quality"]),
        "timeline-chart-1": len(doc["batches"]),
    }
    assert {k: v["datum"] for k, v in p.charts.items()} == expected
    assert p.charts["failures-chart-1"]["kind"] == "pareto" and p.charts["timeline-chart-1"]["kind"] == "gantt"
    # every chart is followed by its data table (accessible equivalent)
    assert p.tables >= len(p.charts)


def test_data_values_in_the_svg_are_the_documents_numbers():
    doc = model_doc()
    html = render_html(doc)
    ft = doc["failure_analysis"]["failure_types"]
    for etype, count in ft.items():
        if count:
            assert f'data-label="{etype}" data-value="{count}"' in html
    for b in doc["batches"]:
        assert f'data-label="{b["batch_id"]}"' in html
    gantt = re.findall(r'class="datum"[^>]*data-start="([^"]+)" data-end="([^"]+)"', html)
    assert len(gantt) == len(doc["batches"])
    assert abs(float(gantt[-1][1]) - doc["timeline"]["elapsed_seconds"]) < 1e-3 * doc["timeline"]["elapsed_seconds"]
    # stage segments: successful + failed records
    for stage, perf in doc["stage_performance"].items():
        assert f'data-label="{stage}" data-series="successful" data-value="{perf["records_successful"]}"' in html
        assert f'data-label="{stage}" data-series="failed" data-value="{perf["records_failed"]}"' in html


def test_same_document_gives_same_bytes_and_reruns_of_a_seed_too(tmp_path):
    doc = model_doc()
    assert render_html(doc) == render_html(copy.deepcopy(doc))
    for name in ("a", "b"):
        assert (
            main(
                [
                    "simulate",
                    "--patients",
                    "300",
                    "--seed",
                    "4",
                    "--out",
                    str(tmp_path / name),
                    "--quiet",
                    "--no-audit",
                    "--report",
                    str(tmp_path / f"{name}.html"),
                ]
            )
            == 0
        )
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()


def test_self_contained_no_scripts_no_external_urls():
    html = render_html(rich_doc())
    assert "<script" not in html.lower() and "<link" not in html.lower() and "<img" not in html.lower()
    assert "@import" not in html and "url(" not in html
    urls = set(re.findall(r"https?://[^\s\"'<>]+", html))
    assert urls == {"http://www.w3.org/2000/svg"}  # the SVG namespace is a name, never fetched
    assert "default-src 'none'" in html  # and the page forbids any fetch anyway
    assert " src=" not in html and 'href="http' not in html


def test_optional_sections_render_generically():
    doc = rich_doc()
    html = render_html(doc)
    p = _charts(html)
    for sid in ("data-mode", "risk", "comparison"):
        assert f'<section id="{sid}"' in html
    assert all(c["points"] == c["datum"] for c in p.charts.values())
    bands = {k: c["datum"] for k, c in p.charts.items() if c["kind"] == "bands"}
    risk_points = sum(v for k, v in bands.items() if k.startswith("risk-"))
    comp_points = sum(v for k, v in bands.items() if k.startswith("comparison-"))
    assert risk_points == RISK_BANDS and comp_points == COMPARISON_BANDS
    # gates: one datum per gate, pass/fail written in words as well as colour
    gate_charts = [c for k, c in p.charts.items() if c["kind"] == "gates"]
    assert len(gate_charts) == 1 and gate_charts[0]["datum"] == 3
    assert html.count('data-passed="false"') == 1 and html.count('data-passed="true"') == 2
    assert "FAIL 0.98" in html and ">FAIL<" in html
    # reconciliation chart of the rate column, one bar per domain
    for domain in ("patients", "allergies", "medications"):
        assert f'data-label="{domain}" data-series="match_rate"' in html


def test_absent_optional_sections_are_not_shown():
    html = render_html(model_doc())
    for sid in ("data-mode", "risk", "comparison", "calibration"):
        assert f'<section id="{sid}"' not in html


def test_ssns_are_masked_wherever_they_appear():
    doc = rich_doc()
    doc["recommendations"].append("Patient 123-45-6789 and 987654321 need review; ratio 0.123456789 stays")
    doc["data_mode"]["reconciliation"]["000112222"] = {"source": 1, "target": 1, "match_rate": 1.0}
    doc["data_mode"]["note"] = "ssn 000-11-2222"
    for text in (render_html(doc), render(doc, "md")):
        for ssn in ("123-45-6789", "987654321", "000112222", "000-11-2222"):
            assert ssn not in text
        assert "0.123456789" in text
        assert "***-**-****" in text


@given(st.from_regex(r"[0-9]{9}", fullmatch=True), st.text(alphabet="ab .,:", max_size=5))
@settings(max_examples=60, deadline=None)
def test_mask_ssn_property(digits, pad):
    masked = mask_ssn(f"{pad}{digits}{pad}")
    assert digits not in masked
    dashed = f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"
    assert dashed not in mask_ssn(f"{pad}{dashed}{pad}")
    # longer numbers and decimals are not SSNs
    assert mask_ssn(f"1{digits}") == f"1{digits}" and mask_ssn(f"0.{digits}") == f"0.{digits}"


def test_large_runs_are_grouped_so_charts_stay_readable():
    doc = model_doc(n=2000, batch_size=5)  # 400 batches
    assert len(doc["batches"]) == 400
    p = _charts(render_html(doc))
    assert p.charts["timeline-chart-1"]["datum"] == 60
    assert p.charts["quality-chart-2"]["datum"] == 200
    html = render_html(doc)
    assert "400 batches in 60 groups" in html and "means of 400 batches in 200 groups" in html


def test_no_quality_evidence_is_said_not_plotted():
    doc = model_doc()
    qt = doc["quality_trends"]
    qt["initial_quality"] = qt["final_quality"] = None
    html = render_html(doc)
    assert "No quality evidence" in html and "quality-chart-1" not in html


def test_every_strategy_renders(tmp_path):
    for strategy in ("staged", "big_bang", "parallel"):
        doc = model_doc(n=300, strategy=strategy)
        p = _charts(render_html(doc))
        assert p.charts["timeline-chart-1"]["datum"] == len(doc["batches"]) >= 1
        assert all(c["points"] == c["datum"] for c in p.charts.values())


def _band_leaves(obj) -> int:
    from vistasim.report.sections import as_band

    if as_band(obj) is not None:
        return 1
    return sum(_band_leaves(v) for v in obj.values()) if isinstance(obj, dict) else 0


@pytest.mark.parametrize("command, key", [("risk", "risk"), ("compare", "comparison")])
def test_real_risk_and_compare_documents_render(tmp_path, command, key):
    """Whatever the risk helpers write, every Monte Carlo estimate becomes one band in the dashboard."""
    parser_choices = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    if command not in parser_choices:
        pytest.skip(f"'vistasim {command}' is not in this tree yet")
    run = tmp_path / command
    assert main([command, "--patients", "200", "--replications", "4", "--seed", "1", "--out", str(run), "--quiet"]) == 0
    doc = json.loads((run / "results.json").read_text())
    p = _charts(render_html(doc))
    assert all(c["points"] == c["datum"] for c in p.charts.values())
    prefix = key.replace("_", "-") + "-"
    drawn = sum(c["datum"] for k, c in p.charts.items() if c["kind"] == "bands" and k.startswith(prefix))
    assert drawn == _band_leaves(doc[key]) > 0


def test_real_data_mode_document_renders(tmp_path):
    """Whatever 'vistasim migrate' writes under data_mode is shown, gates included."""
    choices = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    if "migrate" not in choices or "generate" not in choices:
        pytest.skip("'vistasim migrate' or 'vistasim generate' is not in this tree yet")
    assert main(["generate", "--patients", "30", "--seed", "2", "--out", str(tmp_path / "src"), "--no-progress"]) == 0
    assert (
        main(
            [
                "migrate",
                "--source",
                str(tmp_path / "src"),
                "--out",
                str(tmp_path / "run"),
                "--quiet",
                "--target",
                f"sqlite:///{tmp_path / 'out.db'}",
            ]
        )
        == 0
    )
    doc = json.loads((tmp_path / "run" / "results.json").read_text())
    html = render_html(doc)
    p = _charts(html)
    assert '<section id="data-mode"' in html
    assert all(c["points"] == c["datum"] for c in p.charts.values())
    assert any(k.startswith("data-mode-") for k in p.charts)
    gates = (doc["data_mode"].get("reconciliation") or {}).get("safety_gates")
    if isinstance(gates, dict) and gates:
        gate_charts = [c for c in p.charts.values() if c["kind"] == "gates"]
        assert any(c["datum"] == len(gates) for c in gate_charts)
        assert html.count("data-passed=") >= len(gates)
