"""schema_check, business_rules and data_integrity on known-good and known-bad resources."""

from __future__ import annotations

import copy
import importlib

import pytest
from _fhir_fixtures import corpus, person_records
from hypothesis import given, settings
from hypothesis import strategies as st

from vistasim.fhir import map_person, standardize
from vistasim.fhir import validate as V
from vistasim.fhir.r4spec import TYPES
from vistasim.fhir.validate import business_rules, data_integrity, is_schema_valid, schema_check

AS_OF = "2026-01-01"


def _bundle():
    return standardize(map_person(person_records())).bundle


def _res(bundle, rtype, n=0):
    return copy.deepcopy([e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype][n])


def _codes(issues):
    return sorted({i.code for i in issues})


@pytest.fixture(scope="module")
def bundle():
    return _bundle()


# --------------------------------------------------------------------------- schema_check: known bad
def test_condition_without_subject_is_rejected(bundle):
    c = _res(bundle, "Condition")
    del c["subject"]
    issues = schema_check(c)
    assert [(i.code, i.path) for i in issues] == [("required", "Condition.subject")]


def test_gender_as_vista_stores_it_is_rejected(bundle):
    p = _res(bundle, "Patient")
    p["gender"] = "M"
    issues = schema_check(p)
    assert _codes(issues) == ["value-set"] and issues[0].path == "Patient.gender"


@pytest.mark.parametrize("bad", ["1947-13", "1947-02-30", "1947/06/01", "19470601", "47-06-01", ""])
def test_bad_birth_date_is_rejected_without_leaking_it(bundle, bad):
    p = _res(bundle, "Patient")
    p["birthDate"] = bad
    issues = schema_check(p)
    assert _codes(issues) == ["date-format"]
    assert bad not in issues[0].message or bad == ""


def test_datetime_with_time_needs_a_zone(bundle):
    o = _res(bundle, "Observation")
    o["effectiveDateTime"] = "2024-01-15T08:30:00"
    assert _codes(schema_check(o)) == ["date-format"]
    o["effectiveDateTime"] = "2024-01-15T08:30:00-05:00"
    assert schema_check(o) == []


def test_unknown_element_is_rejected_at_any_depth(bundle):
    m = _res(bundle, "MedicationRequest")
    m["dispenseRequest"]["quantity"]["colour"] = "blue"
    issues = schema_check(m)
    assert [(i.code, i.path) for i in issues] == [("unknown-element", "MedicationRequest.dispenseRequest.quantity.colour")]


def test_missing_required_element_is_rejected(bundle):
    m = _res(bundle, "MedicationRequest")
    del m["intent"]
    del m["medicationCodeableConcept"]
    assert {(i.code, i.path) for i in schema_check(m)} == {
        ("required", "MedicationRequest.intent"), ("required", "MedicationRequest.medication[x]")}


def test_two_values_for_a_choice_type_are_rejected(bundle):
    c = _res(bundle, "Condition")
    c["onsetString"] = "childhood"
    assert _codes(schema_check(c)) == ["choice"]


def test_required_binding_on_codeable_concept(bundle):
    a = _res(bundle, "AllergyIntolerance")
    a["clinicalStatus"]["coding"][0]["code"] = "current"
    assert _codes(schema_check(a)) == ["value-set"]


def test_json_types_and_arrays(bundle):
    p = _res(bundle, "Patient")
    p["name"] = {"family": "X"}  # must be an array
    p["gender"] = ["male"]  # must not be an array
    p["identifier"][0]["value"] = 1012345678  # string expected
    assert _codes(schema_check(p)) == ["cardinality", "type"]


def test_primitive_formats():
    ok = V.PRIMITIVE_CHECKS
    assert ok["id"]("500-9000011-42") and not ok["id"]("a" * 65) and not ok["id"]("has space")
    assert ok["code"]("problem-list-item") and not ok["code"](" leading") and not ok["code"]("a  b")
    assert ok["instant"]("2024-01-01T00:00:00Z") and not ok["instant"]("2024-01-01")
    assert ok["positiveInt"](1) and not ok["positiveInt"](0) and not ok["positiveInt"](True)
    assert ok["decimal"](1.5) and ok["decimal"](2) and not ok["decimal"](float("nan")) and not ok["decimal"]("1")
    assert ok["oid"]("urn:oid:2.16.840.1.113883.4.349") and not ok["oid"]("2.16.840")
    assert ok["dateTime"]("2024") and ok["dateTime"]("2024-02-29") and not ok["dateTime"]("2023-02-29")
    assert not ok["string"]("") and not ok["string"]("   ")


def test_invariants(bundle):
    c = _res(bundle, "Condition")  # active, no abatement
    c["abatementDateTime"] = "2020"
    assert [i.message[:5] for i in schema_check(c)] == ["con-4"]
    o = _res(bundle, "Observation", 1)  # pulse: has a valueQuantity
    o["dataAbsentReason"] = {"text": "x"}
    assert [i.message[:5] for i in schema_check(o)] == ["obs-6"]
    b = copy.deepcopy(bundle)
    del b["entry"][1]["request"]
    b["entry"][2]["fullUrl"] = b["entry"][3]["fullUrl"]
    assert sorted(i.message[:5] for i in schema_check(b)) == ["bdl-3", "bdl-7"]


def test_unsupported_resource_type():
    assert _codes(schema_check({"resourceType": "Basic", "id": "x"})) == ["resource-type"]


def test_generated_fast_path_agrees_with_table_walk():
    """The generated predicates, the table-driven fast path and the detailed walk give one verdict."""
    for res, _ in corpus(per_resource=6):
        detailed = V._Ctx([], "x", "")
        V._walk_resource(res, "", detailed)
        assert V._generated_ok(res) == V._ok_resource(res) == (not detailed.out), res.get("id")


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(TYPES["Patient"].allowed)),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5),
                                 st.lists(st.text(max_size=3), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)),
                       max_size=5))
def test_fast_and_detailed_paths_agree_on_arbitrary_json(d):
    d = dict(d, resourceType="Patient")
    assert is_schema_valid(d) == (schema_check(d) == [])


def test_tables_match_fhirclient_r4_element_names():
    """Every element of every table type, backbones included, exists under that name in R4 (fhirclient)."""
    pytest.importorskip("fhirclient")
    special = {"Reference": ("fhirreference", "FHIRReference"), "SimpleQuantity": ("quantity", "Quantity"),
               "Duration": ("duration", "Duration"), "Age": ("age", "Age"), "Count": ("count", "Count"),
               "Distance": ("distance", "Distance"), "MoneyQuantity": ("quantity", "Quantity")}
    checked = 0
    for name, spec in TYPES.items():
        if name in ("Element", "BackboneElement", "Resource", "DomainResource"):
            continue
        head, *rest = name.split(".")
        mod, cls = special.get(name, (head.lower(), head + "".join(p[0].upper() + p[1:] for p in rest)))
        model = getattr(importlib.import_module("fhirclient.models." + mod), cls)
        props = model().elementProperties()
        theirs = {p[1] for p in props}
        mine = {k for k in spec.allowed if not k.startswith("_") and k != "resourceType"}
        assert mine == theirs, name
        assert {n.replace("[x]", "") for n, _ in spec.required} == {p[4] or p[1] for p in props if p[5]}, name
        checked += 1
    assert checked >= 50


# --------------------------------------------------------------------------- business rules
def test_fixture_bundle_has_one_business_error_its_active_free_text_allergy(bundle):
    errors = [(i.resource_type, i.code, i.safety_critical) for i in business_rules(bundle) if i.level == "error"]
    assert errors == [("AllergyIntolerance", "allergy-free-text", True)]


def test_condition_category_oracle_does_not_accept(bundle):
    c = _res(bundle, "Condition")
    c["category"][0]["coding"][0]["code"] = "health-concern"  # valid R4 (extensible), not for Millennium
    assert schema_check(c) == []
    issues = business_rules(c)
    assert [(i.code, i.level) for i in issues] == [("oracle-category", "error")]


def test_us_core_patient_needs_identifier_name_gender(bundle):
    p = _res(bundle, "Patient")
    for k in ("identifier", "name", "gender"):
        del p[k]
    issues = business_rules(p)
    assert {i.path for i in issues if i.level == "error"} == {"Patient.identifier", "Patient.name", "Patient.gender"}


def test_uncoded_active_allergy_and_medication_are_safety_critical(bundle):
    a = _res(bundle, "AllergyIntolerance")
    a["code"] = {"coding": [{"system": "http://example.org/local", "code": "PCN"}]}
    m = _res(bundle, "MedicationRequest")  # active lisinopril
    del m["medicationCodeableConcept"]["coding"]
    f = _res(bundle, "Flag")
    f["code"] = {"coding": []}
    for res, code in ((a, "oracle-code-system"), (m, "oracle-rxnorm"), (f, "flag-uncoded")):
        issues = [i for i in business_rules(res) if i.code == code]
        assert len(issues) == 1 and issues[0].level == "error" and issues[0].safety_critical, code


def test_pending_uncoded_order_is_an_unknown_queue_risk(bundle):
    sr = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"
          and e["resource"]["status"] == "draft"][0]
    sr = copy.deepcopy(sr)
    sr["code"].pop("coding")
    issues = business_rules(sr)
    assert [(i.code, i.level, i.safety_critical) for i in issues] == [("order-uncoded", "error", True)]


def test_active_free_text_allergy_is_a_safety_critical_error_inactive_a_warning(bundle):
    free = [e["resource"] for e in bundle["entry"]
            if e["resource"]["resourceType"] == "AllergyIntolerance" and "coding" not in e["resource"]["code"]]
    assert len(free) == 1
    active = copy.deepcopy(free[0])
    active["clinicalStatus"]["coding"][0]["code"] = "active"
    issues = business_rules(active)
    assert [(i.code, i.level, i.safety_critical) for i in issues] == [("allergy-free-text", "error", True)]
    inactive = copy.deepcopy(free[0])
    inactive["clinicalStatus"]["coding"][0]["code"] = "inactive"
    issues = business_rules(inactive)
    assert [(i.code, i.level, i.safety_critical) for i in issues] == [("allergy-free-text", "warning", False)]


def test_vital_signs_need_loinc_and_ucum(bundle):
    o = _res(bundle, "Observation")
    o["code"]["coding"][0]["system"] = "http://example.org"
    o["component"][0]["valueQuantity"].pop("system")
    assert sorted(i.code for i in business_rules(o)) == ["vital-loinc", "vital-ucum"]


# --------------------------------------------------------------------------- data integrity
def test_fixture_bundle_is_consistent(bundle):
    assert data_integrity(bundle, as_of=AS_OF) == []


def test_dangling_reference(bundle):
    b = copy.deepcopy(bundle)
    b["entry"][1]["resource"]["subject"] = {"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"}
    assert _codes(data_integrity(b, as_of=AS_OF)) == ["dangling-reference"]


def test_dropping_the_patient_breaks_every_reference(bundle):
    b = copy.deepcopy(bundle)
    b["entry"] = b["entry"][1:]
    issues = data_integrity(b, as_of=AS_OF)
    assert sum(i.code == "dangling-reference" for i in issues) == len(b["entry"])
    assert "patient-count" in _codes(issues)
    assert any(i.safety_critical for i in issues)  # active allergies lost their patient


def test_future_and_pre_birth_dates(bundle):
    b = copy.deepcopy(bundle)
    cond = next(e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Condition")
    cond["recordedDate"] = "2030-01-01"
    cond["onsetDateTime"] = "1946"  # patient born 1947-06
    assert _codes(data_integrity(b, as_of=AS_OF)) == ["date-before-birth", "date-future"]
    # same year as an imprecise birth date is plausible
    cond["recordedDate"] = "2020"
    cond["onsetDateTime"] = "1947"
    assert data_integrity(b, as_of=AS_OF) == []


def test_death_before_birth(bundle):
    b = copy.deepcopy(bundle)
    b["entry"][0]["resource"]["deceasedDateTime"] = "1940-01-01"
    assert "death-before-birth" in _codes(data_integrity(b, as_of=AS_OF))


def test_identity_split_and_merge(bundle):
    b = copy.deepcopy(bundle)
    twin = copy.deepcopy(b["entry"][0])
    twin["resource"]["id"] = "icn-split"
    twin["fullUrl"] = "urn:uuid:11111111-1111-1111-1111-111111111111"
    b["entry"].append(twin)
    assert {"duplicate-patient", "patient-count"} <= set(_codes(data_integrity(b, as_of=AS_OF)))
    m = copy.deepcopy(bundle)
    m["entry"][0]["resource"]["identifier"].append(
        {"system": "urn:oid:2.16.840.1.113883.4.349", "value": "9999999999V999999"})
    assert _codes(data_integrity(m, as_of=AS_OF)) == ["identity-merge"]


def test_subject_must_point_to_a_patient(bundle):
    b = copy.deepcopy(bundle)
    enc = next(e for e in b["entry"] if e["resource"]["resourceType"] == "Encounter")
    b["entry"][1]["resource"]["subject"] = {"reference": enc["fullUrl"]}
    assert _codes(data_integrity(b, as_of=AS_OF)) == ["reference-type"]


def test_messages_carry_no_patient_values(bundle):
    b = copy.deepcopy(bundle)
    p = b["entry"][0]["resource"]
    p["birthDate"] = "2099-01-01"
    p["name"][0]["family"] = "x" * 2  # fine
    p["identifier"][-1]["value"] = 123456789
    texts = " ".join(i.message + i.path for i in schema_check(b) + data_integrity(b, as_of=AS_OF))
    for secret in ("2099", "123456789", "DOE", "JOHN", "000001234", "1947"):
        assert secret not in texts


@pytest.mark.parametrize("name,ok", [("DOE,JOHN QUINCY", True), ("O'BRIEN-SMITH,MARY ANN", True),
                                     ("JOHN DOE", False), ("doe,john", False), ("DOE,,JOHN", False),
                                     ("DOE3,JOHN", False)])
def test_legacy_name_defects_are_warned(name, ok):
    recs = person_records()
    for r in recs:
        r.name = name
    issues = business_rules(map_person(recs))
    hits = [i for i in issues if i.code == "name-format"]
    assert (hits == []) == ok
    assert all(i.level == "warning" and name not in i.message for i in hits)


def test_missing_dob_unknown_sex_and_duplicate_registration_are_warned():
    a, b = person_records()
    a.dob = b.dob = None
    a.sex = b.sex = "U"
    b.station = "500"  # second DFN at the same station: a duplicate registration
    bundle = map_person([a, b])
    codes = {(i.code, i.level) for i in business_rules(bundle)}
    assert {("birthdate-missing", "warning"), ("gender-unknown", "warning")} <= codes
    integ = data_integrity(bundle, as_of=AS_OF)
    assert [(i.code, i.level) for i in integ] == [("duplicate-registration", "warning")]


def test_typed_reference_walk_finds_what_the_full_walk_finds():
    """data_integrity's pruned walk: same (path, reference) pairs, in the same order, as the full walk,
    including references inside extensions at any depth and Identifier.assigner."""
    b = copy.deepcopy(_bundle())
    resources = [e["resource"] for e in b["entry"]]
    deep = {"url": "urn:x", "valueReference": {"reference": "urn:uuid:deep"}}
    for i, r in enumerate(resources):
        if i % 4 == 0:
            r.setdefault("extension", []).append(copy.deepcopy(deep))
        if i % 3 == 0:  # a list of References, and a string that only looks like one
            r["basedOn"] = [{"reference": "urn:uuid:deep", "display": '"reference": "x"'}]
        if i % 4 == 1 and isinstance(r.get("code"), dict) and r["code"].get("coding"):
            r["code"]["coding"][0]["_code"] = {"extension": [copy.deepcopy(deep)]}
        if i % 4 == 2 and r.get("identifier"):
            r["identifier"][0]["assigner"] = {"reference": "Organization/1"}
        if i % 4 == 3 and isinstance(r.get("category"), list) and isinstance(r["category"][0], dict):
            r["category"][0].setdefault("coding", [{}])[0]["extension"] = [copy.deepcopy(deep)]
    found = 0
    for r in resources:
        full = list(V._references(r, r["resourceType"]))
        assert V._resource_references(r, r["resourceType"]) == full
        found += sum(ref in ("urn:uuid:deep", "Organization/1") for _, ref in full)
    assert found >= len(resources) // 2


# --------------------------------------------------------------------------- fast "clean?" paths of the stages
def _mutations(bundle, rng):
    """One seeded defect a business rule or an integrity check cares about (or none)."""
    entries = bundle["entry"]
    res = entries[int(rng.integers(len(entries)))]["resource"]
    pat = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "Patient")
    pick = int(rng.integers(16))
    if pick == 0:
        res.pop("subject", None) or res.pop("patient", None)
    elif pick == 1 and isinstance(res.get("code"), dict) and res["code"].get("coding"):
        res["code"]["coding"][0]["system"] = "http://example.org/other"
    elif pick == 2 and isinstance(res.get("code"), dict):
        res["code"] = {"text": "FREE TEXT"}
    elif pick == 3:
        res["status"] = "active" if res["resourceType"] != "Observation" else "final"
    elif pick == 4 and "subject" in res:
        res["subject"] = {"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"}
    elif pick == 5 and "subject" in res:
        res["subject"] = {"reference": f"{entries[-1]['resource']['resourceType']}/{entries[-1]['resource']['id']}"}
    elif pick == 6:
        res.pop("clinicalStatus", None)
    elif pick == 7:
        for k in ("onsetDateTime", "recordedDate", "authoredOn", "effectiveDateTime"):
            if k in res:
                res[k] = "2031-05-05"
    elif pick == 8:
        pat["birthDate"] = "2025-12-31"
    elif pick == 9:
        pat["identifier"].append({"system": "urn:oid:2.16.840.1.113883.4.349", "value": "1999999999V999999"})
    elif pick == 10:
        entries.append(copy.deepcopy(entries[0]))
    elif pick == 11 and res["resourceType"] == "Condition":
        res["abatementDateTime"] = "1901-01-01"
        res["clinicalStatus"]["coding"][0]["code"] = "resolved"
    elif pick == 12 and res["resourceType"] == "Observation":
        res["category"][0]["coding"][0]["code"] = "vital-signs"
    elif pick == 13 and "valueQuantity" in res:
        res["valueQuantity"].pop("code", None)
    elif pick == 14 and "verificationStatus" in res:
        res["verificationStatus"]["coding"][0]["code"] = "entered-in-error"
        res.pop("clinicalStatus", None)
    return bundle


def test_stage_fast_paths_agree_with_the_full_functions_on_mutated_bundles():
    """business_clean / integrity_clean say 'clean' exactly when the full functions report no error, and the
    stages return the same stops whether or not their fast paths are used."""
    import numpy as np

    from vistasim.fhir.mapping import group_by_person
    from vistasim.generate import generate_patients
    from vistasim.pipeline import stages as S

    groups = list(group_by_person(generate_patients(40, seed=3, sites=2)).values())
    base = [standardize(map_person(g)).bundle for g in groups] + [_bundle()]
    rng = np.random.default_rng(11)
    seen = {"clean": 0, "business": 0, "integrity": 0}
    for rep in range(6):
        for b0 in base:
            b = _mutations(copy.deepcopy(b0), rng) if rep else copy.deepcopy(b0)
            S._CLEAN.clear()
            stop, _ = S.schema_stage({"p": b})
            if stop:
                continue
            c = S._clean_entry(b)
            assert c is not None
            fast_b = V.business_clean(b)
            assert fast_b == c[5] == (not [i for i in business_rules(b) if i.is_error])
            fast_i = V.integrity_clean(b, c[3], c[4], as_of=AS_OF)
            assert fast_i == V.integrity_clean(b, c[3], c[4], as_of=AS_OF, pairs=c[6])
            assert fast_i == (not [i for i in data_integrity(b, as_of=AS_OF) if i.is_error])
            seen["clean"] += fast_b and fast_i
            seen["business"] += not fast_b
            seen["integrity"] += not fast_i
            # the stage answers with and without the cached fast path
            with_fast = (S.business_stage({"p": b}), S.integrity_stage({"p": b}, AS_OF))
            S._CLEAN.clear()
            assert with_fast == (S.business_stage({"p": b}), S.integrity_stage({"p": b}, AS_OF))
    assert min(seen.values()) >= 10, seen


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["id", "string", "markdown", "uri", "url", "canonical", "code", "dateTime"]),
       st.one_of(st.text(max_size=70),
                 st.text(alphabet="0123456789-:TZ+. ", max_size=26),
                 st.sampled_from(["2023-02-29", "2024-02-29", "2024-02-29T10:00:00Z", "2024-02-29T24:00:00Z",
                                  "2024-13-01", "2024", "2024-06", "a b", " ", "a\nb", "\u00e9t\u00e9", "x" * 65])))
def test_primitive_shortcuts_give_the_regex_verdict(t, v):
    """The C string-method shortcuts and split caches answer exactly as the R4 regex (plus calendar)."""
    from vistasim.fhir.r4spec import COMPILED_PATTERNS

    want = COMPILED_PATTERNS[t].fullmatch(v) is not None and (t != "dateTime" or V._calendar_ok(t, v))
    assert V.PRIMITIVE_CHECKS[t](v) == want
    assert V.PRIMITIVE_CHECKS[t](v) == want  # again, now from the caches
