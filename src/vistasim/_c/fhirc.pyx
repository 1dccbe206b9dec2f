# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The FHIR R4 schema predicate in C: the compiled twin of :func:`vistasim.fhir._fastcheck.build`.

:func:`build` takes the validator's primitive checks, seen-value sets, invariants, ``_cc_in`` and the
three collection lists, and returns ``ok_resource(resource) -> bool`` with the verdict of the generated
Python predicates (and of ``validate._ok_resource``, the table walk both are checked against) for every
input, and the same side effects when the verdict is True: every passed ``Reference.reference`` appended
to ``refs``, those of single ``subject``/``patient`` References to ``prefs``, a marker in ``odd`` for
content that is not walked (contained resources, opaque types, ``_x`` primitive-extension keys).

It walks per-type tables compiled once from :mod:`vistasim.fhir.r4spec`: per element a kind switch;
string primitives cost a seen-set lookup and, on a miss, a call of the Python check (which fills the
set, so both paths share one cache); boolean/decimal/integer/unsignedInt/positiveInt and ``id`` are
checked inline with the Python checks' exact rules; bound codes are one set lookup (every bound code is
checked valid for its primitive when the tables are built); CodeableConcept bindings run ``_cc_in``'s
loop inline; invariants call the same Python functions. No JSON memo: a C walk of a CodeableConcept
costs less than serialising it.
"""

from cpython.dict cimport PyDict_Next, PyDict_GetItemWithError, PyDict_Size
from cpython.list cimport PyList_GET_SIZE, PyList_GET_ITEM
from cpython.object cimport PyObject, PyObject_RichCompareBool, Py_EQ
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.unicode cimport PyUnicode_GET_LENGTH, PyUnicode_Substring
from libc.math cimport isfinite

cdef extern from "Python.h":
    ctypedef unsigned char Py_UCS1
    Py_UCS1 *PyUnicode_1BYTE_DATA(object o)
    bint PyUnicode_IS_ASCII(object o)
    bint PyUnicode_CheckExact(object o)
    bint PyLong_CheckExact(object o)
    bint PyFloat_CheckExact(object o)
    bint PyDict_CheckExact(object o)
    bint PyList_CheckExact(object o)
    double PyFloat_AS_DOUBLE(object o)
    int Py_EnterRecursiveCall(const char *where) except 1  # 1 (not -1) with RecursionError set
    void Py_LeaveRecursiveCall()
    int PySet_Contains(object s, object key) except -1
    PyObject *Py_True
    PyObject *Py_False

import sys

from vistasim.fhir.r4spec import COMPLEX, PRIM, RESOURCE, RESOURCE_TYPES, STRING_PRIMITIVES, TYPES

cdef enum:
    K_PRIM = 0
    K_COMPLEX = 1
    K_RESOURCE = 2
    K_OPAQUE = 3

cdef enum:
    P_STR = 0    # seen set, then the Python check
    P_BOUND = 1  # a bound code: the binding set answers (every code in it is a valid code)
    P_ID = 2     # [A-Za-z0-9\-\.]{1,64}, inline
    P_BOOL = 3
    P_DEC = 4
    P_INT = 5
    P_UINT = 6
    P_POS = 7
    P_CALL = 8   # the Python check (and the binding, if any): anything without a shortcut
    P_TEXT = 10  # uri/url/canonical/code: printable ASCII without a space (check_text's shortcut), else the check
    P_TEXT_SP = 11  # string/markdown: printable ASCII with a non-space (check_text's shortcut), else the check
    P_DT = 9     # dateTime: seen set, then the check's own day/time split caches, then the check

assert (PRIM, COMPLEX, RESOURCE) == (K_PRIM, K_COMPLEX, K_RESOURCE)

cdef object _REFERENCE = "reference"
cdef object _CODING = "coding"
cdef object _SYSTEM = "system"
cdef object _CODE = "code"
cdef object _RESOURCE_TYPE = "resourceType"


class _Restart(Exception):
    """The one-pass walk met a contained resource: ok_resource walks again in the exact order."""


cdef bint _multi_ok(dict d, tuple multi) except -1:
    for keys in multi:
        for k in keys:
            if k in d:
                break
        else:
            return False
    return True


cdef class _El:
    """One element of a type: how its value is checked."""
    cdef int kind
    cdef bint is_list
    cdef int prim
    cdef object check      # the Python primitive check
    cdef object seen       # set of strings already found valid (P_STR)
    cdef object days       # P_DT: the dateTime check's caches of valid date halves and time halves
    cdef object times
    cdef object binding    # frozenset of codes, or None
    cdef object bsystem    # CodeableConcept binding: the codes' system
    cdef _Ty sub           # COMPLEX: the element's type
    cdef bint pref         # a single subject/patient Reference: collected into prefs
    cdef bint required     # a required element with one JSON key
    cdef int group         # choice group bit index, -1 when not a choice
    cdef bint odd          # an allowed key not walked (cannot happen for elements; kept for symmetry)


DEF KEY_SLOTS = 64


cdef class _Ty:
    """One type: its elements and key rules.

    ``kc_key``/``kc_val``: a direct-mapped cache from a key object's address to its lookup result (the
    element, or True/False for an allowed non-element key that is / is not an unwalked ``_x`` key).
    Resources come from orjson, whose key cache hands out the same key objects again and again, so
    this is a pointer compare instead of a hashed lookup with a string compare. The cache owns a
    reference to each key it holds, so an address cannot be reused by another object while cached.
    """
    cdef PyObject *kc_key[KEY_SLOTS]
    cdef PyObject *kc_val[KEY_SLOTS]
    cdef str name
    cdef dict els          # JSON key -> _El
    cdef dict extra        # allowed non-element key -> True when it is an unwalked `_x` key
    cdef int n_required    # required single-key elements
    cdef tuple multi       # required elements with several JSON keys (choice types): tuples of keys
    cdef object inv        # invariant callable (truthy result: invalid) or None
    cdef bint is_reference
    cdef tuple guard       # keys that must all be present for the invariant to fire (empty: always call)

    def __dealloc__(self):
        cdef int i
        for i in range(KEY_SLOTS):
            Py_XDECREF(self.kc_key[i])
            self.kc_key[i] = NULL

    cdef inline PyObject *lookup(self, PyObject *kp) except? NULL:
        """The element for key ``kp``, True/False for an allowed non-element key (unwalked or not), NULL
        for a key the type does not allow."""
        cdef size_t h = ((<size_t>kp >> 4) ^ (<size_t>kp >> 10)) & (KEY_SLOTS - 1)
        cdef PyObject *ep
        if self.kc_key[h] == kp:
            return self.kc_val[h]
        ep = PyDict_GetItemWithError(self.els, <object>kp)
        if ep is NULL:
            ep = PyDict_GetItemWithError(self.extra, <object>kp)
            if ep is NULL:
                return NULL
        if PyUnicode_CheckExact(<object>kp):
            Py_XDECREF(self.kc_key[h])
            Py_INCREF(<object>kp)
            self.kc_key[h] = kp
            self.kc_val[h] = ep
        return ep


cdef class Checker:
    """The compiled predicate; :meth:`ok_resource` is what :func:`build` hands out."""
    cdef dict resources    # resourceType -> _Ty
    cdef list refs, prefs, odd
    cdef object cc_in
    cdef bint exact        # walk each object's keys before its values (see ok_resource)

    def ok_resource(self, o):
        """True when ``o`` is a valid resource of a type vistasim validates (see the module docstring)."""
        try:
            return self._resource(o)
        except Exception:
            if self.exact:
                raise
        # the one-pass walk met a contained resource (or raised): walk again in the Python paths' order
        # (each object's keys before its values), which raises exactly where they raise. What the first
        # walk collected is collected again whenever the verdict is True, so the sets are the same.
        self.exact = True
        try:
            return self._resource(o)
        finally:
            self.exact = False

    cdef bint _resource(self, object o) except -1:
        if not PyDict_CheckExact(o):
            return False
        rt = (<dict>o).get(_RESOURCE_TYPE)
        t = self.resources.get(rt)  # raises TypeError for an unhashable resourceType, as the Python path
        if t is None:
            return False
        return self._obj(o, <_Ty>t)

    cdef bint _obj(self, object o, _Ty t) except -1:
        cdef Py_ssize_t pos = 0
        cdef PyObject *kp
        cdef PyObject *vp
        cdef PyObject *ep
        cdef _El e
        cdef int nreq = 0
        cdef unsigned long long groups = 0, bit
        if not PyDict_CheckExact(o):
            return False
        d = <dict>o
        if PyDict_Size(d) == 0:
            return False
        Py_EnterRecursiveCall(" in the FHIR schema check")
        try:
            if self.exact:
                # keys first (allowed, required, one key per choice group), then values
                while PyDict_Next(d, &pos, &kp, &vp):
                    ep = t.lookup(kp)
                    if ep is NULL:
                        return False
                    if ep == Py_True:
                        self.odd.append(1)
                        continue
                    if ep == Py_False:
                        continue
                    e = <_El>ep
                    if e.required:
                        nreq += 1
                    if e.group >= 0:
                        bit = 1ULL << e.group
                        if groups & bit:
                            return False
                        groups |= bit
                if nreq != t.n_required or (t.multi and not _multi_ok(d, t.multi)):
                    return False
                pos = 0
                while PyDict_Next(d, &pos, &kp, &vp):
                    ep = t.lookup(kp)
                    if ep is NULL or ep == Py_True or ep == Py_False:
                        continue
                    e = <_El>ep
                    if e.is_list:
                        if not self._list(<object>vp, e):
                            return False
                    elif not self._value(<object>vp, e):
                        return False
            else:
                # one pass, keys and values together: the verdict is their conjunction, and nothing
                # collected counts unless it is True. Only a contained resource's walk can raise where
                # the Python paths return False (an unhashable resourceType under a bad key): stop then
                while PyDict_Next(d, &pos, &kp, &vp):
                    ep = t.lookup(kp)
                    if ep is NULL:
                        return False
                    if ep == Py_True:
                        self.odd.append(1)
                        continue
                    if ep == Py_False:
                        continue
                    e = <_El>ep
                    if e.required:
                        nreq += 1
                    if e.group >= 0:
                        bit = 1ULL << e.group
                        if groups & bit:
                            return False
                        groups |= bit
                    if e.kind == K_RESOURCE:
                        raise _Restart()
                    if e.is_list:
                        if not self._list(<object>vp, e):
                            return False
                    elif not self._value(<object>vp, e):
                        return False
                if nreq != t.n_required or (t.multi and not _multi_ok(d, t.multi)):
                    return False
        finally:
            Py_LeaveRecursiveCall()
        if t.is_reference:
            ep = PyDict_GetItemWithError(d, _REFERENCE)
            if ep is not NULL:
                self.refs.append(<object>ep)
        if t.inv is not None:
            for k in t.guard:
                if k not in d:
                    return True  # the invariant cannot fire without this key (see _GUARDS)
            if t.inv(d):
                return False
        return True

    cdef bint _list(self, object v, _El e) except -1:
        cdef Py_ssize_t i, n
        if not PyList_CheckExact(v):
            return False
        n = PyList_GET_SIZE(v)
        if n == 0:
            return False
        i = 0
        while i < PyList_GET_SIZE(v):  # re-read: a check could (in principle) change the list
            if not self._value(<object>PyList_GET_ITEM(v, i), e):
                return False
            i += 1
        return True

    cdef bint _value(self, object v, _El e) except -1:
        cdef PyObject *rp
        cdef int kind = e.kind
        if kind == K_PRIM:
            return _prim(v, e)
        if kind == K_COMPLEX:
            if not self._obj(v, e.sub):
                return False
            if e.binding is not None and not self._cc_in(v, e):
                return False
            if e.pref:
                rp = PyDict_GetItemWithError(<dict>v, _REFERENCE)
                if rp is not NULL:
                    self.prefs.append(<object>rp)
            return True
        if kind == K_RESOURCE:  # a contained resource: its references are not the outer resource's
            self.odd.append(1)
            return self._resource(v)
        self.odd.append(1)  # OPAQUE: not walked
        return PyDict_CheckExact(v)

    cdef bint _cc_in(self, object cc, _El e) except -1:
        """``validate._cc_in(cc, system, codes)`` for a CodeableConcept that passed its walk."""
        cdef PyObject *cp
        cdef PyObject *sp
        cdef Py_ssize_t i
        cp = PyDict_GetItemWithError(<dict>cc, _CODING)
        if cp is NULL:
            return False
        coding = <object>cp
        if not PyList_CheckExact(coding):
            return bool(self.cc_in(cc, e.bsystem, e.binding))
        i = 0
        while i < PyList_GET_SIZE(coding):
            c = <object>PyList_GET_ITEM(coding, i)
            i += 1
            if not PyDict_CheckExact(c):
                continue
            sp = PyDict_GetItemWithError(<dict>c, _SYSTEM)
            if sp is NULL:
                if e.bsystem is not None:
                    continue
            elif not PyObject_RichCompareBool(<object>sp, e.bsystem, Py_EQ):
                continue
            sp = PyDict_GetItemWithError(<dict>c, _CODE)
            if sp is not NULL and (<object>sp) in e.binding:
                return True
        return False


cdef bint _prim(object v, _El e) except -1:
    cdef int p = e.prim
    cdef int overflow = 0
    cdef long long n
    cdef Py_ssize_t i, size
    cdef Py_UCS1 *s
    cdef Py_UCS1 ch
    cdef bint nonspace
    if p == P_BOUND:
        return PyUnicode_CheckExact(v) and PySet_Contains(e.binding, v)
    if p == P_STR:
        if PyUnicode_CheckExact(v) and PySet_Contains(e.seen, v):
            return True
        return bool(e.check(v))
    if p == P_TEXT or p == P_TEXT_SP:  # validate._make_string_check's check_text, up to its fallback
        if PyUnicode_CheckExact(v) and PyUnicode_IS_ASCII(v):
            size = PyUnicode_GET_LENGTH(v)
            if size > 0:
                s = PyUnicode_1BYTE_DATA(v)
                nonspace = False
                for i in range(size):
                    ch = s[i]
                    if ch < 0x20 or ch > 0x7e:
                        break
                    if ch != 0x20:
                        nonspace = True
                    elif p == P_TEXT:
                        break
                else:
                    if nonspace:
                        return True
        return bool(e.check(v))
    if p == P_DT:  # validate._make_string_check's check_datetime, up to its call of the full check
        if PyUnicode_CheckExact(v):
            if PySet_Contains(e.seen, v):
                return True
            size = PyUnicode_GET_LENGTH(v)
            if size >= 10 and PySet_Contains(e.days, PyUnicode_Substring(v, 0, 10)) and (
                    size == 10 or PySet_Contains(e.times, PyUnicode_Substring(v, 10, size))):
                return True
        return bool(e.check(v))
    if p == P_ID:  # validate._make_string_check's check_id
        if not PyUnicode_CheckExact(v) or not PyUnicode_IS_ASCII(v):
            return False
        size = PyUnicode_GET_LENGTH(v)
        if size == 0 or size > 64:
            return False
        s = PyUnicode_1BYTE_DATA(v)
        for i in range(size):
            ch = s[i]
            if not ((b'a' <= ch <= b'z') or (b'A' <= ch <= b'Z') or (b'0' <= ch <= b'9') or ch == b'-' or ch == b'.'):
                return False
        return True
    if p == P_BOOL:
        return v is True or v is False
    if p == P_DEC:
        return PyLong_CheckExact(v) or (PyFloat_CheckExact(v) and isfinite(PyFloat_AS_DOUBLE(v)))
    if p == P_INT or p == P_UINT or p == P_POS:
        if not PyLong_CheckExact(v):
            return False
        n = PyLong_AsLongLongAndOverflow(v, &overflow)
        if overflow:
            return False
        if p == P_INT:
            return -2147483648 <= n <= 2147483647
        if p == P_UINT:
            return 0 <= n <= 2147483647
        return 1 <= n <= 2147483647
    # P_CALL
    if not e.check(v):
        return False
    return e.binding is None or v in e.binding


_NUMBER_KINDS = {"boolean": P_BOOL, "decimal": P_DEC, "integer": P_INT, "unsignedInt": P_UINT, "positiveInt": P_POS}


# validate's invariants that can only report something when all these keys are present: calling them
# without is skipped (the Python functions return a falsy value then; tests/test_fhirc.py checks it)
_GUARDS = {"_inv_observation": ("dataAbsentReason",), "_inv_simple_quantity": ("comparator",),
           "_condition_fails": ("clinicalStatus",), "_inv_period": ("start", "end")}


_TEXT_TYPES = frozenset({"string", "markdown", "uri", "url", "canonical", "code"})


def _is_check_text(check):
    """Is ``check`` validate's check_text (printable ASCII shortcut before the seen set and the regex)?"""
    return (getattr(check, "__module__", None) == "vistasim.fhir.validate"
            and getattr(check, "__qualname__", "").endswith(".check_text"))


def _split_caches(check):
    """The (days, times) sets of validate's dateTime check, when ``check`` is that function."""
    caches = getattr(check, "split_caches", None)
    if type(caches) is tuple and len(caches) == 2 and all(type(c) is set for c in caches):
        return caches
    return None


def _guard(fn):
    if fn is not None and getattr(fn, "__module__", None) == "vistasim.fhir.validate":
        return tuple(sys.intern(k) for k in _GUARDS.get(getattr(fn, "__qualname__", None), ()))
    return ()


def _patient_ref(key, es):
    """As ``_fastcheck._patient_ref``: a single Reference named subject or patient."""
    return key in ("subject", "patient") and es.kind == COMPLEX and es.type == "Reference" and not es.is_list


def build(primitive_checks, seen, invariants, cc_in, refs, prefs, odd):
    """``_fastcheck.build``'s twin: same arguments, returns ``ok_resource`` (see the module docstring).

    ``seen`` maps each string primitive to its set of values already found valid (shared with the
    Python checks, which fill it); ``invariants`` maps a type name to a callable whose truthy result
    means invalid; ``refs``/``prefs``/``odd`` are the lists the predicate appends to (the caller clears them).
    """
    if type(refs) is not list or type(prefs) is not list or type(odd) is not list:
        raise TypeError("fhirc.build: refs, prefs and odd must be lists")
    tys = {name: _Ty() for name in TYPES}
    for name, spec in TYPES.items():
        t = <_Ty>tys[name]
        t.name = name
        t.els = {}
        t.inv = invariants.get(name)
        t.guard = _guard(t.inv)
        t.is_reference = name == "Reference"
        single = {keys[0] for _, keys in spec.required if len(keys) == 1}
        t.multi = tuple(tuple(keys) for _, keys in spec.required if len(keys) > 1)
        walked = frozenset(x for x in spec.allowed if not x.startswith("_"))
        # interned keys: the resources' keys are mostly interned literals, so a lookup is a pointer compare
        t.extra = {sys.intern(k): k not in walked for k in spec.allowed if k not in spec.elements}
        group_ids = {}
        for g in spec.choices.values():
            group_ids.setdefault(g, len(group_ids))
        if len(group_ids) > 64:
            raise ValueError(f"fhirc.build: {name} has more than 64 choice groups")
        for key, es in spec.elements.items():
            if key not in spec.allowed or key not in walked:
                raise ValueError(f"fhirc.build: element {name}.{key} is not an allowed walked key")
            e = _El()
            e.kind = es.kind
            e.is_list = es.is_list
            e.binding = es.binding
            e.bsystem = es.binding_system
            e.required = key in single
            e.group = group_ids[spec.choices[key]] if key in spec.choices else -1
            e.pref = _patient_ref(key, es)
            e.sub = tys[es.type] if es.kind == COMPLEX else None
            if es.kind == PRIM:
                e.check = primitive_checks[es.type]
                if es.type in STRING_PRIMITIVES:
                    e.seen = seen.setdefault(es.type, set())
                    if es.binding is not None:
                        # the set lookup is the whole check only when every code in it is a valid code
                        e.prim = P_BOUND if all(e.check(c) for c in es.binding) else P_CALL
                    elif es.type == "id":
                        e.prim = P_ID
                    elif es.type in _TEXT_TYPES and _is_check_text(e.check):
                        e.prim = P_TEXT_SP if es.type in ("string", "markdown") else P_TEXT
                    elif es.type == "dateTime" and _split_caches(e.check) is not None:
                        e.prim = P_DT
                        e.days, e.times = _split_caches(e.check)
                    else:
                        e.prim = P_STR
                else:
                    e.prim = _NUMBER_KINDS[es.type] if es.binding is None else P_CALL
            t.els[sys.intern(key)] = e
        t.n_required = sum(1 for k in single if k in spec.elements)
        if t.n_required != len(single):
            raise ValueError(f"fhirc.build: {name} requires a key that is not an element")
    c = Checker()
    c.resources = {r: tys[r] for r in RESOURCE_TYPES}
    c.refs, c.prefs, c.odd = refs, prefs, odd
    c.cc_in = cc_in
    return c.ok_resource
