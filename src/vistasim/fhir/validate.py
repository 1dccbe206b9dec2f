"""Validation of FHIR R4 resources at the pipeline's three validate substages.

* :func:`schema_check` — FHIR R4 4.0.1 structure: unknown elements, cardinality, primitive formats,
  required value-set bindings, choice types, and a few core invariants (con-4/5, ait-1/2, obs-6, per-1,
  sqty-1, bdl-3/7).
* :func:`business_rules` — US Core required elements and the Oracle Health Millennium create rules,
  each issue with a severity and a ``safety_critical`` flag (active allergies, active medications,
  pending orders and record flags that are missing or uncoded).
* :func:`data_integrity` — references resolve inside the bundle, dates plausible, one Patient per ICN.

Why our own validator rather than a library: ``fhir.resources`` ships R4B and STU3 models, not R4
4.0.1, and validates about 10,000 resources/s (pydantic model construction); ``fhirclient`` has R4
models but checks only element names, required elements, Python types and date formats (no value
sets, no code/id/uri formats, no choice exclusivity) and is slower still. vistasim validates every
resource of millions of patients, so the checks here are driven by plain tables
(:mod:`vistasim.fhir.r4spec`) walked over the JSON dicts without building objects; primitive strings
already seen valid are remembered in bounded sets, which is where most of the time would go.
``bench/fhir.py`` measures the rate (``--stages``: the data-mode stages in CPU time); the agreement
with fhirclient is measured in ``tests/test_fhir_agreement.py``.

For the pipeline, :func:`business_clean` and :func:`integrity_clean` answer only "no error?" for a
schema-valid bundle (the stages fall back to the full functions when they say no), and the generated
schema predicates collect every reference they pass so data_integrity need not search for them.

Messages never carry patient values (names, identifiers, dates); only codes and element paths.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import orjson

from vistasim import _accel
from vistasim.fhir import _fastcheck, r4spec
from vistasim.fhir.r4spec import COMPILED_PATTERNS, COMPLEX, PRIM, RESOURCE, TYPES, TypeSpec

__all__ = ["Issue", "schema_check", "is_schema_valid", "business_rules", "data_integrity", "validate_bundle", "errors_only",
           "STRUCTURE_CODES"]

SCHEMA, BUSINESS, INTEGRITY = "schema_check", "business_rules", "data_integrity"


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding. ``level`` is the severity (error or warning); ``substage`` which check found it."""

    level: str
    resource_type: str
    id: str
    path: str
    code: str
    message: str
    safety_critical: bool = False
    substage: str = SCHEMA

    @property
    def is_error(self) -> bool:
        return self.level == "error"


# Issue codes a purely structural validator (element names, cardinality, JSON types, date formats) can see.
STRUCTURE_CODES = frozenset({"unknown-element", "required", "type", "cardinality", "date-format"})


def errors_only(issues: Iterable[Issue]) -> list[Issue]:
    return [i for i in issues if i.level == "error"]


# --------------------------------------------------------------------------- primitives
_CACHE_LIMIT = 200_000
_DATE_TYPES = frozenset({"date", "dateTime", "instant", "time"})


def _calendar_ok(t: str, v: str) -> bool:
    """The R4 regexes accept 2023-02-30; a real day must also exist."""
    if t == "time" or len(v) < 10:
        return True
    try:
        date(int(v[0:4]), int(v[5:7]), int(v[8:10]))
    except ValueError:
        return False
    return True


_SEEN: dict[str, set] = {}  # per string primitive: values already found valid (bounded)
_NO_CACHE: frozenset = frozenset()


def _make_string_check(t: str) -> Callable[[Any], bool]:
    pattern = COMPILED_PATTERNS[t].fullmatch
    seen: set = _SEEN.setdefault(t, set())
    is_date = t in _DATE_TYPES

    def check(v: Any) -> bool:
        if type(v) is not str:
            return False
        if v in seen:
            return True
        ok = pattern(v) is not None and (not is_date or _calendar_ok(t, v))
        if ok:
            if len(seen) >= _CACHE_LIMIT:
                seen.clear()
            seen.add(v)
        return ok

    # Exact shortcuts with C string methods for the common shapes, before the regex (same verdicts):
    if t == "id":  # [A-Za-z0-9\-\.]{1,64}: ids are unique, so no cache either
        def check_id(v: Any) -> bool:
            return (type(v) is str and 0 < len(v) <= 64 and v.isascii()
                    and v.replace("-", "a").replace(".", "a").isalnum())
        return check_id
    if t in ("string", "markdown", "uri", "url", "canonical", "code"):
        # printable ASCII (0x20-0x7e) holds no whitespace but the space: a string needs one non-space,
        # uri/url/canonical and code with no space at all match (codes with inner spaces take the regex)
        spaced = t in ("string", "markdown")

        def check_text(v: Any) -> bool:
            if type(v) is not str:
                return False
            if v in seen:
                return True
            if v and v.isascii() and v.isprintable() and (not v.isspace() if spaced else " " not in v):
                if len(seen) >= _CACHE_LIMIT:
                    seen.clear()
                seen.add(v)
                return True
            return check(v)
        return check_text
    if t == "dateTime":
        # a dateTime of day precision or finer is its date (YYYY-MM-DD, calendar checked) followed by an
        # optional independent time part: remember the two halves of valid values separately
        days: set = set()
        times: set = set()

        def check_datetime(v: Any) -> bool:
            if type(v) is not str:
                return False
            if v in seen:
                return True
            n = len(v)
            if n >= 10 and v[:10] in days and (n == 10 or v[10:] in times):
                return True
            if not check(v):
                return False
            if n >= 10:
                if len(days) >= _CACHE_LIMIT or len(times) >= _CACHE_LIMIT:
                    days.clear()
                    times.clear()
                days.add(v[:10])
                if n > 10:
                    times.add(v[10:])
            return True
        _SPLIT_CACHES.extend((days, times))
        return check_datetime
    return check


_SPLIT_CACHES: list[set] = []


def _check_boolean(v: Any) -> bool:
    return type(v) is bool


def _check_decimal(v: Any) -> bool:
    tv = type(v)
    return tv is int or (tv is float and math.isfinite(v))


def _check_integer(v: Any) -> bool:
    return type(v) is int and -2147483648 <= v <= 2147483647


def _check_unsigned(v: Any) -> bool:
    return type(v) is int and 0 <= v <= 2147483647


def _check_positive(v: Any) -> bool:
    return type(v) is int and 1 <= v <= 2147483647


PRIMITIVE_CHECKS: dict[str, Callable[[Any], bool]] = {t: _make_string_check(t) for t in r4spec.STRING_PRIMITIVES}
PRIMITIVE_CHECKS.update(boolean=_check_boolean, decimal=_check_decimal, integer=_check_integer,
                        unsignedInt=_check_unsigned, positiveInt=_check_positive)


def _json_kind_ok(t: str, v: Any) -> bool:
    """Is the JSON type right (string vs number vs boolean), whatever the format?"""
    if t in r4spec.STRING_PRIMITIVES:
        return type(v) is str
    if t == "boolean":
        return type(v) is bool
    if t == "decimal":
        return type(v) in (int, float)
    return type(v) is int


# --------------------------------------------------------------------------- the structural walk
class _Ctx:
    """Where issues go, and which resource they belong to."""

    __slots__ = ("out", "rtype", "rid")

    def __init__(self, out: list[Issue], rtype: str, rid: str) -> None:
        self.out, self.rtype, self.rid = out, rtype, rid

    def add(self, path: str, code: str, message: str, level: str = "error") -> None:
        self.out.append(Issue(level, self.rtype, self.rid, path, code, message, False, SCHEMA))


def _walk(obj: Any, spec: TypeSpec, path: str, ctx: _Ctx) -> None:
    if type(obj) is not dict:
        ctx.add(path, "type", f"{path} must be a JSON object ({spec.name})")
        return
    if not obj:  # still report what is required in it: an empty element is missing those too
        ctx.add(path, "empty", f"{path} is empty: an element needs a value or children (ele-1)")
    if not obj.keys() <= spec.allowed:
        for k in sorted(obj.keys() - spec.allowed):
            ctx.add(f"{path}.{k}", "unknown-element", f"{path}.{k} is not an element of {spec.name}")
    for name, keys in spec.required:
        for k in keys:
            if k in obj:
                break
        else:
            ctx.add(f"{path}.{name}", "required", f"{path}.{name} is required (min 1) in {spec.name}")
    elements = spec.elements
    choices = spec.choices
    seen_choice: dict[str, str] | None = None
    for k, v in obj.items():
        es = elements.get(k)
        if es is None:
            continue
        if choices and k in choices:
            if seen_choice is None:
                seen_choice = {}
            prev = seen_choice.get(es.name)
            if prev is not None:
                ctx.add(f"{path}.{k}", "choice", f"{path} has both {prev} and {k}: {es.name} takes one type")
            seen_choice[es.name] = k
        if es.is_list:
            if type(v) is not list:
                ctx.add(f"{path}.{k}", "cardinality", f"{path}.{k} must be an array")
                continue
            if not v:
                ctx.add(f"{path}.{k}", "empty", f"{path}.{k} is an empty array (ele-1)")
                continue
            for i, item in enumerate(v):
                _check_value(item, es, k, f"{path}.{k}[{i}]", ctx)
        else:
            if type(v) is list:
                ctx.add(f"{path}.{k}", "cardinality", f"{path}.{k} takes one value, not an array")
                continue
            _check_value(v, es, k, None, ctx, path)
    inv = _INVARIANTS.get(spec.name)
    if inv is not None:
        for sub, code, msg in inv(obj):
            ctx.add(f"{path}{sub}", code, msg)


def _check_value(v: Any, es: r4spec.ElementSpec, key: str, ipath: str | None, ctx: _Ctx,
                 parent: str = "") -> None:
    kind = es.kind
    if kind == PRIM:
        if not PRIMITIVE_CHECKS[es.type](v):
            p = ipath or f"{parent}.{key}"
            if not _json_kind_ok(es.type, v):
                ctx.add(p, "type", f"{p} must be a JSON {es.type}")
            elif es.type in _DATE_TYPES:
                ctx.add(p, "date-format", f"{p} is not a valid FHIR {es.type}")
            else:
                ctx.add(p, "format", f"{p} is not a valid FHIR {es.type}")
            return
        if es.binding is not None and v not in es.binding:
            p = ipath or f"{parent}.{key}"
            shown = v if len(v) <= 40 else v[:40] + "..."
            ctx.add(p, "value-set", f"{p} code '{shown}' is not in the required value set {es.binding_name}")
        return
    p = ipath or f"{parent}.{key}"
    if kind == COMPLEX:
        _walk(v, TYPES[es.type], p, ctx)
        if es.binding is not None and type(v) is dict and not _cc_in(v, es.binding_system, es.binding):
            ctx.add(p, "value-set", f"{p} has no coding from the required value set {es.binding_name}")
    elif kind == RESOURCE:
        _walk_resource(v, p, ctx)
    elif type(v) is not dict:  # OPAQUE
        ctx.add(p, "type", f"{p} must be a JSON object ({es.type})")


def _cc_in(cc: dict, system: str | None, codes: frozenset) -> bool:
    for c in cc.get("coding") or ():
        if type(c) is dict and c.get("system") == system and c.get("code") in codes:
            return True
    return False


def _walk_resource(obj: Any, path: str, ctx: _Ctx) -> None:
    if type(obj) is not dict:
        ctx.add(path, "type", f"{path} must be a resource object")
        return
    rt = obj.get("resourceType")
    spec = TYPES.get(rt) if type(rt) is str else None
    if spec is None or not spec.is_resource:
        ctx.add(path, "resource-type", f"{path}: resourceType '{str(rt)[:40]}' is not one vistasim validates")
        return
    _walk(obj, spec, path or str(rt), ctx)


# --------------------------------------------------------------------------- the fast path
# Most resources are valid, so a first pass answers only "valid?" without building paths or issues; the
# detailed walk above runs only for resources that fail it. Both passes read the same tables. A type is
# compiled to a list: [allowed keys, required single keys, required choice groups, choice key -> group,
# {key: (kind, is_list, primitive check, binding codes, sub-type, binding system)}, invariant].
_FAST: dict[str, list] = {}


def _compile_fast() -> None:
    for name, spec in TYPES.items():
        single = frozenset(keys[0] for _, keys in spec.required if len(keys) == 1)
        multi = tuple(keys for _, keys in spec.required if len(keys) > 1)
        _FAST[name] = [spec.allowed, single, multi, dict(spec.choices) or None, {}, _INVARIANTS.get(name)]
    for name, spec in TYPES.items():
        els = _FAST[name][4]
        for key, es in spec.elements.items():
            sub = _FAST.get(es.type) if es.kind == COMPLEX else None
            chk = PRIMITIVE_CHECKS.get(es.type) if es.kind == PRIM else None
            seen = _SEEN.get(es.type, _NO_CACHE) if es.kind == PRIM else _NO_CACHE
            els[key] = (es.kind, es.is_list, chk, es.binding, sub, es.binding_system, seen)


def _ok(obj: Any, t: list) -> bool:
    if type(obj) is not dict or not obj:
        return False
    keys = obj.keys()
    if not keys <= t[0] or not t[1] <= keys:
        return False
    for group in t[2]:
        if not any(k in obj for k in group):
            return False
    choices = t[3]
    if choices is not None:
        groups = [choices[k] for k in keys if k in choices]
        if len(groups) > 1 and len(groups) != len(set(groups)):
            return False
    els = t[4]
    for k, v in obj.items():
        e = els.get(k)
        if e is None:
            continue
        if e[1]:
            if type(v) is not list or not v:
                return False
            for item in v:
                if not _ok_value(item, e):
                    return False
        elif e[0] == PRIM:
            # inlined primitive check: a string already seen valid costs one set lookup
            if not ((type(v) is str and v in e[6]) or e[2](v)) or (e[3] is not None and v not in e[3]):
                return False
        elif not _ok_value(v, e):
            return False
    inv = t[5]
    return inv is None or not inv(obj)


def _ok_value(v: Any, e: tuple) -> bool:
    kind = e[0]
    if kind == PRIM:
        return e[2](v) and (e[3] is None or v in e[3])
    if kind == COMPLEX:
        return _ok(v, e[4]) and (e[3] is None or _cc_in(v, e[5], e[3]))
    if kind == RESOURCE:
        return _ok_resource(v)
    return type(v) is dict


def _ok_resource(obj: Any) -> bool:
    if type(obj) is not dict:
        return False
    t = _FAST.get(obj.get("resourceType"))  # type: ignore[arg-type]
    return t is not None and obj["resourceType"] in r4spec.RESOURCE_TYPES and _ok(obj, t)


def _clear_collected() -> None:
    if _REFS:
        _REFS.clear()
    if _PREFS:
        _PREFS.clear()
    if _ODD:
        _ODD.clear()


def is_schema_valid(resource: dict[str, Any]) -> bool:
    """True when :func:`schema_check` would find nothing (the generated fast path alone)."""
    ok = bool(_generated_ok(resource))
    _clear_collected()
    return ok


def schema_check(resource: dict[str, Any]) -> list[Issue]:
    """FHIR R4 4.0.1 structural validation of one resource (a Bundle's entries are checked too)."""
    ok = _generated_ok(resource)
    _clear_collected()
    if ok:
        return []
    out: list[Issue] = []
    rt = resource.get("resourceType") if type(resource) is dict else None
    rid = resource.get("id") if type(resource) is dict else None
    ctx = _Ctx(out, rt if type(rt) is str else "?", rid if type(rid) is str else "")
    _walk_resource(resource, "", ctx)
    return out


# --------------------------------------------------------------------------- invariants
def _codes(cc: Any) -> set:
    if type(cc) is not dict:
        return set()
    return {c.get("code") for c in cc.get("coding") or () if type(c) is dict}


def _inv_condition(o: dict) -> list[tuple[str, str, str]]:
    out = []
    abated = any(k.startswith("abatement") for k in o)
    clin = _codes(o.get("clinicalStatus"))
    if abated and "clinicalStatus" in o and not clin & {"inactive", "resolved", "remission"}:
        out.append((".clinicalStatus", "invariant", "con-4: an abated condition must be inactive, resolved or in remission"))
    if "entered-in-error" in _codes(o.get("verificationStatus")) and "clinicalStatus" in o:
        out.append((".clinicalStatus", "invariant", "con-5: no clinicalStatus when entered-in-error"))
    return out


def _inv_allergy(o: dict) -> list[tuple[str, str, str]]:
    eie = "entered-in-error" in _codes(o.get("verificationStatus"))
    if eie and "clinicalStatus" in o:
        return [(".clinicalStatus", "invariant", "ait-2: no clinicalStatus when entered-in-error")]
    if not eie and "clinicalStatus" not in o:
        return [(".clinicalStatus", "invariant", "ait-1: clinicalStatus is required unless entered-in-error")]
    return []


def _inv_observation(o: dict) -> list[tuple[str, str, str]]:
    if "dataAbsentReason" in o and any(k.startswith("value") for k in o):
        return [(".dataAbsentReason", "invariant", "obs-6: dataAbsentReason only when there is no value")]
    return []


def _inv_period(o: dict) -> list[tuple[str, str, str]]:
    s, e = o.get("start"), o.get("end")
    if type(s) is str and type(e) is str and len(s) == len(e) and s[:19] > e[:19] and s[19:] == e[19:]:
        return [(".end", "invariant", "per-1: period end is before its start")]
    return []


def _inv_simple_quantity(o: dict) -> list[tuple[str, str, str]]:
    if "comparator" in o:
        return [(".comparator", "invariant", "sqty-1: a SimpleQuantity has no comparator")]
    return []


def _inv_bundle(o: dict) -> list[tuple[str, str, str]]:
    out = []
    btype = o.get("type")
    full_urls = set()
    for i, e in enumerate(o.get("entry") or ()):
        if type(e) is not dict:
            continue
        has_req = "request" in e
        if btype in ("transaction", "batch") and not has_req:
            out.append((f".entry[{i}].request", "invariant", "bdl-3: transaction and batch entries need a request"))
        elif btype not in ("transaction", "batch", "history") and has_req:
            out.append((f".entry[{i}].request", "invariant", "bdl-3: only transaction/batch/history entries have a request"))
        fu = e.get("fullUrl")
        if type(fu) is str:
            if fu in full_urls:
                out.append((f".entry[{i}].fullUrl", "invariant", "bdl-7: fullUrl is not unique in the bundle"))
            full_urls.add(fu)
    return out


_INVARIANTS: dict[str, Callable[[dict], list[tuple[str, str, str]]]] = {
    "Condition": _inv_condition,
    "AllergyIntolerance": _inv_allergy,
    "Observation": _inv_observation,
    "Period": _inv_period,
    "SimpleQuantity": _inv_simple_quantity,
    "Bundle": _inv_bundle,
}
_compile_fast()
# what the generated predicates collect while they check (see _fastcheck.build); cleared by every caller
_REFS: list = []
_PREFS: list = []
_ODD: list = []
_ABATEMENT_KEYS = frozenset(k for k in TYPES["Condition"].allowed if k.startswith("abatement"))


def _condition_fails(o: dict) -> bool:
    """``bool(_inv_condition(o))`` for a Condition whose elements already passed (keys known, types right)."""
    if "clinicalStatus" not in o:
        return False
    vs = o.get("verificationStatus")
    if type(vs) is dict:
        for c in vs.get("coding") or ():
            if type(c) is dict and c.get("code") == "entered-in-error":
                return True
    return not o.keys().isdisjoint(_ABATEMENT_KEYS) and bool(_inv_condition(o))


_fast_invariants: dict[str, Any] = {**_INVARIANTS, "Condition": _condition_fails}
# the compiled twin of the generated predicates (vistasim._c.fhirc) when it is built and not switched off
_fhirc = _accel.load("fhirc")
_generated_ok = (_fhirc or _fastcheck).build(PRIMITIVE_CHECKS, _SEEN, _fast_invariants, _cc_in,
                                             _REFS, _PREFS, _ODD)


# --------------------------------------------------------------------------- business rules
# Code systems Oracle Health Millennium accepts for Condition.code, AllergyIntolerance.code, medications.
_SNOMED = "http://snomed.info/sct"
_ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
_ICD9 = "http://hl7.org/fhir/sid/icd-9-cm"
_RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
_LOINC = "http://loinc.org"
_UCUM = "http://unitsofmeasure.org"
_ICN = "urn:oid:2.16.840.1.113883.4.349"
_COND_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
_OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_CONDITION_SYSTEMS = frozenset({_SNOMED, _ICD10, _ICD9})
_ALLERGY_SYSTEMS = frozenset({_RXNORM, _SNOMED})
_PENDING = frozenset({"draft", "active", "on-hold"})


def _systems(cc: Any) -> set:
    if not isinstance(cc, dict):
        return set()
    return {c.get("system") for c in cc.get("coding") or () if isinstance(c, dict) and c.get("code")}


def _status_code(cc: Any) -> str | None:
    if isinstance(cc, dict):
        for c in cc.get("coding") or ():
            if isinstance(c, dict) and c.get("code"):
                return c["code"]
    return None


def is_safety_critical(res: dict[str, Any]) -> bool:
    """Active allergies, active medications, pending orders and active record flags: a gap here can harm."""
    rt = res.get("resourceType")
    if rt == "AllergyIntolerance":
        return _status_code(res.get("clinicalStatus")) == "active"
    if rt == "MedicationRequest":
        return res.get("status") in _PENDING
    if rt == "ServiceRequest":
        return res.get("status") in _PENDING
    if rt == "Flag":
        return res.get("status") == "active"
    return False


class _Rules:
    """Collects business-rule issues for one resource."""

    __slots__ = ("res", "out", "rt", "rid", "critical")

    def __init__(self, res: dict[str, Any], out: list[Issue]) -> None:
        self.res, self.out = res, out
        self.rt = str(res.get("resourceType", "?"))
        self.rid = str(res.get("id", ""))
        self.critical = is_safety_critical(res)

    def need(self, ok: bool, path: str, code: str, message: str, level: str = "error",
             critical: bool | None = None) -> None:
        if not ok:
            self.out.append(Issue(level, self.rt, self.rid, f"{self.rt}.{path}", code, message,
                                  self.critical if critical is None else critical, BUSINESS))


def _rules_patient(r: _Rules, o: dict[str, Any]) -> None:
    r.need(bool(o.get("identifier")), "identifier", "oracle-required", "Patient needs an identifier (Oracle Health, US Core)")
    r.need(bool(o.get("name")), "name", "oracle-required", "Patient needs a name (Oracle Health, US Core)")
    r.need("gender" in o, "gender", "us-core-required", "Patient needs a gender (US Core)")
    icns = [i for i in o.get("identifier") or () if isinstance(i, dict) and i.get("system") == _ICN]
    r.need(bool(icns), "identifier", "icn-missing", "Patient has no ICN identifier: it cannot be matched to its person")
    names = [n for n in o.get("name") or () if isinstance(n, dict)]
    r.need(not names or any(n.get("family") or n.get("given") for n in names), "name", "us-core-required",
           "Patient name needs a family or given part (US Core us-core-6)")
    # Legacy-data defects that still load but need a look (the names are never echoed):
    r.need(all(_fileman_name_ok(n) for n in names), "name", "name-format",
           "Patient name does not follow FileMan LAST,FIRST MIDDLE (missing given name, digits, lowercase "
           "or stray commas)", level="warning")
    r.need("birthDate" in o, "birthDate", "birthdate-missing", "Patient has no birth date", level="warning")
    r.need(o.get("gender") != "unknown", "gender", "gender-unknown",
           "Patient gender is unknown (VistA SEX was not M or F)", level="warning")


_NAME_PART = re.compile(r"[A-Z][A-Z' .\-]*")


def _fileman_name_ok(n: dict[str, Any]) -> bool:
    family, given = n.get("family"), n.get("given") or []
    if not isinstance(family, str) or not given:
        return False
    return all(isinstance(x, str) and _NAME_PART.fullmatch(x) is not None for x in [family, *given])


def _rules_condition(r: _Rules, o: dict[str, Any]) -> None:
    eie = _status_code(o.get("verificationStatus")) == "entered-in-error"
    r.need(eie or "clinicalStatus" in o, "clinicalStatus", "oracle-required", "Condition needs clinicalStatus (Oracle Health)")
    cats = set()
    for c in o.get("category") or ():
        if isinstance(c, dict):
            cats |= {x.get("code") for x in c.get("coding") or () if isinstance(x, dict) and x.get("system") == _COND_CATEGORY}
    r.need(bool(cats & {"problem-list-item", "encounter-diagnosis"}), "category", "oracle-category",
           "Condition category must be problem-list-item or encounter-diagnosis (Oracle Health)")
    systems = _systems(o.get("code"))
    r.need(bool(systems & _CONDITION_SYSTEMS), "code", "oracle-code-system",
           "Condition code needs a SNOMED CT, ICD-10-CM or ICD-9-CM coding (Oracle Health)")
    r.need(not (systems & _CONDITION_SYSTEMS) or bool(systems & {_SNOMED, _ICD10}), "code", "icd9-only",
           "Condition is coded in ICD-9-CM only: standardize to ICD-10-CM", level="warning")
    r.need("subject" in o, "subject", "oracle-required", "Condition needs a subject (Oracle Health)")


def _rules_allergy(r: _Rules, o: dict[str, Any]) -> None:
    eie = _status_code(o.get("verificationStatus")) == "entered-in-error"
    r.need(eie or "clinicalStatus" in o, "clinicalStatus", "oracle-required",
           "AllergyIntolerance needs clinicalStatus (Oracle Health)", critical=True)
    code = o.get("code")
    coded = bool(_systems(code) & _ALLERGY_SYSTEMS)
    free_text = isinstance(code, dict) and bool(code.get("text")) and not code.get("coding")
    # Millennium keeps free-text allergies (code.text only) but they never drive drug-allergy checking.
    # An active one is a safety-critical error (every active allergy must arrive coded: the person is
    # held back for terminology work); an inactive one is a warning on the worklist. A code in another
    # system, or no code at all, is an error.
    r.need(coded or free_text, "code", "oracle-code-system",
           "AllergyIntolerance code needs an RxNorm or SNOMED CT coding (Oracle Health)",
           level="warning" if eie else "error")
    r.need(not free_text, "code", "allergy-free-text",
           "AllergyIntolerance is free text only: it will not drive drug-allergy checking",
           level="error" if r.critical else "warning")
    r.need("patient" in o, "patient", "oracle-required", "AllergyIntolerance needs a patient (Oracle Health)")


def _rules_medication(r: _Rules, o: dict[str, Any]) -> None:
    med = o.get("medicationCodeableConcept")
    coded = _RXNORM in _systems(med) if med is not None else False
    r.need(coded, "medicationCodeableConcept", "oracle-rxnorm",
           "medication must be coded in RxNorm (Oracle Health)",
           level="error" if o.get("status") in _PENDING else "warning")
    r.need("subject" in o, "subject", "us-core-required", "MedicationRequest needs a subject (US Core)")
    r.need("authoredOn" in o, "authoredOn", "us-core-must-support", "MedicationRequest has no authoredOn", level="warning")


def _rules_observation(r: _Rules, o: dict[str, Any]) -> None:
    r.need("status" in o, "status", "us-core-required", "Observation needs a status (US Core)")
    r.need(bool(o.get("category")), "category", "us-core-required", "Observation needs a category (US Core)")
    r.need("code" in o, "code", "us-core-required", "Observation needs a code (US Core)")
    r.need("subject" in o, "subject", "us-core-required", "Observation needs a subject (US Core)")
    vital = any(_OBS_CATEGORY in _systems(c) and "vital-signs" in _codes(c) for c in o.get("category") or ())
    if not vital:
        return
    r.need(_LOINC in _systems(o.get("code")), "code", "vital-loinc", "a vital sign needs a LOINC code (US Core Vital Signs)")
    r.need(any(k.startswith("effective") for k in o), "effective[x]", "us-core-required",
           "a vital sign needs effective[x] (US Core Vital Signs)")
    quantities = [o.get("valueQuantity")] + [c.get("valueQuantity") for c in o.get("component") or () if isinstance(c, dict)]
    for q in quantities:
        if isinstance(q, dict):
            r.need(q.get("system") == _UCUM and "code" in q, "valueQuantity", "vital-ucum",
                   "a vital-sign quantity needs a UCUM unit (US Core Vital Signs)")


def _rules_encounter(r: _Rules, o: dict[str, Any]) -> None:
    r.need("subject" in o, "subject", "us-core-required", "Encounter needs a subject (US Core)")
    r.need("class" in o, "class", "us-core-required", "Encounter needs a class (US Core)")


def _rules_service_request(r: _Rules, o: dict[str, Any]) -> None:
    pending = o.get("status") in _PENDING
    r.need("subject" in o, "subject", "us-core-required", "ServiceRequest needs a subject (US Core)")
    coded = bool(_systems(o.get("code")))
    r.need(coded, "code", "order-uncoded",
           "ServiceRequest has no coded order: it would route to an unknown queue" if pending
           else "ServiceRequest has no coded order", level="error" if pending else "warning")
    r.need(bool(o.get("category")), "category", "us-core-must-support", "ServiceRequest has no category", level="warning")


def _rules_flag(r: _Rules, o: dict[str, Any]) -> None:
    code = o.get("code")
    ok = isinstance(code, dict) and bool(code.get("text") or _systems(code))
    r.need(ok, "code", "flag-uncoded", "Flag needs a code (text or coding) so the warning shows")
    r.need("subject" in o, "subject", "required", "Flag needs a subject")
    r.need(bool(o.get("category")), "category", "flag-category", "Flag has no category", level="warning")


_RULES = {"Patient": _rules_patient, "Condition": _rules_condition, "AllergyIntolerance": _rules_allergy,
          "MedicationRequest": _rules_medication, "Observation": _rules_observation,
          "Encounter": _rules_encounter, "ServiceRequest": _rules_service_request, "Flag": _rules_flag}


def _resources(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if obj.get("resourceType") == "Bundle":
        for e in obj.get("entry") or ():
            if isinstance(e, dict) and isinstance(e.get("resource"), dict):
                yield e["resource"]
    else:
        yield obj


def business_rules(obj: dict[str, Any]) -> list[Issue]:
    """US Core and Oracle Health create rules for a resource, or for every resource of a Bundle."""
    out: list[Issue] = []
    for res in _resources(obj):
        fn = _RULES.get(res.get("resourceType", ""))
        if fn is not None:
            fn(_Rules(res, out), res)
    return out


# --------------------------------------------------------------------------- data integrity
# Date elements checked for plausibility, per resource type.
_DATE_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Condition": (("onsetDateTime",), ("abatementDateTime",), ("recordedDate",)),
    "AllergyIntolerance": (("onsetDateTime",), ("recordedDate",), ("lastOccurrence",)),
    "MedicationRequest": (("authoredOn",),),
    "Observation": (("effectiveDateTime",), ("issued",)),
    "Encounter": (("period", "start"), ("period", "end")),
    "ServiceRequest": (("authoredOn",), ("occurrenceDateTime",)),
    "Flag": (("period", "start"),),
}


# the same with each path's label, built once rather than per resource
_DATE_LABELS = {rt: tuple((dp, f"{rt}.{'.'.join(dp)}") for dp in paths) for rt, paths in _DATE_PATHS.items()}


def _bounds(value: str) -> tuple[str, str]:
    """Earliest and latest calendar day a FHIR date/dateTime of any precision may mean (as YYYY-MM-DD)."""
    d = value[:10]
    if len(d) == 4:
        return d + "-01-01", d + "-12-31"
    if len(d) == 7:
        return d + "-01", d + "-31"
    return d, d


def _get(res: dict[str, Any], path: tuple[str, ...]) -> Any:
    cur: Any = res
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def _references(obj: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, reference) for every Reference.reference below ``obj``."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "reference" and isinstance(v, str):
                yield path, v
            elif isinstance(v, (dict, list)) and k != "contained":
                yield from _references(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _references(v, f"{path}[{i}]")


def _compute_ref_types() -> frozenset[str]:
    """Complex types that can hold a Reference below them, not counting their extensions.

    Extensions can carry a ``valueReference`` anywhere, so the typed walk below enters an
    ``extension`` that is present; everything else is pruned by type (a fixpoint over the R4 tables).
    """
    refs = {"Reference"}
    changed = True
    while changed:
        changed = False
        for name, spec in TYPES.items():
            if name in refs:
                continue
            for key, es in spec.elements.items():
                if key in _EXT_KEYS:
                    continue
                if es.kind != PRIM and (es.kind != COMPLEX or es.type in refs or es.type not in TYPES):
                    refs.add(name)
                    changed = True
                    break
    return frozenset(refs)


_EXT_KEYS = frozenset({"extension", "modifierExtension"})
_REF_TYPES = _compute_ref_types()


def _typed_references(obj: dict[str, Any], spec: TypeSpec, path: str, out: list[tuple[str, str]]) -> None:
    """Append what :func:`_references` yields for an R4-valid ``obj`` of type ``spec``, visiting less.

    Elements whose type cannot hold a Reference (CodeableConcept, Quantity, Period, primitives ...) are
    skipped unless an extension occurs below them; unknown keys, extensions, resources and opaque types
    are walked as :func:`_references` does. Same paths, same order. (Content that schema_check rejects,
    such as a ``reference`` key inside a CodeableConcept, is not looked for; the pipeline runs this
    only after schema_check passed.) The full walk was most of data_integrity's time; this one builds
    no generators and no paths for what it skips.
    """
    elements = spec.elements
    for k, v in obj.items():
        tv = type(v)
        if tv is str:
            if k == "reference":
                out.append((path, v))
            continue
        if (tv is not dict and tv is not list) or k == "contained":
            if k == "reference" and isinstance(v, str):
                out.append((path, v))
            elif isinstance(v, (dict, list)) and k != "contained":
                out.extend(_references(v, f"{path}.{k}"))
            continue
        es = elements.get(k)
        if es is None or es.kind != COMPLEX or k in _EXT_KEYS or es.type not in TYPES:
            out.extend(_references(v, f"{path}.{k}"))
        elif es.type in _REF_TYPES:
            sub = TYPES[es.type]
            if tv is dict:
                _typed_references(v, sub, f"{path}.{k}", out)
            else:
                for i, x in enumerate(v):
                    if type(x) is dict:
                        _typed_references(x, sub, f"{path}.{k}[{i}]", out)
                    elif isinstance(x, (dict, list)):
                        out.extend(_references(x, f"{path}.{k}[{i}]"))
        elif _has_extension(v, es.type):
            # an extension somewhere below may hold a valueReference: walk this element the long way
            out.extend(_references(v, f"{path}.{k}"))


def _ext_tables() -> tuple[dict[str, frozenset[str]], dict[str, tuple[tuple[str, str], ...]]]:
    """Per type: the keys that carry extensions (``extension``, ``_x`` siblings), and its complex children."""
    probe, kids = {}, {}
    for name, spec in TYPES.items():
        probe[name] = frozenset(_EXT_KEYS | {k for k in spec.allowed if k.startswith("_")})
        kids[name] = tuple((k, es.type) for k, es in spec.elements.items()
                           if es.kind == COMPLEX and k not in _EXT_KEYS and es.type in TYPES)
    return probe, kids


_EXT_PROBE, _EXT_KIDS = _ext_tables()


def _has_extension(obj: Any, tname: str) -> bool:
    """Whether an extension occurs anywhere in ``obj`` (of a type that holds no Reference itself).

    Typed: only the keys that can carry an extension are probed, and only complex children entered.
    """
    if type(obj) is list:
        for x in obj:
            if type(x) is dict:
                if _has_extension(x, tname):
                    return True
            elif isinstance(x, (dict, list)):
                return True
        return False
    if type(obj) is not dict:
        return isinstance(obj, (dict, list))  # a non-JSON container: let the long walk look at it
    if not obj.keys().isdisjoint(_EXT_PROBE[tname]):
        return True
    for key, sub in _EXT_KIDS[tname]:
        v = obj.get(key)
        if v is not None and (type(v) is dict or type(v) is list) and _has_extension(v, sub):
            return True
    return False


# Per resource type: its top-level elements that hold one Reference (subject, patient, encounter ...).
_TOP_REFS = {name: frozenset(k for k, es in spec.elements.items()
                             if es.kind == COMPLEX and es.type == "Reference" and not es.is_list)
             for name, spec in TYPES.items() if spec.is_resource}
_REF_KEY = b'"reference":'


def _resource_references(res: dict[str, Any], rt: str) -> list[tuple[str, str]]:
    """(path, reference) of every Reference.reference in a resource, as :func:`_references` finds them.

    Fast path, exact: in the resource's JSON, ``"reference":`` occurs once per object key named
    ``reference`` anywhere (inside a string its quotes would be escaped). When the string-valued
    ``reference`` keys of the top-level single Reference elements (``subject``, ``patient`` ...)
    account for every occurrence, they are all there is; otherwise the typed walk finds the rest.
    A C-speed dump and count replaced the walk for nearly every resource the mapper emits.
    """
    spec = TYPES.get(rt)
    if spec is None or not spec.is_resource:
        return list(_references(res, rt))
    try:
        n = orjson.dumps(res).count(_REF_KEY)
    except TypeError:  # not JSON (a test's odd object): the walk decides
        n = -1
    if n >= 0:
        top = _TOP_REFS[rt]
        fast = []
        for k, v in res.items():
            if k in top and type(v) is dict:
                ref = v.get("reference")
                if type(ref) is str:
                    fast.append((f"{rt}.{k}", ref))
        if len(fast) == n:
            return fast
    out: list[tuple[str, str]] = []
    _typed_references(res, spec, rt, out)
    return out


def data_integrity(bundle: dict[str, Any], *, as_of: str | None = None) -> list[Issue]:
    """References resolve inside the bundle; dates plausible; exactly one Patient per ICN.

    ``as_of`` (YYYY-MM-DD) is "today" for the not-in-the-future check; the pipeline passes its simulated
    clock. Without it the wall-clock UTC date is used.
    """
    today = as_of or datetime.now(timezone.utc).date().isoformat()
    out: list[Issue] = []
    resources = [(e.get("fullUrl"), e["resource"]) for e in bundle.get("entry") or ()
                 if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    targets: dict[str, str] = {}
    for fu, res in resources:
        rt, rid = res.get("resourceType", "?"), res.get("id")
        if isinstance(fu, str):
            targets[fu] = rt
        if rid:
            targets[f"{rt}/{rid}"] = rt

    def add(res: dict[str, Any], path: str, code: str, msg: str) -> None:
        out.append(Issue("error", str(res.get("resourceType", "?")), str(res.get("id", "")), path, code, msg,
                         is_safety_critical(res), INTEGRITY))

    # one Patient per ICN; every Patient carries exactly one ICN
    patients = [res for _, res in resources if res.get("resourceType") == "Patient"]
    by_icn: dict[str, int] = {}
    for p in patients:
        icns = {str(i.get("value")) for i in p.get("identifier") or () if isinstance(i, dict) and i.get("system") == _ICN}
        if len(icns) > 1:
            add(p, "Patient.identifier", "identity-merge", "Patient carries several ICNs: two people merged into one")
        for icn in icns:
            by_icn[icn] = by_icn.get(icn, 0) + 1
    for icn, n in by_icn.items():
        if n > 1:
            for p in patients:
                if any(isinstance(i, dict) and i.get("value") == icn for i in p.get("identifier") or ()):
                    add(p, "Patient.identifier", "duplicate-patient", f"{n} Patients share one ICN: one person split")
                    break
    if len(patients) != 1:
        out.append(Issue("error", "Bundle", str(bundle.get("id", "")), "Bundle.entry", "patient-count",
                         f"a person's bundle holds {len(patients)} Patients, not 1", False, INTEGRITY))

    for p in patients:  # two DFNs at one station for one ICN: a duplicate registration in VistA
        stations = [i.get("system") for i in p.get("identifier") or ()
                    if isinstance(i, dict) and str(i.get("system", "")).startswith("urn:va:")
                    and str(i.get("system", "")).endswith(":2")]
        if len(stations) != len(set(stations)):
            out.append(Issue("warning", "Patient", str(p.get("id", "")), "Patient.identifier", "duplicate-registration",
                             "the person has two records (DFNs) at one station: merged here, review in VistA",
                             False, INTEGRITY))

    birth = death = None
    if len(patients) == 1:
        p = patients[0]
        birth = p.get("birthDate") if isinstance(p.get("birthDate"), str) else None
        death = p.get("deceasedDateTime") if isinstance(p.get("deceasedDateTime"), str) else None
        for label, v in (("birthDate", birth), ("deceasedDateTime", death)):
            if v and _bounds(v)[0] > today:
                add(p, f"Patient.{label}", "date-future", f"Patient.{label} is in the future")
        if birth and death and _bounds(death)[1] < _bounds(birth)[0]:
            add(p, "Patient.deceasedDateTime", "death-before-birth", "Patient died before being born")
    birth_lo = _bounds(birth)[0] if birth else None

    for _, res in resources:
        rt = res.get("resourceType", "?")
        for path, ref in _resource_references(res, rt):
            if ref.startswith("#"):
                continue
            if ref not in targets:
                add(res, path, "dangling-reference", f"{path} does not resolve inside the bundle")
            elif (path.endswith(".subject") or path.endswith(".patient")) and targets[ref] != "Patient":
                add(res, path, "reference-type", f"{path} must point to a Patient, not a {targets[ref]}")
        for dp, label in _DATE_LABELS.get(rt, ()):
            v = res.get(dp[0]) if len(dp) == 1 else _get(res, dp)
            if not isinstance(v, str) or len(v) < 4:
                continue
            lo, hi = _bounds(v)
            if lo > today:
                add(res, label, "date-future", f"{label} is in the future")
            if birth_lo and hi < birth_lo:
                add(res, label, "date-before-birth", f"{label} is before the patient's birth")
        if rt == "Condition":
            on, ab = res.get("onsetDateTime"), res.get("abatementDateTime")
            if isinstance(on, str) and isinstance(ab, str) and _bounds(ab)[1] < _bounds(on)[0]:
                add(res, "Condition.abatementDateTime", "abatement-before-onset", "Condition abated before its onset")
    return out


def validate_bundle(bundle: dict[str, Any], *, as_of: str | None = None) -> dict[str, list[Issue]]:
    """All three substages over one bundle: {substage: issues}."""
    return {SCHEMA: schema_check(bundle), BUSINESS: business_rules(bundle),
            INTEGRITY: data_integrity(bundle, as_of=as_of)}


# --------------------------------------------------------------------------- fast "clean?" answers
# The pipeline stops a person at the first substage with an error, and nearly every person has none. These
# predicates answer only "would the full function report no error?" without building issues, paths or
# sets; the stages run the full functions only when they say no. Each must never say yes when the full
# function would report an error (saying no too often only costs time). They assume schema-valid input
# (the stages use them only for bundles whose every resource passed the generated predicates).
def _coded_in(cc: Any, systems: frozenset) -> bool:
    """Some coding of ``cc`` has a code and a system in ``systems`` (``_systems(cc) & systems``)."""
    if type(cc) is not dict:
        return False
    for c in cc.get("coding") or ():
        if type(c) is dict and c.get("code") and c.get("system") in systems:
            return True
    return False


_RXNORM_SET = frozenset({_RXNORM})
_EFFECTIVE_KEYS = frozenset(k for k in TYPES["Observation"].allowed if k.startswith("effective"))
_LOINC_SET = frozenset({_LOINC})
_COND_CATEGORY_CODES = frozenset({"problem-list-item", "encounter-diagnosis"})


def _ok_patient(o: dict[str, Any]) -> bool:
    ids, names = o.get("identifier"), o.get("name")
    if not ids or not names or "gender" not in o or type(ids) is not list or type(names) is not list:
        return False
    for i in ids:
        if type(i) is dict and i.get("system") == _ICN:
            break
    else:
        return False
    for n in names:
        if type(n) is dict and (n.get("family") or n.get("given")):
            return True
    return False


def _ok_condition(o: dict[str, Any]) -> bool:
    if "subject" not in o or not _coded_in(o.get("code"), _CONDITION_SYSTEMS):
        return False
    if "clinicalStatus" not in o and _status_code(o.get("verificationStatus")) != "entered-in-error":
        return False
    for c in o.get("category") or ():
        if type(c) is dict:
            for x in c.get("coding") or ():
                if type(x) is dict and x.get("system") == _COND_CATEGORY and x.get("code") in _COND_CATEGORY_CODES:
                    return True
    return False


def _ok_allergy(o: dict[str, Any]) -> bool:
    if "patient" not in o:
        return False
    code = o.get("code")
    if _coded_in(code, _ALLERGY_SYSTEMS):  # the common case; coded implies a coding, so not free text
        return "clinicalStatus" in o or _status_code(o.get("verificationStatus")) == "entered-in-error"
    eie = _status_code(o.get("verificationStatus")) == "entered-in-error"
    if not eie and "clinicalStatus" not in o:
        return False
    free_text = isinstance(code, dict) and bool(code.get("text")) and not code.get("coding")
    if not free_text:
        return eie  # neither coded nor free text: an error unless entered-in-error
    return _status_code(o.get("clinicalStatus")) != "active"  # active free text: safety-critical error


def _ok_medication(o: dict[str, Any]) -> bool:
    if "subject" not in o:
        return False
    return _coded_in(o.get("medicationCodeableConcept"), _RXNORM_SET) or o.get("status") not in _PENDING


def _ok_observation(o: dict[str, Any]) -> bool:
    cats = o.get("category")
    if "status" not in o or not cats or "code" not in o or "subject" not in o:
        return False
    vital = False
    for c in cats:
        if type(c) is dict:
            has_sys = has_vs = False
            for x in c.get("coding") or ():
                if type(x) is dict:
                    code = x.get("code")
                    if code and x.get("system") == _OBS_CATEGORY:
                        has_sys = True
                    if code == "vital-signs":
                        has_vs = True
            if has_sys and has_vs:
                vital = True
                break
    if not vital:
        return True
    if not _coded_in(o.get("code"), _LOINC_SET):
        return False
    if o.keys().isdisjoint(_EFFECTIVE_KEYS) and not any(k.startswith("effective") for k in o):
        return False
    q = o.get("valueQuantity")
    if type(q) is dict and not (q.get("system") == _UCUM and "code" in q):
        return False
    for c in o.get("component") or ():
        if type(c) is dict:
            q = c.get("valueQuantity")
            if type(q) is dict and not (q.get("system") == _UCUM and "code" in q):
                return False
    return True


def _ok_encounter(o: dict[str, Any]) -> bool:
    return "subject" in o and "class" in o


def _ok_service_request(o: dict[str, Any]) -> bool:
    if "subject" not in o:
        return False
    code = o.get("code")
    if type(code) is dict:
        for c in code.get("coding") or ():
            if type(c) is dict and c.get("code"):
                return True
    return o.get("status") not in _PENDING


def _ok_flag(o: dict[str, Any]) -> bool:
    code = o.get("code")
    if "subject" not in o or type(code) is not dict:
        return False
    if code.get("text"):
        return True
    for c in code.get("coding") or ():
        if type(c) is dict and c.get("code"):
            return True
    return False


_CLEAN_RULES = {"Patient": _ok_patient, "Condition": _ok_condition, "AllergyIntolerance": _ok_allergy,
                "MedicationRequest": _ok_medication, "Observation": _ok_observation,
                "Encounter": _ok_encounter, "ServiceRequest": _ok_service_request, "Flag": _ok_flag}
if _fhirc is not None:  # the same predicates compiled (None when they no longer match these)
    _CLEAN_RULES = _fhirc.clean_rules(globals()) or _CLEAN_RULES


def business_clean(obj: dict[str, Any]) -> bool:
    """True only when :func:`business_rules` would report no error for ``obj`` (a schema-valid bundle or resource)."""
    get = _CLEAN_RULES.get
    if obj.get("resourceType") != "Bundle":
        fn = get(obj.get("resourceType", ""))
        return fn is None or bool(fn(obj))
    for e in obj.get("entry") or ():  # as _resources walks a Bundle
        if isinstance(e, dict):
            res = e.get("resource")
            if isinstance(res, dict):
                fn = get(res.get("resourceType", ""))
                if fn is not None and not fn(res):
                    return False
    return True


def _targets(resources: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, str]:
    """data_integrity's reference targets, built the same way (later entries win)."""
    targets: dict[str, str] = {}
    for e, res in resources:
        rt, rid = res.get("resourceType", "?"), res.get("id")
        fu = e.get("fullUrl")
        if isinstance(fu, str):
            targets[fu] = rt
        if rid:
            targets[f"{rt}/{rid}"] = rt
    return targets


_DATE_TOP = {rt: tuple(dp[0] for dp in paths if len(dp) == 1) for rt, paths in _DATE_PATHS.items()}
_DATE_NESTED = {rt: tuple(dp for dp in paths if len(dp) > 1) for rt, paths in _DATE_PATHS.items()}


def integrity_clean(bundle: dict[str, Any], refs: Iterable[str], patient_refs: Iterable[str], *,
                    as_of: str | None = None, pairs: list[tuple[dict[str, Any], dict[str, Any]]] | None = None) -> bool:
    """True only when :func:`data_integrity` would report no error for ``bundle``.

    ``refs`` must hold every ``Reference.reference`` of its resources (as :func:`_resource_references`
    finds them) and ``patient_refs`` those whose path ends in ``.subject`` or ``.patient``: the generated
    schema predicates collect both while they check the bundle (schema_stage hands them on). ``pairs``,
    when given, must be the bundle's (entry, resource) pairs of dict entries with dict resources, in order.
    """
    today = as_of or datetime.now(timezone.utc).date().isoformat()
    # data_integrity's targets are fullUrls and "type/id" keys; a reference without "/" can only be a
    # fullUrl, so the "type/id" keys are built only when some reference has a "/"
    full: dict[str, str] = {}
    if pairs is None:
        pairs = [(e, e["resource"]) for e in bundle.get("entry") or ()
                 if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    patient = None
    n_patients = 0
    for e, res in pairs:
        rt = res.get("resourceType", "?")
        fu = e.get("fullUrl")
        if isinstance(fu, str):
            full[fu] = rt
        if rt == "Patient":
            patient = res
            n_patients += 1
    if n_patients != 1 or patient is None:
        return False
    icn = None
    for i in patient.get("identifier") or ():
        if isinstance(i, dict) and i.get("system") == _ICN:
            v = str(i.get("value"))
            if icn is not None and v != icn:
                return False  # identity-merge
            icn = v
    targets: dict[str, str] | None = None
    for ref in set(refs).difference(full):
        if ref.startswith("#"):
            continue
        if "/" not in ref:
            return False  # dangling-reference
        if targets is None:
            targets = _targets(pairs)
        if ref not in targets:
            return False
    for ref in set(patient_refs):
        if ref.startswith("#"):
            continue
        if "/" in ref:
            if targets is None:
                targets = _targets(pairs)
            kind = targets.get(ref)
        else:
            kind = full.get(ref)
        if kind != "Patient":
            return False  # reference-type (or dangling)
    birth = patient.get("birthDate") if isinstance(patient.get("birthDate"), str) else None
    death = patient.get("deceasedDateTime") if isinstance(patient.get("deceasedDateTime"), str) else None
    if (birth and _bounds(birth)[0] > today) or (death and _bounds(death)[0] > today):
        return False
    if birth and death and _bounds(death)[1] < _bounds(birth)[0]:
        return False
    # every plausibility bound at once: the latest earliest-day must not pass today, the earliest
    # latest-day must not precede the birth
    birth_lo = _bounds(birth)[0] if birth else None
    top, nested = _DATE_TOP, _DATE_NESTED
    for _, res in pairs:
        rt = str(res.get("resourceType", "?"))
        for key in top.get(rt, ()):
            tv = res.get(key)
            if isinstance(tv, str) and len(tv) >= 4:
                lo, hi = _bounds(tv) if len(tv) < 10 else (tv[:10], tv[:10])
                if lo > today or (birth_lo and hi < birth_lo):
                    return False
        for dp in nested.get(rt, ()):
            v = _get(res, dp)
            if isinstance(v, str) and len(v) >= 4:
                lo, hi = _bounds(v)
                if lo > today or (birth_lo and hi < birth_lo):
                    return False
        if rt == "Condition":
            on, ab = res.get("onsetDateTime"), res.get("abatementDateTime")
            if isinstance(on, str) and isinstance(ab, str) and _bounds(ab)[1] < _bounds(on)[0]:
                return False
    return True


_integrity_clean_py = integrity_clean  # the reference the compiled twin is tested against
if _fhirc is not None:  # the same function compiled
    integrity_clean = _fhirc.compiled_integrity_clean(globals())
