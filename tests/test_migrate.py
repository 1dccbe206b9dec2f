"""``vistasim migrate`` and the run folder; kill-and-resume at several commit points (a killed subprocess)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _pipeline_fixtures import clean_population, write_zwr

from vistasim.cli import main
from vistasim.results import validate_results
from vistasim.targets import open_target

CONFIG = """
migration_settings:
  network_failure_rate: 0.05
  data_corruption_rate: 0.05
faults:
  identity_split: 0.05
  orders_unknown_queue: 0.1
data_mode:
  timezone: America/New_York
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("src")
    write_zwr(clean_population(60, seed=9), root)
    (root.parent / "cfg.yaml").write_text(CONFIG)
    return root


def test_migrate_writes_a_valid_run_folder(source, tmp_path):
    run = tmp_path / "run"
    code = main(
        [
            "migrate",
            "--source",
            str(source),
            "--target",
            f"sqlite:///{tmp_path / 'o.db'}",
            "--seed",
            "4",
            "--out",
            str(run),
            "--batch-size",
            "25",
            "--config",
            str(source.parent / "cfg.yaml"),
            "--quiet",
        ]
    )
    assert code == 0
    # every file of the run folder gets the umask's permissions, whichever writer made it
    modes = {f.name: f.stat().st_mode & 0o777 for f in run.iterdir()}
    umask = os.umask(0)
    os.umask(umask)
    assert set(modes.values()) == {0o666 & ~umask}, modes
    assert {p.name for p in run.iterdir()} >= {
        "results.json",
        "report.txt",
        "audit.jsonl",
        "reconciliation.json",
        "answer_key.jsonl",
    }
    doc = json.loads((run / "results.json").read_text())
    validate_results(doc)
    assert doc["mode"] == "data" and doc["command"] == "migrate"
    assert 0 < doc["metrics"]["fidelity"] <= 1 and 0 <= doc["metrics"]["safety"] <= 1
    dm = doc["data_mode"]
    c = dm["reconciliation"]["conservation"]
    assert c["adds_up"] and c["records"] == 60
    assert set(doc["failure_analysis"]["failure_types"]) == {
        "network_timeout",
        "system_unavailable",
        "resource_exhaustion",
        "data_corruption",
        "mapping_error",
        "validation_failure",
        "security_violation",
        "hipaa_compliance_error",
    }
    keys = [json.loads(x) for x in (run / "answer_key.jsonl").read_text().splitlines()]
    assert {k["kind"] for k in keys} >= {"transient_outage"}
    assert "DATA MODE (measured)" in (run / "report.txt").read_text()
    text = (run / "audit.jsonl").read_text()
    assert "SMITH" not in text and "ssn" not in text.lower()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--source", "/nonexistent/src"], "not found"),
        (["--target", "mysql://x"], "unknown scheme"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(source, tmp_path, capsys, argv, needle):
    args = [
        "migrate",
        "--source",
        str(source),
        "--target",
        f"sqlite:///{tmp_path / 'o.db'}",
        "--out",
        str(tmp_path / "run"),
        "--quiet",
    ]
    for k, v in zip(argv[::2], argv[1::2]):
        args[args.index(k) + 1] = v
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err


def test_corrupt_zwr_exits_2(source, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(source, bad)
    f = next((bad).glob("*/2+PATIENT.zwr"))
    lines = f.read_text().splitlines()
    lines[5] = lines[5][: len(lines[5]) // 2] + '"unterminated'
    f.write_text("\n".join(lines) + "\n")
    assert (
        main(
            [
                "migrate",
                "--source",
                str(bad),
                "--target",
                f"sqlite:///{tmp_path / 'o.db'}",
                "--out",
                str(tmp_path / "run"),
                "--quiet",
            ]
        )
        == 2
    )
    assert "line" in capsys.readouterr().err


_KILLER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from vistasim.config import load_yaml
    from vistasim.pipeline.run import run_data
    from vistasim.pipeline.settings import settings_from_extra
    src, url, cfg, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    n = {"k": 0}
    def hook(label):
        n["k"] += 1
        if label.startswith(kill_at.split("#")[0]) and n["k"] >= int(kill_at.split("#")[1]):
            os._exit(9)
    s = load_yaml(cfg)
    run_data(Path(src), target_url=url, config=s.config, settings=settings_from_extra(s.extra), strategy="staged",
             batch_size=20, seed=4, run_dir=None, on_commit=hook)
""")


def _run_clean(source, url, cfg):
    from vistasim.config import load_yaml
    from vistasim.pipeline.run import run_data
    from vistasim.pipeline.settings import settings_from_extra

    s = load_yaml(cfg)
    return run_data(
        Path(source),
        target_url=url,
        config=s.config,
        settings=settings_from_extra(s.extra),
        strategy="staged",
        batch_size=20,
        seed=4,
        run_dir=None,
    )


def test_killed_at_commit_points_and_resumed_matches_an_uninterrupted_run(source, tmp_path):
    cfg = source.parent / "cfg.yaml"
    ref_url = f"sqlite:///{tmp_path / 'ref.db'}"
    ref = _run_clean(source, ref_url, cfg)
    t = open_target(ref_url)
    want = t.dump()
    t.close()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    for i, kill_at in enumerate(
        ("after:staged#1", "before:promoted#3", "after:promoted#5", "before:verified#2", "after:verified#1")
    ):
        url = f"sqlite:///{tmp_path / f'k{i}.db'}"
        p = subprocess.run(
            [sys.executable, "-c", _KILLER, str(source), url, str(cfg), kill_at],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.returncode == 9, (kill_at, p.stderr[-500:])
        got = _run_clean(source, url, cfg)
        t = open_target(url)
        assert t.dump() == want, kill_at
        t.close()
        assert (
            got.doc["data_mode"]["reconciliation"]["conservation"]
            == ref.doc["data_mode"]["reconciliation"]["conservation"]
        )


def test_same_seed_same_results_apart_from_provenance(source, tmp_path):
    docs = []
    for name in ("a", "b"):
        code = main(
            [
                "migrate",
                "--source",
                str(source),
                "--target",
                f"sqlite:///{tmp_path / (name + '.db')}",
                "--seed",
                "8",
                "--out",
                str(tmp_path / name),
                "--config",
                str(source.parent / "cfg.yaml"),
                "--quiet",
            ]
        )
        assert code == 0
        doc = json.loads((tmp_path / name / "results.json").read_text())
        doc.pop("provenance")
        doc["data_mode"].pop("target")
        docs.append(doc)
    assert docs[0] == docs[1]
    assert (tmp_path / "a" / "answer_key.jsonl").read_bytes() == (tmp_path / "b" / "answer_key.jsonl").read_bytes()
    assert (tmp_path / "a" / "audit.jsonl").read_bytes() == (tmp_path / "b" / "audit.jsonl").read_bytes()


def test_killed_around_a_backout_and_resumed_matches(source, tmp_path):
    cfg = tmp_path / "stormy.yaml"
    cfg.write_text("migration_settings:\n  network_failure_rate: 0.08\n  retry_attempts: 0\n")
    ref_url = f"sqlite:///{tmp_path / 'ref.db'}"
    ref = _run_clean(source, ref_url, cfg)
    assert any(w["backed_out"] for w in ref.doc["data_mode"]["waves"])
    t = open_target(ref_url)
    want = t.dump()
    t.close()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    for i, kill_at in enumerate(("before:backed_out#1", "after:backed_out#1")):
        url = f"sqlite:///{tmp_path / f'b{i}.db'}"
        p = subprocess.run([sys.executable, "-c", _KILLER, str(source), url, str(cfg), kill_at], env=env,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 9, (kill_at, p.stderr[-500:])
        got = _run_clean(source, url, cfg)
        t = open_target(url)
        assert t.dump() == want, kill_at
        t.close()
        assert [s for s in got.simulator.data_runs[-1].status] == ref.simulator.data_runs[-1].status


def test_run_folder_is_the_same_whatever_the_str_hash_seed(source, tmp_path):
    """Two processes with different PYTHONHASHSEED: set iteration order must never leak into the outputs."""
    cfg = tmp_path / "merge.yaml"
    cfg.write_text(CONFIG.replace("faults:\n", "faults:\n  identity_merge: 0.2\n  coded_to_free_text: 0.2\n"))
    outs = []
    for hash_seed in ("1", "2"):
        run = tmp_path / f"h{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        argv = [sys.executable, "-m", "vistasim", "migrate", "--source", str(source), "--target",
                f"sqlite:///{tmp_path / ('h' + hash_seed + '.db')}", "--seed", "4", "--out", str(run),
                "--config", str(cfg), "--quiet"]
        assert subprocess.run(argv, env=env, capture_output=True, text=True).returncode == 0
        doc = json.loads((run / "results.json").read_text())
        doc.pop("provenance")
        doc["data_mode"].pop("target")
        outs.append((doc, *((run / f).read_bytes() for f in ("reconciliation.json", "answer_key.jsonl", "audit.jsonl"))))
    assert outs[0][0]["data_mode"]["faults_injected"].get("identity_merge", 0) > 0
    assert json.loads(outs[0][1])["differences"] > 0
    assert outs[0] == outs[1]


def test_an_entry_that_does_not_decode_quarantines_its_patient_not_the_run(source, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(source, bad)
    f = next(bad.glob("*/120.5+GMRV VITAL MEASUREMENT.zwr"))
    lines = f.read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if re.match(r"\^GMR\(120\.5,\d+,0\)=", line))
    head, _, value = lines[i].partition("=")
    pieces = value.strip('"').split("^")
    dfn = pieces[1]
    lines[i] = head + '="' + "^".join(["NOT A DATE", *pieces[1:]]) + '"'
    f.write_text("\n".join(lines) + "\n")
    station = f.parent.name
    run = tmp_path / "run"
    argv = ["migrate", "--source", str(bad), "--target", f"sqlite:///{tmp_path / 'o.db'}", "--out", str(run), "--quiet"]
    assert main(argv) == 0
    doc = json.loads((run / "results.json").read_text())
    assert doc["data_mode"]["source"]["unparsed_records"] == 1
    rec = json.loads((run / "reconciliation.json").read_text())
    assert doc["data_mode"]["privacy"]["pseudonymised"]  # a hand-made source: ids are pseudonyms
    stopped = [d for d in rec["dispositions"] if d["reason"].startswith("transform/parse")]
    assert len(stopped) >= 1 and all(d["status"] != "migrated" for d in stopped)
    assert "file #120.5" in stopped[0]["reason"] and "NOT A DATE" not in stopped[0]["reason"]
    c = doc["data_mode"]["reconciliation"]["conservation"]
    assert c["adds_up"] and c["records"] == len(rec["dispositions"])
    assert int(dfn) > 0 and station
