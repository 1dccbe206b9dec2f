"""Data mode on the generator's own output: with no defects and no faults, everything arrives (fidelity 1.0)."""

from __future__ import annotations

import json

from vistasim.cli import main


def test_clean_generated_population_migrates_completely(tmp_path):
    pop, run = tmp_path / "pop", tmp_path / "run"
    assert main(["generate", "--patients", "600", "--sites", "3", "--seed", "11", "--out", str(pop), "--no-progress"]) == 0
    cfg = tmp_path / "clean.yaml"
    cfg.write_text("migration_settings:\n  network_failure_rate: 0\n  system_overload_rate: 0\n  data_corruption_rate: 0\n")
    assert main(["migrate", "--source", str(pop), "--target", f"sqlite:///{tmp_path / 'ehr.db'}", "--config", str(cfg),
                 "--out", str(run), "--quiet", "--fail-under", "success=1.0,fidelity=1.0,safety=1.0"]) == 0
    doc = json.loads((run / "results.json").read_text())
    assert doc["summary"]["migrated_patients"] == 600 and doc["summary"]["total_errors"] == 0
    rec = doc["data_mode"]["reconciliation"]
    assert rec["fidelity"] == 1.0 and rec["safety"] == 1.0
    assert all(d["found"] == d["expected"] for d in rec["by_domain"].values())
    assert doc["data_mode"]["resources_validated"] == doc["data_mode"]["resources_mapped"] > 600 * 10


def test_data_mode_reports_progress_per_wave(tmp_path):
    from vistasim import MigrationSimulator, generate_patients

    patients = generate_patients(250, seed=4)
    seen = []
    sim = MigrationSimulator(seed=4, mode="data", target=f"sqlite:///{tmp_path / 'p.db'}")
    sim.simulate_migration(patients, batch_size=100, progress=lambda done, total: seen.append((done, total)))
    assert [t for _, t in seen] == [250] * len(seen) and seen[-1][0] == 250
    assert len(seen) >= 3 and all(a < b for (a, _), (b, _) in zip(seen, seen[1:]))
