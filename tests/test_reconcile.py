"""Reconciliation is independent of the mapper, attributes losses, and builds the terminology worklist."""

from __future__ import annotations

from collections import Counter

import pytest
from _pipeline_fixtures import ORDER_CODE, clean_population, quiet_config, run

from vistasim.generate import generate_population
from vistasim.pipeline import stages
from vistasim.pipeline.reconcile import attribute_losses, expected_person, reconcile, terminology_gaps


def test_a_mapper_bug_shows_up_as_changed_fields(monkeypatch):
    recs = clean_population(60, seed=8)
    real = stages.map_person

    def buggy(records, tz="UTC"):  # drops the SNOMED coding of every problem, keeps it valid FHIR
        b = real(records, tz=tz)
        for e in b["entry"]:
            r = e["resource"]
            if r["resourceType"] == "Condition":
                r["code"]["coding"] = [c for c in r["code"]["coding"] if "snomed" not in c["system"]]
        return b

    monkeypatch.setattr(stages, "map_person", buggy)
    sim = run(recs, quiet_config())
    dr = sim.data_runs[-1]
    rec = reconcile(recs, sim.target, status=dict(zip(dr.ids, dr.status)))
    with_snomed = sum(1 for r in recs for p in r.problems if p.snomed)
    changed = [d for d in rec.diffs if d.domain == "problems"]
    assert len(changed) == with_snomed > 0 and all(d.fields == ["snomed"] for d in changed)
    assert rec.by_domain["problems"]["fields_intact"] == rec.by_domain["problems"]["fields"] - with_snomed
    assert rec.fidelity_by_domain["vitals"] == 1.0


def test_times_carry_the_configured_zone():
    recs = clean_population(10, seed=3)
    exp = expected_person([r for r in recs if r.vitals][:1], "America/New_York")
    times = [f["effective"] for f in exp["vitals"].values()]
    assert times and all(t[-6:] in ("-05:00", "-04:00") for t in times)
    utc = expected_person([r for r in recs if r.vitals][:1], "UTC")
    assert all(f["effective"].endswith("Z") for f in utc["vitals"].values())


@pytest.fixture(scope="module")
def defective():
    pop = generate_population(200, seed=6, sites=2, defects=0.3)
    for p in pop.patients:
        for o in p.orders:
            if o.code is None:
                o.code, o.code_system = ORDER_CODE
    return pop


def test_worklist_counts_match_the_generators_answer_key(defective):
    gaps = terminology_gaps(defective.patients)
    key = Counter(e.defect for e in defective.answer_key)
    icd9_patients = {r.patient_id for r in defective.patients for p in r.problems if p.icd_system == "ICD-9-CM"}
    assert sum(x["patients"] for x in gaps["icd9_codes"]) >= len(icd9_patients) >= key["icd9_code"] > 0
    assert all(("maps_to" in x) for x in gaps["icd9_codes"])
    orphan = {e.patient_id for e in defective.answer_key if e.defect == "orphan_rx"}
    drug_patients = set()
    for r in defective.patients:
        if r.patient_id in orphan:
            drug_patients.add(r.patient_id)
    assert sum(x["patients"] for x in gaps["unmapped_va_drugs"]) >= len(drug_patients) > 0
    assert gaps["free_text_allergies"]


def test_losses_from_source_defects_are_reported_apart(defective):
    sim = run(defective.patients, quiet_config())
    dr = sim.data_runs[-1]
    status = dict(zip(dr.ids, dr.status))
    rec = reconcile(defective.patients, sim.target, status=status)
    person_records = {}
    for pid, person in zip(dr.ids, dr.person_of):
        person_records.setdefault(person, []).append(pid)
    att = attribute_losses(rec, dr.answer_key, defective.answer_key, status, dr.reasons, person_records)
    lost = att["records_not_migrated"]
    assert lost.get("source_defect", 0) > 0
    assert lost.get("migration", 0) == 0 and lost.get("injected_fault", 0) == 0  # no outages, no faults
    assert rec.conservation["adds_up"]
