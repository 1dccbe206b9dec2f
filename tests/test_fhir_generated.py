"""The FHIR layer over the generator's population (vistasim.generate): clean people pass, defects surface."""

from __future__ import annotations

from collections import Counter

import pytest

import vistasim.fhir as fhir

generate = pytest.importorskip("vistasim.generate")
AS_OF = "2026-01-01"


def test_public_api():
    assert sorted(fhir.__all__) == sorted(
        ["map_person", "map_people", "group_by_person", "standardize", "transform_person", "Gap",
         "StandardizeResult", "Issue", "schema_check", "business_rules", "data_integrity", "validate_bundle"])
    for name in fhir.__all__:
        assert getattr(fhir, name) is not None


def _issues(records):
    counts: Counter = Counter()
    gaps: Counter = Counter()
    for bundle in fhir.map_people(records):
        r = fhir.standardize(bundle)
        gaps.update(g.kind for g in r.gaps)
        for sub, issues in fhir.validate_bundle(r.bundle, as_of=AS_OF).items():
            counts.update((sub, i.level, i.code) for i in issues)
    return counts, gaps


def test_generated_people_pass_schema_and_integrity():
    counts, _ = _issues(generate.generate_patients(150, seed=11, sites=3))
    assert not [k for k in counts if k[0] in ("schema_check", "data_integrity") and k[1] == "error"]


def test_generated_defects_surface_as_issues_or_gaps():
    counts, gaps = _issues(generate.generate_patients(300, seed=5, sites=3, defects=0.5))
    codes = {k[2] for k in counts}
    assert gaps["drug-unmapped"] > 0  # orphan_rx
    assert {"allergy-free-text", "oracle-rxnorm"} <= codes
    assert codes & {"name-format", "birthdate-missing", "gender-unknown", "icn-missing", "duplicate-registration"}
