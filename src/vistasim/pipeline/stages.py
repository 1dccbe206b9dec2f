"""The real work of each data-mode substage, as small functions over one person or one wave.

Extract reads the source once (``connect``), selects a wave's records through the MPI (ICN) and "B"
(name) cross-references (``query``) and hands on the export form (``export``). Transform maps each
person to one FHIR R4 Bundle and standardizes it. Validate runs the three checks of
:mod:`vistasim.fhir.validate`; the first substage with an error stops the person, typed by what it
found. Load lives in :mod:`vistasim.pipeline.datamode` (it talks to the target).

Who is who: records are grouped by full ICN (a record without an ICN is a person of its own); a
person's records always travel together, in the wave of the person's first record, so a wave may
hold a few more records than ``batch_size`` when a person's records straddle its end.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import VistasimError
from ..fhir import business_rules, data_integrity, map_person, schema_check, standardize
from ..fhir import validate as V
from ..model import PatientRecord

STEP = {
    ("extract", "connect"): 0,
    ("extract", "query"): 1,
    ("extract", "export"): 2,
    ("extract", None): 3,
    ("transform", "parse"): 4,
    ("transform", "map"): 5,
    ("transform", "standardize"): 6,
    ("transform", None): 7,
    ("validate", "schema_check"): 8,
    ("validate", "business_rules"): 9,
    ("validate", "data_integrity"): 10,
    ("validate", None): 11,
    ("load", "staging"): 12,
    ("load", "production"): 13,
    ("load", "verification"): 14,
    ("load", None): 15,
}

# business-rule issues that mean a code did not make it to the target terminology: a mapping error
MAPPING_CODES = frozenset(
    {"oracle-code-system", "oracle-rxnorm", "order-uncoded", "vital-loinc", "vital-ucum", "flag-uncoded", "icd9-only"}
)
IDENTITY_CODES = frozenset({"identity-merge", "duplicate-patient", "patient-count"})

Stop = tuple[str, str] | None  # (spec error type, reason) or None when the check passed


def person_key(r: PatientRecord) -> str:
    return r.full_icn if r.icn else r.patient_id


def group_persons(records: Sequence[PatientRecord]) -> list[tuple[str, list[int]]]:
    """(person id, record indices) in order of each person's first record."""
    groups: OrderedDict[str, list[int]] = OrderedDict()
    for i, r in enumerate(records):
        groups.setdefault(person_key(r), []).append(i)
    return list(groups.items())


def plan_waves(groups: Sequence[tuple[str, list[int]]], batch_size: int) -> list[list[int]]:
    """Group indices per wave: persons in order, a new wave once a wave holds ``batch_size`` records."""
    waves: list[list[int]] = []
    cur: list[int] = []
    n = 0
    for gi, (_pid, rows) in enumerate(groups):
        if n >= batch_size:
            waves.append(cur)
            cur, n = [], 0
        cur.append(gi)
        n += len(rows)
    if cur:
        waves.append(cur)
    return waves


class SourceIndex:
    """The cross-references extract/query selects through: MPI (ICN -> records) and B (name -> records).

    ``name_index`` (station -> NAME -> DFNs) is the ^DPT("B") cross-reference as read from the source
    (``read_source``'s ``name_index``): a record whose B node is missing or names another DFN is then
    not found by name. Without it (records built in memory, as the spec's API takes them) B is the index
    FileMan would hold for these records: NAME truncated to 30 characters.
    """

    def __init__(
        self, records: Sequence[PatientRecord], name_index: Mapping[str, Mapping[str, Sequence[int]]] | None = None
    ) -> None:
        self.mpi: dict[str, list[int]] = {}
        self.b: dict[tuple[str, str], list[int]] = {}
        self.from_source = name_index is not None
        for i, r in enumerate(records):
            if r.icn:
                self.mpi.setdefault(r.full_icn, []).append(i)
        if name_index is None:
            for i, r in enumerate(records):
                self.b.setdefault((r.station, r.name[:30]), []).append(i)
            return
        where = {(r.station, r.dfn): i for i, r in enumerate(records)}
        for station, names in name_index.items():
            for name, dfns in names.items():
                rows = [where[(station, d)] for d in dfns if (station, d) in where]
                if rows:
                    self.b.setdefault((station, name), []).extend(rows)

    def select(self, person_id: str, rows: Sequence[int], records: Sequence[PatientRecord]) -> Stop:
        """Every record of the person must be reachable through MPI (or, without an ICN, through B)."""
        found = set(self.mpi.get(person_id, ()))
        for i in rows:
            r = records[i]
            if i not in found and i not in self.b.get((r.station, r.name[:30]), ()):
                return ("data_corruption", "query: record not found through the MPI or B cross-reference")
        return None


def parse_stop(reasons: Sequence[str]) -> Stop:
    """A record some of whose FileMan nodes did not parse (``read_source(..., bad_entries="quarantine")``)."""
    return ("data_corruption", f"parse: {reasons[0]}" + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""))


# --------------------------------------------------------------------------- transform


def map_stage(records: list[PatientRecord], tz: str) -> tuple[dict[str, Any] | None, Stop]:
    try:
        return map_person(records, tz=tz), None
    except (VistasimError, ValueError, TypeError, KeyError) as exc:
        return None, ("mapping_error", f"map: {type(exc).__name__}")


def standardize_stage(bundle: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """Standardize a freshly mapped bundle that nobody else holds: in place, no copy."""
    r = standardize(bundle, copy=False)
    return r.bundle, r.gaps


# --------------------------------------------------------------------------- validate


# Bundles whose every resource passed schema_stage, with what the later substages' fast paths need:
# id(bundle) -> (bundle, its entry list, entry count, references, patient references, business verdict,
# (entry, resource) pairs). The references are those the generated predicates collected while checking;
# the business verdict is business_clean's, taken in the same loop. business_stage and integrity_stage
# use an entry only for the same bundle object with the same entry list, so their fast paths see
# schema-valid input; anything else takes the full functions. The pipeline does not change a bundle
# between its validate substages. Bounded: when full it is emptied, which only sends later bundles down
# the full path.
_CLEAN: dict[int, tuple] = {}
_CLEAN_LIMIT = 4096


def _clean_entry(b: dict[str, Any]) -> tuple | None:
    c = _CLEAN.get(id(b))
    if c is not None and c[0] is b:
        entries = b.get("entry")
        if c[1] is entries and len(entries) == c[2]:  # type: ignore[arg-type]
            return c
    return None


def forget_validated() -> None:
    """Drop what schema_stage kept for the later substages (the pipeline calls it after each wave's
    validation, so persons stopped before data_integrity do not keep their bundles alive)."""
    _CLEAN.clear()


def schema_stage(bundles: dict[str, dict[str, Any]]) -> tuple[Stop, int]:
    """Every resource against FHIR R4 structure. Returns (stop, resources checked)."""
    n = 0
    ok_resource, refs, prefs, odd = V._generated_ok, V._REFS, V._PREFS, V._ODD
    rules = V._CLEAN_RULES.get
    for b in bundles.values():
        V._clear_collected()
        entries = b.get("entry") or ()
        clean = b.get("resourceType") == "Bundle"  # business_rules reads any other object as one resource
        business = True
        pairs = []
        for e in entries:
            res = e.get("resource")
            n += 1
            if isinstance(res, dict) and ok_resource(res):
                if business:
                    fn = rules(res.get("resourceType", ""))
                    if fn is not None and not fn(res):
                        business = False
                pairs.append((e, res))
                if type(e) is not dict:  # business_rules and data_integrity skip what is not a dict
                    clean = False
                continue
            clean = False
            errors = [i for i in schema_check(res) if i.is_error]  # type: ignore[arg-type]
            if errors:
                i = errors[0]
                return ("data_corruption", f"schema_check: {i.code} ({i.resource_type} {i.path})"), n
        if clean and not odd and type(entries) is list:
            if len(_CLEAN) >= _CLEAN_LIMIT:
                _CLEAN.clear()
            _CLEAN[id(b)] = (b, entries, len(entries), set(refs), set(prefs), business, pairs)
    V._clear_collected()
    return None, n


def business_stage(bundles: dict[str, dict[str, Any]]) -> Stop:
    for b in bundles.values():
        c = _clean_entry(b)
        if c is not None and c[5]:
            continue
        errors = [i for i in business_rules(b) if i.is_error]
        if errors:
            i = errors[0]
            etype = "mapping_error" if i.code in MAPPING_CODES else "validation_failure"
            crit = ", safety-critical" if any(x.safety_critical for x in errors) else ""
            return (etype, f"business_rules: {i.code} ({i.resource_type}{crit})")
    return None


def integrity_stage(bundles: dict[str, dict[str, Any]], as_of: str) -> Stop:
    for b in bundles.values():
        c = _clean_entry(b)
        if c is not None:
            del _CLEAN[id(b)]  # the last substage to look
            if V.integrity_clean(b, c[3], c[4], as_of=as_of, pairs=c[6]):
                continue
        errors = [i for i in data_integrity(b, as_of=as_of) if i.is_error]
        if errors:
            i = errors[0]
            etype = "validation_failure" if i.code in IDENTITY_CODES else "data_corruption"
            return (etype, f"data_integrity: {i.code} ({i.resource_type})")
    return None
