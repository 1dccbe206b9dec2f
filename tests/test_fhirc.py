"""The compiled schema predicate (vistasim._c.fhirc) against its Python twin (fhir._fastcheck).

Both are built from the same tables and callables; every input must get the same verdict, and when the
verdict is True the same collected references (as sets), patient references (as sets) and "something
was not walked" truthiness. The table walk (validate._ok_resource) is a third opinion on the verdict.
Inputs: every resource (and bundle) of generated persons, the mutated fixture corpus, the stage tests'
bundle mutations, and a hypothesis strategy that breaks valid resources in structured ways.
"""

from __future__ import annotations

import copy
import importlib
import math

import numpy as np
import pytest
from _fhir_fixtures import corpus
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vistasim import _accel
from vistasim.fhir import _fastcheck, map_person, standardize
from vistasim.fhir import validate as V
from vistasim.fhir.mapping import group_by_person
from vistasim.fhir.r4spec import TYPES
from vistasim.generate import generate_patients

try:
    fhirc = importlib.import_module("vistasim._c.fhirc")
except ImportError:  # not built (no compiler): nothing to compare
    fhirc = None

pytestmark = pytest.mark.skipif(fhirc is None, reason="vistasim._c.fhirc is not built")


class _Pair:
    """The Python and the C predicate, each with its own collection lists."""

    def __init__(self) -> None:
        self.py_lists: tuple[list, list, list] = ([], [], [])
        self.c_lists: tuple[list, list, list] = ([], [], [])
        self.rules_py = {rt: getattr(V, f.__name__) for rt, f in V._CLEAN_RULES.items()}
        self.rules_c = fhirc.clean_rules(vars(V))
        assert self.rules_c is not None and self.rules_py["Patient"] is V._ok_patient
        args = (V.PRIMITIVE_CHECKS, V._SEEN, V._fast_invariants, V._cc_in)
        self.py = _fastcheck.build(*args, *self.py_lists)
        self.c = fhirc.build(*args, *self.c_lists)

    @staticmethod
    def _run(fn, lists, res):
        for x in lists:
            x.clear()
        try:
            ok = fn(res)
        except Exception as exc:  # noqa: BLE001 - the two must fail alike
            return ("raised", type(exc)), None
        refs, prefs, odd = lists
        return ("ok", bool(ok)), (set(refs), set(prefs), bool(odd)) if ok else None

    def check(self, res) -> bool:
        """Assert both agree on res (and with the table walk); returns the verdict."""
        py = self._run(self.py, self.py_lists, res)
        c = self._run(self.c, self.c_lists, res)
        assert c == py, (py, c)
        if py[0][0] == "ok":
            try:
                walk = bool(V._ok_resource(res))
            except Exception:  # noqa: BLE001
                walk = None
            assert walk is None or walk == py[0][1]
        if isinstance(res, dict):
            rt = res.get("resourceType")
            if type(rt) is str and rt in self.rules_py:
                assert self._rule(self.rules_c[rt], res) == self._rule(self.rules_py[rt], res)
        return py[0] == ("ok", True)

    @staticmethod
    def _rule(fn, res):
        try:
            return bool(fn(res))
        except Exception as exc:  # noqa: BLE001 - the two must fail alike
            return type(exc)


@pytest.fixture(scope="module")
def pair() -> _Pair:
    return _Pair()


@pytest.fixture(scope="module")
def generated_bundles() -> list[dict]:
    groups = list(group_by_person(generate_patients(120, seed=21, sites=3)).values())
    return [standardize(map_person(g)).bundle for g in groups]


def test_accelerator_is_what_validate_uses_unless_switched_off():
    if _accel.pure_python():
        assert V._fhirc is None and V._CLEAN_RULES["Patient"] is V._ok_patient
    else:
        assert V._fhirc is fhirc and type(V._generated_ok).__name__ != "function"
        assert V._CLEAN_RULES["Patient"] is fhirc._ok_patient


def test_generated_persons_agree(pair, generated_bundles):
    n = valid = 0
    refs = 0
    for b in generated_bundles:
        for e in b["entry"]:
            valid += pair.check(e["resource"])
            n += 1
        pair.check(b)  # a Bundle: its entries' resources are contained (not collected, odd)
        pair.c_lists[0].clear()
        pair.c(b["entry"][-1]["resource"])
        refs += len(pair.c_lists[0])
    assert n > 2500 and valid == n  # generated persons are schema-valid
    assert refs > 0


def test_collected_references_match_on_generated_persons(pair, generated_bundles):
    """The collections are what data_integrity's fast path reads: check them for whole bundles too."""
    for b in generated_bundles[:40]:
        py_refs, c_refs = set(), set()
        for e in b["entry"]:
            for lists, fn, acc in ((pair.py_lists, pair.py, py_refs), (pair.c_lists, pair.c, c_refs)):
                for x in lists:
                    x.clear()
                assert fn(e["resource"])
                acc.update(("R", r) for r in lists[0])
                acc.update(("P", r) for r in lists[1])
        assert c_refs == py_refs and c_refs


def test_mutated_fixture_corpus_agrees(pair):
    verdicts = [pair.check(res) for res, _ in corpus(per_resource=12)]
    assert sum(verdicts) > 20 and len(verdicts) - sum(verdicts) > 200


def test_stage_mutations_agree(pair, generated_bundles):
    from test_fhir_validate import _mutations

    rng = np.random.default_rng(5)
    for b0 in generated_bundles[:30]:
        for _ in range(3):
            b = _mutations(copy.deepcopy(b0), rng)
            for e in b["entry"]:
                pair.check(e["resource"])


@pytest.mark.parametrize("value", [
    None, True, False, 0, 1, -1, 2**31, -(2**31) - 1, 2**31 - 1, 2**64, 10**40, 1.0, 1.5, math.nan, math.inf, -math.inf,
    "", " ", "x", "x y", "\u00e9", "a\nb", [], [1], [""], {}, {"x": 1}, {1: "a"}, "2024-02-30", "2024-02-29",
    "2024-01-15T08:30:00Z", "2024-01-15T08:30:00", "final", "FINAL", "-", "a" * 65, "a.b-c",
])
@pytest.mark.parametrize("path", [
    ("Patient", "id"), ("Patient", "active"), ("Patient", "gender"), ("Patient", "birthDate"),
    ("Patient", "multipleBirthInteger"), ("Patient", "multipleBirthBoolean"), ("Patient", "deceasedDateTime"),
    ("Observation", "valueQuantity", "value"), ("Observation", "valueInteger"), ("Observation", "status"),
    ("Observation", "effectiveDateTime"), ("Observation", "issued"), ("MedicationRequest", "dispenseRequest",
                                                                         "numberOfRepeatsAllowed"),
    ("Observation", "code", "coding", 0, "code"), ("Observation", "code", "coding", 0, "system"),
    ("Condition", "clinicalStatus", "coding", 0, "code"), ("Condition", "subject", "reference"),
    ("Condition", "subject"), ("Observation", "component", 0, "valueQuantity", "value"),
    ("Patient", "identifier", 0, "use"), ("Patient", "identifier", 0, "value"), ("Patient", "name", 0, "given"),
    ("Patient", "_birthDate"), ("Patient", "contained"), ("Patient", "extension"), ("Patient", "text"),
])
def test_odd_values_agree(pair, generated_bundles, path, value):
    """Bools vs ints, huge ints, NaN/inf, empty containers, lists for objects and back, at many depths."""
    pool = [e["resource"] for b in generated_bundles[:40] for e in b["entry"]]
    for base in (r for r in pool if r["resourceType"] == path[0]):
        res = copy.deepcopy(base)
        node = res
        try:
            for step in path[1:-1]:
                node = node[step]
            node[path[-1]] = copy.deepcopy(value)
        except (KeyError, IndexError, TypeError):
            continue
        pair.check(res)


def test_odd_shapes_agree(pair, generated_bundles):
    pat = next(e["resource"] for e in generated_bundles[0]["entry"] if e["resource"]["resourceType"] == "Patient")

    class D(dict):
        pass

    class S(str):
        pass

    cases = [None, [], "Patient", {}, {"resourceType": "Patient"}, {"resourceType": "Basic", "id": "x"},
             {"resourceType": 1}, {"resourceType": None}, D(pat), dict(pat, resourceType=S("Patient")),
             {S(k): v for k, v in pat.items()}, dict(pat, **{"_gender": {"extension": []}}),
             dict(pat, gender=S("male")), dict(pat, contained=[copy.deepcopy(pat)]),
             dict(pat, contained=[{"resourceType": "Basic"}]), dict(pat, contained=[{"resourceType": []}]),
             {"resourceType": []}, {"resourceType": {}}, dict(pat, contained=[D(pat)]),
             {**pat, 1: "x"}, {**pat, None: "x"}, dict(pat, text={"status": "generated", "div": "<div/>"}),
             dict(pat, extension=[{"url": "urn:x", "valueReference": {"reference": "urn:y"}}]),
             dict(pat, extension=[{"url": "urn:x", "valueExpression": {"language": "text/x"}}]),  # opaque: odd
             dict(pat, extension=[{"url": "urn:x", "valueExpression": []}]),
             dict(pat, identifier=[dict(pat["identifier"][0], assigner={"reference": "Organization/1"})]),
             dict(pat, identifier=[D(pat["identifier"][0])]), dict(pat, identifier=tuple(pat["identifier"]))]
    for res in cases:
        pair.check(res)
    deep: dict = {"url": "urn:x"}
    for _ in range(3000):  # deeper than the recursion limit: both raise RecursionError
        deep = {"url": "urn:x", "extension": [deep]}
    pair.check(dict(pat, extension=[deep]))


# --------------------------------------------------------------------------- hypothesis: structured damage
_POOL: list[dict] = []


def _pool() -> list[dict]:
    if not _POOL:
        groups = list(group_by_person(generate_patients(12, seed=4, sites=2)).values())
        _POOL.extend(e["resource"] for g in groups for e in standardize(map_person(g)).bundle["entry"])
    return _POOL


_ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**31 - 2, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.sampled_from(["2024-02-30", "2024-13-01", "2024-01-15T08:30:00", "2024-01-15T08:30:00Z", "1947", "1947-06",
                     "final", "active", "male", "urn:uuid:x", "Patient/1", "", " ", "a b"]),
    st.builds(list), st.builds(dict), st.lists(st.text(max_size=3), min_size=1, max_size=2),
    st.dictionaries(st.sampled_from(["reference", "system", "code", "display", "value", "text", "url", "_x"]),
                    st.one_of(st.text(max_size=4), st.integers(), st.none()), max_size=3),
)


def _nodes(x, out):
    """Every (container, key) below x."""
    if type(x) is dict:
        for k in list(x):
            out.append((x, k))
            _nodes(x[k], out)
    elif type(x) is list:
        for i in range(len(x)):
            out.append((x, i))
            _nodes(x[i], out)
    return out


@st.composite
def _damaged(draw):
    res = copy.deepcopy(draw(st.sampled_from(_pool())))
    for _ in range(draw(st.integers(1, 3))):
        nodes = _nodes(res, [])
        op = draw(st.sampled_from(["drop", "add", "swap", "empty", "date", "ext", "contained", "unwrap", "wrap"]))
        parent, key = nodes[draw(st.integers(0, len(nodes) - 1))]
        if op == "drop" and type(parent) is dict:
            del parent[key]
        elif op == "add":
            target = parent[key] if type(parent[key]) is dict else res
            rt = target.get("resourceType")
            spec = TYPES.get(rt) if type(rt) is str else None
            names = sorted(spec.allowed) if spec else ["id", "extension", "text", "display", "system", "bogus"]
            target[draw(st.sampled_from(names + ["bogus", "_status"]))] = draw(_ODD_VALUES)
        elif op == "swap":
            parent[key] = draw(_ODD_VALUES)
        elif op == "empty":
            parent[key] = [] if type(parent[key]) is list else {}
        elif op == "date":
            parent[key] = draw(st.sampled_from(["2024-02-30", "2023-02-29", "2024-01-15T08:30:00", "2024-1-5",
                                                "2024-01-15T24:00:00Z", "2024-01-15T08:30:00+14:00"]))
        elif op == "ext" and type(parent) is dict and type(key) is str:
            parent["_" + key] = {"extension": [{"url": "urn:x", "valueString": "y"}]}
        elif op == "contained":
            res["contained"] = [copy.deepcopy(draw(st.sampled_from(_pool())))]
        elif op == "unwrap" and type(parent[key]) is list and parent[key]:
            parent[key] = parent[key][0]
        elif op == "wrap":
            parent[key] = [parent[key]]
    return res


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_damaged())
def test_damaged_resources_agree(res):
    _PAIR.check(res)


_PAIR = _Pair() if fhirc is not None else None


def test_invariant_guards_hold():
    """fhirc skips an invariant whose guard keys are absent: the Python invariant must be falsy then."""
    dicts = [d for res, _ in corpus(per_resource=4) for d, _k in _nodes(res, []) if type(d) is dict] + _pool()
    for name, keys in fhirc._GUARDS.items():
        fn = getattr(V, name)
        for d in dicts:
            for k in keys:
                assert not fn({x: v for x, v in d.items() if x != k}), (name, k)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=" a~\x7f\x1f\t\u00e9-", max_size=30), st.sampled_from(["system", "code", "display"]))
@example(" " * 8, "system")
@example("abcdefgh" + " " * 8 + "x", "system")
@example(" " * 16, "display")
@example("abcdefg\x7f", "display")
@example("abcdefghabcdefg\x1f", "code")
def test_text_shortcuts_agree(text, key):
    """The 8-bytes-at-a-time printable-ASCII test of uri/code (no space) and string (some non-space)."""
    obs = copy.deepcopy(next(r for r in _pool() if r["resourceType"] == "Observation"))
    obs["code"]["coding"][0][key] = text
    obs["code"]["text"] = text
    _PAIR.check(obs)


def _integrity_answer(fn, *args, **kw):
    try:
        return bool(fn(*args, **kw))
    except Exception as exc:  # noqa: BLE001 - the two must fail alike
        return type(exc)


def test_integrity_clean_agrees(generated_bundles):
    """The compiled integrity_clean against validate's, on the stage tests' mutated bundles, with the
    references the schema predicate collected, with and without pairs, and with odd reference sets."""
    from test_fhir_validate import _mutations

    from vistasim.pipeline import stages as S

    compiled = fhirc.compiled_integrity_clean(vars(V))
    rng = np.random.default_rng(17)
    answers = {True: 0, False: 0}
    extra_refs = [[], ["#local"], ["nodash"], ["Patient/none"], ["urn:uuid:none"], [1]]
    for i, b0 in enumerate(generated_bundles[:60]):
        for rep in range(4):
            b = _mutations(copy.deepcopy(b0), rng) if rep else copy.deepcopy(b0)
            S._CLEAN.clear()
            stop, _ = S.schema_stage({"p": b})
            c = S._clean_entry(b)
            if stop or c is None:
                continue
            refs, prefs, pairs = set(c[3]), set(c[4]), c[6]
            extra = extra_refs[(i + rep) % len(extra_refs)]
            for as_of in ("2026-01-01", "1990-01-01"):
                for r, p in ((refs, prefs), (refs | set(extra), prefs), (refs, prefs | set(extra[:1]))):
                    want = _integrity_answer(V._integrity_clean_py, b, r, p, as_of=as_of)
                    assert _integrity_answer(compiled, b, r, p, as_of=as_of) == want
                    assert _integrity_answer(compiled, b, r, p, as_of=as_of, pairs=pairs) == \
                        _integrity_answer(V._integrity_clean_py, b, r, p, as_of=as_of, pairs=pairs)
                    if type(want) is bool:
                        answers[want] += 1
    S._CLEAN.clear()
    assert min(answers.values()) >= 20, answers


@pytest.mark.parametrize("birth,event", [("1950-07-31", "1950-07"), ("1950-12-31", "1950"), ("1950-07-01", "1950-06"),
                                         ("1950", "1949-12"), ("1950-07", "1950-07-15"), ("1950-07-15", "1950-07-14"),
                                         ("1950-07-15", "1950-07-15T00:00:00Z"), ("2030", "2031-01"), (None, "1950")])
def test_integrity_clean_date_precisions_agree(generated_bundles, birth, event):
    from vistasim.pipeline import stages as S

    compiled = fhirc.compiled_integrity_clean(vars(V))
    b = copy.deepcopy(generated_bundles[1])
    S._CLEAN.clear()
    S.schema_stage({"p": b})
    c = S._clean_entry(b)
    S._CLEAN.clear()
    assert c is not None
    for e in b["entry"]:
        r = e["resource"]
        if r["resourceType"] == "Patient":
            r.pop("birthDate", None)
            if birth:
                r["birthDate"] = birth
            r["deceasedDateTime"] = event
        for k in ("onsetDateTime", "recordedDate", "abatementDateTime", "authoredOn", "effectiveDateTime"):
            if k in r:
                r[k] = event
        if isinstance(r.get("period"), dict):
            r["period"]["start"] = event
    for as_of in ("2026-01-01", "1950-07-15", "1950-07"):
        for pairs in (None, c[6]):
            assert _integrity_answer(compiled, b, c[3], c[4], as_of=as_of, pairs=pairs) == \
                _integrity_answer(V._integrity_clean_py, b, c[3], c[4], as_of=as_of, pairs=pairs)


_DATE_EXAMPLES = ["2024-02-29", "2023-02-29", "1900-02-29", "2000-02-29", "0000", "0001", "0000-01-01", "1000",
                  "2024-04-31", "2024-06-30", "2024-00-10", "2024-13", "2024-12-00", "2024-1", "2024-01-1",
                  "2024-01-15T23:59:60Z", "2024-01-15T24:00:00Z", "2024-01-15T10:00:00+14:00",
                  "2024-01-15T10:00:00+14:01", "2024-01-15T10:00:00+13:59", "2024-01-15T10:00:00-00:00",
                  "2024-01-15T10:00:00.Z", "2024-01-15T10:00:00.123456789Z", "2024-01-15T10:00:00.5",
                  "2024-01-15T10:00:00", "2024-01-15T10:00Z", "2024-01-15T10:60:00Z", "2024-01-15t10:00:00Z",
                  "2024-01-15T10:00:00z", "2024-01-15 10:00:00Z", "2024-01-15T10:00:00+1400", "2024-01-15T",
                  "\u0661\u0669\u0664\u0667", "2024-01-15T10:00:00Z ", " 2024", "2024-01-15T10:00:00+05:30x"]


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.sampled_from(_DATE_EXAMPLES), st.text(alphabet="0123456789-:TZ+. ", max_size=32),
                 st.builds(lambda d, t: d + t, st.sampled_from(["2024-02-29", "2023-02-28", "1999-12-31"]),
                           st.text(alphabet="0123456789:TZ+-.", max_size=16))),
       st.sampled_from([("Observation", "effectiveDateTime"), ("Observation", "issued"), ("Patient", "birthDate")]))
def test_date_checks_agree(value, where):
    """date / dateTime / instant: the C matcher against the R4 regex plus the calendar test."""
    res = copy.deepcopy(next(r for r in _pool() if r["resourceType"] == where[0]))
    res[where[1]] = value
    _PAIR.check(res)


@pytest.mark.parametrize("value", _DATE_EXAMPLES)
def test_date_examples_agree(value):
    for rt, key in (("Observation", "effectiveDateTime"), ("Observation", "issued"), ("Patient", "birthDate"),
                    ("Condition", "recordedDate")):
        res = copy.deepcopy(next(r for r in _pool() if r["resourceType"] == rt))
        res[key] = value
        _PAIR.check(res)
