"""Hand-built PatientRecords for the FHIR tests: every clinical type, imprecise dates, a free-text allergy,
an ICD-9 problem, and one person with records at two stations. Test SSNs start with 00000."""

from __future__ import annotations

import copy

from vistasim.model import Address, Allergy, Order, PatientRecord, Prescription, Problem, RecordFlag, Visit, Vital


def site_500() -> PatientRecord:
    return PatientRecord(
        station="500", dfn=101, name="DOE,JOHN QUINCY", sex="M", dob="1947-06", ssn="000001234",
        icn="1012345678", icn_checksum="123456", marital_status="MARRIED", race="WHITE",
        ethnicity="NOT HISPANIC OR LATINO",
        address=Address(street1="12 MAIN ST", city="ALBANY", state="NY", zip="12208"),
        phone_home="518-555-0100", service_connected=True, sc_percent=70, period_of_service="VIETNAM ERA",
        branch="ARMY",
        problems=[
            Problem(ien=11, icd_code="I10", description="Essential hypertension", snomed="59621000",
                    status="A", entered="2015-03-02", onset="2014"),
            Problem(ien=12, icd_code="309.81", icd_system="ICD-9-CM", description="Posttraumatic stress disorder",
                    snomed="47505003", status="A", entered="2009-11-20T10:15:00", onset="1971-05"),
            Problem(ien=13, icd_code="724.2", icd_system="ICD-9-CM", description="Low back pain",
                    status="I", entered="2010-01-05", onset="2008", resolved="2012-04-01"),
            Problem(ien=14, icd_code="V49.89", icd_system="ICD-9-CM", description="Other specified conditions",
                    status="I", entered="2005-02-01"),
        ],
        allergies=[
            Allergy(ien=21, reactant="PENICILLIN", allergy_type="D", mechanism="A", verified=True,
                    origination="2001-04-12T09:00:00", code="7980", code_system="RXNORM", reactions=["HIVES"]),
            Allergy(ien=22, reactant="GRANDMA'S HOMEMADE SALSA", allergy_type="F", mechanism="P",
                    verified=False, origination="2019-07"),
            Allergy(ien=23, reactant="PEANUTS", allergy_type="DF", mechanism="U", code="91935009",
                    code_system="SNOMED", origination="2003"),
        ],
        prescriptions=[
            Prescription(ien=31, rx_number="2718281", drug_name="LISINOPRIL 10MG TAB", rxnorm="314076",
                         quantity=90, days_supply=90, refills=3, issue_date="2024-01-15", status="active",
                         fill_routing="M", sig="TAKE ONE TABLET BY MOUTH EVERY DAY"),
            Prescription(ien=32, rx_number="2718282", drug_name="METFORMIN HCL 500MG TAB", rxnorm=None,
                         quantity=60, days_supply=30, refills=5, issue_date="2023-06-01", status="discontinued",
                         fill_routing="W"),
            Prescription(ien=33, rx_number="2718283", drug_name="VA LOCAL COMPOUND CREAM", rxnorm=None,
                         quantity=1, days_supply=30, refills=0, issue_date="2023-08-09", status="expired"),
        ],
        vitals=[
            Vital(ien=41, taken="2024-01-15T08:30:00", vital_type="BLOOD PRESSURE", value="132/84"),
            Vital(ien=42, taken="2024-01-15T08:30:00", vital_type="PULSE", value="72"),
            Vital(ien=43, taken="2024-01-15T08:30:00", vital_type="WEIGHT", value="185.5"),
            Vital(ien=44, taken="2024-01-15T08:30:00", vital_type="HEIGHT", value="70"),
            Vital(ien=45, taken="2024-01-15T08:30:00", vital_type="TEMPERATURE", value="98.6"),
            Vital(ien=46, taken="2024-01-15T08:30:00", vital_type="PAIN", value="3"),
            Vital(ien=47, taken="2024-01-15T08:30:00", vital_type="RESPIRATION", value="16"),
            Vital(ien=48, taken="2024-01-15T08:30:00", vital_type="PULSE OXIMETRY", value="97"),
            Vital(ien=49, taken="2024-07-01T14:00:00", vital_type="PAIN", value="99"),
        ],
        visits=[
            Visit(ien=51, when="2024-01-15T08:00:00", location="PRIMARY CARE", service_category="A"),
            Visit(ien=52, when="2022-03-03T22:10:00", location="7 WEST MED", service_category="H"),
            Visit(ien=53, when="2023-11-30T13:00:00", location="VVC MENTAL HEALTH", service_category="T"),
        ],
        orders=[
            Order(ien=61, text="HEMOGLOBIN A1C", kind="lab", status="pending", signed=True, entered="2024-01-15",
                  code="4548-4", code_system="LOINC"),
            Order(ien=62, text="CHEST XRAY 2 VIEWS", kind="imaging", status="complete", entered="2023-02-01T09:00:00"),
            Order(ien=63, text="CARDIOLOGY CONSULT", kind="consult", status="active", signed=False,
                  entered="2024-02-02", code="183519002", code_system="SNOMED"),
            Order(ien=64, text="LISINOPRIL 10MG TAB", kind="medication", status="active", entered="2024-01-15",
                  code="314076", code_system="RXNORM"),
            Order(ien=65, text="WOUND CARE DAILY", kind="nursing", status="discontinued", entered="2022-03-04"),
        ],
        flags=[
            RecordFlag(ien=71, flag="HIGH RISK FOR SUICIDE", category="I", status="active",
                       assigned="2023-10-01", review_due="2024-01-01"),
        ],
    )


def site_612() -> PatientRecord:
    """The same person (same ICN) seen at a second station, with sparser demographics."""
    return PatientRecord(
        station="612", dfn=7, name="DOE,JOHN QUINCY", sex="M", dob="1947-06", ssn="000001234",
        icn="1012345678", icn_checksum="123456",
        problems=[Problem(ien=5, icd_code="E11.9", description="Type 2 diabetes mellitus", snomed="44054006",
                          entered="2020-05-05", onset="2019-12-24")],
        allergies=[Allergy(ien=6, reactant="SULFA DRUGS", allergy_type="D", mechanism="A", verified=True,
                           origination="2020-05-05", code="10171", code_system="RXNORM")],
        vitals=[Vital(ien=8, taken="2020-05-05T10:00:00", vital_type="WEIGHT", value="190")],
        visits=[Visit(ien=9, when="2020-05-05T09:45:00", location="PRIMARY CARE EAST")],
    )


def deceased_female() -> PatientRecord:
    """A single-site person with a year-only birth date, a date of death and no ICN checksum issues."""
    return PatientRecord(
        station="640", dfn=3, name="ROE,MARY", sex="F", dob="1930", ssn="000009876", icn="1098765432",
        icn_checksum="654321", marital_status="WIDOWED", date_of_death="2021-02-14T03:20:00",
        problems=[Problem(ien=1, icd_code="496", icd_system="ICD-9-CM", description="COPD", status="A",
                          entered="2001-01-01")],
        flags=[RecordFlag(ien=2, flag="BEHAVIORAL", category="I", status="inactive", assigned="2010-01")],
    )


def person_records() -> list[PatientRecord]:
    return [site_500(), site_612()]


def all_people() -> list[list[PatientRecord]]:
    return [person_records(), [deceased_female()]]


def scaled_people(n: int) -> list[list[PatientRecord]]:
    """n distinct people (copies of the fixtures with new ICNs/DFNs), for benchmarks and corpora."""
    out = []
    base = all_people()
    for i in range(n):
        recs = copy.deepcopy(base[i % len(base)])
        for r in recs:
            r.icn = f"{2000000000 + i}"
            r.dfn = r.dfn + 1000 * i
        out.append(recs)
    return out


# --------------------------------------------------------------------------- validator corpus
MUTATIONS = ("drop_required", "add_unknown", "break_date", "wrong_type", "bad_code", "double_choice")
_BAD_DATES = ("2023-13-01", "2023-02-30", "2023/01/02", "20230102", "2023-01-02T10:00:00", "23-01-02",
              "2023-1-2", "2023-01-02T25:00:00Z")


def fixture_resources():
    """Every resource the fixtures map to, mapped and standardized (JSON dicts)."""
    from vistasim.fhir import map_person, standardize

    out = []
    for recs in all_people():
        for bundle in (map_person(recs), standardize(map_person(recs)).bundle):
            out.extend(e["resource"] for e in bundle["entry"])
    return out


def _locations(obj, type_name, out, parent=None, key=None, index=None, es=None):
    """(container, key, index, ElementSpec or None, type name) for every element below obj."""
    from vistasim.fhir.r4spec import COMPLEX, TYPES

    spec = TYPES[type_name]
    out.append(("obj", obj, spec, parent, key, index, es))
    for k, v in list(obj.items()):
        e = spec.elements.get(k)
        if e is None:
            continue
        items = list(enumerate(v)) if e.is_list and isinstance(v, list) else [(None, v)]
        for i, item in items:
            out.append(("el", obj, spec, obj, k, i, e))
            if e.kind == COMPLEX and isinstance(item, dict):
                _locations(item, e.type, out, obj, k, i, e)
    return out


def mutate(resource, kind, rng):
    """A mutated deep copy of resource, or None when this kind has no target in it. rng: numpy Generator."""
    import copy as _copy

    from vistasim.fhir.r4spec import COMPLEX, PRIM

    res = _copy.deepcopy(resource)
    locs = _locations(res, res["resourceType"], [])
    objs = [loc for loc in locs if loc[0] == "obj"]
    els = [loc for loc in locs if loc[0] == "el"]

    def pick(seq):
        return seq[int(rng.integers(len(seq)))] if seq else None

    if kind == "drop_required":
        cands = []
        for _, obj, spec, *_ in objs:
            for _name, keys in spec.required:
                present = [k for k in keys if k in obj]
                if present:
                    cands.append((obj, present[0]))
        c = pick(cands)
        if c is None:
            return None
        del c[0][c[1]]
    elif kind == "add_unknown":
        _, obj, *_ = pick(objs)
        obj["x" + str(int(rng.integers(1000))) + "Unknown"] = "surprise"
    elif kind == "break_date":
        cands = [loc for loc in els if loc[6].kind == PRIM and loc[6].type in ("date", "dateTime", "instant")]
        c = pick(cands)
        if c is None:
            return None
        _, obj, _, _, k, i, _ = c
        bad = pick(_BAD_DATES)
        if c[6].type == "dateTime" and bad in ("2023-01-02T10:00:00",):
            bad = "2023-01-02T10:00"
        if i is None:
            obj[k] = bad
        else:
            obj[k][i] = bad
    elif kind == "wrong_type":
        c = pick(els)
        _, obj, _, _, k, i, e = c
        if e.kind == PRIM:
            new = 12345 if e.type not in ("integer", "decimal", "positiveInt", "unsignedInt") else "12"
            if e.type == "boolean":
                new = "true"
        elif e.kind == COMPLEX:
            new = "not an object"
        else:
            return None
        if i is None:
            obj[k] = new
        else:
            obj[k][i] = new
    elif kind == "bad_code":
        cands = [loc for loc in els if loc[6].binding is not None and loc[6].kind == PRIM]
        cands += [loc for loc in els if loc[6].binding is not None and loc[6].kind == COMPLEX]
        c = pick(cands)
        if c is None:
            return None
        _, obj, _, _, k, i, e = c
        if e.kind == PRIM:
            if i is None:
                obj[k] = "bogus-code"
            else:
                obj[k][i] = "bogus-code"
        else:
            target = obj[k] if i is None else obj[k][i]
            for cd in target.get("coding", []):
                cd["code"] = "bogus-code"
    elif kind == "double_choice":
        for _, obj, spec, *_ in objs:
            for key, group in spec.choices.items():
                if key in obj:
                    others = [k2 for k2, g2 in spec.choices.items() if g2 == group and k2 != key]
                    other = pick(others)
                    e = spec.elements[other]
                    obj[other] = ("2020-01-01" if e.type in ("dateTime", "date") else True if e.type == "boolean"
                                  else 1 if e.type == "integer" else "text" if e.type == "string"
                                  else {"text": "x"} if e.type == "CodeableConcept" else {"value": 1}
                                  if e.type in ("Quantity", "Age", "SimpleQuantity") else {"start": "2020"}
                                  if e.type == "Period" else {"reference": "urn:uuid:x"} if e.type == "Reference"
                                  else {"low": {"value": 1}})
                    return res
        return None
    return res


def corpus(seed: int = 20260101, per_resource: int = 12):
    """[(resource, mutation kind or None)]: the fixtures unchanged plus seeded mutations of each."""
    import numpy as np

    rng = np.random.Generator(np.random.PCG64(seed))
    out = []
    for res in fixture_resources():
        out.append((res, None))
        for j in range(per_resource):
            kind = MUTATIONS[j % len(MUTATIONS)]
            m = mutate(res, kind, rng)
            if m is not None:
                out.append((m, kind))
    return out
