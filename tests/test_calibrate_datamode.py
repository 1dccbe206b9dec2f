"""Calibration recovers known fault rates from a data-mode run generated with them (issue: risk at VA scale)."""

from __future__ import annotations

import json

import yaml

from vistasim.cli import main


def test_calibrate_recovers_rates_from_a_data_mode_run(tmp_path, capsys):
    pop, run = tmp_path / "pop", tmp_path / "run"
    assert main(["generate", "--patients", "400", "--sites", "2", "--seed", "5", "--out", str(pop), "--no-progress"]) == 0
    cfg = tmp_path / "rates.yaml"
    cfg.write_text("migration_settings:\n  network_failure_rate: 0.10\n  system_overload_rate: 0.04\n"
                   "  data_corruption_rate: 0.0\n")
    assert main(["migrate", "--source", str(pop), "--target", f"sqlite:///{tmp_path / 'out.db'}", "--config", str(cfg),
                 "--seed", "5", "--out", str(run), "--quiet"]) == 0
    assert json.loads((run / "results.json").read_text())["mode"] == "data"
    capsys.readouterr()
    out_yaml = tmp_path / "calibrated.yaml"
    assert main(["calibrate", str(run), "--out", str(out_yaml), "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    for name, truth in (("network_failure_rate", 0.10), ("system_overload_rate", 0.04)):
        lo, hi = est[name]["ci95"]
        assert lo <= truth <= hi, (name, est[name])
        assert hi - lo < 0.03  # thousands of attempts: a tight interval, not a vacuous one
    fitted = yaml.safe_load(out_yaml.read_text())["migration_settings"]
    assert abs(fitted["network_failure_rate"] - 0.10) < 0.02
    assert main(["simulate", "--config", str(out_yaml), "--patients", "200", "--out", str(tmp_path / "sim"), "--quiet"]) == 0
