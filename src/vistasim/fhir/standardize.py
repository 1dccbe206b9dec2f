"""Transform's standardize substage: bring a mapped bundle's codes to the target's terminologies.

* ICD-9-CM -> ICD-10-CM (CMS GEM table): the ICD-10-CM coding is added first, the ICD-9-CM coding kept
  beside it (lossless; Oracle accepts both). Unmapped ICD-9 codes stay as they are and are reported.
* VA drug name -> RxNorm when a MedicationRequest has no RxNorm coding (VA product table).
* VistA units -> UCUM on every Quantity of an Observation (``system``/``code`` added, ``unit`` kept).
* Vital signs without a LOINC code are reported (they fail US Core's vital-signs profile).

What could not be standardized comes back as :class:`Gap` rows: the terminology-gap worklist.
The input bundle is never modified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from vistasim.fhir import terminology as T
from vistasim.fhir.mapping import map_person
from vistasim.model import PatientRecord

__all__ = ["Gap", "StandardizeResult", "standardize", "transform_person"]


@dataclass(frozen=True, slots=True)
class Gap:
    """A code that could not be brought to the target terminology (no patient values, only codes)."""

    kind: str  # icd9-unmapped | drug-unmapped | unit-unmapped | vital-uncoded
    resource_type: str
    resource_id: str
    source_system: str
    source_code: str


@dataclass
class StandardizeResult:
    bundle: dict[str, Any]
    gaps: list[Gap] = field(default_factory=list)
    changes: dict[str, int] = field(default_factory=dict)  # icd9->icd10, drug->rxnorm, unit->ucum counts

    @property
    def complete(self) -> bool:
        return not self.gaps


_ICD10CM, _ICD9CM, _RXNORM = T.ICD10CM, T.ICD9CM, T.RXNORM


def _condition(res: dict[str, Any], gaps: list[Gap], changes: dict[str, int]) -> None:
    code = res.get("code")
    if not isinstance(code, dict):
        return
    codings = code.get("coding") or []
    for c in codings:  # (plain loops: a generator per resource costs more than the test itself)
        if c.get("system") == _ICD10CM:
            return
    for c in codings:
        if c.get("system") == _ICD9CM and c.get("code"):
            hit = T.icd9_to_icd10(c["code"])
            if hit is None:
                gaps.append(Gap("icd9-unmapped", "Condition", res.get("id", ""), "ICD-9-CM", c["code"]))
            else:
                codings.insert(0, {"system": _ICD10CM, "code": hit[0], "display": hit[1]})
                changes["icd9->icd10"] = changes.get("icd9->icd10", 0) + 1
            return


_drug_memo: dict[str, tuple[str, str] | None] = {}  # VA product name -> drug_to_rxnorm(name), bounded


def _rxnorm(name: str) -> tuple[str, str] | None:
    if name in _drug_memo:
        return _drug_memo[name]
    hit = T.drug_to_rxnorm(name)
    if len(_drug_memo) >= 65536:
        _drug_memo.clear()
    _drug_memo[name] = hit
    return hit


def _medication(res: dict[str, Any], gaps: list[Gap], changes: dict[str, int]) -> None:
    med = res.get("medicationCodeableConcept")
    if not isinstance(med, dict):
        return
    codings = med.get("coding") or []
    for c in codings:
        if c.get("system") == _RXNORM:
            return
    name = med.get("text") or ""
    hit = _rxnorm(name) if name else None
    if hit is None:
        gaps.append(Gap("drug-unmapped", "MedicationRequest", res.get("id", ""), "VA product", name))
        return
    med["coding"] = [{"system": _RXNORM, "code": hit[0], "display": hit[1]}] + codings
    changes["drug->rxnorm"] = changes.get("drug->rxnorm", 0) + 1


_UCUM = T.UCUM
_LOINC = T.LOINC
_ucum_memo: dict[str, tuple[str, str] | None] = {}  # VistA unit text -> unit_to_ucum(unit) (few distinct)


def _ucum(unit: str) -> tuple[str, str] | None:
    if unit in _ucum_memo:
        return _ucum_memo[unit]
    hit = T.unit_to_ucum(unit)
    if len(_ucum_memo) < 4096:
        _ucum_memo[unit] = hit
    return hit


def _quantity(q: Any, res: dict[str, Any], gaps: list[Gap], changes: dict[str, int]) -> None:
    if not isinstance(q, dict) or q.get("system") == _UCUM:
        return
    unit = q.get("unit")
    if not unit:
        return
    hit = _ucum_memo[unit] if unit in _ucum_memo else _ucum(unit)
    if hit is None:
        gaps.append(Gap("unit-unmapped", res["resourceType"], res.get("id", ""), "VistA unit", unit))
        return
    q["system"], q["code"] = _UCUM, hit[0]
    changes["unit->ucum"] = changes.get("unit->ucum", 0) + 1


def _observation(res: dict[str, Any], gaps: list[Gap], changes: dict[str, int]) -> None:
    code = res.get("code") or {}
    for c in code.get("coding") or ():
        if c.get("system") == _LOINC:
            break
    else:
        gaps.append(Gap("vital-uncoded", "Observation", res.get("id", ""), "VistA vital type", code.get("text", "")))
    _quantity(res.get("valueQuantity"), res, gaps, changes)
    for comp in res.get("component") or ():
        _quantity(comp.get("valueQuantity"), res, gaps, changes)


_BY_TYPE = {"Condition": _condition, "MedicationRequest": _medication, "Observation": _observation}


def standardize(bundle: dict[str, Any], *, copy: bool = True) -> StandardizeResult:
    """A standardized copy of ``bundle`` and the gaps it could not close.

    ``copy=False`` standardizes ``bundle`` itself, in place (the result's bundle is the same object):
    for a caller that holds the only reference to a freshly mapped bundle, such as the data-mode
    pipeline, where the deep copy was ~40 % of the stage.
    """
    # the copy is a deep copy at C speed; the caller's bundle stays as mapped
    out = orjson.loads(orjson.dumps(bundle)) if copy else bundle
    gaps: list[Gap] = []
    changes: dict[str, int] = {}
    by_type = _BY_TYPE
    for entry in out.get("entry") or ():
        res = entry.get("resource")
        if isinstance(res, dict):
            fn = by_type.get(res.get("resourceType", ""))
            if fn is None:
                continue
            if fn is _observation:  # the most common type (~40 %): its common case inline
                q = res.get("valueQuantity")
                code = res.get("code")
                if (type(q) is dict and "component" not in res and type(code) is dict
                        and q.get("system") != _UCUM):
                    for c in code.get("coding") or ():
                        if c.get("system") == _LOINC:
                            break
                    else:
                        gaps.append(Gap("vital-uncoded", "Observation", res.get("id", ""), "VistA vital type",
                                        code.get("text", "")))
                    unit = q.get("unit")
                    if unit:
                        hit = _ucum_memo[unit] if unit in _ucum_memo else _ucum(unit)
                        if hit is None:
                            gaps.append(Gap("unit-unmapped", "Observation", res.get("id", ""), "VistA unit", unit))
                        else:
                            q["system"], q["code"] = _UCUM, hit[0]
                            changes["unit->ucum"] = changes.get("unit->ucum", 0) + 1
                    continue
            fn(res, gaps, changes)
    return StandardizeResult(out, gaps, changes)


def transform_person(records: list[PatientRecord], *, tz: str = "UTC") -> tuple[dict[str, Any], list[Gap]]:
    """map then standardize: the transform stage's output for one person, and its terminology gaps."""
    r = standardize(map_person(records, tz=tz))
    return r.bundle, r.gaps
