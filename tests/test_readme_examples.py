"""Golden test: every Python block of the README runs, in order, in one namespace (as a reader would)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_python_blocks_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    blocks = python_blocks()
    assert len(blocks) >= 5
    ns: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), ns)
    out = capsys.readouterr().out
    assert re.search(r"Success Rate: \d+\.\d%", out)
    assert out.count("large_scale_batch_") == 20
    assert "Total Patients: " in out
    assert (tmp_path / "migration_analysis_report.txt").read_text().startswith("VistA -> Oracle Health")
    assert set(ns["results"]) == {"staged", "big_bang", "parallel"}
    assert all(0.0 <= v <= 1.0 for v in ns["results"].values())
    assert "synthetic_patient_generator" in sys.modules
