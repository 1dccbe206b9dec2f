"""--report, --fail-under and --metrics on every command that runs a migration (simulate, risk, compare)."""

from __future__ import annotations

import pytest

from vistasim.cli import main


@pytest.mark.parametrize(
    "cmd",
    [
        ["simulate", "--patients", "300"],
        ["risk", "--patients", "300", "--replications", "4"],
        ["compare", "--strategies", "staged,parallel", "--patients", "300", "--replications", "3"],
    ],
)
def test_report_gate_and_metrics(tmp_path, cmd, capsys):
    out = str(tmp_path / "run")
    base = [*cmd, "--out", out, "--quiet"]
    assert main([*base, "--report", str(tmp_path / "r.md"), "--metrics", str(tmp_path / "m.prom")]) == 0
    assert (tmp_path / "r.md").read_text().startswith("# ")
    assert "vistasim_patients_total" in (tmp_path / "m.prom").read_text()
    assert main([*base, "--fail-under", "success=0.3"]) == 0
    assert main([*base, "--fail-under", "success=0.99"]) == 1
    assert main([*base, "--fail-under", "fidelity=0.9"]) == 2  # model mode does not measure fidelity
    err = capsys.readouterr().err
    assert "success" in err and "fidelity not measured" in err


def test_migrate_gates_on_fidelity_and_safety(tmp_path, capsys):
    pop = tmp_path / "pop"
    assert main(["generate", "--patients", "120", "--seed", "2", "--out", str(pop), "--no-progress"]) == 0
    base = ["migrate", "--source", str(pop), "--target", f"sqlite:///{tmp_path / 'm.db'}", "--out", str(tmp_path / "r"),
            "--quiet"]
    assert main([*base, "--report", str(tmp_path / "r.html"), "--metrics", str(tmp_path / "m.prom")]) == 0
    assert "<svg" in (tmp_path / "r.html").read_text()
    assert main([*base, "--fail-under", "fidelity=0.5,safety=0.5"]) == 0
    flaky = tmp_path / "flaky.yaml"
    flaky.write_text("migration_settings:\n  network_failure_rate: 0.5\n  retry_attempts: 0\n")
    assert main([*base, "--config", str(flaky), "--fail-under", "success=0.9"]) == 1
    assert "success" in capsys.readouterr().err


def test_generate_quiet_and_json(tmp_path, capsys):
    import json

    assert main(["generate", "--patients", "40", "--out", str(tmp_path / "q"), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["generate", "--patients", "40", "--out", str(tmp_path / "j"), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest == json.loads((tmp_path / "j" / "manifest.json").read_text())


def test_progress_bars_accept_updates_and_learn_their_total():
    from vistasim.cli._common import progress_bar, task_progress

    with progress_bar(50000, "simulating", True) as update:
        assert update is not None
        for done in range(0, 50001, 10000):
            update(done, 50000)
    with progress_bar(10, "small", True) as update:
        assert update is None  # below the threshold: no bar
    with task_progress("tasks", True) as update:
        assert update is not None
        update(1, 4)
        update(4, 4)
    with task_progress("tasks", False) as update:
        assert update is None
