"""standardize: ICD-9 -> ICD-10-CM, VA drug -> RxNorm, units -> UCUM, and the gap worklist."""

from __future__ import annotations

import copy

from _fhir_fixtures import person_records, site_500

from vistasim.fhir import map_person, standardize
from vistasim.fhir import terminology as T


def _res(bundle, rid):
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["id"] == rid)


def test_icd9_mapped_and_kept_beside():
    r = standardize(map_person(person_records()))
    ptsd = _res(r.bundle, "500-9000011-12")
    assert [(c["system"], c["code"]) for c in ptsd["code"]["coding"]] == [
        (T.ICD10CM, "F43.10"), (T.ICD9CM, "309.81"), (T.SNOMED, "47505003")]
    assert _res(r.bundle, "500-9000011-13")["code"]["coding"][0]["code"] == "M54.50"
    assert r.changes["icd9->icd10"] == 2


def test_unmapped_icd9_stays_and_is_reported():
    r = standardize(map_person(person_records()))
    other = _res(r.bundle, "500-9000011-14")
    assert [c["system"] for c in other["code"]["coding"]] == [T.ICD9CM]
    gaps = [g for g in r.gaps if g.kind == "icd9-unmapped"]
    assert [(g.resource_id, g.source_code) for g in gaps] == [("500-9000011-14", "V49.89")]


def test_drug_to_rxnorm_when_missing():
    r = standardize(map_person(person_records()))
    met = _res(r.bundle, "500-52-32")
    assert met["medicationCodeableConcept"]["coding"][0]["code"] == "861007"
    assert [(g.kind, g.source_code) for g in r.gaps if g.kind == "drug-unmapped"] == [
        ("drug-unmapped", "VA LOCAL COMPOUND CREAM")]
    # a coded drug is left alone
    lis = _res(r.bundle, "500-52-31")
    assert lis["medicationCodeableConcept"]["coding"] == [{"system": T.RXNORM, "code": "314076"}]


def test_units_to_ucum():
    r = standardize(map_person(person_records()))
    want = {"500-120.5-41": "mm[Hg]", "500-120.5-42": "/min", "500-120.5-43": "[lb_av]", "500-120.5-44": "[in_i]",
            "500-120.5-45": "[degF]", "500-120.5-46": "{score}", "500-120.5-47": "/min", "500-120.5-48": "%"}
    for rid, code in want.items():
        o = _res(r.bundle, rid)
        qs = [o["valueQuantity"]] if "valueQuantity" in o else [c["valueQuantity"] for c in o["component"]]
        for q in qs:
            assert (q["system"], q["code"]) == (T.UCUM, code), rid
    assert r.changes["unit->ucum"] == 10  # 8 + BP's second component + the weight at station 612


def test_unknown_vital_type_and_unit_are_gaps():
    rec = site_500()
    rec.vitals[1].vital_type = "CENTRAL VENOUS PRESSURE"
    b = map_person([rec])
    o = _res(b, "500-120.5-42")
    o["valueQuantity"]["unit"] = "cmH2O"
    r = standardize(b)
    assert {(g.kind, g.source_code) for g in r.gaps} >= {("vital-uncoded", "CENTRAL VENOUS PRESSURE"),
                                                        ("unit-unmapped", "cmH2O")}


def test_input_bundle_untouched_and_idempotent():
    b = map_person(person_records())
    before = copy.deepcopy(b)
    once = standardize(b)
    assert b == before
    twice = standardize(once.bundle)
    assert twice.bundle == once.bundle and twice.changes == {}
    assert [g for g in twice.gaps] == [g for g in once.gaps]


def test_gap_rows_hold_codes_not_people():
    r = standardize(map_person(person_records()))
    text = repr(r.gaps)
    for secret in ("DOE", "000001234", "1947"):
        assert secret not in text


def test_in_place_standardize_equals_the_copying_one():
    """copy=False changes the bundle itself and gives the same bundle and gaps as the copying call."""
    import orjson

    mapped = map_person(person_records())
    before = orjson.dumps(mapped)
    copied = standardize(mapped)
    assert orjson.dumps(mapped) == before  # the default leaves the input alone
    in_place = standardize(mapped, copy=False)
    assert in_place.bundle is mapped
    assert orjson.dumps(in_place.bundle) == orjson.dumps(copied.bundle)
    assert in_place.gaps == copied.gaps and in_place.changes == copied.changes
