"""Calibration recovers known model-mode rates from a simulated run's audit trail, within its intervals."""

from __future__ import annotations

import json

import pytest

from vistasim.cli import main
from vistasim.config import config_from_mapping, load_yaml
from vistasim.errors import InputError
from vistasim.model import STAGES, SUBSTAGES
from vistasim.risk.calibrate import calibrate_runs
from vistasim.runner import population_ids, run_model

TRUTH = {
    "success_rates": {"extract": 0.97, "transform": 0.96, "validate": 0.95, "load": 0.93},
    "substage_success_rates": {"transform": {"map": 0.90}, "load": {"production": 0.85}},
    "network_failure_rate": 0.04,
    "system_overload_rate": 0.02,
    "data_corruption_rate": 0.03,
    "max_concurrent_patients": 20,
    "retry_delay_seconds": 1.5,
    "retry_attempts": 2,
    "stage_base_duration": {"extract": 4.0, "transform": 2.0, "validate": 1.0, "load": 3.0},
    "duration_variance": 0.2,
}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    cfg, _ = config_from_mapping(TRUTH)
    run = tmp_path_factory.mktemp("cal") / "run"
    run_model(population_ids(12000), config=cfg, strategy="staged", batch_size=500, seed=17, run_dir=run)
    fit_cfg, cal = calibrate_runs([run])
    return cfg, fit_cfg, cal, run


def _inside(truth, est, slack=0.0):
    lo, hi = est["ci95"]
    width = hi - lo
    return lo - slack * width <= truth <= hi + slack * width


def test_recovers_step_rates_within_intervals(fitted):
    truth, _, cal, _ = fitted
    misses = 0
    for st in STAGES:
        misses += not _inside(truth.stage_rate(st), cal["stage_success_rates"][st])
        for sub in SUBSTAGES[st]:
            misses += not _inside(truth.substage_rate(st, sub), cal["substage_success_rates"][st][sub])
            assert _inside(truth.substage_rate(st, sub), cal["substage_success_rates"][st][sub], slack=0.5)
    assert misses <= 2  # 16 95 % intervals: about 0.8 misses expected


def test_recovers_fault_rates_and_corruption(fitted):
    truth, _, cal, _ = fitted
    assert _inside(truth.network_failure_rate, cal["network_failure_rate"])
    assert _inside(truth.system_overload_rate, cal["system_overload_rate"], slack=0.25)
    assert _inside(truth.data_corruption_rate, cal["data_corruption_rate"], slack=0.5)
    assert cal["network_failure_rate"]["measured_on"] == ["transform", "validate", "load"]  # no network_timeout weight there


def test_recovers_durations_retries_and_concurrency(fitted):
    truth, fit_cfg, cal, _ = fitted
    for st in STAGES:
        assert _inside(truth.base_duration(st), cal["stage_base_duration"][st], slack=0.5), st
    assert fit_cfg.duration_variance == pytest.approx(0.2, abs=0.03)
    assert fit_cfg.retry_delay_seconds == pytest.approx(1.5, abs=1e-3)
    assert fit_cfg.retry_attempts == 2 and cal["retry_attempts"]["exact"]
    assert fit_cfg.max_concurrent_patients == 20


def test_recovers_error_type_weights(fitted):
    truth, fit_cfg, _, _ = fitted
    for st in STAGES:
        want = truth.error_weights(st)
        got = fit_cfg.error_weights(st)
        total = sum(want.values())
        for e, w in want.items():
            assert got.get(e, 0.0) == pytest.approx(w / total, abs=0.05), (st, e)


def test_cli_writes_loadable_yaml(fitted, tmp_path, capsys):
    _, fit_cfg, _, run = fitted
    out = tmp_path / "fit.yaml"
    assert main(["calibrate", str(run), "--out", str(out), "--json"]) == 0
    cal = json.loads(capsys.readouterr().out)
    assert cal["runs"] == 1
    text = out.read_text()
    assert "95% CI" in text
    loaded = load_yaml(out).config
    assert loaded.to_dict() == fit_cfg.to_dict()
    assert main(["simulate", "--config", str(out), "--patients", "50", "--out", str(tmp_path / "s"), "--quiet"]) == 0


def test_missing_audit_is_an_input_error(tmp_path, fitted):
    _, _, _, run = fitted
    (tmp_path / "results.json").write_text((run / "results.json").read_text())
    with pytest.raises(InputError, match="audit.jsonl"):
        calibrate_runs([tmp_path])
    with pytest.raises(InputError):
        calibrate_runs([])
