"""Map one person's VistA records (PatientRecord, one per station) to one FHIR R4 transaction Bundle.

Decisions (the VA FHIR map set and DESIGN.md where they speak; ours where they do not):

* **Bundle type: transaction.** A person migrates all-or-nothing (Patient merge and clinical data
  together), which is transaction semantics; each entry is ``PUT Type/id`` with a deterministic id, so
  loading the same bundle twice leaves one copy (idempotent reload). Entries carry
  ``fullUrl = urn:uuid:<uuid5 of Type/id>`` and references inside the bundle use those URNs, the form
  R4 defines for resolving references within a transaction.
* **Ids** come from the source keys: ``<station>-<file>-<ien>`` (e.g. ``500-9000011-42`` for a problem),
  and ``icn-<full ICN>`` for the merged Patient (``<station>-2-<dfn>`` if the record has no ICN).
* **One Patient per ICN.** Site records are taken in (station, DFN) order; each demographic field comes
  from the first record that has it. Identifiers: the full ICN (``urn:oid:2.16.840.1.113883.4.349``),
  one station-qualified DFN per site record (``urn:va:<station>:2``), the SSN (us-ssn), deduplicated.
* **Dates** keep their precision; a dateTime with a time gets the offset of ``tz`` at that instant
  (FHIR requires a zone once there is a time). A corrupt date passes through as it is, so that
  validate (not map) is where corruption shows.
* The map is literal: ICD-9 stays ICD-9, drugs without RxNorm carry text only, vitals carry VistA's unit
  text. :mod:`vistasim.fhir.standardize` adds ICD-10-CM, RxNorm and UCUM and reports what it could not.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vistasim.errors import ConfigError, InputError
from vistasim.fhir import terminology as T
from vistasim.model import Allergy, Order, PatientRecord, Prescription, Problem, RecordFlag, Visit, Vital

__all__ = ["map_person", "map_people", "group_by_person", "resource_id", "full_url", "fhir_datetime",
           "fhir_date", "split_name", "person_conflicts", "FILES"]

# FileMan file numbers, used in ids and identifier systems
FILES = {"Patient": "2", "Condition": "9000011", "AllergyIntolerance": "120.8", "Prescription": "52",
         "Observation": "120.5", "Encounter": "9000010", "Order": "100", "Flag": "26.13"}
_NS = uuid.UUID("6f0c3f4e-2b7e-5a4c-9d57-7a1f5c0e9b21")  # fixed namespace: ids stable across runs

_NAME_SUFFIXES = frozenset({"JR", "SR", "II", "III", "IV", "V", "MD", "PHD"})


def resource_id(station: str, file: str, ien: int | str) -> str:
    return f"{station}-{file}-{ien}"


_NS_BYTES = _NS.bytes
_VARIANT = "89ab89ab89ab89ab"  # RFC 4122 variant: the top two bits of hex digit 16 become 10


def full_url(rtype: str, rid: str) -> str:
    """``urn:uuid:`` + uuid5(_NS, "Type/id"), the same text as ``uuid.uuid5`` gives.

    Built from the SHA-1 hex digest directly (version nibble 5, variant bits 10): three times faster
    than going through ``uuid.UUID`` objects, and it runs once per resource. Not cached: every
    resource id is distinct, so a cache only ever missed.
    """
    x = hashlib.sha1(_NS_BYTES + f"{rtype}/{rid}".encode()).hexdigest()
    return f"urn:uuid:{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[int(x[16], 16)]}{x[17:20]}-{x[20:32]}"


# --------------------------------------------------------------------------- dates
@lru_cache(maxsize=64)
def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"time zone {tz!r} is not an IANA zone name: use e.g. 'UTC' or 'America/New_York'") from exc


@lru_cache(maxsize=262144)
def fhir_datetime(value: str, tz: str = "UTC") -> str:
    """Model date (any precision) -> FHIR dateTime; a time gets ``tz``'s offset at that moment.

    Values that are not ISO 8601 come back unchanged, for the validator to flag.
    """
    if "T" not in value:
        return value
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        # A corrupt date is passed through unchanged: validate's schema_check reports it (data_corruption)
        # instead of the map stage failing on data it was never meant to judge.
        return value
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_zone(tz))
    text = dt.isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def fhir_date(value: str) -> str:
    """Model date -> FHIR date (time of day dropped, precision kept)."""
    return value.split("T", 1)[0]


# --------------------------------------------------------------------------- small builders
def _ref(rtype: str, rid: str) -> dict[str, str]:
    return {"reference": full_url(rtype, rid)}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    c = {"system": system, "code": code}
    if display:
        c["display"] = display
    return c


def _cc(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [_coding(system, code, display)]}


def _source_id(station: str, file: str, ien: int | str) -> list[dict[str, str]]:
    return [{"use": "secondary", "system": T.source_system(station, file), "value": str(ien)}]


def split_name(fileman: str) -> dict[str, Any]:
    """FileMan ``LAST,FIRST MIDDLE [SUFFIX]`` -> HumanName (family, given [, suffix])."""
    last, _, rest = fileman.partition(",")
    parts = rest.split()
    suffix = [p for p in parts[1:] if p.replace(".", "") in _NAME_SUFFIXES]
    given = [p for p in parts if p not in suffix]
    name: dict[str, Any] = {"use": "official", "family": last.strip()} if last.strip() else {"use": "official"}
    if given:
        name["given"] = given
    if suffix:
        name["suffix"] = suffix
    return name


# --------------------------------------------------------------------------- Patient (merged)
def _first(records: Sequence[PatientRecord], attr: str) -> Any:
    for r in records:
        v = getattr(r, attr)
        if v not in (None, ""):
            return v
    return None


def person_conflicts(records: Sequence[PatientRecord]) -> list[str]:
    """Names of demographic fields on which a person's site records disagree (values never shown)."""
    out = []
    for attr in ("name", "sex", "dob", "ssn", "date_of_death", "full_icn"):
        vals = {getattr(r, attr) for r in records if getattr(r, attr) not in (None, "")}
        if len(vals) > 1:
            out.append(attr)
    return out


def patient_id_for(records: Sequence[PatientRecord]) -> str:
    icn = _first(records, "icn")
    if icn:
        return "icn-" + next(r.full_icn for r in records if r.icn)
    r0 = records[0]
    return resource_id(r0.station, FILES["Patient"], r0.dfn)


def _patient(records: Sequence[PatientRecord], pid: str, tz: str) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Patient", "id": pid}
    ids: list[dict[str, Any]] = []
    seen = set()
    for r in records:
        if r.icn and ("icn", r.full_icn) not in seen:
            seen.add(("icn", r.full_icn))
            ids.append({"use": "official", "system": T.VA_ICN, "value": r.full_icn})
    for r in records:
        ids.append({"use": "secondary", "system": T.source_system(r.station, FILES["Patient"]),
                    "value": str(r.dfn), "assigner": {"display": f"VA station {r.station}"}})
    for r in records:
        if r.ssn and ("ssn", r.ssn) not in seen:
            seen.add(("ssn", r.ssn))
            ids.append({"use": "usual", "system": T.US_SSN, "value": r.ssn})
    res["identifier"] = ids
    ext = _race_ethnicity(_first(records, "race"), _first(records, "ethnicity"))
    if ext:
        res["extension"] = ext
    name = _first(records, "name")
    if name:
        res["name"] = [split_name(name)]
    phone = _first(records, "phone_home")
    if phone:
        res["telecom"] = [{"system": "phone", "value": phone, "use": "home"}]
    sex = _first(records, "sex")
    res["gender"] = {"M": "male", "F": "female"}.get(sex or "", "unknown")
    dob = _first(records, "dob")
    if dob:
        res["birthDate"] = fhir_date(dob)
    dod = _first(records, "date_of_death")
    if dod:
        res["deceasedDateTime"] = fhir_datetime(dod, tz)
    for r in records:
        a = r.address
        lines = [x for x in (a.street1, a.street2, a.street3) if x]
        if lines or a.city or a.state or a.zip:
            addr: dict[str, Any] = {"use": "home"}
            if lines:
                addr["line"] = lines
            for k, v in (("city", a.city), ("state", a.state), ("postalCode", a.zip)):
                if v:
                    addr[k] = v
            addr["country"] = "US"
            res["address"] = [addr]
            break
    ms = _first(records, "marital_status")
    if ms:
        m = T.marital_table().get(ms.strip().upper())
        res["maritalStatus"] = ({"coding": [_coding(m[2], m[0], m[1])], "text": ms} if m else {"text": ms})
    return res


def _race_ethnicity(race: str | None, eth: str | None) -> list[dict[str, Any]]:
    out = []
    for value, table, url in ((race, T.OMB_RACE, T.US_CORE_RACE), (eth, T.OMB_ETHNICITY, T.US_CORE_ETHNICITY)):
        if not value:
            continue
        sub: list[dict[str, Any]] = []
        hit = table.get(value.strip().upper())
        if hit:
            sub.append({"url": "ombCategory", "valueCoding": _coding(T.CDC_RACE, hit[0], hit[1])})
        sub.append({"url": "text", "valueString": value})
        out.append({"url": url, "extension": sub})
    return out


# --------------------------------------------------------------------------- clinical resources
def _condition(r: PatientRecord, p: Problem, subject: dict[str, str], tz: str) -> dict[str, Any]:
    rid = resource_id(r.station, FILES["Condition"], p.ien)
    status = "resolved" if p.resolved else ("active" if p.status == "A" else "inactive")
    codings = [_coding(T.CODE_SYSTEM_URI.get(p.icd_system, T.ICD10CM), p.icd_code, p.description or None)]
    if p.snomed:
        codings.append(_coding(T.SNOMED, p.snomed))
    code: dict[str, Any] = {"coding": codings}
    if p.description:
        code["text"] = p.description
    res: dict[str, Any] = {
        "resourceType": "Condition", "id": rid, "identifier": _source_id(r.station, FILES["Condition"], p.ien),
        "clinicalStatus": _cc(T.SYS_CONDITION_CLINICAL, status),
        "verificationStatus": _cc(T.SYS_CONDITION_VER, "confirmed"),
        "category": [_cc(T.CONDITION_CATEGORY, "problem-list-item", "Problem List Item")],
        "code": code, "subject": subject,
    }
    if p.onset:
        res["onsetDateTime"] = fhir_datetime(p.onset, tz)
    if p.resolved:
        res["abatementDateTime"] = fhir_datetime(p.resolved, tz)
    if p.entered:
        res["recordedDate"] = fhir_datetime(p.entered, tz)
    return res


_ALLERGY_CATEGORY = {"D": "medication", "F": "food", "O": "environment"}


def _allergy(r: PatientRecord, a: Allergy, patient: dict[str, str], tz: str) -> dict[str, Any]:
    rid = resource_id(r.station, FILES["AllergyIntolerance"], a.ien)
    res: dict[str, Any] = {"resourceType": "AllergyIntolerance", "id": rid,
                           "identifier": _source_id(r.station, FILES["AllergyIntolerance"], a.ien)}
    if a.status == "entered-in-error":
        res["verificationStatus"] = _cc(T.SYS_AI_VER, "entered-in-error")  # ait-2: no clinicalStatus then
    else:
        res["clinicalStatus"] = _cc(T.SYS_AI_CLINICAL, "active" if a.status == "active" else "inactive")
        res["verificationStatus"] = _cc(T.SYS_AI_VER, "confirmed" if a.verified else "unconfirmed")
    kind = {"A": "allergy", "P": "intolerance"}.get(a.mechanism)
    if kind:
        res["type"] = kind
    cats = [_ALLERGY_CATEGORY[c] for c in dict.fromkeys(a.allergy_type) if c in _ALLERGY_CATEGORY]
    if cats:
        res["category"] = cats
    code: dict[str, Any] = {}
    system = T.CODE_SYSTEM_URI.get((a.code_system or "").upper()) if a.code else None
    if system:
        code["coding"] = [_coding(system, a.code or "")]
    code["text"] = a.reactant
    res["code"] = code
    res["patient"] = patient
    if a.origination:
        res["recordedDate"] = fhir_datetime(a.origination, tz)
    if a.reactions:
        res["reaction"] = [{"manifestation": [{"text": x} for x in a.reactions]}]
    return res


_RX_STATUS = {"active": "active", "discontinued": "stopped", "expired": "completed", "hold": "on-hold",
              "suspended": "active", "pending": "draft", "cancelled": "cancelled", "deleted": "entered-in-error"}


def _medication_cc(text: str, rxnorm: str | None) -> dict[str, Any]:
    cc: dict[str, Any] = {}
    if rxnorm:
        cc["coding"] = [_coding(T.RXNORM, rxnorm)]
    cc["text"] = text
    return cc


def _prescription(r: PatientRecord, rx: Prescription, subject: dict[str, str], tz: str) -> dict[str, Any]:
    rid = resource_id(r.station, FILES["Prescription"], rx.ien)
    routing = {"M": ("mail", "Mail (CMOP)"), "W": ("window", "Window")}.get(rx.fill_routing)
    cats = [_cc(T.MEDREQ_CATEGORY, "community", "Community")]
    if routing:
        cats.append(_cc(T.FILL_ROUTING, *routing))
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest", "id": rid,
        "identifier": _source_id(r.station, FILES["Prescription"], rx.ien)
        + [{"use": "usual", "system": T.source_system(r.station, "52.rx"), "value": rx.rx_number}],
        "status": _RX_STATUS.get(rx.status, "unknown"), "intent": "order", "category": cats,
        "medicationCodeableConcept": _medication_cc(rx.drug_name, rx.rxnorm), "subject": subject,
    }
    if rx.issue_date:
        res["authoredOn"] = fhir_datetime(rx.issue_date, tz)
    if rx.sig:
        res["dosageInstruction"] = [{"text": rx.sig}]
    dr: dict[str, Any] = {"numberOfRepeatsAllowed": int(rx.refills),
                          "quantity": {"value": _num(rx.quantity)},
                          "expectedSupplyDuration": {"value": int(rx.days_supply), "unit": "days",
                                                     "system": T.UCUM, "code": "d"}}
    res["dispenseRequest"] = dr
    return res


def _num(x: float | int | str) -> float | int:
    f = float(x)
    return int(f) if f.is_integer() and abs(f) < 2**53 else f


_ABSENT = {"REFUSED": "asked-declined", "UNAVAILABLE": "not-performed", "PASS": "not-performed",
           "99": "asked-unknown"}


def _vital(r: PatientRecord, v: Vital, subject: dict[str, str], tz: str) -> dict[str, Any]:
    rid = resource_id(r.station, FILES["Observation"], v.ien)
    vc = T.vital_table().get(v.vital_type.strip().upper())
    code: dict[str, Any] = {"coding": [_coding(T.LOINC, vc.loinc, vc.display)]} if vc else {}
    code["text"] = v.vital_type
    res: dict[str, Any] = {
        "resourceType": "Observation", "id": rid, "identifier": _source_id(r.station, FILES["Observation"], v.ien),
        "status": "final",
        "category": [_cc(T.OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")],
        "code": code, "subject": subject, "effectiveDateTime": fhir_datetime(v.taken, tz),
    }
    raw = v.value.strip()
    unit = vc.va_unit if vc else ""
    absent = _ABSENT.get(raw.upper())
    if raw == "99" and not (vc and vc.loinc == "72514-3"):  # 99 means "unable to respond" only for pain
        absent = None
    if absent:
        res["dataAbsentReason"] = _cc(T.DATA_ABSENT, absent)
        return res
    if vc and vc.components:
        parts = raw.split("/")
        try:
            nums = [_num(x) for x in parts[:2]]
        except ValueError:
            nums = []
        if len(nums) != 2:
            res["dataAbsentReason"] = _cc(T.DATA_ABSENT, "error")
            return res
        res["component"] = [
            {"code": {"coding": [_coding(T.LOINC, c[0], c[1])]}, "valueQuantity": _qty(n, unit)}
            for c, n in zip(vc.components, nums)]
        return res
    try:
        res["valueQuantity"] = _qty(_num(raw), unit)
    except ValueError:
        res["dataAbsentReason"] = _cc(T.DATA_ABSENT, "error")
    return res


def _qty(value: float | int, unit: str) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value}
    if unit:
        q["unit"] = unit
    return q


_ENCOUNTER_CLASS = {"A": ("AMB", "ambulatory"), "I": ("AMB", "ambulatory"), "X": ("AMB", "ambulatory"),
                    "E": ("AMB", "ambulatory"), "H": ("IMP", "inpatient encounter"),
                    "D": ("IMP", "inpatient encounter"), "T": ("VR", "virtual")}


def _encounter(r: PatientRecord, v: Visit, subject: dict[str, str], tz: str) -> dict[str, Any]:
    rid = resource_id(r.station, FILES["Encounter"], v.ien)
    cls = _ENCOUNTER_CLASS.get(v.service_category, ("AMB", "ambulatory"))
    res: dict[str, Any] = {
        "resourceType": "Encounter", "id": rid, "identifier": _source_id(r.station, FILES["Encounter"], v.ien),
        "status": "finished", "class": _coding(T.ACT_CODE, cls[0], cls[1]), "subject": subject,
        "period": {"start": fhir_datetime(v.when, tz)},
    }
    if v.location:
        res["location"] = [{"location": {"display": v.location}}]
    return res


# (kind) -> SNOMED category of a ServiceRequest (R4 example binding servicerequest-category)
_SR_CATEGORY = {"lab": ("108252007", "Laboratory procedure"), "imaging": ("363679005", "Imaging"),
                "consult": ("11429006", "Consultation"), "nursing": ("9632001", "Nursing procedure")}
_SR_STATUS = {"pending": "draft", "unreleased": "draft", "active": "active", "complete": "completed",
              "discontinued": "revoked", "expired": "revoked", "cancelled": "revoked", "hold": "on-hold",
              "lapsed": "revoked"}
_MR_ORDER_STATUS = {"pending": "draft", "unreleased": "draft", "active": "active", "complete": "completed",
                    "discontinued": "stopped", "expired": "stopped", "cancelled": "cancelled",
                    "hold": "on-hold", "lapsed": "stopped"}


def order_status(o: Order) -> str:
    """FHIR status of an order: unsigned orders are drafts whatever VistA's status says."""
    table = _MR_ORDER_STATUS if o.kind == "medication" else _SR_STATUS
    if not o.signed and o.status in ("pending", "active", "unreleased"):
        return "draft"
    return table.get(o.status, "unknown")


def _order(r: PatientRecord, o: Order, subject: dict[str, str], tz: str) -> dict[str, Any]:
    rid = resource_id(r.station, FILES["Order"], o.ien)
    ident = _source_id(r.station, FILES["Order"], o.ien)
    system = T.CODE_SYSTEM_URI.get((o.code_system or "").upper()) if o.code else None
    if o.kind == "medication":
        res: dict[str, Any] = {"resourceType": "MedicationRequest", "id": rid, "identifier": ident,
                               "status": order_status(o), "intent": "order",
                               "medicationCodeableConcept": _medication_cc(
                                   o.text, o.code if system == T.RXNORM else None),
                               "subject": subject}
    else:
        code: dict[str, Any] = {"coding": [_coding(system, o.code or "")]} if system else {}
        code["text"] = o.text
        res = {"resourceType": "ServiceRequest", "id": rid, "identifier": ident, "status": order_status(o),
               "intent": "order"}
        cat = _SR_CATEGORY.get(o.kind)
        if cat:
            res["category"] = [_cc(T.SNOMED, *cat)]
        res["code"] = code
        res["subject"] = subject
    if o.entered:
        res["authoredOn"] = fhir_datetime(o.entered, tz)
    return res


# VA Category I (national) flags -> R4 flag-category; local (Category II) flags default to clinical.
_FLAG_CATEGORY = {"HIGH RISK FOR SUICIDE": ("safety", "Safety"), "BEHAVIORAL": ("behavioral", "Behavioral"),
                  "MISSING PATIENT": ("admin", "Administrative"),
                  "URGENT ADDRESS AS FEMALE": ("admin", "Administrative"),
                  "URGENT ADDRESS AS MALE": ("admin", "Administrative")}


def _flag(r: PatientRecord, f: RecordFlag, subject: dict[str, str], tz: str) -> dict[str, Any]:
    rid = resource_id(r.station, FILES["Flag"], f.ien)
    cat = _FLAG_CATEGORY.get(f.flag.strip().upper(), ("clinical", "Clinical"))
    cc = _cc(T.FLAG_CATEGORY, *cat)
    cc["text"] = "Category I (national)" if f.category == "I" else "Category II (local)"
    res: dict[str, Any] = {
        "resourceType": "Flag", "id": rid, "identifier": _source_id(r.station, FILES["Flag"], f.ien),
        "status": {"active": "active", "inactive": "inactive"}.get(f.status, "entered-in-error"),
        "category": [cc], "code": {"text": f.flag}, "subject": subject,
    }
    if f.assigned:
        res["period"] = {"start": fhir_datetime(f.assigned, tz)}
    return res


# --------------------------------------------------------------------------- bundles
def _entry(res: dict[str, Any]) -> dict[str, Any]:
    rt, rid = res["resourceType"], res["id"]
    return {"fullUrl": full_url(rt, rid), "resource": res, "request": {"method": "PUT", "url": f"{rt}/{rid}"}}


def map_person(records: list[PatientRecord], *, tz: str = "UTC") -> dict[str, Any]:
    """One person's site records (same ICN) -> one FHIR R4 transaction Bundle of JSON-ready dicts."""
    if not records:
        raise InputError("map_person got no records: pass the PatientRecords of one person (one ICN)")
    _zone(tz)
    recs = sorted(records, key=lambda r: (r.station, r.dfn))
    icns = {r.full_icn for r in recs if r.icn}
    if len(icns) > 1:
        raise InputError("map_person got records of several ICNs: group records by person first (group_by_person)")
    pid = patient_id_for(recs)
    subject = _ref("Patient", pid)
    resources: list[dict[str, Any]] = [_patient(recs, pid, tz)]
    for r in recs:
        resources.extend(_condition(r, p, subject, tz) for p in r.problems)
        resources.extend(_allergy(r, a, subject, tz) for a in r.allergies)
        resources.extend(_prescription(r, x, subject, tz) for x in r.prescriptions)
        resources.extend(_vital(r, v, subject, tz) for v in r.vitals)
        resources.extend(_encounter(r, v, subject, tz) for v in r.visits)
        resources.extend(_order(r, o, subject, tz) for o in r.orders)
        resources.extend(_flag(r, f, subject, tz) for f in r.flags)
    return {"resourceType": "Bundle", "id": "person-" + pid, "type": "transaction",
            "entry": [_entry(x) for x in resources]}


def group_by_person(records: Iterable[PatientRecord]) -> dict[str, list[PatientRecord]]:
    """Records keyed by full ICN (records without an ICN stand alone, keyed ``station:DFN``), input order kept."""
    out: dict[str, list[PatientRecord]] = {}
    for r in records:
        out.setdefault(r.full_icn if r.icn else r.patient_id, []).append(r)
    return out


def map_people(records: Iterable[PatientRecord], *, tz: str = "UTC") -> Iterator[dict[str, Any]]:
    """A bundle per person, in first-seen order."""
    for recs in group_by_person(records).values():
        yield map_person(recs, tz=tz)
