"""Ids of a real export never leave the target in clear text: the run folder carries keyed pseudonyms."""

from __future__ import annotations

import json
import re

import pytest
from _pipeline_fixtures import clean_population, write_zwr

from vistasim.audit import pseudonymise
from vistasim.cli import main
from vistasim.pipeline.privacy import KEY_ENV, Pseudonymiser, is_generated_source

ICN_RE = re.compile(r"\d{10}V\d{6}")
FOLDER_FILES = ("audit.jsonl", "answer_key.jsonl", "reconciliation.json")
CONFIG = """
migration_settings:
  network_failure_rate: 0.05
faults:
  identity_split: 0.1
  identity_merge: 0.1
  code_system_lost: 0.2
{extra}
"""


@pytest.fixture(scope="module")
def population():
    return clean_population(40, seed=21)


@pytest.fixture(scope="module")
def real_source(tmp_path_factory, population):
    """A source without the generator's manifest: treated as a real export."""
    return write_zwr(population, tmp_path_factory.mktemp("real"))


def _migrate(source, tmp_path, name, seed=3, extra="", monkeypatch=None):
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(CONFIG.format(extra=extra))
    run = tmp_path / name
    code = main(
        [
            "migrate",
            "--source",
            str(source),
            "--target",
            f"sqlite:///{tmp_path / (name + '.db')}",
            "--seed",
            str(seed),
            "--out",
            str(run),
            "--config",
            str(cfg),
            "--quiet",
        ]
    )
    assert code == 0
    return run


def _ids(population):
    return {p.patient_id for p in population} | {p.full_icn for p in population if p.icn}


def test_a_real_export_leaves_no_icn_or_record_id_in_the_run_folder(real_source, population, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    run = _migrate(real_source, tmp_path, "r")
    doc = json.loads((run / "results.json").read_text())
    assert doc["data_mode"]["privacy"] == {"pseudonymised": True, "key": "derived"}
    assert doc["data_mode"]["settings"]["pseudonymise"] == "auto"
    ids = _ids(population)
    for f in FOLDER_FILES:
        text = (run / f).read_text()
        assert ICN_RE.search(text) is None, f
        assert not [i for i in ids if f'"{i}"' in text or f"/{i}" in text], f
    # the files still join person by person: every answer-key person is a disposition person
    rec = json.loads((run / "reconciliation.json").read_text())
    persons = {d["person_id"] for d in rec["dispositions"]}
    keyed = [json.loads(line)["person_id"] for line in (run / "answer_key.jsonl").read_text().splitlines()]
    assert len(keyed) > 0 and set(keyed) <= persons
    assert all(p.startswith("p-") and len(p) == 18 for p in persons)
    assert len(persons) == len({p.full_icn if p.icn else p.patient_id for p in population})
    # audit patient ids are the dispositions' patient ids
    audit_ids = {json.loads(line)["patient_id"] for line in (run / "audit.jsonl").read_text().splitlines()}
    assert audit_ids == {d["patient_id"] for d in rec["dispositions"]}
    assert len(audit_ids) == len(population)


def test_same_source_and_seed_same_pseudonyms_another_seed_others(real_source, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    a = (_migrate(real_source, tmp_path, "a", seed=3) / "audit.jsonl").read_bytes()
    b = (_migrate(real_source, tmp_path, "b", seed=3) / "audit.jsonl").read_bytes()
    c = (_migrate(real_source, tmp_path, "c", seed=4) / "audit.jsonl").read_bytes()
    assert a == b
    first = json.loads(a.splitlines()[0])["patient_id"]
    assert first not in c.decode()


def test_a_key_in_the_environment_links_runs_and_is_the_audit_hmac(real_source, population, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "rehearsal-2026")
    a = _migrate(real_source, tmp_path, "ea", seed=3)
    b = _migrate(real_source, tmp_path, "eb", seed=5)
    assert json.loads((a / "results.json").read_text())["data_mode"]["privacy"]["key"] == "env"
    want = pseudonymise(population[0].patient_id, b"rehearsal-2026")
    for run in (a, b):
        ids = {json.loads(line)["patient_id"] for line in (run / "audit.jsonl").read_text().splitlines()}
        assert want in ids


def test_generated_source_keeps_ids_unless_told(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    src = tmp_path / "pop"
    assert (
        main(
            [
                "generate",
                "--patients",
                "30",
                "--sites",
                "1",
                "--seed",
                "2",
                "--format",
                "zwr",
                "--out",
                str(src),
                "--quiet",
            ]
        )
        == 0
    )
    assert is_generated_source(src) and is_generated_source(next(p for p in src.iterdir() if p.is_dir()))
    run = _migrate(src, tmp_path, "g")
    assert json.loads((run / "results.json").read_text())["data_mode"]["privacy"] == {
        "pseudonymised": False,
        "key": None,
    }
    assert ICN_RE.search((run / "reconciliation.json").read_text())
    run = _migrate(src, tmp_path, "ga", extra="data_mode:\n  pseudonymise: always")
    assert ICN_RE.search((run / "reconciliation.json").read_text()) is None


def test_unknown_mode_is_a_one_line_error(real_source, tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("data_mode:\n  pseudonymise: sometimes\n")
    code = main(
        [
            "migrate",
            "--source",
            str(real_source),
            "--out",
            str(tmp_path / "x"),
            "--config",
            str(cfg),
            "--target",
            f"sqlite:///{tmp_path / 'x.db'}",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "pseudonymise" in err and "always" in err
    assert not (tmp_path / "x").exists()


def test_scrub_rewrites_whole_strings_keys_and_embedded_ids():
    p = Pseudonymiser(b"k", ["1234567890V123456", "528:7"])
    got = p.scrub({"1234567890V123456": ["Patient/1234567890V123456-split", "528:7", "528-120.5-45205", 3]})
    icn = pseudonymise("1234567890V123456", b"k")
    assert got == {icn: [f"Patient/{icn}-split", pseudonymise("528:7", b"k"), "528-120.5-45205", 3]}
    # an ICN-shaped id nobody listed is pseudonymised too
    assert p.scrub("person-split-9999999999V999999") == "person-split-" + pseudonymise("9999999999V999999", b"k")
