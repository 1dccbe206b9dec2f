"""Monte Carlo over plans: determinism, interval behaviour, go/no-go, persons once, CRN, and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from _risk_fixtures import perfect_config, perfect_settings, two_wave_doc

from vistasim.cli import main
from vistasim.errors import ConfigError
from vistasim.results import dumps, provenance, validate_results
from vistasim.risk.compare import compare_strategies
from vistasim.risk.montecarlo import METRICS, risk_section, simulate_risk
from vistasim.risk.plan import plan_from_document, single_site_plan
from vistasim.risk.sections import model_sections, results_document
from vistasim.risk.stats import interval, t975, wilson
from vistasim.risk.targets import parse_target
from vistasim.simulator import MigrationSimulator


def _doc(plan, run, targets=()):
    sec = risk_section(run, list(targets), "patients")
    ms = model_sections(plan, run.rep0, run.wave_start[0].tolist())
    return results_document("risk", plan, run.seed, ms, {"risk": sec}, provenance([], 0.0))


def _walk_stats(node):
    if isinstance(node, dict):
        if "ci95" in node and "mean" in node:
            yield node
        for v in node.values():
            yield from _walk_stats(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk_stats(v)


def test_stats_helpers():
    assert t975(1) == pytest.approx(12.706)
    assert t975(60) == pytest.approx(2.000, abs=2e-3)
    assert t975(10_000) == pytest.approx(1.960, abs=1e-3)
    p, ci = wilson(0, 40)
    assert p == 0 and ci[0] == 0 and ci[1] == pytest.approx(0.0876, abs=1e-3)
    assert wilson(40, 40, point=True) == (1.0, [1.0, 1.0])
    s = interval([1.0, 2.0, 3.0, 4.0])
    assert s["mean"] == 2.5 and s["ci95"][1] - 2.5 == pytest.approx(3.182 * math.sqrt(5 / 3) / 2, rel=1e-3)
    assert interval([7.0])["ci95"] is None


def test_targets_parse():
    t = parse_target("downtime_hours<=48")
    assert t.metric == "downtime_max_hours" and t.met(48.0) and not t.met(48.1)
    for bad in ("success=0.9", "speed>=1", "success>=abc", ""):
        with pytest.raises(ConfigError):
            parse_target(bad)


def test_same_seed_same_bytes_and_valid_document():
    plan = single_site_plan(300, batch_size=50)
    a = _doc(plan, simulate_risk(plan, 6, 11), [parse_target("success>=0.5")])
    b = _doc(plan, simulate_risk(plan, 6, 11), [parse_target("success>=0.5")])
    a.pop("provenance"), b.pop("provenance")
    assert dumps(a) == dumps(b)
    c = _doc(plan, simulate_risk(plan, 6, 12))
    assert c["risk"]["overall"]["success_rate"] != a["risk"]["overall"]["success_rate"]
    validate_results({**a, "provenance": provenance([], 0.0)})
    assert a["risk"]["overall"]["success_rate"]["mean"] == pytest.approx(0.51, abs=0.1)  # the spec's defaults


def test_replication_zero_fills_the_model_sections():
    plan = single_site_plan(400, batch_size=100)
    run = simulate_risk(plan, 3, 5)
    doc = _doc(plan, run)
    assert doc["summary"]["overall_success_rate"] == run.overall["success_rate"][0]
    assert doc["summary"]["total_errors"] == run.overall["errors"][0]
    assert doc["summary"]["total_batches"] == 4
    assert doc["timeline"]["elapsed_seconds"] == pytest.approx(run.overall["elapsed_hours"][0] * 3600)
    fa = doc["failure_analysis"]
    assert sum(fa["patients_stopped_by_stage"].values()) == doc["summary"]["failed_patients"]
    assert sum(fa["failure_types"].values()) == doc["summary"]["total_errors"]


def test_ci_shrinks_as_one_over_sqrt_r():
    plan = single_site_plan(150, batch_size=50)
    small = interval(simulate_risk(plan, 16, 3).overall["success_rate"])
    big = interval(simulate_risk(plan, 256, 3).overall["success_rate"])
    ratio = (small["ci95"][1] - small["ci95"][0]) / (big["ci95"][1] - big["ci95"][0])
    expected = math.sqrt(256 / 16) * t975(15) / t975(255)  # 4.33
    # the sd estimated from 16 replications has a relative error of about 1/sqrt(2*15) = 18 %; 3 sigma
    assert abs(ratio / expected - 1) < 3 * 0.18 + 0.05
    # and the band of single outcomes does not shrink with R
    assert (small["p95"] - small["p05"]) / (big["p95"] - big["p05"]) == pytest.approx(1.0, abs=0.6)


def test_deterministic_model_gives_point_intervals():
    plan = plan_from_document(two_wave_doc(perfect_settings()))
    run = simulate_risk(plan, 8, 1)
    sec = risk_section(run, [parse_target("success>=1"), parse_target("downtime_hours<=1000")], "plan")
    stats = list(_walk_stats(sec))
    assert len(stats) > 40
    for s in stats:
        assert s["ci95"][0] == s["ci95"][1] == s["mean"] == s["p05"] == s["p95"]
    assert sec["overall"]["success_rate"]["mean"] == 1.0
    for t in sec["targets"]:
        assert t["probability"] == 1.0 and t["ci95"] == [1.0, 1.0]
    assert sec["interval_method"].startswith("point")


def test_perfect_timing_matches_the_simulator():
    # nothing random: elapsed and downtime must equal MigrationSimulator's for each strategy
    cfg = perfect_config()
    for strategy in ("staged", "big_bang", "parallel"):
        plan = single_site_plan(230, config=cfg, strategy=strategy, batch_size=40)
        run = simulate_risk(plan, 1, 0)
        sim = MigrationSimulator(cfg.copy(), seed=0, keep_audit=False)
        res = sim.simulate_migration([f"500:{i}" for i in range(1, 231)], batch_size=40, migration_strategy=strategy)
        elapsed = (res.completed_at - res.started_at).total_seconds()
        assert run.overall["elapsed_hours"][0] * 3600 == pytest.approx(elapsed, abs=2e-6), (
            strategy
        )  # datetimes hold microseconds
        assert run.overall["downtime_max_hours"][0] * 3600 == pytest.approx(res.downtime_max_seconds, rel=1e-9)
        assert run.overall["downtime_mean_hours"][0] * 3600 == pytest.approx(res.downtime_mean_seconds, rel=1e-9)


def test_persons_are_created_once_and_merges_counted():
    plan = plan_from_document(two_wave_doc(perfect_settings()))
    run = simulate_risk(plan, 2, 4)
    merged = run.overall["records_merged"][0]
    created = run.overall["persons_created"][0]
    assert created + merged == 900  # everything migrated: each record is a new person or a merge
    assert run.waves[0]["records_merged"][0] == 0  # the first wave has nobody to merge into
    # 30 % of the second wave's 400 records belong to someone seen in wave 1
    assert abs(merged - 120) < 4.5 * math.sqrt(400 * 0.3 * 0.7)
    assert run.overall["records_merged"][1] == merged  # the population is the same in every replication


def test_merge_falls_back_to_create_when_first_wave_abandoned():
    # wave 1 is far below its bar and abandoned: wave 2's shared records create their persons
    settings = perfect_settings(success_rates={"extract": 0.3})
    doc = two_wave_doc(settings)
    doc["plan"]["waves"][0]["go_no_go"] = {"min_success": 0.9, "rollback_hours": 10, "max_reruns": 1}
    plan = plan_from_document(doc)
    run = simulate_risk(plan, 1, 2)
    assert run.waves[0]["rollbacks"][0] == 2 and run.waves[0]["success_rate"][0] == 0.0
    assert run.waves[0]["elapsed_hours"][0] > 20.0  # two 10-hour rollbacks
    assert run.overall["records_merged"][0] == 0
    assert run.waves[1]["persons_created"][0] == pytest.approx(run.waves[1]["success_rate"][0] * 400)


def test_go_no_go_rollback_then_accept():
    # a bar near the mean: some replications roll back once and are then accepted or abandoned
    doc = two_wave_doc(None, shared_person_fraction=0.0)
    doc["plan"]["defaults"]["go_no_go"] = {"min_success": 0.5, "rollback_hours": 5, "max_reruns": 1}
    plan = plan_from_document(doc)
    run = simulate_risk(plan, 40, 9)
    rb = run.overall["rollbacks"]
    assert rb.min() >= 0 and rb.max() <= 4 and 0 < rb.mean() < 4
    for k in range(2):
        w = run.waves[k]
        # a wave rolled back twice was abandoned (0 migrated); otherwise success is at least the bar
        abandoned = w["rollbacks"] == 2
        assert np.all(w["success_rate"][abandoned] == 0)
        assert np.all(w["success_rate"][~abandoned] >= 0.5)
        assert np.all(w["elapsed_hours"][w["rollbacks"] > 0] > 5.0)


def test_common_random_numbers_reduce_difference_variance():
    plan = single_site_plan(400, batch_size=100)
    crn, _ = compare_strategies(plan, ["staged", "big_bang"], 30, 3)
    ind, sec = compare_strategies(plan, ["staged", "big_bang"], 30, 3, common_random_numbers=False)
    d_crn = crn["big_bang"].overall["success_rate"] - crn["staged"].overall["success_rate"]
    d_ind = ind["big_bang"].overall["success_rate"] - ind["staged"].overall["success_rate"]
    assert d_crn.var(ddof=1) < 0.5 * d_ind.var(ddof=1)
    # big bang quadruples overload: fewer migrate, on average
    assert d_crn.mean() < 0
    assert sec["common_random_numbers"] is False and sec["differences"][0]["strategy"] == "big_bang"


def test_risk_cli_writes_run_folder_and_json(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            "risk",
            "--patients",
            "200",
            "--batch-size",
            "50",
            "--replications",
            "5",
            "--seed",
            "3",
            "--out",
            str(out),
            "--json",
            "--target",
            "success>=0.4",
            "--target",
            "downtime_hours<=1",
        ]
    )
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((out / "results.json").read_text())
    printed.pop("provenance"), saved.pop("provenance")
    assert printed == saved
    assert saved["command"] == "risk" and saved["risk"]["replications"] == 5
    assert [t["target"] for t in saved["risk"]["targets"]] == ["success>=0.4", "downtime_hours<=1"]
    assert (out / "risk.txt").read_text().startswith("vistasim risk")
    # the gate's metrics are the mean over replications, not replication 0's (which the summary shows)
    overall = saved["risk"]["overall"]
    assert saved["metrics"]["success"] == pytest.approx(overall["success_rate"]["mean"], abs=1e-12)
    assert saved["metrics"]["quality"] == pytest.approx(overall["quality"]["mean"], abs=1e-12)
    assert saved["metrics"]["success"] != saved["summary"]["overall_success_rate"]
    assert main(["risk", "--patients", "10", "--target", "speed>=1", "--out", str(out)]) == 2


def test_compare_cli(tmp_path, capsys):
    rc = main(
        [
            "compare",
            "--strategies",
            "staged,parallel",
            "--patients",
            "150",
            "--replications",
            "4",
            "--out",
            str(tmp_path / "c"),
        ]
    )
    assert rc == 0
    doc = json.loads((tmp_path / "c" / "results.json").read_text())
    assert doc["comparison"]["strategies"] == ["staged", "parallel"]
    d = doc["comparison"]["differences"][0]["metrics"]
    assert set(d) == set(METRICS)
    assert d["downtime_max_hours"]["mean"] < 0  # parallel has no downtime
    assert doc["metrics"]["success"] == pytest.approx(
        doc["comparison"]["per_strategy"]["staged"]["success_rate"]["mean"], abs=1e-12
    )
    assert main(["compare", "--strategies", "staged", "--patients", "10"]) == 2


def test_risk_and_compare_sections_are_strict_in_the_schema(tmp_path):
    """A stray key in the risk or comparison section fails the results schema (additionalProperties false)."""
    import copy
    import json

    import jsonschema
    import pytest

    from vistasim.cli import main

    assert (
        main(
            [
                "risk",
                "--patients",
                "200",
                "--replications",
                "3",
                "--out",
                str(tmp_path / "r"),
                "--quiet",
                "--target",
                "success>=0.1",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "compare",
                "--strategies",
                "staged,parallel",
                "--patients",
                "200",
                "--replications",
                "3",
                "--out",
                str(tmp_path / "c"),
                "--quiet",
            ]
        )
        == 0
    )
    risk = json.loads((tmp_path / "r" / "results.json").read_text())
    comp = json.loads((tmp_path / "c" / "results.json").read_text())
    validate_results(risk)
    validate_results(comp)
    for doc, mutate in (
        (risk, lambda d: d["risk"]["overall"]["success_rate"].__setitem__("median", 0.5)),
        (risk, lambda d: d["risk"]["targets"][0].__setitem__("probability", 1.5)),
        (comp, lambda d: d["comparison"].__setitem__("winner", "staged")),
        (
            comp,
            lambda d: d["comparison"]["per_strategy"].__setitem__("yolo", d["comparison"]["per_strategy"]["staged"]),
        ),
    ):
        bad = copy.deepcopy(doc)
        mutate(bad)
        with pytest.raises(jsonschema.ValidationError):
            validate_results(bad)


def test_progress_reports_every_task_and_changes_nothing():
    from vistasim.risk.montecarlo import risk_section, simulate_risk
    from vistasim.risk.plan import single_site_plan

    plan = single_site_plan(500)
    seen = []
    with_bar = simulate_risk(plan, 12, 3, progress=lambda done, total: seen.append((done, total)))
    without = simulate_risk(plan, 12, 3)
    assert [d for d, _ in seen] == list(range(1, len(seen) + 1)) and seen[-1][0] == seen[-1][1] == 12
    assert dumps(risk_section(with_bar, [], "patients")) == dumps(risk_section(without, [], "patients"))
