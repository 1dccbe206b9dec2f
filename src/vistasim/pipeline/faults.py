"""Faults on the data, as plug-ins: one small class per fault, one method, handed keyed randomness.

Each fault looks at a wave's persons at the point where it strikes, decides per person with a keyed
draw (seed, fault name, person) whether it hits, changes the data, and returns the answer-key rows of
what it did. The draws depend on nothing but the key, so a fault hits the same persons whatever else
is switched on (identity merge pairs a person with the next one of its wave, so it depends on waves).

Where each one strikes, and what should notice it:

=====================  =====================  =========================================================
fault                  where                  expected to be caught by
=====================  =====================  =========================================================
corruption             extract/export         a bad date: schema_check; an encoding or truncation:
                                              reconciliation (field changed)
code_system_lost       transform (output)     business_rules when no other coding is left, else
                                              reconciliation
coded_to_free_text     transform (output)     reconciliation (validation only warns on free text)
allergy_status_flip    transform (output)     reconciliation, safety gate (allergies)
wrong_drug_code        transform (output)     reconciliation, safety gate (medications)
flag_not_transferred   transform (output)     reconciliation, safety gate (flags)
identity_merge         transform (output)     reconciliation (a person missing, another with extras)
identity_split         transform (output)     reconciliation (two target Patients for one ICN)
orders_unknown_queue   load/staging           reconciliation, safety gate (pending orders)
=====================  =====================  =========================================================
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np
import orjson

from ..model import PatientRecord
from ..rng import KeyedRNG, name_key
from .settings import FAULT_KINDS
from .work import AnswerEntry, PersonWork

__all__ = ["Fault", "FaultDraws", "build_faults", "TRANSFORM_FAULTS", "EXPORT_FAULTS", "LOAD_FAULTS"]

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


class FaultDraws:
    """Keyed draws for faults: whether a person is hit, and a Generator for the details."""

    def __init__(self, seed: int) -> None:
        self.rng = KeyedRNG(seed)
        self._prefix = f"{self.rng.seed}\x1f".encode()

    def uniform(self, fault: str, person_id: str) -> float:
        """U[0, 1) keyed by (seed, fault, person): a keyed hash, ~1 us (NumPy's scalar path costs ~20)."""
        h = hashlib.blake2b(self._prefix + f"{fault}\x1f{person_id}".encode(), digest_size=8).digest()
        return (int.from_bytes(h, "little") >> 11) * (1.0 / (1 << 53))

    def hit(self, fault: str, person_id: str, rate: float) -> np.random.Generator | None:
        if rate <= 0.0 or self.uniform(fault, person_id) >= rate:
            return None
        return self.rng.generator("fault-detail:" + fault, name_key(person_id) & 0x7FFFFFFFFFFFFFFF)


class Fault(Protocol):
    """A data fault: ``apply`` changes the persons it hits and returns the answer-key rows."""

    name: str
    rate: float

    def apply(self, persons: Sequence[PersonWork], draws: FaultDraws) -> list[AnswerEntry]: ...


def _entry(
    fault: Fault,
    p: PersonWork,
    stage: str,
    sub: str,
    patient_id: str = "",
    resource: str = "",
    field: str = "",
    detail: str = "",
) -> AnswerEntry:
    return AnswerEntry(
        fault.name,
        FAULT_KINDS[fault.name],
        p.person_id,
        patient_id or _first_pid(p),
        stage,
        sub,
        resource,
        field,
        detail,
    )


def _first_pid(p: PersonWork) -> str:
    return p.records[0].patient_id if p.records else ""


def _resources(bundle: dict[str, Any] | None, rtype: str | None = None) -> Iterator[dict[str, Any]]:
    for e in (bundle or {}).get("entry") or ():
        res = e.get("resource")
        if isinstance(res, dict) and (rtype is None or res.get("resourceType") == rtype):
            yield res


def _key(res: dict[str, Any]) -> str:
    return f"{res.get('resourceType')}/{res.get('id')}"


def _pick(rng: np.random.Generator, items: Sequence[Any]) -> Any:
    return items[int(rng.integers(len(items)))]


# --------------------------------------------------------------------------- extract


class Corruption:
    """Bytes or encoding of one field changed in the export: a date's month, a name's encoding, a
    truncated street, a control character in an allergy's text."""

    name = "corruption"

    def __init__(self, rate: float) -> None:
        self.rate = rate

    @staticmethod
    def _variants(r: PatientRecord) -> list[str]:
        out = []
        if r.dob and len(r.dob) >= 10:
            out.append("dob_bytes")
        if "," in r.name and len(r.name.partition(",")[2]) >= 2:
            out.append("name_encoding")
        if len(r.address.street1) >= 4:
            out.append("street_truncated")
        if any(len(a.reactant) >= 2 for a in r.allergies):
            out.append("reactant_control_char")
        return out

    def apply(self, persons: Sequence[PersonWork], draws: FaultDraws) -> list[AnswerEntry]:
        out: list[AnswerEntry] = []
        for p in persons:
            rng = draws.hit(self.name, p.person_id, self.rate)
            if rng is None:
                continue
            # A person's Patient takes each demographic from the first site record (station, DFN order)
            # that has it: corrupting another record's copy would never reach the target.
            order = sorted(range(len(p.records)), key=lambda j: (p.records[j].station, p.records[j].dfn))
            first = {
                attr: next((j for j in order if test(p.records[j])), None)
                for attr, test in (
                    ("dob_bytes", lambda r: bool(r.dob)),
                    ("name_encoding", lambda r: bool(r.name)),
                    (
                        "street_truncated",
                        lambda r: any(
                            (
                                r.address.street1,
                                r.address.street2,
                                r.address.street3,
                                r.address.city,
                                r.address.state,
                                r.address.zip,
                            )
                        ),
                    ),
                )
            }
            choices = [
                (i, v)
                for i, r in enumerate(p.records)
                if i >= p.n_earlier  # an earlier call's records were exported then
                for v in self._variants(r)
                if v == "reactant_control_char" or first.get(v) == i
            ]
            if not choices:
                continue
            i, variant = _pick(rng, choices)
            rec = copy.deepcopy(p.records[i])  # the source record stays as VistA holds it
            resource, fld = f"Patient/{p.person_id}", ""
            if variant == "dob_bytes":
                rec.dob = rec.dob[:5] + "13" + rec.dob[7:]  # type: ignore[index]
                fld = "2/.03 DATE OF BIRTH"
            elif variant == "name_encoding":
                last, _, rest = rec.name.partition(",")
                j = int(rng.integers(len(rest)))
                rec.name = f"{last},{rest[:j]}\u00c3\u00a9{rest[j + 1 :]}"  # UTF-8 'é' read as Latin-1
                fld = "2/.01 NAME"
            elif variant == "street_truncated":
                rec.address.street1 = rec.address.street1[: len(rec.address.street1) // 2]
                fld = "2/.111 STREET ADDRESS [LINE 1]"
            else:
                cands = [a for a in rec.allergies if len(a.reactant) >= 2]
                a = _pick(rng, cands)
                j = 1 + int(rng.integers(len(a.reactant) - 1))
                a.reactant = a.reactant[:j] + "\x1a" + a.reactant[j:]
                resource, fld = f"AllergyIntolerance/{rec.station}-120.8-{a.ien}", "120.8/.02 REACTANT"
            p.records[i] = rec
            p.corrupted_rows.append(p.rows[i - p.n_earlier])
            out.append(_entry(self, p, "extract", "export", rec.patient_id, resource, fld, variant))
        return out


# --------------------------------------------------------------------------- transform


class _PersonFault:
    """A fault drawn once per person: ``hit`` alters the person's bundle and returns its answer-key entry.

    Persons without a bundle, or not drawn, are skipped; the draw itself stays keyed by person.
    """

    name = ""

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def apply(self, persons: Sequence[PersonWork], draws: FaultDraws) -> list[AnswerEntry]:
        out = []
        for p in persons:
            rng = draws.hit(self.name, p.person_id, self.rate)
            if rng is None or p.bundle is None:
                continue
            entry = self.hit(p, p.bundle, rng)
            if entry is not None:
                out.append(entry)
        return out

    def hit(self, p: PersonWork, bundle: dict[str, Any], rng: np.random.Generator) -> AnswerEntry | None:
        raise NotImplementedError


class CodeSystemLost(_PersonFault):
    """A coding keeps its code but loses its code-system URI."""

    name = "code_system_lost"
    _TARGETS = (
        ("Condition", "code"),
        ("AllergyIntolerance", "code"),
        ("MedicationRequest", "medicationCodeableConcept"),
        ("Observation", "code"),
    )

    def hit(self, p: PersonWork, bundle: dict[str, Any], rng: np.random.Generator) -> AnswerEntry | None:
        cands = [
            (res, el)
            for rt, el in self._TARGETS
            for res in _resources(p.bundle, rt)
            if (res.get(el) or {}).get("coding") and "system" in res[el]["coding"][0]
        ]
        if not cands:
            return None
        res, el = _pick(rng, cands)
        res[el]["coding"][0].pop("system")
        return _entry(self, p, "transform", "map", resource=_key(res), field=f"{el}.coding.system")


class CodedToFreeText(_PersonFault):
    """An allergy's coding is dropped; only the reactant's text arrives."""

    name = "coded_to_free_text"

    def hit(self, p: PersonWork, bundle: dict[str, Any], rng: np.random.Generator) -> AnswerEntry | None:
        cands = [r for r in _resources(p.bundle, "AllergyIntolerance") if (r.get("code") or {}).get("coding")]
        if not cands:
            return None
        res = _pick(rng, cands)
        del res["code"]["coding"]
        return _entry(self, p, "transform", "map", resource=_key(res), field="code.coding")


class AllergyStatusFlip(_PersonFault):
    """An active allergy arrives inactive."""

    name = "allergy_status_flip"

    def hit(self, p: PersonWork, bundle: dict[str, Any], rng: np.random.Generator) -> AnswerEntry | None:
        cands = [
            r
            for r in _resources(p.bundle, "AllergyIntolerance")
            if ((r.get("clinicalStatus") or {}).get("coding") or [{}])[0].get("code") == "active"
        ]
        if not cands:
            return None
        res = _pick(rng, cands)
        res["clinicalStatus"]["coding"][0]["code"] = "inactive"
        return _entry(self, p, "transform", "map", resource=_key(res), field="clinicalStatus")


class WrongDrugCode(_PersonFault):
    """A mail-order (CMOP) prescription arrives with another drug's RxNorm code."""

    name = "wrong_drug_code"

    def __init__(self, rate: float) -> None:
        super().__init__(rate)
        self._codes: list[str] | None = None

    def _all_codes(self) -> list[str]:
        if self._codes is None:
            from ..fhir import terminology as T

            self._codes = sorted({c for c, _ in T.drug_table().values()})
        return self._codes

    @staticmethod
    def _mail(res: dict[str, Any]) -> bool:
        return any(c.get("code") == "mail" for cat in res.get("category") or () for c in cat.get("coding") or ())

    def hit(self, p: PersonWork, bundle: dict[str, Any], rng: np.random.Generator) -> AnswerEntry | None:
        cands = [
            r
            for r in _resources(p.bundle, "MedicationRequest")
            if self._mail(r)
            and any(c.get("system") == RXNORM for c in (r.get("medicationCodeableConcept") or {}).get("coding") or ())
        ]
        if not cands:
            return None
        res = _pick(rng, cands)
        coding = next(c for c in res["medicationCodeableConcept"]["coding"] if c.get("system") == RXNORM)
        others = [c for c in self._all_codes() if c != coding.get("code")]
        if not others:
            return None
        coding["code"] = _pick(rng, others)
        coding.pop("display", None)
        return _entry(self, p, "transform", "map", resource=_key(res), field="medicationCodeableConcept.coding.code")


class FlagNotTransferred(_PersonFault):
    """A patient record flag (e.g. HIGH RISK FOR SUICIDE) is left behind."""

    name = "flag_not_transferred"

    def hit(self, p: PersonWork, bundle: dict[str, Any], rng: np.random.Generator) -> AnswerEntry | None:
        flags = list(_resources(p.bundle, "Flag"))
        active = [f for f in flags if f.get("status") == "active"]
        if not flags:
            return None
        res = _pick(rng, active or flags)
        bundle["entry"] = [e for e in bundle["entry"] if e.get("resource") is not res]
        return _entry(self, p, "transform", "map", resource=_key(res), detail="flag dropped")


def _repoint(entries: list[dict[str, Any]], old: str, new: str) -> None:
    for e in entries:
        res = e["resource"]
        for k in ("subject", "patient"):
            ref = res.get(k)
            if isinstance(ref, dict) and ref.get("reference") == old:
                res[k] = {"reference": new}


def _patient_entry(bundle: dict[str, Any]) -> dict[str, Any] | None:
    return next((e for e in bundle.get("entry") or () if e["resource"].get("resourceType") == "Patient"), None)


class IdentityMerge:
    """Two persons become one: the second's records are filed under the first's Patient."""

    name = "identity_merge"

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def apply(self, persons: Sequence[PersonWork], draws: FaultDraws) -> list[AnswerEntry]:
        out: list[AnswerEntry] = []
        used: set = set()
        live = [p for p in persons if self.eligible(p)]
        for i, a in enumerate(live):
            if a.person_id in used or not self.drawn(a, draws):
                continue
            b = next((q for q in live[i + 1 :] if q.person_id not in used and self.partner_ok(q)), None)
            if b is None:
                continue
            entries = self.merge(a, b)
            if entries:
                used.update((a.person_id, b.person_id))
                out.extend(entries)
        return out

    # The pieces of apply, for a caller that meets the persons one at a time (data mode merges as the
    # wave's persons are mapped): a drawn person absorbs the first later eligible person with no
    # split-off bundle, neither having been merged already.

    @staticmethod
    def eligible(p: PersonWork) -> bool:
        """Can take part in a merge: mapped, no check failed, not merged."""
        return p.bundle is not None and p.stop_step == 16 and p.merged_into is None

    @staticmethod
    def partner_ok(p: PersonWork) -> bool:
        """Can be absorbed (a person with a split-off bundle cannot)."""
        return not p.extra_bundles

    def drawn(self, p: PersonWork, draws: FaultDraws) -> bool:
        return draws.hit(self.name, p.person_id, self.rate) is not None

    def merge(self, a: PersonWork, b: PersonWork) -> list[AnswerEntry]:
        """File b's records under a's Patient; [] (nothing changed) when either has no Patient entry."""
        pa, pb = _patient_entry(a.bundle), _patient_entry(b.bundle)  # type: ignore[arg-type]
        if pa is None or pb is None:
            return []
        moved = [e for e in b.bundle["entry"] if e is not pb]  # type: ignore[index]
        _repoint(moved, pb["fullUrl"], pa["fullUrl"])
        a.bundle["entry"].extend(moved)  # type: ignore[index]
        b.bundle = None
        b.merged_into = a.person_id
        return [
            _entry(self, a, "transform", "map", detail="absorbed another person's records"),
            _entry(
                self,
                b,
                "transform",
                "map",
                resource=f"Patient/{b.person_id}",
                detail="records filed under another person",
            ),
        ]


class IdentitySplit:
    """One person becomes two: part of the records go to a second Patient with a new local ICN."""

    name = "identity_split"

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def apply(self, persons: Sequence[PersonWork], draws: FaultDraws) -> list[AnswerEntry]:
        from ..targets import ICN_SYSTEM

        out = []
        for p in persons:
            rng = draws.hit(self.name, p.person_id, self.rate)
            if rng is None or p.bundle is None:
                continue
            pe = _patient_entry(p.bundle)
            clinical = [e for e in p.bundle["entry"] if e is not pe]
            if pe is None or len(clinical) < 2:
                continue
            take = set(rng.permutation(len(clinical))[: len(clinical) // 2].tolist())
            moved = [e for j, e in enumerate(clinical) if j in take]
            kept = [e for j, e in enumerate(clinical) if j not in take]
            local_icn = f"L{int(rng.integers(10**9)):09d}V000000"
            patient = orjson.loads(orjson.dumps(pe["resource"]))
            patient["id"] = pe["resource"]["id"] + "-split"
            for ident in patient.get("identifier") or ():
                if ident.get("system") == ICN_SYSTEM:
                    ident["value"] = local_icn
            new_url = pe["fullUrl"][:-8] + "5p1170ff"  # a distinct urn:uuid (last 8 hex digits changed)
            _repoint(moved, pe["fullUrl"], new_url)
            new_entry = {
                "fullUrl": new_url,
                "resource": patient,
                "request": {"method": "PUT", "url": f"Patient/{patient['id']}"},
            }
            p.bundle["entry"] = [pe] + kept
            p.extra_bundles[local_icn] = {
                "resourceType": "Bundle",
                "id": "person-split-" + patient["id"],
                "type": "transaction",
                "entry": [new_entry] + moved,
            }
            out.append(
                _entry(
                    self,
                    p,
                    "transform",
                    "map",
                    resource=f"Patient/{p.person_id}",
                    detail=f"{len(moved)} resources under a second Patient",
                )
            )
        return out


# --------------------------------------------------------------------------- load


class OrdersUnknownQueue(_PersonFault):
    """An order is routed to an "unknown" queue at load instead of the patient's chart."""

    name = "orders_unknown_queue"
    _PENDING = ("draft", "active", "on-hold")

    def __init__(self, rate: float) -> None:
        super().__init__(rate)
        self.queue: list[tuple[str, str]] = []  # (person, "Type/id") of every order sent there

    def hit(self, p: PersonWork, bundle: dict[str, Any], rng: np.random.Generator) -> AnswerEntry | None:
        orders = [r for r in _resources(p.bundle) if "-100-" in str(r.get("id", ""))]
        pending = [r for r in orders if r.get("status") in self._PENDING]
        if not orders:
            return None
        res = _pick(rng, pending or orders)
        bundle["entry"] = [e for e in bundle["entry"] if e.get("resource") is not res]
        self.queue.append((p.person_id, _key(res)))
        return _entry(self, p, "load", "staging", resource=_key(res), detail="order routed to unknown queue")


EXPORT_FAULTS = ("corruption",)
TRANSFORM_FAULTS = (
    "code_system_lost",
    "coded_to_free_text",
    "allergy_status_flip",
    "wrong_drug_code",
    "flag_not_transferred",
    "identity_split",
    "identity_merge",
)
LOAD_FAULTS = ("orders_unknown_queue",)
_CLASSES = {
    c.name: c
    for c in (
        Corruption,
        CodeSystemLost,
        CodedToFreeText,
        AllergyStatusFlip,
        WrongDrugCode,
        FlagNotTransferred,
        IdentityMerge,
        IdentitySplit,
        OrdersUnknownQueue,
    )
}


def build_faults(rates: dict[str, float]) -> dict[str, Fault]:
    """The fault plug-ins with a rate > 0, by name."""
    return {name: _CLASSES[name](rate) for name, rate in rates.items() if rate > 0}  # type: ignore[misc]
