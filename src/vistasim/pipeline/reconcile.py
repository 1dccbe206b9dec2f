"""Reconciliation: what should have landed, derived from the source alone, against what did land.

The expected target is built from the source records (as read from the ZWR export) and the map tables
(``vistasim/data/fhir``: ICD-9 -> ICD-10, VA drug -> RxNorm, vital -> LOINC, unit -> UCUM) following the
VA map set in DESIGN.md, written here a second time on purpose: nothing of :mod:`vistasim.fhir.mapping`
is called and the answer key is not read, so a mapping bug or an injected fault shows up as a
difference. Resources are matched by the documented ids (``<station>-<file>-<ien>``, ``icn-<ICN>``) under
the person (ICN) the target filed them with.

Each resource is reduced to a few *fields in scope* (codes, statuses, dates, values, texts). Fidelity
= fields that arrived as the rules say they should / fields in scope, over the persons that migrated;
intended changes (ICD-9 -> ICD-10, drug -> RxNorm, unit -> UCUM) are part of the expectation, so they
count as intact. Everything is reported per domain: patient, problems, allergies, medications, vitals,
encounters, orders, flags.

Scoring (after the comparison, never during it): each injected fault of the answer key is *detected*
(a check stopped the person), *reported* (the comparison found a difference where it struck) or
*missed*; losses are attributed to a source defect (the generator's answer key), an injected fault, or
the migration itself.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from .._gc import gc_paused
from ..fhir import terminology as T
from ..model import PatientRecord

DOMAINS = ("patient", "problems", "allergies", "medications", "vitals", "encounters", "orders", "flags")
GATES = ("allergies", "active_medications", "pending_orders", "flags")
ICN = "urn:oid:2.16.840.1.113883.4.349"
URI = {
    "ICD-10-CM": "http://hl7.org/fhir/sid/icd-10-cm",
    "ICD-9-CM": "http://hl7.org/fhir/sid/icd-9-cm",
    "SNOMED": "http://snomed.info/sct",
    "SNOMED-CT": "http://snomed.info/sct",
    "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "LOINC": "http://loinc.org",
}
ICD10, ICD9, SNOMED, RXNORM, LOINC = (URI["ICD-10-CM"], URI["ICD-9-CM"], URI["SNOMED"], URI["RXNORM"], URI["LOINC"])
UCUM = "http://unitsofmeasure.org"
SUFFIXES = frozenset({"JR", "SR", "II", "III", "IV", "V", "MD", "PHD"})
RX_STATUS = {
    "active": "active",
    "discontinued": "stopped",
    "expired": "completed",
    "hold": "on-hold",
    "suspended": "active",
}
SR_STATUS = {
    "pending": "draft",
    "unreleased": "draft",
    "active": "active",
    "complete": "completed",
    "discontinued": "revoked",
    "expired": "revoked",
}
MR_ORDER_STATUS = {
    "pending": "draft",
    "unreleased": "draft",
    "active": "active",
    "complete": "completed",
    "discontinued": "stopped",
    "expired": "stopped",
}
ENCOUNTER_CLASS = {"H": "IMP", "D": "IMP", "T": "VR"}  # everything else ambulatory
PENDING = frozenset({"draft", "active", "on-hold"})

Fields = dict[str, Any]
Key = tuple[str, str]  # (resourceType, id)


# --------------------------------------------------------------------------- expected, from the source


@lru_cache(maxsize=64)
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def _dt(v: str | None, tz: str) -> str | None:
    """A model date as FHIR carries it: date precision kept; a time gets the zone's offset."""
    if not v:
        return None
    if "T" not in v:
        return v
    return _dt_time(v, tz)


@lru_cache(maxsize=1 << 16)
def _dt_time(v: str, tz: str) -> str:
    """Memoised: a visit's vitals share their time, and the zone arithmetic is the costly part."""
    try:
        text = datetime.fromisoformat(v).replace(tzinfo=_zone(tz)).isoformat(timespec="seconds")
    except ValueError:
        return v  # a corrupt source date: expected as it is (what arrives will differ)
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _num(x: Any) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _rid(station: str, file: str, ien: int) -> str:
    return f"{station}-{file}-{ien}"


def person_of(r: PatientRecord) -> str:
    return r.full_icn if r.icn else r.patient_id


def _first(recs: Sequence[PatientRecord], attr: str) -> Any:
    return next((getattr(r, attr) for r in recs if getattr(r, attr) not in (None, "")), None)


def expected_patient(recs: Sequence[PatientRecord], tz: str) -> tuple[Key, Fields]:
    recs = sorted(recs, key=lambda r: (r.station, r.dfn))
    icn_rec = next((r for r in recs if r.icn), None)
    pid = f"icn-{icn_rec.full_icn}" if icn_rec else _rid(recs[0].station, "2", recs[0].dfn)
    name = _first(recs, "name") or ""
    last, _, rest = name.partition(",")
    given = [p for p in rest.split() if p.replace(".", "") not in SUFFIXES]
    addr = next(
        (
            r.address
            for r in recs
            if any(
                (
                    r.address.street1,
                    r.address.street2,
                    r.address.street3,
                    r.address.city,
                    r.address.state,
                    r.address.zip,
                )
            )
        ),
        None,
    )
    f: Fields = {
        "icn": icn_rec.full_icn if icn_rec else None,
        "records": sorted(r.patient_id for r in recs),
        "family": last.strip() or None,
        "given": " ".join(given) or None,
        "gender": {"M": "male", "F": "female"}.get(_first(recs, "sex") or "", "unknown"),
        "birthDate": (_first(recs, "dob") or "").split("T")[0] or None,
        "deceased": _dt(_first(recs, "date_of_death"), tz),
        "phone": _first(recs, "phone_home"),
        "line": " | ".join(x for x in (addr.street1, addr.street2, addr.street3) if x) or None if addr else None,
        "city": (addr.city or None) if addr else None,
        "state": (addr.state or None) if addr else None,
        "postalCode": (addr.zip or None) if addr else None,
        "marital": _first(recs, "marital_status"),
    }
    return ("Patient", pid), f


def expected_person(recs: Sequence[PatientRecord], tz: str) -> dict[str, dict[Key, Fields]]:
    """domain -> {(type, id): fields} for one person's site records."""
    out: dict[str, dict[Key, Fields]] = {d: {} for d in DOMAINS}
    k, f = expected_patient(recs, tz)
    out["patient"][k] = f
    vitals = T.vital_table()
    for r in recs:
        st = r.station
        for p in r.problems:
            icd10 = p.icd_code if p.icd_system == "ICD-10-CM" else None
            if p.icd_system == "ICD-9-CM":
                hit = T.icd9_to_icd10(p.icd_code)
                icd10 = hit[0] if hit else None
            out["problems"][("Condition", _rid(st, "9000011", p.ien))] = {
                "clinical": "resolved" if p.resolved else ("active" if p.status == "A" else "inactive"),
                "icd10": icd10,
                "icd9": p.icd_code if p.icd_system == "ICD-9-CM" else None,
                "snomed": p.snomed,
                "onset": _dt(p.onset, tz),
                "abatement": _dt(p.resolved, tz),
                "recorded": _dt(p.entered, tz),
            }
        for a in r.allergies:
            eie = a.status == "entered-in-error"
            system = URI.get((a.code_system or "").upper()) if a.code else None
            cats = [
                c
                for c in dict.fromkeys(
                    {"D": "medication", "F": "food", "O": "environment"}.get(x) for x in a.allergy_type
                )
                if c
            ]
            out["allergies"][("AllergyIntolerance", _rid(st, "120.8", a.ien))] = {
                "clinical": None if eie else "active",
                "verification": "entered-in-error" if eie else ("confirmed" if a.verified else "unconfirmed"),
                "type": {"A": "allergy", "P": "intolerance"}.get(a.mechanism),
                "category": cats,
                "code": [system, a.code] if system else None,
                "text": a.reactant,
                "recorded": _dt(a.origination, tz),
            }
        for rx in r.prescriptions:
            rxnorm = rx.rxnorm or ((T.drug_to_rxnorm(rx.drug_name) or (None,))[0] if rx.drug_name else None)
            out["medications"][("MedicationRequest", _rid(st, "52", rx.ien))] = {
                "status": RX_STATUS.get(rx.status, "unknown"),
                "rxnorm": rxnorm,
                "text": rx.drug_name,
                "authored": _dt(rx.issue_date, tz),
                "refills": int(rx.refills),
                "quantity": _num(rx.quantity),
                "days": _num(rx.days_supply),
                "routing": {"M": "mail", "W": "window"}.get(rx.fill_routing),
            }
        for v in r.vitals:
            vc = vitals.get(v.vital_type.strip().upper())
            raw = v.value.strip()
            parts = raw.split("/") if vc and vc.components else [raw]
            values = [_num(x) for x in parts[:2]] if vc and vc.components else [_num(raw)]
            if None in values or (raw == "99" and vc and vc.loinc == "72514-3"):
                values = []
            ucum = T.unit_to_ucum(vc.va_unit) if vc and vc.va_unit and values else None
            out["vitals"][("Observation", _rid(st, "120.5", v.ien))] = {
                "loinc": vc.loinc if vc else None,
                "effective": _dt(v.taken, tz),
                "values": values,
                "ucum": ucum[0] if ucum else None,
            }
        for vis in r.visits:
            out["encounters"][("Encounter", _rid(st, "9000010", vis.ien))] = {
                "class": ENCOUNTER_CLASS.get(vis.service_category, "AMB"),
                "start": _dt(vis.when, tz),
                "location": vis.location or None,
            }
        for o in r.orders:
            med = o.kind == "medication"
            table = MR_ORDER_STATUS if med else SR_STATUS
            status = (
                "draft"
                if (not o.signed and o.status in ("pending", "active", "unreleased"))
                else table.get(o.status, "unknown")
            )
            system = URI.get((o.code_system or "").upper()) if o.code else None
            code = (o.code if system == RXNORM else None) if med else ([system, o.code] if system else None)
            out["orders"][("MedicationRequest" if med else "ServiceRequest", _rid(st, "100", o.ien))] = {
                "status": status,
                "code": code,
                "text": o.text,
                "authored": _dt(o.entered, tz),
            }
        for fl in r.flags:
            out["flags"][("Flag", _rid(st, "26.13", fl.ien))] = {
                "status": {"active": "active", "inactive": "inactive"}.get(fl.status, "entered-in-error"),
                "text": fl.flag,
                "start": _dt(fl.assigned, tz),
            }
    return out


# --------------------------------------------------------------------------- found, from the target


def _coding(cc: Any, system: str) -> str | None:
    for c in (cc or {}).get("coding") or ():
        if c.get("system") == system and c.get("code"):
            return str(c["code"])
    return None


def _status(cc: Any) -> str | None:
    codings = (cc or {}).get("coding") or ()
    return codings[0].get("code") if codings else None


def _qty_values(res: Mapping[str, Any]) -> tuple[list[float | None], str | None]:
    qs = (
        [res["valueQuantity"]]
        if isinstance(res.get("valueQuantity"), dict)
        else [c.get("valueQuantity") or {} for c in res.get("component") or ()]
    )
    units = {q.get("code") for q in qs if q.get("system") == UCUM}
    return [_num(q.get("value")) for q in qs], (units.pop() if len(units) == 1 else None)


def found_fields(res: Mapping[str, Any], domain: str) -> Fields:
    """The fields in scope of a landed resource, read from its JSON."""
    rt = res.get("resourceType")
    if domain == "patient":
        name = (res.get("name") or [{}])[0]
        addr = (res.get("address") or [{}])[0]
        ms = res.get("maritalStatus") or {}
        idents = res.get("identifier") or ()
        records = sorted(
            f"{i['system'].split(':')[2]}:{i.get('value')}"
            for i in idents
            if str(i.get("system", "")).startswith("urn:va:") and str(i.get("system")).endswith(":2")
        )
        return {
            "icn": next((i.get("value") for i in idents if i.get("system") == ICN), None),
            "records": records,
            "family": name.get("family"),
            "given": " ".join(name.get("given") or ()) or None,
            "gender": res.get("gender"),
            "birthDate": res.get("birthDate"),
            "deceased": res.get("deceasedDateTime"),
            "phone": next((t.get("value") for t in res.get("telecom") or () if t.get("system") == "phone"), None),
            "line": " | ".join(addr.get("line") or ()) or None,
            "city": addr.get("city"),
            "state": addr.get("state"),
            "postalCode": addr.get("postalCode"),
            "marital": ms.get("text"),
        }
    if domain == "problems":
        code = res.get("code")
        return {
            "clinical": _status(res.get("clinicalStatus")),
            "icd10": _coding(code, ICD10),
            "icd9": _coding(code, ICD9),
            "snomed": _coding(code, SNOMED),
            "onset": res.get("onsetDateTime"),
            "abatement": res.get("abatementDateTime"),
            "recorded": res.get("recordedDate"),
        }
    if domain == "allergies":
        code = res.get("code") or {}
        c0 = (code.get("coding") or [None])[0]
        return {
            "clinical": _status(res.get("clinicalStatus")),
            "verification": _status(res.get("verificationStatus")),
            "type": res.get("type"),
            "category": list(res.get("category") or ()),
            "code": [c0.get("system"), c0.get("code")] if c0 else None,
            "text": code.get("text"),
            "recorded": res.get("recordedDate"),
        }
    if domain == "medications":
        med = res.get("medicationCodeableConcept") or {}
        dr = res.get("dispenseRequest") or {}
        routing = next(
            (
                c.get("code")
                for cat in res.get("category") or ()
                for c in cat.get("coding") or ()
                if c.get("code") in ("mail", "window")
            ),
            None,
        )
        return {
            "status": res.get("status"),
            "rxnorm": _coding(med, RXNORM),
            "text": med.get("text"),
            "authored": res.get("authoredOn"),
            "refills": dr.get("numberOfRepeatsAllowed"),
            "quantity": _num((dr.get("quantity") or {}).get("value")),
            "days": _num((dr.get("expectedSupplyDuration") or {}).get("value")),
            "routing": routing,
        }
    if domain == "vitals":
        values, ucum = _qty_values(res)
        return {
            "loinc": _coding(res.get("code"), LOINC),
            "effective": res.get("effectiveDateTime"),
            "values": values,
            "ucum": ucum,
        }
    if domain == "encounters":
        loc = (res.get("location") or [{}])[0].get("location") or {}
        return {
            "class": (res.get("class") or {}).get("code"),
            "start": (res.get("period") or {}).get("start"),
            "location": loc.get("display"),
        }
    if domain == "orders":
        if rt == "MedicationRequest":
            med = res.get("medicationCodeableConcept") or {}
            ocode: Any = _coding(med, RXNORM)
            text = med.get("text")
        else:
            cc = res.get("code") or {}
            c0 = (cc.get("coding") or [None])[0]
            ocode = [c0.get("system"), c0.get("code")] if c0 else None
            text = cc.get("text")
        return {"status": res.get("status"), "code": ocode, "text": text, "authored": res.get("authoredOn")}
    if domain == "flags":
        return {
            "status": res.get("status"),
            "text": (res.get("code") or {}).get("text"),
            "start": (res.get("period") or {}).get("start"),
        }
    return {}


# --------------------------------------------------------------------------- comparison


@dataclass
class Diff:
    person_id: str
    domain: str
    resource: str  # "Type/id"
    kind: str  # missing | changed | extra | unexpected_person | duplicate_patient
    fields: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "domain": self.domain,
            "resource": self.resource,
            "kind": self.kind,
            "fields": self.fields,
        }


def _domain_of(key: Key) -> str:
    rt, rid = key
    if rt == "Patient":
        return "patient"
    file = rid.split("-")[1] if rid.count("-") >= 2 else ""
    return {
        "9000011": "problems",
        "120.8": "allergies",
        "52": "medications",
        "120.5": "vitals",
        "9000010": "encounters",
        "100": "orders",
        "26.13": "flags",
    }.get(file, "other")


def _gate_items(exp: dict[str, dict[Key, Fields]]) -> dict[str, list[Key]]:
    g: dict[str, list[Key]] = {x: [] for x in GATES}
    g["allergies"] = [k for k, f in exp["allergies"].items() if f["clinical"] == "active"]
    g["active_medications"] = [k for k, f in exp["medications"].items() if f["status"] == "active"] + [
        k for k, f in exp["orders"].items() if k[0] == "MedicationRequest" and f["status"] in PENDING
    ]
    g["pending_orders"] = [k for k, f in exp["orders"].items() if k[0] == "ServiceRequest" and f["status"] in PENDING]
    g["flags"] = [k for k, f in exp["flags"].items() if f["status"] == "active"]
    return g


@dataclass
class Reconciliation:
    persons: int
    records: int
    by_domain: dict[str, dict[str, int]]  # expected, found, intact, missing, changed, extra, fields, fields_intact
    fidelity: float | None
    fidelity_by_domain: dict[str, float | None]
    gates: dict[str, dict[str, Any]]
    safety: float | None
    diffs: list[Diff]
    person_counts: dict[str, dict[str, list[int]]]  # person -> domain -> [expected, found] (persons with diffs)
    unconfirmed_in_target: list[str]  # persons not migrated yet (partly) in the target
    duplicates: dict[str, int]  # source person -> target Patients filed for it (> 1)
    conservation: dict[str, Any] = field(default_factory=dict)
    detection: dict[str, Any] = field(default_factory=dict)
    attribution: dict[str, Any] = field(default_factory=dict)
    terminology_gaps: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The part that goes into results.json (no per-person rows)."""
        return {
            "persons": self.persons,
            "records": self.records,
            "fidelity": self.fidelity,
            "fidelity_by_domain": self.fidelity_by_domain,
            "by_domain": self.by_domain,
            "safety": self.safety,
            "safety_gates": self.gates,
            "differences": len(self.diffs),
            "persons_with_differences": len(self.person_counts),
            "unconfirmed_in_target": len(self.unconfirmed_in_target),
            "duplicate_persons": len(self.duplicates),
            "conservation": self.conservation,
            "fault_detection": self.detection,
            "loss_attribution": self.attribution,
            "terminology_gaps": {k: v[:50] for k, v in self.terminology_gaps.items()},
        }

    def to_dict(self) -> dict[str, Any]:
        d = self.summary()
        d["terminology_gaps"] = self.terminology_gaps
        d["diffs"] = [x.to_dict() for x in self.diffs]
        d["person_counts"] = self.person_counts
        d["unconfirmed_in_target_persons"] = self.unconfirmed_in_target
        d["duplicates"] = self.duplicates
        return d


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) < 1e-9
    return bool(a == b)


def reconcile(
    records: Sequence[PatientRecord],
    target: Any,
    *,
    status: Mapping[str, str],
    tz: str = "UTC",
) -> Reconciliation:
    """Compare the target with the expectation derived from ``records`` (status: patient_id -> disposition)."""
    # The per-person dicts built here are acyclic and freed as the loop goes on: a cyclic-collector pass
    # over the (long-lived) source records every few thousand allocations: 5-10 % of the time (10,000
    # patients, 3.5 vs 3.2 CPU-s; noisy).
    with gc_paused():
        return _reconcile(records, target, status, tz)


def _reconcile(records: Sequence[PatientRecord], target: Any, status: Mapping[str, str], tz: str) -> Reconciliation:
    persons: dict[str, list[PatientRecord]] = defaultdict(list)
    for r in records:
        persons[person_of(r)].append(r)
    by_domain = {d: Counter() for d in DOMAINS}  # type: ignore[var-annotated]
    gates = {g: Counter() for g in GATES}  # type: ignore[var-annotated]
    diffs: list[Diff] = []
    person_counts: dict[str, dict[str, list[int]]] = {}
    unconfirmed: list[str] = []
    in_target = set(target.persons())
    for pid, recs in persons.items():
        migrated = all(status.get(r.patient_id) == "migrated" for r in recs)
        if not migrated:
            if pid in in_target:
                unconfirmed.append(pid)
            continue
        exp = expected_person(recs, tz)
        # one person at a time: read, compare, drop (reading 500 at once measured slower: the bodies
        # went cold in the cache before they were compared)
        got = (
            {(res.get("resourceType"), res.get("id")): res for res in target.read_person(pid)}
            if pid in in_target
            else {}
        )
        seen: set[Key] = set()
        changed: set[Key] = set()
        pdiff = False
        for domain in DOMAINS:
            c = by_domain[domain]
            for key, ef in exp[domain].items():
                c["expected"] += 1
                c["fields"] += len(ef)
                res = got.get(key)
                if res is None:
                    c["missing"] += 1
                    diffs.append(Diff(pid, domain, f"{key[0]}/{key[1]}", "missing", sorted(ef)))
                    pdiff = True
                    continue
                seen.add(key)
                c["found"] += 1
                ff = found_fields(res, domain)
                bad = [k for k, v in ef.items() if not _eq(v, ff.get(k))]
                c["fields_intact"] += len(ef) - len(bad)
                if bad:
                    changed.add(key)
                    c["changed"] += 1
                    diffs.append(Diff(pid, domain, f"{key[0]}/{key[1]}", "changed", bad))
                    pdiff = True
                else:
                    c["intact"] += 1
        # sorted: a set's order follows str hashing, which varies between processes
        for key in sorted(got.keys() - seen, key=lambda k: (str(k[0]), str(k[1]))):
            d = _domain_of(key)  # type: ignore[arg-type]
            by_domain.setdefault(d, Counter())["extra"] += 1
            diffs.append(Diff(pid, d, f"{key[0]}/{key[1]}", "extra"))
            pdiff = True
        for gate, keys in _gate_items(exp).items():
            g = gates[gate]
            for key in keys:
                g["expected"] += 1
                g["intact"] += key in seen and key not in changed
        if pdiff:
            person_counts[pid] = {d: [len(exp[d]), sum(1 for k in got if _domain_of(k) == d)] for d in DOMAINS}  # type: ignore[arg-type]
    # target persons that are no source person: a split (or a stranger); map back through station:DFN ids
    source_of = {r.patient_id: person_of(r) for r in records}
    duplicates: dict[str, int] = {}
    for tp in sorted(in_target - set(persons)):
        owners: set[str] = set()
        for res in target.read_person(tp):
            if res.get("resourceType") == "Patient":
                owners |= {source_of[x] for x in found_fields(res, "patient")["records"] if x in source_of}
        for o in sorted(owners):
            duplicates[o] = duplicates.get(o, 1) + 1
            diffs.append(Diff(o, "patient", f"person/{tp}", "duplicate_patient"))
            person_counts.setdefault(o, {})
        if not owners:
            diffs.append(Diff(tp, "patient", f"person/{tp}", "unexpected_person"))
    fields = sum(c["fields"] for c in by_domain.values())
    intact = sum(c["fields_intact"] for c in by_domain.values())
    fid_dom = {d: (c["fields_intact"] / c["fields"] if c["fields"] else None) for d, c in by_domain.items()}
    gate_out = {
        g: {
            "expected": int(c["expected"]),
            "intact": int(c["intact"]),
            "lost_or_changed": int(c["expected"] - c["intact"]),
            "passed": c["expected"] == c["intact"],
        }
        for g, c in gates.items()
    }
    g_exp = sum(c["expected"] for c in gates.values())
    g_ok = sum(c["intact"] for c in gates.values())
    counts = Counter(status.get(r.patient_id, "unknown") for r in records)
    conservation = {
        "records": len(records),
        "migrated": counts.get("migrated", 0),
        "failed": counts.get("failed", 0),
        "quarantined": counts.get("quarantined", 0),
        "adds_up": counts.get("migrated", 0) + counts.get("failed", 0) + counts.get("quarantined", 0) == len(records),
        "persons": len(persons),
        "persons_migrated": sum(
            1 for p, rs in persons.items() if all(status.get(r.patient_id) == "migrated" for r in rs)
        ),
        "target_persons": len(in_target),
    }
    return Reconciliation(
        len(persons),
        len(records),
        {d: dict(c) for d, c in by_domain.items()},
        intact / fields if fields else None,
        fid_dom,
        gate_out,
        g_ok / g_exp if g_exp else None,
        diffs,
        person_counts,
        unconfirmed,
        duplicates,
        conservation,
        terminology_gaps=terminology_gaps(records),
    )


# --------------------------------------------------------------------------- worklist and scoring


def terminology_gaps(records: Iterable[PatientRecord]) -> dict[str, list[dict[str, Any]]]:
    """Unmapped VA drugs, ICD-9 codes and free-text allergies, by code, with the patients affected."""
    drugs: dict[str, set[str]] = defaultdict(set)
    icd9: dict[str, set[str]] = defaultdict(set)
    free: dict[str, set[str]] = defaultdict(set)
    for r in records:
        for rx in r.prescriptions:
            if not rx.rxnorm and rx.drug_name and T.drug_to_rxnorm(rx.drug_name) is None:
                drugs[rx.drug_name].add(r.patient_id)
        for p in r.problems:
            if p.icd_system == "ICD-9-CM":
                icd9[p.icd_code].add(r.patient_id)
        for a in r.allergies:
            if not a.code and a.status == "active":
                free[a.reactant].add(r.patient_id)

    def rows(d: dict[str, set[str]], extra: Any = None) -> list[dict[str, Any]]:
        out = []
        for code, pats in sorted(d.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            row: dict[str, Any] = {"code": code, "patients": len(pats)}
            if extra:
                row.update(extra(code))
            out.append(row)
        return out

    def icd_map(code: str) -> dict[str, Any]:
        hit = T.icd9_to_icd10(code)
        return {"maps_to": hit[0] if hit else None}

    return {"unmapped_va_drugs": rows(drugs), "icd9_codes": rows(icd9, icd_map), "free_text_allergies": rows(free)}


def score_faults(
    answer: Sequence[Any],
    rec: Reconciliation,
    status: Mapping[str, str],
    reasons: Mapping[str, str],
    person_records: Mapping[str, list[str]],
) -> dict[str, Any]:
    """Per fault kind: injected, detected by a check, reported by reconciliation, missed."""
    by_person: dict[str, list[Diff]] = defaultdict(list)
    for d in rec.diffs:
        by_person[d.person_id].append(d)
    out: dict[str, dict[str, Any]] = {}
    per_entry: list[dict[str, Any]] = []
    for e in answer:
        if e.kind == "transient_outage":
            t = out.setdefault(
                e.kind,
                {
                    "spec_type": "network_timeout",
                    "injected": 0,
                    "failed_attempts": 0,
                    "stopped_records": 0,
                    "by_type": {},
                },
            )
            t["by_type"][e.spec_type] = t["by_type"].get(e.spec_type, 0) + 1
            t["injected"] += 1
            t["failed_attempts"] += e.attempts
            if "retries exhausted" in reasons.get(e.patient_id, "") and e.substage in reasons.get(e.patient_id, ""):
                t["stopped_records"] += 1
            continue
        k = out.setdefault(e.kind, {"spec_type": e.spec_type, "injected": 0, "detected": 0, "reported": 0, "missed": 0})
        k["injected"] += 1
        recs = person_records.get(e.person_id, [])
        stopped = any(status.get(p) != "migrated" and "retries exhausted" not in reasons.get(p, "") for p in recs)
        diffs = by_person.get(e.person_id, [])
        if e.resource and not e.resource.startswith("Patient/"):
            hit = any(d.resource == e.resource for d in diffs)
        else:
            hit = bool(diffs)
        outcome = "detected" if stopped else ("reported" if hit else "missed")
        k[outcome] += 1
        per_entry.append({"kind": e.kind, "person_id": e.person_id, "outcome": outcome})
    for k in out.values():
        if "detected" in k:
            k["detection_rate"] = (k["detected"] + k["reported"]) / k["injected"] if k["injected"] else None
    inj = sum(v["injected"] for kk, v in out.items() if kk != "transient_outage")
    found = sum(v["detected"] + v["reported"] for kk, v in out.items() if kk != "transient_outage")
    return {
        "by_fault": out,
        "injected": inj,
        "detected_or_reported": found,
        "detection_rate": found / inj if inj else None,
        "entries": per_entry,
    }


def attribute_losses(
    rec: Reconciliation,
    answer: Sequence[Any],
    defects: Iterable[Any],
    status: Mapping[str, str],
    reasons: Mapping[str, str],
    person_records: Mapping[str, list[str]],
) -> dict[str, Any]:
    """Records not migrated and resources lost or changed, by cause: source defect, injected fault, migration."""
    faulted = {e.person_id for e in answer if e.kind != "transient_outage"}
    defective = {getattr(d, "patient_id", None) or d.get("patient_id") for d in defects}  # type: ignore[union-attr]
    rec_person = {p: person for person, ps in person_records.items() for p in ps}
    records = Counter()  # type: ignore[var-annotated]
    by_reason: dict[str, Counter] = defaultdict(Counter)
    for pid, st in status.items():
        if st == "migrated":
            continue
        person = rec_person.get(pid, pid)
        cause = (
            "injected_fault"
            if person in faulted
            else ("source_defect" if any(p in defective for p in person_records.get(person, [pid])) else "migration")
        )
        if "retries exhausted" in reasons.get(pid, ""):
            cause = "migration"
        records[cause] += 1
        by_reason[cause][reasons.get(pid, "").split(" (")[0]] += 1
    resources = Counter()  # type: ignore[var-annotated]
    for d in rec.diffs:
        if d.kind in ("missing", "changed", "duplicate_patient"):
            cause = (
                "injected_fault"
                if d.person_id in faulted
                else (
                    "source_defect" if any(p in defective for p in person_records.get(d.person_id, [])) else "migration"
                )
            )
            resources[cause] += 1
    return {
        "records_not_migrated": dict(records),
        "records_by_reason": {k: dict(v) for k, v in by_reason.items()},
        "resources_lost_or_changed": dict(resources),
    }
