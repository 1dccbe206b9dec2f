"""`vistasim simulate` and the spec's script: run folder, precedence, determinism, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vistasim.cli import main
from vistasim.results import validate_results

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "vistasim", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )


def test_no_arguments_runs_the_main_job(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([]) == 0
    run = tmp_path / "runs" / "latest"
    doc = json.loads((run / "results.json").read_text())
    validate_results(doc)
    assert doc["summary"]["total_patients"] == 1000 and doc["batch_size"] == 100 and doc["strategy"] == "staged"
    assert (run / "report.txt").read_text().startswith("VistA -> Oracle Health")
    assert sum(1 for _ in open(run / "audit.jsonl")) == doc["audit_rows"]
    assert "migrated" in capsys.readouterr().out


def test_json_output_and_schema(tmp_path, capsys):
    assert main(["simulate", "--patients", "300", "--seed", "3", "--out", str(tmp_path / "r"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    validate_results(doc)
    assert doc["seed"] == 3 and doc["summary"]["total_patients"] == 300


def test_rerun_is_byte_identical_except_provenance(tmp_path):
    for name in ("a", "b"):
        assert main(["simulate", "--patients", "400", "--seed", "9", "--out", str(tmp_path / name), "--quiet"]) == 0
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    a.pop("provenance"), b.pop("provenance")
    assert a == b
    for f in ("audit.jsonl", "report.txt"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def _yaml(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return str(p)


def test_precedence_cli_over_yaml_over_default(tmp_path, capsys):
    cfg = _yaml(
        tmp_path,
        "batch_size: 50\nnum_records: 200\nmigration_strategy: parallel\n"
        "migration_settings:\n  max_concurrent_patients: 4\n",
    )
    main(["simulate", "--config", cfg, "--out", str(tmp_path / "y"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert (doc["batch_size"], doc["summary"]["total_patients"], doc["strategy"]) == (50, 200, "parallel")
    assert doc["config"]["max_concurrent_patients"] == 4
    main(
        [
            "simulate",
            "--config",
            cfg,
            "--batch-size",
            "20",
            "--strategy",
            "staged",
            "--out",
            str(tmp_path / "c"),
            "--json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert (doc["batch_size"], doc["summary"]["total_patients"], doc["strategy"]) == (20, 200, "staged")
    main(["simulate", "--out", str(tmp_path / "d"), "--json", "--patients", "10"])
    doc = json.loads(capsys.readouterr().out)
    assert (doc["batch_size"], doc["strategy"]) == (100, "staged")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["simulate", "--patients", "0"], "--patients"),
        (["simulate", "--strategy", "yolo"], "invalid choice"),
        (["simulate", "--config", "missing.yaml"], "missing.yaml"),
        (["simulate", "--config", "bad.yaml"], "not valid YAML"),
        (["simulate", "--config", "range.yaml"], "network_failure_rate"),
        (["simulate", "--out", "/proc/vistasim-cannot-write"], "cannot be created"),
        (["simulate", "--report", "/proc/x/r.txt"], "report"),
    ],
)
def test_bad_input_one_line_exit_2_no_traceback(tmp_path, args, needle):
    (tmp_path / "bad.yaml").write_text("migration_settings: {a: [1,\n")
    (tmp_path / "range.yaml").write_text("migration_settings:\n  network_failure_rate: 2\n")
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert needle in r.stderr
    assert not (tmp_path / "runs").exists()  # nothing written


def test_existing_results_survive_a_failed_run(tmp_path):
    out = tmp_path / "r"
    assert main(["simulate", "--patients", "50", "--out", str(out), "--quiet"]) == 0
    before = (out / "results.json").read_bytes()
    (tmp_path / "bad.yaml").write_text("migration_settings:\n  retry_attempts: -3\n")
    assert main(["simulate", "--config", str(tmp_path / "bad.yaml"), "--out", str(out), "--quiet"]) == 2
    assert (out / "results.json").read_bytes() == before


def test_spec_script_basic(tmp_path):
    r = subprocess.run(
        [sys.executable, str(ROOT / "synthetic_patient_generator.py"), "--num-records", "500", "--simulate-migration"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "output" / "run" / "results.json").read_text())
    assert doc["summary"]["total_patients"] == 500
    assert sum(1 for _ in open(tmp_path / "output" / "patients.jsonl")) == 500


def test_spec_script_custom_batches_and_yaml(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "synthetic_patient_generator.py"),
            "--num-records",
            "1000",
            "--simulate-migration",
            "--batch-size",
            "50",
            "--migration-strategy",
            "staged",
            "--migration-report",
            "detailed_report.txt",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "Total batches:          20" in (tmp_path / "detailed_report.txt").read_text()
    (tmp_path / "migration_config.yaml").write_text(
        "migration_settings:\n  success_rates: {extract: 0.98, transform: 0.95, validate: 0.92, load: 0.90}\n"
        "simulate_migration: true\nbatch_size: 100\nnum_records: 300\nmigration_strategy: staged\n"
        "migration_report: migration_report.txt\n"
    )
    r = subprocess.run(
        [sys.executable, str(ROOT / "synthetic_patient_generator.py"), "--config", "migration_config.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "Total patients:         300" in (tmp_path / "migration_report.txt").read_text()
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "synthetic_patient_generator.py"),
            "--config",
            "migration_config.yaml",
            "--migration-strategy",
            "nope",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 2 and "unknown strategy" in r.stderr and "Traceback" not in r.stderr
