"""`vistasim report` and the results schema: formats, --out inference, one-line errors, --help examples."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from _report_fixtures import model_doc, rich_doc

from vistasim.cli import build_parser, main
from vistasim.results import validate_results


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    assert main(["simulate", "--patients", "400", "--seed", "8", "--quiet", "--no-audit", "--out", str(run)]) == 0
    return run


def test_formats_to_stdout_read_only_results_json(run, capsys, tmp_path):
    only = tmp_path / "only"
    only.mkdir()
    (only / "results.json").write_bytes((run / "results.json").read_bytes())  # nothing else in the folder
    assert main(["report", str(only)]) == 0
    assert capsys.readouterr().out == (run / "report.txt").read_text()
    assert main(["report", str(only), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads((run / "results.json").read_text())
    assert main(["report", str(only / "results.json"), "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("# VistA -> Oracle Health migration")
    assert main(["report", str(only), "--format", "html"]) == 0
    assert capsys.readouterr().out.startswith("<!DOCTYPE html>")


def test_out_infers_the_format_and_matches_simulate_report(run, tmp_path):
    for name, start in (
        ("r.html", "<!DOCTYPE html>"),
        ("r.md", "# VistA"),
        ("r.txt", "VistA -> Oracle"),
        ("r.json", "{"),
    ):
        assert main(["report", str(run), "--out", str(tmp_path / name)]) == 0
        assert (tmp_path / name).read_text().startswith(start)
    # simulate --report and report --out give the same dashboard for the same run
    assert (
        main(
            [
                "simulate",
                "--patients",
                "400",
                "--seed",
                "8",
                "--quiet",
                "--no-audit",
                "--out",
                str(tmp_path / "again"),
                "--report",
                str(tmp_path / "sim.html"),
            ]
        )
        == 0
    )
    assert (tmp_path / "sim.html").read_bytes() == (tmp_path / "r.html").read_bytes()


def test_errors_are_one_line_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and err.count("\n") == 1
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{not json")
    assert main(["report", str(tmp_path / "bad")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    doc = model_doc()
    doc["summary"]["total_patients"] = -1
    (tmp_path / "bad" / "results.json").write_text(json.dumps(doc))
    assert main(["report", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "summary/total_patients" in err and err.count("\n") == 1
    assert main(["report", str(tmp_path / "bad"), "--no-validate", "--quiet"]) == 0


def test_every_command_i_own_has_examples_in_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in ("report", "simulate"):
        text = sub.choices[name].format_help()
        assert "examples:" in text and f"vistasim {name}" in text
        assert "--fail-under" in text and "--metrics" in text


def test_simulate_results_follow_the_schema_and_mutations_fail_it(run):
    doc = json.loads((run / "results.json").read_text())
    validate_results(doc)
    rich = rich_doc()
    for section in ("data_mode", "risk", "comparison"):
        rich.pop(section, None)  # hand-made sections are for rendering; the commands' own tests validate real ones
    validate_results(rich)
    mutations = [
        lambda d: d.__setitem__("surprise", 1),  # additionalProperties false
        lambda d: d["summary"].__setitem__("overall_success_rate", 1.2),
        lambda d: d["failure_analysis"]["failure_types"].__setitem__("gremlins", 3),
        lambda d: d["batches"][0].__setitem__("started_at", "yesterday"),
        lambda d: d["timeline"].__setitem__("completed_at", "2026-01-01 01:00"),
        lambda d: d["metrics"].__setitem__("fidelity", "high"),
        lambda d: d["metrics"].pop("safety"),
        lambda d: d.__setitem__("schema_version", "2.0"),
        lambda d: d["recommendations"].append(""),
        lambda d: d["batches"][0].__setitem__("batch_id", ""),
    ]
    for _i, mutate in enumerate(mutations):
        bad = copy.deepcopy(doc)
        mutate(bad)
        with pytest.raises(jsonschema.ValidationError):
            validate_results(bad)
