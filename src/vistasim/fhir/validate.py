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
``bench/fhir.py`` measures the rate; the agreement with fhirclient is measured in
``tests/test_fhir_agreement.py``.

Messages never carry patient values (names, identifiers, dates); only codes and element paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from vistasim.fhir import r4spec
from vistasim.fhir.r4spec import COMPILED_PATTERNS, COMPLEX, OPAQUE, PRIM, RESOURCE, TYPES, TypeSpec

__all__ = ["Issue", "schema_check", "business_rules", "data_integrity", "validate_bundle", "errors_only",
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


def errors_only(issues: Iterable[Issue]) -> List[Issue]:
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


def _make_string_check(t: str) -> Callable[[Any], bool]:
    pattern = COMPILED_PATTERNS[t].fullmatch
    seen: set = set()
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

    return check


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


PRIMITIVE_CHECKS: Dict[str, Callable[[Any], bool]] = {t: _make_string_check(t) for t in r4spec.STRING_PRIMITIVES}
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

    def __init__(self, out: List[Issue], rtype: str, rid: str) -> None:
        self.out, self.rtype, self.rid = out, rtype, rid

    def add(self, path: str, code: str, message: str, level: str = "error") -> None:
        self.out.append(Issue(level, self.rtype, self.rid, path, code, message, False, SCHEMA))


def _walk(obj: Any, spec: TypeSpec, path: str, ctx: _Ctx) -> None:
    if type(obj) is not dict:
        ctx.add(path, "type", f"{path} must be a JSON object ({spec.name})")
        return
    if not obj:
        ctx.add(path, "empty", f"{path} is empty: an element needs a value or children (ele-1)")
        return
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
    seen_choice: Optional[Dict[str, str]] = None
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


def _check_value(v: Any, es: r4spec.ElementSpec, key: str, ipath: Optional[str], ctx: _Ctx,
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


def _cc_in(cc: dict, system: Optional[str], codes: frozenset) -> bool:
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
    _walk(obj, spec, path if path else rt, ctx)


def schema_check(resource: Dict[str, Any]) -> List[Issue]:
    """FHIR R4 4.0.1 structural validation of one resource (a Bundle's entries are checked too)."""
    out: List[Issue] = []
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


def _inv_condition(o: dict) -> List[Tuple[str, str, str]]:
    out = []
    abated = any(k.startswith("abatement") for k in o)
    clin = _codes(o.get("clinicalStatus"))
    if abated and "clinicalStatus" in o and not clin & {"inactive", "resolved", "remission"}:
        out.append((".clinicalStatus", "invariant", "con-4: an abated condition must be inactive, resolved or in remission"))
    if "entered-in-error" in _codes(o.get("verificationStatus")) and "clinicalStatus" in o:
        out.append((".clinicalStatus", "invariant", "con-5: no clinicalStatus when entered-in-error"))
    return out


def _inv_allergy(o: dict) -> List[Tuple[str, str, str]]:
    eie = "entered-in-error" in _codes(o.get("verificationStatus"))
    if eie and "clinicalStatus" in o:
        return [(".clinicalStatus", "invariant", "ait-2: no clinicalStatus when entered-in-error")]
    if not eie and "clinicalStatus" not in o:
        return [(".clinicalStatus", "invariant", "ait-1: clinicalStatus is required unless entered-in-error")]
    return []


def _inv_observation(o: dict) -> List[Tuple[str, str, str]]:
    if "dataAbsentReason" in o and any(k.startswith("value") for k in o):
        return [(".dataAbsentReason", "invariant", "obs-6: dataAbsentReason only when there is no value")]
    return []


def _inv_period(o: dict) -> List[Tuple[str, str, str]]:
    s, e = o.get("start"), o.get("end")
    if type(s) is str and type(e) is str and len(s) == len(e) and s[:19] > e[:19] and s[19:] == e[19:]:
        return [(".end", "invariant", "per-1: period end is before its start")]
    return []


def _inv_simple_quantity(o: dict) -> List[Tuple[str, str, str]]:
    if "comparator" in o:
        return [(".comparator", "invariant", "sqty-1: a SimpleQuantity has no comparator")]
    return []


def _inv_bundle(o: dict) -> List[Tuple[str, str, str]]:
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


_INVARIANTS: Dict[str, Callable[[dict], List[Tuple[str, str, str]]]] = {
    "Condition": _inv_condition,
    "AllergyIntolerance": _inv_allergy,
    "Observation": _inv_observation,
    "Period": _inv_period,
    "SimpleQuantity": _inv_simple_quantity,
    "Bundle": _inv_bundle,
}
