"""Generated validity predicates: the speed path of :func:`vistasim.fhir.validate.schema_check`.

From the same R4 tables the detailed walk reads, one plain Python function per type is generated and
compiled once at import (the technique of fastjsonschema): no per-element table lookups, no path
strings, one membership test per element. Each answers only "valid?"; a resource that is not valid is then
walked by the detailed validator, which says why. ``tests/test_fhir_validate.py`` checks that the
generated and the table-walking paths agree on every corpus resource.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from vistasim.fhir.r4spec import COMPLEX, PRIM, RESOURCE, RESOURCE_TYPES, STRING_PRIMITIVES, TYPES

_LOOP_THRESHOLD = 24  # types with more keys than this check the keys present instead of every element


def _patient_ref(key: str, es: Any) -> bool:
    """A single Reference named subject or patient: data_integrity requires it to point to a Patient."""
    return key in ("subject", "patient") and es.kind == COMPLEX and es.type == "Reference" and not es.is_list


def _fn(name: str) -> str:
    return "ok_" + name.replace(".", "_")


def generate_source() -> str:
    """Python source of the predicates (for reading; :func:`build` compiles it)."""
    return _generate()[0]


def _generate() -> tuple:
    lines: list[str] = []
    binding_ids: dict[frozenset, str] = {}

    def binding(codes: frozenset) -> str:
        if codes not in binding_ids:
            binding_ids[codes] = f"B{len(binding_ids)}"
        return binding_ids[codes]

    def expr(es: Any, x: str) -> str:
        if es.kind == PRIM:
            t = es.type
            e = f"((type({x}) is str and {x} in S_{t}) or C_{t}({x}))" if t in STRING_PRIMITIVES else f"C_{t}({x})"
            if es.binding is not None:
                e += f" and {x} in {binding(es.binding)}"
            return e
        if es.kind == COMPLEX:
            e = f"{'memo_' if es.type in MEMO_TYPES else ''}{_fn(es.type)}({x})"
            if es.binding is not None:
                e += f" and cc_in({x}, {es.binding_system!r}, {binding(es.binding)})"
            return e
        if es.kind == RESOURCE:  # its references are not the outer resource's: the collection is off
            return f"(ODD.append(1) or ok_resource({x}))"
        return f"(ODD.append(1) or type({x}) is dict)"  # OPAQUE: not walked, so not collected from

    for name, spec in TYPES.items():
        f = _fn(name)
        lines.append(f"A_{f} = ALLOWED[{name!r}]")
        lines.append(f"W_{f} = frozenset(x for x in A_{f} if not x.startswith('_'))")
        single = sorted(keys[0] for _, keys in spec.required if len(keys) == 1)
        def_at = len(lines)
        if spec.is_resource and len(spec.elements) > _LOOP_THRESHOLD:
            # resources dispatch on their exact key sequence to a function specialised for it (see
            # _Shapes); the generic body below (g_...) serves shapes that are not (or not yet) specialised
            lines.append(f"SH_{f} = {{}}")
            lines.append(f"def {f}(o):")
            lines.append("    if type(o) is not dict or not o: return False")
            lines.append(f"    sh = SH_{f}.get(tuple(o))")
            lines.append("    if sh is not None: return sh(o)")
            lines.append(f"    return SHAPE({name!r}, o)")
            def_at = len(lines)
            lines.append(f"def g_{f}(o):")
        else:
            lines.append(f"def {f}(o):")
        lines.append("    if type(o) is not dict or not o: return False")
        lines.append("    k = o.keys()")
        # `_x` keys (primitive extensions) are allowed but not walked: flag them (their content is
        # not searched for references), at no cost when absent
        lines.append(f"    if not k <= W_{f}:")
        lines.append(f"        if not k <= A_{f}: return False")
        lines.append("        ODD.append(1)")
        # set constants live at module level: a literal in the body would be rebuilt on every call
        if single:
            lines.insert(def_at, f"R_{f} = frozenset({sorted(single)!r})")
            def_at += 1
            lines.append(f"    if not R_{f} <= k: return False")
        for _, req_keys in spec.required:
            if len(req_keys) > 1:
                lines.append(f"    if not ({' or '.join(f'{k!r} in o' for k in req_keys)}): return False")
        groups: dict[str, list[str]] = {}
        for key, group in spec.choices.items():
            groups.setdefault(group, []).append(key)
        for gi, group_keys in enumerate(groups.values()):
            lines.insert(def_at, f"G{gi}_{f} = frozenset({sorted(group_keys)!r})")
            def_at += 1
            lines.append(f"    if len(k & G{gi}_{f}) > 1: return False")
        if len(spec.elements) > _LOOP_THRESHOLD:
            # per present key: a string already seen valid (or a bound code) costs one set lookup; a complex
            # value whose JSON passed before costs one orjson.dumps and a set lookup (see _memo for why
            # equal JSON means equal verdict); anything else runs the element's generated check
            lines.append(f"    d = D_{f}; sk = SK_{f}; mk = MK_{f}")
            lines.append("    for key, v in o.items():")
            lines.append("        s = sk.get(key)")
            lines.append("        if s is not None:")
            lines.append("            if type(v) is str and v in s: continue")
            lines.append("        else:")
            lines.append("            m = mk.get(key)")
            lines.append("            if m is not None:")
            lines.append("                try:")
            lines.append("                    b = dumps(v, option=OPT)")
            lines.append("                except TypeError:")
            lines.append("                    b = None")
            lines.append("                if b is not None:")
            lines.append("                    if b in m: continue")
            lines.append("                    n = len(REFS) + len(PREFS) + len(ODD)")
            lines.append("                    if not d[key](v): return False")
            lines.append("                    if len(REFS) + len(PREFS) + len(ODD) == n:")
            lines.append("                        if len(m) >= MEMO_LIMIT: m.clear()")
            lines.append("                        m.add(b)")
            lines.append("                    continue")
            lines.append("        c = d.get(key)")
            lines.append("        if c is not None and not c(v): return False")
        else:
            # `key in o` (one bytecode) before the lookup: most elements are absent, and a
            # dict.get call per absent element was the largest single cost of schema_check.
            for key, es in spec.elements.items():
                lines.append(f"    if {key!r} in o:")
                lines.append(f"        v = o[{key!r}]")
                if es.is_list:
                    lines.append("        if type(v) is not list or not v: return False")
                    lines.append("        for x in v:")
                    lines.append(f"            if not ({expr(es, 'x')}): return False")
                else:
                    lines.append(f"        if not ({expr(es, 'v')}): return False")
                    if _patient_ref(key, es):
                        lines.append("        if 'reference' in v: PREFS.append(v['reference'])")
            if name == "Reference":
                lines.append("    if 'reference' in o: REFS.append(o['reference'])")
        if name in INVARIANT_TYPES:
            lines.append(f"    if INV[{name!r}](o): return False")
        lines.append("    return True")
        if len(spec.elements) > _LOOP_THRESHOLD:
            entries = []
            for key, es in spec.elements.items():
                g = f"{f}__{key}"
                lines.append(f"def {g}(v):")
                if es.kind == COMPLEX and es.type == "Identifier" and es.is_list:
                    # the common {use, system, value} shape inline; any other shape takes ok_Identifier
                    lines.append("    if type(v) is not list or not v: return False")
                    lines.append("    for x in v:")
                    lines.append("        if type(x) is dict and x.keys() == IDENT_USV:")
                    lines.append("            a = x['use']; b = x['system']; c = x['value']")
                    lines.append("            if (type(a) is str and a in IDENT_USE and type(b) is str and (b in S_uri or C_uri(b))")
                    lines.append("                    and type(c) is str and (c in S_string or C_string(c))): continue")
                    lines.append("        if not ok_Identifier(x): return False")
                    lines.append("    return True")
                elif es.kind == COMPLEX and es.type == "Reference" and not es.is_list:
                    # the common {reference} shape inline (what ok_Reference checks and collects)
                    lines.append("    if type(v) is dict and len(v) == 1:")
                    lines.append("        r = v.get('reference')")
                    lines.append("        if type(r) is str and (r in S_string or C_string(r)):")
                    lines.append("            REFS.append(r)")
                    if _patient_ref(key, es):
                        lines.append("            PREFS.append(r)")
                    lines.append("            return True")
                    lines.append("    if not ok_Reference(v): return False")
                    if _patient_ref(key, es):
                        lines.append("    if 'reference' in v: PREFS.append(v['reference'])")
                    lines.append("    return True")
                elif es.is_list:
                    lines.append("    if type(v) is not list or not v: return False")
                    lines.append("    for x in v:")
                    lines.append(f"        if not ({expr(es, 'x')}): return False")
                    lines.append("    return True")
                elif _patient_ref(key, es):
                    lines.append(f"    if not ({expr(es, 'v')}): return False")
                    lines.append("    if 'reference' in v: PREFS.append(v['reference'])")
                    lines.append("    return True")
                elif es.kind == PRIM and es.binding is None:
                    lines.pop()  # the primitive's own check is the element's check: no wrapper call
                    entries.append(f"{key!r}: C_{es.type}")
                    continue
                else:
                    lines.append(f"    return bool({expr(es, 'v')})")
                entries.append(f"{key!r}: {g}")
            lines.append(f"D_{f} = {{{', '.join(entries)}}}")
            sk, mk = ([f"'resourceType': frozenset({{{name!r}}})"] if spec.is_resource else []), []
            for key, es in spec.elements.items():
                if es.kind == PRIM and es.type in STRING_PRIMITIVES and not es.is_list:
                    # a code in a required value set is a valid code: the binding set answers both
                    sk.append(f"{key!r}: {binding(es.binding) if es.binding is not None else 'S_' + es.type}")
                elif es.kind == COMPLEX and es.type not in _NO_MEMO:
                    mk.append(f"{key!r}: set()")
            lines.append(f"SK_{f} = {{{', '.join(sk)}}}")
            lines.append(f"MK_{f} = {{{', '.join(mk)}}}")
    lines.append("RESOURCE_FNS = {" + ", ".join(f"{r!r}: {_fn(r)}" for r in RESOURCE_TYPES) + "}")
    lines.append("def ok_resource(o):")
    lines.append("    if type(o) is not dict: return False")
    lines.append("    f = RESOURCE_FNS.get(o.get('resourceType'))")
    lines.append("    return f is not None and f(o)")
    header = [f"{bid} = BINDINGS[{i}]" for i, bid in enumerate(binding_ids.values())]
    return "\n".join(header + lines) + "\n", list(binding_ids)


INVARIANT_TYPES: frozenset = frozenset()
SHAPE_LIMIT = 512  # specialised key sequences per resource type; beyond, the generic loop serves


class _Shapes:
    """Builds, per resource type and exact key sequence, a function with the loop of the generic check
    unrolled: no set tests for allowed, required or choice keys (the key sequence answers them once) and
    no per-key dispatch. Each element gets the same check as in the generic loop (string primitives
    inline, remembered JSON for the MK_ elements, the D_ entry otherwise), so the verdict and the
    collected references are the generic function's.
    """

    def __init__(self, ns: dict[str, Any]) -> None:
        self.ns = ns
        self.count = 0

    def __call__(self, name: str, o: dict) -> bool:
        ns, f = self.ns, _fn(name)
        shapes, generic = ns["SH_" + f], ns["g_" + f]
        keys = tuple(o)
        if len(shapes) >= SHAPE_LIMIT:
            return generic(o)
        spec = TYPES[name]
        ks = set(keys)
        allowed = frozenset(x for x in spec.allowed if not x.startswith("_"))
        required = {keys_[0] for _, keys_ in spec.required if len(keys_) == 1}
        groups: dict[str, set] = {}
        for key, group in spec.choices.items():
            groups.setdefault(group, set()).add(key)
        if (not ks <= allowed or not required <= ks
                or any(len(keys_) > 1 and ks.isdisjoint(keys_) for _, keys_ in spec.required)
                or any(len(ks & g) > 1 for g in groups.values())):
            shapes[keys] = generic  # this shape is decided by the generic path (it says why not)
            return generic(o)
        self.count += 1
        fn_name = f"s{self.count}_{f}"
        body = [f"def {fn_name}(o):"]
        for i, key in enumerate(keys):
            es = spec.elements.get(key)
            if es is None:
                continue
            var = f"v{i}"
            body.append(f"    {var} = o[{key!r}]")
            mk = ns["MK_" + f].get(key)
            if es.kind == PRIM and es.type == "id" and not es.is_list:  # validate._make_string_check's id test
                body.append(f"    if not (type({var}) is str and 0 < len({var}) <= 64 and {var}.isascii()"
                            f" and {var}.replace('-', 'a').replace('.', 'a').isalnum()): return False")
            elif es.kind == COMPLEX and es.type == "Identifier" and es.is_list:  # as the D_ wrapper, inline
                body += [f"    if type({var}) is not list or not {var}: return False",
                         f"    for x in {var}:",
                         "        if type(x) is dict and x.keys() == IDENT_USV:",
                         "            a = x['use']; s = x['system']; c = x['value']",
                         "            if (type(a) is str and a in IDENT_USE and type(s) is str and (s in S_uri or C_uri(s))",
                         "                    and type(c) is str and (c in S_string or C_string(c))): continue",
                         "        if not ok_Identifier(x): return False"]
            elif es.kind == COMPLEX and es.type == "Reference" and not es.is_list:  # as the D_ wrapper, inline
                ns[f"E_{f}__{key}"] = ns["D_" + f][key]
                body += [f"    r = {var}.get('reference') if type({var}) is dict and len({var}) == 1 else None",
                         "    if type(r) is str and (r in S_string or C_string(r)):",
                         "        REFS.append(r)"]
                if key in ("subject", "patient"):
                    body.append("        PREFS.append(r)")
                body.append(f"    elif not E_{f}__{key}({var}): return False")
            elif es.kind == PRIM and es.type in STRING_PRIMITIVES and not es.is_list:
                if es.binding is not None:  # every bound code is a valid code (tests check the tables)
                    ns[f"BS_{f}__{key}"] = es.binding
                    body.append(f"    if not (type({var}) is str and {var} in BS_{f}__{key}): return False")
                else:
                    body.append(f"    if not (type({var}) is str and ({var} in S_{es.type} or C_{es.type}({var}))): return False")
            elif mk is not None:
                ns[f"MS_{f}__{key}"] = mk
                m = f"MS_{f}__{key}"
                body += ["    try:", f"        b = dumps({var}, option=OPT)", "    except TypeError:", "        b = None",
                         f"    if b is None or b not in {m}:",
                         "        n = len(REFS) + len(PREFS) + len(ODD)",
                         f"        if not D_{f}[{key!r}]({var}): return False",
                         "        if b is not None and len(REFS) + len(PREFS) + len(ODD) == n:",
                         f"            if len({m}) >= MEMO_LIMIT: {m}.clear()",
                         f"            {m}.add(b)"]
            else:
                ns[f"E_{f}__{key}"] = ns["D_" + f][key]
                body.append(f"    if not E_{f}__{key}({var}): return False")
        if name in INVARIANT_TYPES:
            body.append(f"    if INV[{name!r}](o): return False")
        body.append("    return True")
        exec(compile("\n".join(body) + "\n", f"<vistasim.fhir shape {name}>", "exec"), ns)  # noqa: S102
        fn = ns[fn_name]
        shapes[keys] = fn
        return fn(o)
# Types whose values repeat across resources (the same code, category, status ...): their verdicts are
# remembered by their exact JSON (see _memo).
MEMO_TYPES = frozenset({"CodeableConcept"})
MEMO_LIMIT = 100_000
# element types whose values rarely repeat (or always carry a reference): not remembered
_NO_MEMO = frozenset({"Reference", "Identifier", "Period", "Meta", "Narrative", "HumanName", "Address", "ContactPoint"})
_DUMPS_OPT = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
MEMO_SETS: list[set] = []  # for benchmarks that want a cold start


def _memo(fn: Callable[[Any], bool], refs: list, prefs: list, odd: list) -> Callable[[Any], bool]:
    """``fn`` with its True verdicts remembered by the value's JSON (orjson bytes).

    Equal JSON means equal verdict: JSON types stay apart in the bytes (1, 1.0, true, "1"); no remembered
    value holds a null, so NaN (which orjson writes as null) never matches; subclasses, datetimes,
    dataclasses, non-string keys and huge ints make orjson raise, so ``fn`` decides. Input is assumed to
    be JSON-typed (dict, list, str, int, float, bool, None: what json/orjson.loads and the mapper give):
    a tuple, enum or UUID would be written like a list or string. Only values whose check collected
    nothing (no reference, nothing unwalked) are remembered, so a remembered answer needs no side
    effects either. The same rule is inlined in the generated resource loops (``MK_`` sets).
    """
    seen: set = set()
    MEMO_SETS.append(seen)
    dumps, opt = orjson.dumps, _DUMPS_OPT

    def memo(x: Any) -> bool:
        if type(x) is not dict:
            return False
        try:
            b = dumps(x, option=opt)
        except TypeError:
            return fn(x)
        if b in seen:
            return True
        n = len(refs) + len(prefs) + len(odd)
        if not fn(x):
            return False
        if len(refs) + len(prefs) + len(odd) == n:
            if len(seen) >= MEMO_LIMIT:
                seen.clear()
            seen.add(b)
        return True

    return memo


def build(primitive_checks: dict[str, Callable[[Any], bool]], seen: dict[str, set],
          invariants: dict[str, Callable[[dict], list]], cc_in: Callable[..., bool],
          refs: list, prefs: list, odd: list) -> Callable[[Any], bool]:
    """Compile the predicates with the validator's primitive checks and invariants; returns ok_resource.

    As a side effect the predicates append to ``refs`` every ``Reference.reference`` they pass, to
    ``prefs`` those of single ``subject``/``patient`` References, and to ``odd`` a marker when they meet
    content they do not walk (contained resources, opaque types, ``_x`` primitive extensions). The
    caller clears the lists; data_integrity's fast path reads them (see validate.scan_resource).
    """
    global INVARIANT_TYPES
    INVARIANT_TYPES = frozenset(invariants)
    src, binding_list = _generate()
    ns: dict[str, Any] = {"M": object(), "ALLOWED": {n: s.allowed for n, s in TYPES.items()},
                          "INV": invariants, "cc_in": cc_in, "REFS": refs, "PREFS": prefs, "ODD": odd,
                          "dumps": orjson.dumps, "OPT": _DUMPS_OPT, "MEMO_LIMIT": MEMO_LIMIT}
    ns["BINDINGS"] = binding_list
    ns["IDENT_USV"] = frozenset({"use", "system", "value"})
    ns["IDENT_USE"] = TYPES["Identifier"].elements["use"].binding
    for t, chk in primitive_checks.items():
        ns[f"C_{t}"] = chk
    for t in STRING_PRIMITIVES:
        ns[f"S_{t}"] = seen.setdefault(t, set())
    ns["SHAPE"] = _Shapes(ns)
    exec(compile(src, "<vistasim.fhir generated validators>", "exec"), ns)  # noqa: S102 - our own generated code
    for t in MEMO_TYPES:  # the generated functions look these up at call time
        ns["memo_" + _fn(t)] = _memo(ns[_fn(t)], refs, prefs, odd)
    for name, value in ns.items():
        if name.startswith("MK_"):
            MEMO_SETS.extend(value.values())
    return ns["ok_resource"]
