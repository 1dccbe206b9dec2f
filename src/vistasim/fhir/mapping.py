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
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vistasim import _accel
from vistasim.errors import ConfigError, InputError
from vistasim.fhir import terminology as T
from vistasim.model import Order, PatientRecord

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


_sha1 = hashlib.sha1
_VARIANT_OF = {f"{i:x}": _VARIANT[i] for i in range(16)}  # hex digit 16 -> the same digit with bits 10xx


def _put_entry(prefix: Any, rtype: str, rid: str, res: dict[str, Any]) -> dict[str, Any]:
    """A bundle entry whose fullUrl continues ``prefix`` (the SHA-1 state of namespace + type, see
    ``full_url``) with the id: the same urn:uuid as ``full_url(rtype, rid)``, without rehashing the prefix."""
    h = prefix.copy()
    h.update(rid.encode())
    x = h.hexdigest()
    return {
        "fullUrl": f"urn:uuid:{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT_OF[x[16]]}{x[17:20]}-{x[20:32]}",
        "resource": res,
        "request": {"method": "PUT", "url": f"{rtype}/{rid}"},
    }


def full_url(rtype: str, rid: str) -> str:
    """``urn:uuid:`` + uuid5(_NS, "Type/id"), the same text as ``uuid.uuid5`` gives.

    Built from the SHA-1 hex digest directly (version nibble 5, variant bits 10): three times faster
    than going through ``uuid.UUID`` objects, and it runs once per resource. Not cached: every
    resource id is distinct, so a cache only ever missed.
    """
    x = _sha1(_NS_BYTES + f"{rtype}/{rid}".encode()).hexdigest()
    return f"urn:uuid:{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT_OF[x[16]]}{x[17:20]}-{x[20:32]}"


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


# Model dateTimes are "YYYY-MM-DDTHH:MM:SS" (no zone). For those, fhir_datetime's text is the value
# itself followed by the zone's offset at that wall time (fold 0, as ``replace(tzinfo=...)`` gives), and
# ZoneInfo.utcoffset on the naive datetime yields that offset without building an aware datetime.
_PLAIN_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:[0-5]\d:[0-5]\d", re.ASCII).fullmatch
_offset_texts: dict[timedelta, str] = {}  # utcoffset -> its isoformat text ("Z" for +00:00)


def _offset_text(offset: timedelta) -> str:
    text = _offset_texts.get(offset)
    if text is None:
        text = datetime(2000, 1, 1, tzinfo=timezone(offset)).isoformat(timespec="seconds")[19:]
        text = _offset_texts[offset] = "Z" if text == "+00:00" else text
    return text


def _convert(value: str, tz: str, zone: ZoneInfo) -> str:
    """``fhir_datetime(value, tz)`` without its lru_cache; ``zone`` is ``_zone(tz)``."""
    if type(value) is str and len(value) == 19 and _PLAIN_DATETIME(value):
        try:
            naive = datetime.fromisoformat(value)
        except ValueError:  # e.g. February 30th: passed through, as fhir_datetime does
            return value
        return value + _offset_text(zone.utcoffset(naive) or timedelta(0))  # a ZoneInfo always has an offset
    return fhir_datetime.__wrapped__(value, tz)


_DT_LIMIT = 262144  # converted dates kept per zone; the memo is emptied when full
_dt_memo: dict[str, dict[str, str]] = {}  # tz -> {model date: FHIR dateTime}


def _dt_converter(tz: str) -> tuple[Callable[[str], str | None], Callable[[str], str]]:
    """(memo.get, convert) for ``tz``: ``get(v) or dt(v)`` is ``fhir_datetime(v, tz)``.

    Model dates repeat a lot (a visit's vitals share its time), so most conversions are the one
    dict lookup ``get``; the lru_cache wrapper of :func:`fhir_datetime` costs several times that.
    ``dt`` converts and remembers (``fhir_datetime`` never returns None, and "" converts to "").
    Raises ConfigError for an unknown ``tz``.
    """
    zone = _zone(tz)
    memo = _dt_memo.get(tz)
    if memo is None:
        memo = _dt_memo[tz] = {}
    get = memo.get
    convert = _convert

    def dt(value: str) -> str:
        d = convert(value, tz, zone)
        if len(memo) >= _DT_LIMIT:
            memo.clear()  # (``get`` stays bound to the same dict)
        memo[value] = d
        return d

    return get, dt


def fhir_date(value: str) -> str:
    """Model date -> FHIR date (time of day dropped, precision kept)."""
    return value.split("T", 1)[0]


# --------------------------------------------------------------------------- small builders
def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    c = {"system": system, "code": code}
    if display:
        c["display"] = display
    return c


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


_GENDER = {"M": "male", "F": "female"}


def _patient(records: Sequence[PatientRecord], pid: str, tz: str) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Patient", "id": pid}
    ids: list[dict[str, Any]] = []
    if len(records) == 1:  # the common case, without the de-duplication
        r = records[0]
        if r.icn:
            ids.append({"use": "official", "system": T.VA_ICN, "value": r.full_icn})
        ids.append({"use": "secondary", "system": f"urn:va:{r.station}:2", "value": str(r.dfn),
                    "assigner": {"display": f"VA station {r.station}"}})
        if r.ssn:
            ids.append({"use": "usual", "system": T.US_SSN, "value": r.ssn})
        race, eth, name, phone, sex, dob, dod, ms = (
            None if v is None or v == "" else v
            for v in (r.race, r.ethnicity, r.name, r.phone_home, r.sex, r.dob, r.date_of_death, r.marital_status))
    else:
        seen = set()
        for r in records:
            if r.icn and ("icn", r.full_icn) not in seen:
                seen.add(("icn", r.full_icn))
                ids.append({"use": "official", "system": T.VA_ICN, "value": r.full_icn})
        for r in records:
            ids.append({"use": "secondary", "system": f"urn:va:{r.station}:2", "value": str(r.dfn),
                        "assigner": {"display": f"VA station {r.station}"}})
        for r in records:
            if r.ssn and ("ssn", r.ssn) not in seen:
                seen.add(("ssn", r.ssn))
                ids.append({"use": "usual", "system": T.US_SSN, "value": r.ssn})
        race, eth, name, phone, sex, dob, dod, ms = (
            _first(records, a) for a in ("race", "ethnicity", "name", "phone_home", "sex", "dob", "date_of_death",
                                         "marital_status"))
    res["identifier"] = ids
    if race or eth:
        res["extension"] = _race_ethnicity(race, eth)
    if name:
        res["name"] = [split_name(name)]
    if phone:
        res["telecom"] = [{"system": "phone", "value": phone, "use": "home"}]
    res["gender"] = _GENDER.get(sex or "", "unknown")
    if dob:
        res["birthDate"] = fhir_date(dob)
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
# The builders below run once per produced resource (~28 per person), so they are written for speed:
# one builder per FileMan file loops over a record's list and appends finished bundle entries; ids,
# identifier systems and urn hash prefixes are formed once per record; dates go through the per-zone
# memo (``get(v) or dt(v)``); vital values are decided once per distinct (type, value).
# Sharing: callers and the pipeline's faults (pipeline/faults.py) mutate resources in place: a code's or
# medication's first coding, an allergy's code and clinicalStatus, standardize's codings and quantities.
# So every element is a fresh dict, except constant elements nobody mutates (Condition clinical and
# verification status and category, the vital-signs category, Rx and ServiceRequest categories, Encounter
# class), which one record's resources share, like ``subject`` within a bundle; never across records or
# bundles. Key order and values are exactly those of the straightforward builders this replaced
# (tests/test_fhir_mapping.py pins the output by digest).
_ICD10CM, _SNOMED, _RXNORM, _LOINC, _UCUM = T.ICD10CM, T.SNOMED, T.RXNORM, T.LOINC, T.UCUM
_CSU = T.CODE_SYSTEM_URI


def _url_prefix(rtype: str) -> Any:
    """SHA-1 state after the namespace and ``Type/``: full_url of an id is a copy of it updated with the id."""
    return _sha1(_NS_BYTES + f"{rtype}/".encode())


_U_COND, _U_AI, _U_MR, _U_OBS, _U_ENC, _U_SR, _U_FLAG = (
    _url_prefix(t) for t in ("Condition", "AllergyIntolerance", "MedicationRequest", "Observation", "Encounter",
                             "ServiceRequest", "Flag"))

# The compiled twin (vistasim._c.uuid5) builds the same entry from the namespace bytes: SHA-1 and the
# text in C, 0.5 instead of 1.0 us per entry. The first argument is then the namespace for every type.
_uuid5 = _accel.load("uuid5")
if _uuid5 is not None:
    _put_entry = _uuid5.put_entry  # noqa: F811
    _U_COND = _U_AI = _U_MR = _U_OBS = _U_ENC = _U_SR = _U_FLAG = _NS_BYTES


def _conditions(r: PatientRecord, subject: dict[str, str], get: Any, dt: Any, out: list[dict[str, Any]]) -> None:
    st = r.station
    pfx, system = f"{st}-9000011-", f"urn:va:{st}:9000011"
    problems = r.problems
    if problems:  # elements no one mutates: shared by this record's Conditions (see the note above)
        ver = {"coding": [{"system": T.SYS_CONDITION_VER, "code": "confirmed"}]}
        category = [{"coding": [{"system": T.CONDITION_CATEGORY, "code": "problem-list-item",
                                 "display": "Problem List Item"}]}]
        clinical: dict[str, dict[str, Any]] = {}
    for p in problems:
        ien = p.ien
        sien = str(ien)
        rid = pfx + sien
        status = "resolved" if p.resolved else ("active" if p.status == "A" else "inactive")
        desc = p.description
        c0 = {"system": _CSU.get(p.icd_system, _ICD10CM), "code": p.icd_code}
        if desc:
            c0["display"] = desc
        codings = [c0]
        if p.snomed:
            codings.append({"system": _SNOMED, "code": p.snomed})
        code: dict[str, Any] = {"coding": codings}
        if desc:
            code["text"] = desc
        res: dict[str, Any] = {
            "resourceType": "Condition", "id": rid,
            "identifier": [{"use": "secondary", "system": system, "value": sien}],
            "clinicalStatus": clinical.get(status) or clinical.setdefault(
                status, {"coding": [{"system": T.SYS_CONDITION_CLINICAL, "code": status}]}),
            "verificationStatus": ver, "category": category,
            "code": code, "subject": subject,
        }
        if p.onset:
            res["onsetDateTime"] = get(p.onset) or dt(p.onset)
        if p.resolved:
            res["abatementDateTime"] = get(p.resolved) or dt(p.resolved)
        if p.entered:
            res["recordedDate"] = get(p.entered) or dt(p.entered)
        out.append(_put_entry(_U_COND, "Condition", rid, res))


_ALLERGY_CATEGORY = {"D": "medication", "F": "food", "O": "environment"}
_ALLERGY_KIND = {"A": "allergy", "P": "intolerance"}
_allergy_cats: dict[str, tuple[str, ...]] = {}  # allergy_type text -> FHIR categories (few distinct texts)


def _allergy_categories(types: str) -> tuple[str, ...]:
    cats = _allergy_cats.get(types)
    if cats is None:
        cats = tuple(_ALLERGY_CATEGORY[c] for c in dict.fromkeys(types) if c in _ALLERGY_CATEGORY)
        if len(_allergy_cats) < 4096:
            _allergy_cats[types] = cats
    return cats


def _allergies(r: PatientRecord, patient: dict[str, str], get: Any, dt: Any, out: list[dict[str, Any]]) -> None:
    st = r.station
    pfx, system = f"{st}-120.8-", f"urn:va:{st}:120.8"
    for a in r.allergies:
        ien = a.ien
        sien = str(ien)
        rid = pfx + sien
        res: dict[str, Any] = {"resourceType": "AllergyIntolerance", "id": rid,
                               "identifier": [{"use": "secondary", "system": system, "value": sien}]}
        if a.status == "entered-in-error":
            res["verificationStatus"] = {"coding": [{"system": T.SYS_AI_VER, "code": "entered-in-error"}]}
        else:  # ait-2: clinicalStatus only when not entered-in-error
            res["clinicalStatus"] = {"coding": [{"system": T.SYS_AI_CLINICAL,
                                                 "code": "active" if a.status == "active" else "inactive"}]}
            res["verificationStatus"] = {"coding": [{"system": T.SYS_AI_VER,
                                                     "code": "confirmed" if a.verified else "unconfirmed"}]}
        kind = _ALLERGY_KIND.get(a.mechanism)
        if kind:
            res["type"] = kind
        cats = _allergy_categories(a.allergy_type)
        if cats:
            res["category"] = list(cats)
        code: dict[str, Any] = {}
        system_uri = _CSU.get((a.code_system or "").upper()) if a.code else None
        if system_uri:
            code["coding"] = [{"system": system_uri, "code": a.code or ""}]
        code["text"] = a.reactant
        res["code"] = code
        res["patient"] = patient
        if a.origination:
            res["recordedDate"] = get(a.origination) or dt(a.origination)
        if a.reactions:
            res["reaction"] = [{"manifestation": [{"text": x} for x in a.reactions]}]
        out.append(_put_entry(_U_AI, "AllergyIntolerance", rid, res))


_RX_STATUS = {"active": "active", "discontinued": "stopped", "expired": "completed", "hold": "on-hold",
              "suspended": "active", "pending": "draft", "cancelled": "cancelled", "deleted": "entered-in-error"}
_ROUTING = {"M": ("mail", "Mail (CMOP)"), "W": ("window", "Window")}


def _medication_cc(text: str, rxnorm: str | None) -> dict[str, Any]:
    if rxnorm:
        return {"coding": [{"system": _RXNORM, "code": rxnorm}], "text": text}
    return {"text": text}


def _prescriptions(r: PatientRecord, subject: dict[str, str], get: Any, dt: Any, out: list[dict[str, Any]]) -> None:
    st = r.station
    pfx, system, rx_system = f"{st}-52-", f"urn:va:{st}:52", f"urn:va:{st}:52.rx"
    categories: dict[str, list[dict[str, Any]]] = {}  # fill routing -> category, shared by the record's Rx
    for rx in r.prescriptions:
        ien = rx.ien
        sien = str(ien)
        rid = pfx + sien
        cats = categories.get(rx.fill_routing)
        if cats is None:
            routing = _ROUTING.get(rx.fill_routing)
            cats = [{"coding": [{"system": T.MEDREQ_CATEGORY, "code": "community", "display": "Community"}]}]
            if routing:
                cats.append({"coding": [{"system": T.FILL_ROUTING, "code": routing[0], "display": routing[1]}]})
            categories[rx.fill_routing] = cats
        res: dict[str, Any] = {
            "resourceType": "MedicationRequest", "id": rid,
            "identifier": [{"use": "secondary", "system": system, "value": sien},
                           {"use": "usual", "system": rx_system, "value": rx.rx_number}],
            "status": _RX_STATUS.get(rx.status, "unknown"), "intent": "order", "category": cats,
            "medicationCodeableConcept": _medication_cc(rx.drug_name, rx.rxnorm), "subject": subject,
        }
        if rx.issue_date:
            res["authoredOn"] = get(rx.issue_date) or dt(rx.issue_date)
        if rx.sig:
            res["dosageInstruction"] = [{"text": rx.sig}]
        res["dispenseRequest"] = {"numberOfRepeatsAllowed": int(rx.refills),
                                  "quantity": {"value": _num(rx.quantity)},
                                  "expectedSupplyDuration": {"value": int(rx.days_supply), "unit": "days",
                                                             "system": _UCUM, "code": "d"}}
        out.append(_put_entry(_U_MR, "MedicationRequest", rid, res))


def _num(x: float | int | str) -> float | int:
    f = float(x)
    return int(f) if f.is_integer() and abs(f) < 2**53 else f


_ABSENT = {"REFUSED": "asked-declined", "UNAVAILABLE": "not-performed", "PASS": "not-performed",
           "99": "asked-unknown"}
_CACHE_LIMIT = 65536  # entries per memo below; cleared when full (values repeat a lot, ids never)
# vital_type text -> (VitalCode | None, its LOINC, display, {value text -> how the value maps}); a value
# maps to ("absent", reason) | ("qty", number, unit) | ("panel", ((loinc, display, number), ...), unit).
# Types are few and values repeat (3,206 distinct pairs in 235,000 vitals), so both are decided once.
_vital_kinds: dict[str, tuple[Any, str, str, dict[str, tuple[Any, ...]]]] = {}


def _vital_kind(vital_type: str) -> tuple[Any, str, str, dict[str, tuple[Any, ...]]]:
    vc = T.vital_table().get(vital_type.strip().upper())
    kind: tuple[Any, str, str, dict[str, tuple[Any, ...]]] = (vc, vc.loinc, vc.display, {}) if vc else (None, "", "", {})
    if len(_vital_kinds) >= 256:  # (types are few; this bounds the value memos too)
        _vital_kinds.clear()
    _vital_kinds[vital_type] = kind
    return kind


def _vital_value(vc: Any, value: str) -> tuple[Any, ...]:
    """What a vital's value maps to (the decision only; the caller builds fresh dicts from it)."""
    raw = value.strip()
    unit = vc.va_unit if vc else ""
    absent = _ABSENT.get(raw.upper())
    if raw == "99" and not (vc and vc.loinc == "72514-3"):  # 99 means "unable to respond" only for pain
        absent = None
    if absent:
        return ("absent", absent)
    if vc and vc.components:
        parts = raw.split("/")
        try:
            nums = [_num(x) for x in parts[:2]]
        except ValueError:
            nums = []
        if len(nums) != 2:
            return ("absent", "error")
        return ("panel", tuple((c[0], c[1], n) for c, n in zip(vc.components, nums)), unit)
    try:
        return ("qty", _num(raw), unit)
    except ValueError:
        return ("absent", "error")


def _vitals(r: PatientRecord, subject: dict[str, str], get: Any, dt: Any, out: list[dict[str, Any]]) -> None:
    st = r.station
    pfx, system = f"{st}-120.5-", f"urn:va:{st}:120.5"
    kinds = _vital_kinds
    vitals = r.vitals
    if vitals:  # shared by this record's Observations: no one mutates a category
        category = [{"coding": [{"system": T.OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}]
    for v in vitals:
        ien = v.ien
        sien = str(ien)
        rid = pfx + sien
        vtype = v.vital_type
        vc, loinc, display, plans = kinds.get(vtype) or _vital_kind(vtype)
        if vc:
            c0 = {"system": _LOINC, "code": loinc, "display": display} if display else {"system": _LOINC, "code": loinc}
            code: dict[str, Any] = {"coding": [c0], "text": vtype}
        else:
            code = {"text": vtype}
        res: dict[str, Any] = {
            "resourceType": "Observation", "id": rid,
            "identifier": [{"use": "secondary", "system": system, "value": sien}],
            "status": "final", "category": category,
            "code": code, "subject": subject, "effectiveDateTime": get(v.taken) or dt(v.taken),
        }
        value = v.value
        plan = plans.get(value)
        if plan is None:
            plan = _vital_value(vc, value)
            if len(plans) >= _CACHE_LIMIT:
                plans.clear()
            plans[value] = plan
        kind = plan[0]
        if kind == "qty":
            res["valueQuantity"] = {"value": plan[1], "unit": plan[2]} if plan[2] else {"value": plan[1]}
        elif kind == "absent":
            res["dataAbsentReason"] = {"coding": [{"system": T.DATA_ABSENT, "code": plan[1]}]}
        else:
            unit = plan[2]
            comps = []
            for loinc, display, n in plan[1]:
                cc = {"system": _LOINC, "code": loinc}
                if display:
                    cc["display"] = display
                comps.append({"code": {"coding": [cc]},
                              "valueQuantity": {"value": n, "unit": unit} if unit else {"value": n}})
            res["component"] = comps
        out.append(_put_entry(_U_OBS, "Observation", rid, res))


_ENCOUNTER_CLASS = {"A": ("AMB", "ambulatory"), "I": ("AMB", "ambulatory"), "X": ("AMB", "ambulatory"),
                    "E": ("AMB", "ambulatory"), "H": ("IMP", "inpatient encounter"),
                    "D": ("IMP", "inpatient encounter"), "T": ("VR", "virtual")}
_AMB = ("AMB", "ambulatory")


def _encounters(r: PatientRecord, subject: dict[str, str], get: Any, dt: Any, out: list[dict[str, Any]]) -> None:
    st = r.station
    pfx, system = f"{st}-9000010-", f"urn:va:{st}:9000010"
    classes: dict[str, dict[str, str]] = {}  # service category -> class, shared by the record's Encounters
    for v in r.visits:
        ien = v.ien
        sien = str(ien)
        rid = pfx + sien
        klass = classes.get(v.service_category)
        if klass is None:
            cls = _ENCOUNTER_CLASS.get(v.service_category, _AMB)
            klass = classes[v.service_category] = {"system": T.ACT_CODE, "code": cls[0], "display": cls[1]}
        res: dict[str, Any] = {
            "resourceType": "Encounter", "id": rid,
            "identifier": [{"use": "secondary", "system": system, "value": sien}],
            "status": "finished", "class": klass,
            "subject": subject, "period": {"start": get(v.when) or dt(v.when)},
        }
        if v.location:
            res["location"] = [{"location": {"display": v.location}}]
        out.append(_put_entry(_U_ENC, "Encounter", rid, res))


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


def _orders(r: PatientRecord, subject: dict[str, str], get: Any, dt: Any, out: list[dict[str, Any]]) -> None:
    st = r.station
    pfx, system = f"{st}-100-", f"urn:va:{st}:100"
    categories: dict[str, list[dict[str, Any]]] = {}  # kind -> category, shared by the record's orders
    for o in r.orders:
        ien = o.ien
        sien = str(ien)
        rid = pfx + sien
        ident = [{"use": "secondary", "system": system, "value": sien}]
        system_uri = _CSU.get((o.code_system or "").upper()) if o.code else None
        if o.kind == "medication":
            rt, upre = "MedicationRequest", _U_MR
            res: dict[str, Any] = {"resourceType": rt, "id": rid, "identifier": ident,
                                   "status": order_status(o), "intent": "order",
                                   "medicationCodeableConcept": _medication_cc(
                                       o.text, o.code if system_uri == _RXNORM else None),
                                   "subject": subject}
        else:
            rt, upre = "ServiceRequest", _U_SR
            code: dict[str, Any] = ({"coding": [{"system": system_uri, "code": o.code or ""}], "text": o.text}
                                    if system_uri else {"text": o.text})
            res = {"resourceType": rt, "id": rid, "identifier": ident, "status": order_status(o),
                   "intent": "order"}
            cat = _SR_CATEGORY.get(o.kind)
            if cat:
                category = categories.get(o.kind)
                if category is None:
                    category = categories[o.kind] = [{"coding": [{"system": _SNOMED, "code": cat[0],
                                                                  "display": cat[1]}]}]
                res["category"] = category
            res["code"] = code
            res["subject"] = subject
        if o.entered:
            res["authoredOn"] = get(o.entered) or dt(o.entered)
        out.append(_put_entry(upre, rt, rid, res))


# VA Category I (national) flags -> R4 flag-category; local (Category II) flags default to clinical.
_FLAG_CATEGORY = {"HIGH RISK FOR SUICIDE": ("safety", "Safety"), "BEHAVIORAL": ("behavioral", "Behavioral"),
                  "MISSING PATIENT": ("admin", "Administrative"),
                  "URGENT ADDRESS AS FEMALE": ("admin", "Administrative"),
                  "URGENT ADDRESS AS MALE": ("admin", "Administrative")}
_FLAG_STATUS = {"active": "active", "inactive": "inactive"}


def _flags(r: PatientRecord, subject: dict[str, str], get: Any, dt: Any, out: list[dict[str, Any]]) -> None:
    st = r.station
    pfx, system = f"{st}-26.13-", f"urn:va:{st}:26.13"
    for f in r.flags:
        ien = f.ien
        sien = str(ien)
        rid = pfx + sien
        cat = _FLAG_CATEGORY.get(f.flag.strip().upper(), ("clinical", "Clinical"))
        cc = {"coding": [{"system": T.FLAG_CATEGORY, "code": cat[0], "display": cat[1]}],
              "text": "Category I (national)" if f.category == "I" else "Category II (local)"}
        res: dict[str, Any] = {
            "resourceType": "Flag", "id": rid,
            "identifier": [{"use": "secondary", "system": system, "value": sien}],
            "status": _FLAG_STATUS.get(f.status, "entered-in-error"),
            "category": [cc], "code": {"text": f.flag}, "subject": subject,
        }
        if f.assigned:
            res["period"] = {"start": get(f.assigned) or dt(f.assigned)}
        out.append(_put_entry(_U_FLAG, "Flag", rid, res))


# --------------------------------------------------------------------------- bundles
def _entry(res: dict[str, Any]) -> dict[str, Any]:
    rt, rid = res["resourceType"], res["id"]
    return {"fullUrl": full_url(rt, rid), "resource": res, "request": {"method": "PUT", "url": f"{rt}/{rid}"}}


def map_person(records: list[PatientRecord], *, tz: str = "UTC") -> dict[str, Any]:
    """One person's site records (same ICN) -> one FHIR R4 transaction Bundle of JSON-ready dicts."""
    if not records:
        raise InputError("map_person got no records: pass the PatientRecords of one person (one ICN)")
    get, dt = _dt_converter(tz)
    recs = sorted(records, key=_by_site)
    icns = {r.full_icn for r in recs if r.icn}
    if len(icns) > 1:
        raise InputError("map_person got records of several ICNs: group records by person first (group_by_person)")
    pid = patient_id_for(recs)
    subject = {"reference": full_url("Patient", pid)}
    entries: list[dict[str, Any]] = [_entry(_patient(recs, pid, tz))]
    for r in recs:
        _conditions(r, subject, get, dt, entries)
        _allergies(r, subject, get, dt, entries)
        _prescriptions(r, subject, get, dt, entries)
        _vitals(r, subject, get, dt, entries)
        _encounters(r, subject, get, dt, entries)
        _orders(r, subject, get, dt, entries)
        _flags(r, subject, get, dt, entries)
    return {"resourceType": "Bundle", "id": "person-" + pid, "type": "transaction", "entry": entries}


def _by_site(r: PatientRecord) -> tuple[str, int]:
    return (r.station, r.dfn)


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
