"""CI gating: --fail-under parsing, the 0/1/2 exit codes, through the library and the real CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _report_fixtures import model_doc, rich_doc
from hypothesis import given, settings
from hypothesis import strategies as st

from vistasim.cli import main
from vistasim.errors import ConfigError
from vistasim.gating import GATE_METRICS, Target, apply_gating, check, parse_fail_under

ROOT = Path(__file__).resolve().parents[1]


def test_parse_the_documented_example():
    assert parse_fail_under("success=0.98,quality=0.9,fidelity=0.999,safety=1.0") == (
        Target("success", 0.98),
        Target("quality", 0.9),
        Target("fidelity", 0.999),
        Target("safety", 1.0),
    )
    assert parse_fail_under(["success=98%", " quality = 0.9 "]) == (Target("success", 0.98), Target("quality", 0.9))
    assert parse_fail_under("success>=0.5") == (Target("success", 0.5),)


@pytest.mark.parametrize(
    "spec, words",
    [
        ("", "empty"),
        ("success", "METRIC=MIN"),
        ("speed=0.9", "unknown metric 'speed'"),
        ("success=high", "not a number"),
        ("success=1.5", "outside 0..1"),
        ("success=-0.1", "outside 0..1"),
        ("success=0.9,success=0.8", "twice"),
        ("quality=nan", "outside 0..1"),
    ],
)
def test_bad_specs_raise_one_line_config_errors(spec, words):
    with pytest.raises(ConfigError) as err:
        parse_fail_under(spec)
    assert words in str(err.value) and "\n" not in str(err.value)


@given(st.dictionaries(st.sampled_from(GATE_METRICS), st.floats(0, 1, allow_nan=False), min_size=1))
@settings(max_examples=80, deadline=None)
def test_parse_round_trip(targets):
    spec = ",".join(f"{k}={v!r}" for k, v in targets.items())
    assert {t.metric: t.minimum for t in parse_fail_under(spec)} == targets


@given(st.floats(0, 1, allow_nan=False), st.floats(0, 1, allow_nan=False))
@settings(max_examples=100, deadline=None)
def test_exit_code_follows_the_comparison(value, minimum):
    r = check({"success": value}, [Target("success", minimum)])
    # a value within 1e-12 below its minimum passes: float noise, not a miss
    assert r.exit_code == (0 if value + 1e-12 >= minimum else 1)
    if value < minimum - 1e-9:
        assert r.exit_code == 1


def test_unmeasured_metric_exits_2_and_wins_over_a_miss():
    r = check({"success": 0.5, "fidelity": None}, [Target("success", 0.9), Target("fidelity", 0.99)])
    assert r.exit_code == 2 and r.unmeasured == ("fidelity",) and r.missed == ("success",)
    assert "fidelity not measured" in r.message and "success 0.5 < target 0.9" in r.message


def test_apply_gating_prints_one_line_with_metric_value_and_target():
    doc = model_doc()
    success = doc["metrics"]["success"]
    buf = io.StringIO()
    assert apply_gating(doc, "success=0.98", stream=buf) == 1
    line = buf.getvalue()
    assert line.count("\n") == 1 and "success" in line and f"{success:.6g}" in line and "0.98" in line
    assert apply_gating(doc, None) == 0
    buf = io.StringIO()
    assert apply_gating(doc, [Target("success", 0.1)], stream=buf, quiet=True) == 0 and buf.getvalue() == ""


def test_data_mode_metrics_gate_when_measured():
    doc = rich_doc()  # fidelity 0.9987, safety 2/3
    assert apply_gating(doc, "fidelity=0.99", stream=io.StringIO()) == 0
    assert apply_gating(doc, "fidelity=0.999", stream=io.StringIO()) == 1
    assert apply_gating(doc, "safety=1.0", stream=io.StringIO()) == 1


# --- through the real CLI ---------------------------------------------------------------------------


def test_simulate_exit_codes(tmp_path, capsys):
    base = ["simulate", "--patients", "300", "--seed", "2", "--quiet", "--no-audit"]
    assert main([*base, "--out", str(tmp_path / "a"), "--fail-under", "success=0.3,quality=0.5"]) == 0
    assert main([*base, "--out", str(tmp_path / "b"), "--fail-under", "success=0.98"]) == 1
    err = capsys.readouterr().err
    assert "success" in err and "< target 0.98" in err
    assert main([*base, "--out", str(tmp_path / "c"), "--fail-under", "safety=1.0"]) == 2
    assert "safety not measured" in capsys.readouterr().err
    # a malformed spec fails before any work: no run folder is written
    assert main([*base, "--out", str(tmp_path / "d"), "--fail-under", "sucess=0.9"]) == 2
    assert "unknown metric 'sucess'" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_report_gates_an_existing_run_in_a_subprocess(tmp_path):
    run = tmp_path / "run"
    assert main(["simulate", "--patients", "300", "--seed", "2", "--quiet", "--no-audit", "--out", str(run)]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "vistasim", "report", str(run), "--quiet", *args],
            capture_output=True,
            text=True,
            env=env,
        )

    ok, missed, unmeasured, bad = (
        cli("--fail-under", "success=0.3"),
        cli("--fail-under", "success=0.99"),
        cli("--fail-under", "fidelity=0.999"),
        cli("--fail-under", "success=2"),
    )
    assert (ok.returncode, missed.returncode, unmeasured.returncode, bad.returncode) == (0, 1, 2, 2)
    assert missed.stdout == "" and len(missed.stderr.strip().splitlines()) == 1
    # a data-mode document gates on fidelity and safety
    doc = json.loads((run / "results.json").read_text())
    doc["metrics"].update(fidelity=0.9995, safety=1.0)
    (run / "results.json").write_text(json.dumps(doc))
    assert cli("--fail-under", "fidelity=0.999,safety=1.0").returncode == 0
    assert cli("--fail-under", "fidelity=0.9999").returncode == 1
