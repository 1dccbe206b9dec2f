"""The Prometheus / OpenMetrics file: parses with prometheus_client, values equal results.json."""

from __future__ import annotations

import json

import pytest
from _report_fixtures import model_doc, rich_doc

pytest.importorskip("prometheus_client")
from prometheus_client import REGISTRY  # noqa: E402
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from vistasim.cli import main  # noqa: E402
from vistasim.errors import ConfigError  # noqa: E402
from vistasim.metrics import build_registry, parse_labels, render_metrics  # noqa: E402


def _samples(text: str, parser=text_string_to_metric_families):
    out = {}
    for fam in parser(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_values_match_the_results_document():
    doc = model_doc()
    s = _samples(render_metrics(doc))
    summ, fa, t = doc["summary"], doc["failure_analysis"], doc["timeline"]
    assert s[("vistasim_patients_total", ())] == summ["total_patients"]
    assert s[("vistasim_patients_migrated_total", ())] == summ["migrated_patients"]
    assert s[("vistasim_patients_failed_total", ())] == summ["failed_patients"]
    assert s[("vistasim_batches_total", ())] == summ["total_batches"]
    for etype, n in fa["failure_types"].items():
        assert s[("vistasim_failed_attempts_total", (("error_type", etype),))] == n
    assert sum(v for (name, _), v in s.items() if name == "vistasim_failed_attempts_total") == summ["total_errors"]
    for stage, n in fa["failure_by_stage"].items():
        assert s[("vistasim_stage_failed_attempts_total", (("stage", stage),))] == n
    for key, n in fa["failure_by_substage"].items():
        stage, step = key.split("/")
        assert s[("vistasim_step_failed_attempts_total", (("stage", stage), ("step", step)))] == n
    for stage, p in doc["stage_performance"].items():
        assert s[("vistasim_stage_duration_seconds", (("stage", stage),))] == pytest.approx(p["average_duration"])
        assert s[("vistasim_stage_success_ratio", (("stage", stage),))] == pytest.approx(p["success_rate"])
        assert s[("vistasim_stage_records_total", (("outcome", "failed"), ("stage", stage)))] == p["records_failed"]
    assert s[("vistasim_success_ratio", ())] == pytest.approx(doc["metrics"]["success"])
    assert s[("vistasim_quality_score", ())] == pytest.approx(doc["metrics"]["quality"])
    assert s[("vistasim_elapsed_seconds", ())] == pytest.approx(t["elapsed_seconds"])
    assert s[("vistasim_downtime_max_seconds", ())] == pytest.approx(t["downtime_max_seconds"])
    assert s[("vistasim_downtime_mean_seconds", ())] == pytest.approx(t["downtime_mean_seconds"])
    assert s[("vistasim_peak_concurrency_patients", ())] == t["peak_concurrency"]
    info = [k for k in s if k[0] == "vistasim_run_info"]
    assert info == [
        (
            "vistasim_run_info",
            (("command", "simulate"), ("mode", "model"), ("seed", str(doc["seed"])), ("strategy", "staged")),
        )
    ]


def test_unmeasured_metrics_are_absent_not_zero():
    s = _samples(render_metrics(model_doc()))
    assert not any(name in ("vistasim_fidelity_ratio", "vistasim_safety_ratio") for name, _ in s)
    s = _samples(render_metrics(rich_doc()))
    assert s[("vistasim_fidelity_ratio", ())] == pytest.approx(0.9987)
    assert s[("vistasim_safety_ratio", ())] == pytest.approx(2 / 3)


def test_openmetrics_format_parses_and_agrees():
    doc = model_doc()
    om = render_metrics(doc, "openmetrics")
    assert om.endswith("# EOF\n")
    a, b = _samples(om, om_parse), _samples(render_metrics(doc))
    assert a == b


def test_deterministic_private_registry_and_no_created_timestamps():
    doc = model_doc()
    before = {m.name for m in REGISTRY.collect()}
    assert render_metrics(doc) == render_metrics(doc)
    assert "_created" not in render_metrics(doc) and "_created" not in render_metrics(doc, "openmetrics")
    assert {m.name for m in REGISTRY.collect()} == before  # the global registry is never touched
    assert build_registry(doc) is not REGISTRY


def test_constant_labels_and_their_validation():
    s = _samples(render_metrics(model_doc(), const_labels={"env": "ci"}))
    assert all(dict(labels).get("env") == "ci" for _, labels in s)
    with pytest.raises(ConfigError):
        parse_labels(["env"])
    with pytest.raises(ConfigError):
        parse_labels(["stage=x"])  # would clash with a metric's own label
    with pytest.raises(ConfigError):
        render_metrics(model_doc(), "xml")


def test_simulate_and_report_write_the_file(tmp_path):
    prom = tmp_path / "m.prom"
    assert (
        main(
            [
                "simulate",
                "--patients",
                "300",
                "--seed",
                "1",
                "--quiet",
                "--no-audit",
                "--out",
                str(tmp_path / "r"),
                "--metrics",
                str(prom),
                "--metrics-label",
                "env=test",
            ]
        )
        == 0
    )
    doc = json.loads((tmp_path / "r" / "results.json").read_text())
    s = _samples(prom.read_text())
    assert s[("vistasim_patients_migrated_total", (("env", "test"),))] == doc["summary"]["migrated_patients"]
    om = tmp_path / "m.om"
    assert main(["report", str(tmp_path / "r"), "--quiet", "--metrics", str(om)]) == 0
    assert om.read_text().endswith("# EOF\n")
    assert _samples(om.read_text(), om_parse)[("vistasim_patients_total", ())] == 300
    # an unwritable metrics path fails before the run (exit 2, nothing written)
    assert (
        main(
            ["simulate", "--patients", "50", "--quiet", "--out", str(tmp_path / "x"), "--metrics", "/proc/nope/m.prom"]
        )
        == 2
    )
    assert not (tmp_path / "x").exists()
