"""Code systems, identifier systems and the map tables of ``vistasim/data/fhir`` (each file cites its source).

Tables are read once, on first use, and kept as plain dicts; lookups are pure functions.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import NamedTuple

from vistasim.fhir.r4spec import SYS_AI_CLINICAL, SYS_AI_VER, SYS_CONDITION_CLINICAL, SYS_CONDITION_VER  # noqa: F401

# Code systems (canonical URIs from hl7.org/fhir/R4/terminologies-systems.html)
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD9CM = "http://hl7.org/fhir/sid/icd-9-cm"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
US_SSN = "http://hl7.org/fhir/sid/us-ssn"
VA_ICN = "urn:oid:2.16.840.1.113883.4.349"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
MEDREQ_CATEGORY = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
CDC_RACE = "urn:oid:2.16.840.1.113883.6.238"
US_CORE_RACE = "http://hl7.org/fhir/us-core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY = "http://hl7.org/fhir/us-core/StructureDefinition/us-core-ethnicity"
# vistasim's own code system for VA fill routing (no standard one exists); .example is a reserved domain.
FILL_ROUTING = "http://vistasim.example/fhir/CodeSystem/va-fill-routing"

CODE_SYSTEM_URI: dict[str, str] = {
    "ICD-10-CM": ICD10CM, "ICD-9-CM": ICD9CM, "SNOMED": SNOMED, "SNOMED-CT": SNOMED, "RXNORM": RXNORM,
    "LOINC": LOINC,
}


def source_system(station: str, file: str) -> str:
    """Identifier system for the IEN of a FileMan file at one station, e.g. ``urn:va:500:9000011``."""
    return f"urn:va:{station}:{file}"


def _rows(name: str) -> list[list[str]]:
    text = resources.files("vistasim").joinpath("data").joinpath("fhir").joinpath(name).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


def _norm(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().upper())


class VitalCode(NamedTuple):
    vuid: str
    loinc: str
    display: str
    va_unit: str
    ucum: str
    components: tuple[tuple[str, str], ...]  # (LOINC, display) for panels (blood pressure)


@cache
def vital_table() -> dict[str, VitalCode]:
    out = {}
    for r in _rows("vitals_loinc.tsv"):
        comps = tuple(tuple(c.split(":", 1)) for c in r[6].split(",")) if len(r) > 6 and r[6] else ()
        out[r[0]] = VitalCode(r[1], r[2], r[3], r[4], r[5], comps)  # type: ignore[arg-type]
    return out


@cache
def ucum_table() -> dict[str, tuple[str, str]]:
    return {r[0]: (r[1], r[2]) for r in _rows("va_units_ucum.tsv")}


@cache
def icd9_table() -> dict[str, tuple[str, str]]:
    return {r[0]: (r[1], r[2]) for r in _rows("icd9_to_icd10.tsv")}


@cache
def drug_table() -> dict[str, tuple[str, str]]:
    return {_norm(r[0]): (r[1], r[2]) for r in _rows("va_drug_rxnorm.tsv")}


@cache
def marital_table() -> dict[str, tuple[str, str, str]]:
    return {r[0]: (r[1], r[2], r[3]) for r in _rows("marital_status.tsv")}


def icd9_to_icd10(code: str) -> tuple[str, str] | None:
    """(ICD-10-CM code, description) for an ICD-9-CM code, or None when the table has no map."""
    return icd9_table().get(code.strip())


def drug_to_rxnorm(va_name: str) -> tuple[str, str] | None:
    """(RxCUI, RxNorm name) for a VA product name, or None."""
    return drug_table().get(_norm(va_name))


def unit_to_ucum(unit: str) -> tuple[str, str] | None:
    """(UCUM code, display) for a unit as VistA shows it, or None."""
    return ucum_table().get(unit.strip())


# US Core OMB race/ethnicity categories (CDC Race & Ethnicity code set, urn:oid:2.16.840.1.113883.6.238)
OMB_RACE: dict[str, tuple[str, str]] = {
    "AMERICAN INDIAN OR ALASKA NATIVE": ("1002-5", "American Indian or Alaska Native"),
    "ASIAN": ("2028-9", "Asian"),
    "BLACK OR AFRICAN AMERICAN": ("2054-5", "Black or African American"),
    "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER": ("2076-8", "Native Hawaiian or Other Pacific Islander"),
    "WHITE": ("2106-3", "White"),
}
OMB_ETHNICITY: dict[str, tuple[str, str]] = {
    "HISPANIC OR LATINO": ("2135-2", "Hispanic or Latino"),
    "NOT HISPANIC OR LATINO": ("2186-5", "Not Hispanic or Latino"),
}
