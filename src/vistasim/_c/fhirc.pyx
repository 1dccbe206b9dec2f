# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The FHIR R4 schema predicate, and the data-mode "clean?" predicates, in C (Cython).

:func:`build` is the compiled twin of :func:`vistasim.fhir._fastcheck.build`: it takes the validator's
primitive checks, seen-value sets, invariants, ``_cc_in`` and the three collection lists, and returns
``ok_resource(resource) -> bool`` with the verdict of the generated Python predicates (and of
``validate._ok_resource``, the table walk both are tested against) and the same side effects when the
verdict is True: every passed ``Reference.reference`` appended to ``refs``, those of single
``subject``/``patient`` References to ``prefs``, a marker in ``odd`` for content that is not walked
(contained resources, opaque types, ``_x`` primitive-extension keys).

It walks per-type tables compiled once from :mod:`vistasim.fhir.r4spec`, one pass over each object
(keys and values together; see :meth:`Checker.ok_resource` for the exact-order rerun), per element a
kind switch. Primitives: validate's string-method shortcuts (printable ASCII for string/uri/code...),
the R4 date/dateTime/instant regexes with the calendar test, ``id`` and the number types are decided in
C with the Python checks' exact rules; anything else (and every string the shortcuts do not accept)
goes to the seen set and then the Python check, which fills it. Bound codes are one set lookup (every
bound code is checked valid when the tables are built); CodeableConcept bindings run ``_cc_in``'s loop
inline; invariants call the same Python functions, skipped when the keys they need are absent. No
JSON memo: a C walk of a CodeableConcept costs less than serialising it.

:func:`clean_rules` and :func:`compiled_integrity_clean` give validate's ``_CLEAN_RULES`` predicates and
``integrity_clean`` compiled: the same code, statement for statement. Edit them together with
validate's; ``tests/test_fhirc.py`` compares both on generated, mutated and hypothesis-made input.
"""

from vistasim._c.calendar cimport days_in_month
from cpython.dict cimport PyDict_Next, PyDict_GetItemWithError, PyDict_Size
from cpython.list cimport PyList_GET_SIZE, PyList_GET_ITEM
from cpython.object cimport PyObject, PyObject_RichCompareBool, Py_EQ
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.unicode cimport PyUnicode_GET_LENGTH
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
from datetime import datetime, timezone

from vistasim.fhir.r4spec import COMPLEX, PRIM, RESOURCE, RESOURCE_TYPES, STRING_PRIMITIVES, TYPES

cdef enum:
    K_PRIM = 0
    K_COMPLEX = 1
    K_RESOURCE = 2
    K_OPAQUE = 3

cdef enum:
    P_STR = 0       # seen set, then the Python check
    P_BOUND = 1     # a bound code: the binding set answers (every code in it is a valid code)
    P_ID = 2        # [A-Za-z0-9\-\.]{1,64}, inline (validate's check_id)
    P_BOOL = 3
    P_DEC = 4
    P_INT = 5
    P_UINT = 6
    P_POS = 7
    P_CALL = 8      # the Python check (and the binding, if any): anything without a shortcut
    P_DATE = 9      # date, dateTime, instant: the R4 regex and the calendar test in C (ASCII strings)
    P_DT = 10
    P_INSTANT = 11
    P_TEXT = 12     # uri/url/canonical/code: printable ASCII without a space (check_text's shortcut), else the check
    P_TEXT_SP = 13  # string/markdown: printable ASCII with a non-space (check_text's shortcut), else the check

cdef enum:
    KEY_SLOTS = 64  # per type: the key identity cache (a power of two)

assert (PRIM, COMPLEX, RESOURCE) == (K_PRIM, K_COMPLEX, K_RESOURCE)

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
    cdef object binding    # frozenset of codes, or None
    cdef object bsystem    # CodeableConcept binding: the codes' system
    cdef _Ty sub           # COMPLEX: the element's type
    cdef bint pref         # a single subject/patient Reference: collected into prefs
    cdef bint required     # a required element with one JSON key
    cdef int group         # choice group bit index, -1 when not a choice
    cdef bint is_ref_value # Reference.reference: its value is collected when the Reference passes
    cdef unsigned int guard_bit  # this element's bit in its type's guard mask (0: not a guard key)


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
    cdef unsigned int guard_mask  # the invariant can only fire when every key of the mask is present

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
    cdef PyObject *last_ref  # the reference value of the Reference object that passed last (or NULL)

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
        cdef unsigned int present = 0
        cdef PyObject *refv = NULL
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
                    present |= e.guard_bit
                    if e.is_ref_value:
                        refv = vp
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
                    present |= e.guard_bit
                    if e.is_ref_value:
                        refv = vp
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
            self.last_ref = refv
            if refv is not NULL:
                self.refs.append(<object>refv)
        # the invariant cannot fire without its guard keys (see _GUARDS)
        if t.inv is not None and (present & t.guard_mask) == t.guard_mask and t.inv(d):
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
            if e.pref and self.last_ref is not NULL:  # set by the walk of v, a Reference, just now
                self.prefs.append(<object>self.last_ref)
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


cdef extern from "string.h":
    void *memcpy(void *dest, const void *src, size_t n)

ctypedef unsigned long long u64
cdef u64 _ONES = 0x0101010101010101ULL
cdef u64 _HIGH = 0x8080808080808080ULL


cdef inline u64 _zero_bytes(u64 x) noexcept:
    """Nonzero when some byte of x is 0 (exact as a yes/no answer)."""
    return (x - _ONES) & ~x & _HIGH


cdef bint _printable_ascii(const Py_UCS1 *s, Py_ssize_t n, bint no_space) noexcept:
    """check_text's shortcut for an ASCII string of n > 0 bytes: every byte in 0x20..0x7e, and either no
    space at all (no_space) or some byte that is not a space. Eight bytes at a time (bytes are < 0x80)."""
    cdef Py_ssize_t i = 0
    cdef u64 x
    cdef bint nonspace = False
    cdef Py_UCS1 ch
    while i + 8 <= n:
        memcpy(&x, s + i, 8)
        # a byte below 0x20 (exact for bytes < 0x80), a DEL, a space
        if (x - _ONES * 0x20) & ~x & _HIGH or _zero_bytes(x ^ (_ONES * 0x7f)):
            return False
        if no_space and _zero_bytes(x ^ (_ONES * 0x20)):
            return False
        if x != _ONES * 0x20:
            nonspace = True
        i += 8
    while i < n:
        ch = s[i]
        if ch < 0x20 or ch > 0x7e:
            return False
        if ch != 0x20:
            nonspace = True
        elif no_space:
            return False
        i += 1
    return nonspace


cdef inline int _dig2(const Py_UCS1 *s) noexcept:
    """The two ASCII digits at s as a number, or -1."""
    if 48 <= s[0] <= 57 and 48 <= s[1] <= 57:
        return (s[0] - 48) * 10 + (s[1] - 48)
    return -1


cdef bint _date_ok(const Py_UCS1 *s, Py_ssize_t n, int kind) noexcept:
    """r4spec's date / dateTime / instant regex (fullmatch) and validate._calendar_ok, for ASCII text:
    YEAR(-MM(-DD(Thh:mm:ss(.f+)?TZ)?)?)? with YEAR 4 digits but 0000, MM 01-12, DD 01-31 and a real
    day, hh 00-23, mm 00-59, ss 00-60, TZ Z or +/-hh:mm with hh:mm 00:00-13:59 or 14:00. A date stops
    at the day; an instant needs every part."""
    cdef int y, m, d, hh, mi, ss
    cdef Py_ssize_t i
    if n < 4:
        return False
    if _dig2(s) < 0 or _dig2(s + 2) < 0:
        return False
    y = _dig2(s) * 100 + _dig2(s + 2)
    if y == 0:
        return False
    if n == 4:
        return kind != P_INSTANT
    if n < 7 or s[4] != 45:  # '-'
        return False
    m = _dig2(s + 5)
    if m < 1 or m > 12:
        return False
    if n == 7:
        return kind != P_INSTANT
    if n < 10 or s[7] != 45:
        return False
    d = _dig2(s + 8)
    if d < 1 or d > 31:
        return False
    if d > days_in_month(y, m):
        return False
    if n == 10:
        return kind != P_INSTANT
    if kind == P_DATE or n < 20 or s[10] != 84:  # 'T'; the shortest time part is Thh:mm:ssZ
        return False
    hh = _dig2(s + 11)
    mi = _dig2(s + 14)
    ss = _dig2(s + 17)
    if s[13] != 58 or s[16] != 58 or hh < 0 or hh > 23 or mi < 0 or mi > 59 or ss < 0 or ss > 60:
        return False
    i = 19
    if s[i] == 46:  # '.' and at least one digit
        i += 1
        if i >= n or not (48 <= s[i] <= 57):
            return False
        while i < n and 48 <= s[i] <= 57:
            i += 1
        if i >= n:
            return False
    if s[i] == 90:  # 'Z'
        return i + 1 == n
    if s[i] != 43 and s[i] != 45:  # '+' '-'
        return False
    if i + 6 != n or s[i + 3] != 58:
        return False
    hh = _dig2(s + i + 1)
    mi = _dig2(s + i + 4)
    return (0 <= hh <= 13 and 0 <= mi <= 59) or (hh == 14 and mi == 0)


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
            if size > 0 and _printable_ascii(PyUnicode_1BYTE_DATA(v), size, p == P_TEXT):
                return True
        return bool(e.check(v))
    if p == P_DATE or p == P_DT or p == P_INSTANT:  # validate's date checks: regex, then _calendar_ok
        if PyUnicode_CheckExact(v) and PyUnicode_IS_ASCII(v):
            return _date_ok(PyUnicode_1BYTE_DATA(v), PyUnicode_GET_LENGTH(v), p)
        return bool(e.check(v))  # not a str, or not ASCII: the check says no, as the regex would
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


_DATE_KINDS = {"date": (P_DATE, "check"), "dateTime": (P_DT, "check_datetime"), "instant": (P_INSTANT, "check")}


def _is_validate_check(check, name):
    """Is ``check`` validate._make_string_check's closure ``name`` (the regex check or a shortcut of it)?"""
    return (getattr(check, "__module__", None) == "vistasim.fhir.validate"
            and getattr(check, "__qualname__", None) == f"_make_string_check.<locals>.{name}")


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
        guard = _guard(t.inv)
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
            e.is_ref_value = name == "Reference" and key == "reference"
            e.guard_bit = (1 << guard.index(key)) if key in guard else 0
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
                    elif es.type in _TEXT_TYPES and _is_validate_check(e.check, "check_text"):
                        e.prim = P_TEXT_SP if es.type in ("string", "markdown") else P_TEXT
                    elif es.type in _DATE_KINDS and _is_validate_check(e.check, _DATE_KINDS[es.type][1]):
                        e.prim = _DATE_KINDS[es.type][0]
                    else:
                        e.prim = P_STR
                else:
                    e.prim = _NUMBER_KINDS[es.type] if es.binding is None else P_CALL
            t.els[sys.intern(key)] = e
        if any(k not in spec.elements for k in guard):
            raise ValueError(f"fhirc.build: {name}'s invariant guard names a key that is not an element")
        t.guard_mask = (1 << len(guard)) - 1
        t.n_required = sum(1 for k in single if k in spec.elements)
        if t.n_required != len(single):
            raise ValueError(f"fhirc.build: {name} requires a key that is not an element")
    c = Checker()
    c.resources = {r: tys[r] for r in RESOURCE_TYPES}
    c.refs, c.prefs, c.odd = refs, prefs, odd
    c.cc_in = cc_in
    return c.ok_resource


# --------------------------------------------------------------------------- business "clean?" predicates
# validate._CLEAN_RULES compiled: the same code, statement for statement (plain Python semantics for any
# object, dict subclasses included), with exact dicts read directly. clean_rules() takes validate's
# namespace for the code systems and sets they compare with.
cdef object _ICN, _COND_CATEGORY, _OBS_CATEGORY, _UCUM
cdef object _CONDITION_SYSTEMS, _ALLERGY_SYSTEMS, _PENDING, _RXNORM_SET, _LOINC_SET, _COND_CATEGORY_CODES
cdef object _EFFECTIVE_KEYS
cdef object _S_CODING = "coding"
cdef object _S_CODE = "code"
cdef object _S_SYSTEM = "system"
cdef object _S_STATUS = "status"
cdef object _S_SUBJECT = "subject"
cdef object _S_TEXT = "text"
cdef object _S_EIE = "entered-in-error"


cdef inline object _get(object o, object k):
    """``o.get(k)`` (o a dict or dict subclass)."""
    cdef PyObject *p
    if PyDict_CheckExact(o):
        p = PyDict_GetItemWithError(<dict>o, k)
        return <object>p if p is not NULL else None
    return o.get(k)


cdef bint _coded_in(object cc, object systems) except -1:
    if type(cc) is not dict:
        return False
    for c in _get(cc, _S_CODING) or ():
        if type(c) is dict and _get(c, _S_CODE) and _get(c, _S_SYSTEM) in systems:
            return True
    return False


cdef object _status_code(object cc):
    if isinstance(cc, dict):
        for c in _get(cc, _S_CODING) or ():
            if isinstance(c, dict) and _get(c, _S_CODE):
                return c[_S_CODE]
    return None


cdef bint _keys_disjoint(object o, object keys) except -1:
    """``o.keys().isdisjoint(keys)`` (keys a frozenset): for an exact dict, one lookup per key."""
    if PyDict_CheckExact(o) and type(keys) is frozenset:
        for k in keys:
            if k in <dict>o:
                return False
        return True
    return o.keys().isdisjoint(keys)


def _ok_patient(o):
    ids, names = _get(o, "identifier"), _get(o, "name")
    if not ids or not names or "gender" not in o or type(ids) is not list or type(names) is not list:
        return False
    for i in ids:
        if type(i) is dict and _get(i, _S_SYSTEM) == _ICN:
            break
    else:
        return False
    for n in names:
        if type(n) is dict and (_get(n, "family") or _get(n, "given")):
            return True
    return False


def _ok_condition(o):
    if _S_SUBJECT not in o or not _coded_in(_get(o, _S_CODE), _CONDITION_SYSTEMS):
        return False
    if "clinicalStatus" not in o and _status_code(_get(o, "verificationStatus")) != _S_EIE:
        return False
    for c in _get(o, "category") or ():
        if type(c) is dict:
            for x in _get(c, _S_CODING) or ():
                if type(x) is dict and _get(x, _S_SYSTEM) == _COND_CATEGORY and _get(x, _S_CODE) in _COND_CATEGORY_CODES:
                    return True
    return False


def _ok_allergy(o):
    if "patient" not in o:
        return False
    code = _get(o, _S_CODE)
    if _coded_in(code, _ALLERGY_SYSTEMS):
        return "clinicalStatus" in o or _status_code(_get(o, "verificationStatus")) == _S_EIE
    eie = _status_code(_get(o, "verificationStatus")) == _S_EIE
    if not eie and "clinicalStatus" not in o:
        return False
    free_text = isinstance(code, dict) and bool(_get(code, _S_TEXT)) and not _get(code, _S_CODING)
    if not free_text:
        return eie
    return _status_code(_get(o, "clinicalStatus")) != "active"


def _ok_medication(o):
    if _S_SUBJECT not in o:
        return False
    return _coded_in(_get(o, "medicationCodeableConcept"), _RXNORM_SET) or _get(o, _S_STATUS) not in _PENDING


def _ok_observation(o):
    cats = _get(o, "category")
    if _S_STATUS not in o or not cats or _S_CODE not in o or _S_SUBJECT not in o:
        return False
    vital = False
    for c in cats:
        if type(c) is dict:
            has_sys = has_vs = False
            for x in _get(c, _S_CODING) or ():
                if type(x) is dict:
                    code = _get(x, _S_CODE)
                    if code and _get(x, _S_SYSTEM) == _OBS_CATEGORY:
                        has_sys = True
                    if code == "vital-signs":
                        has_vs = True
            if has_sys and has_vs:
                vital = True
                break
    if not vital:
        return True
    if not _coded_in(_get(o, _S_CODE), _LOINC_SET):
        return False
    if _keys_disjoint(o, _EFFECTIVE_KEYS) and not any(k.startswith("effective") for k in o):
        return False
    q = _get(o, "valueQuantity")
    if type(q) is dict and not (_get(q, _S_SYSTEM) == _UCUM and _S_CODE in q):
        return False
    for c in _get(o, "component") or ():
        if type(c) is dict:
            q = _get(c, "valueQuantity")
            if type(q) is dict and not (_get(q, _S_SYSTEM) == _UCUM and _S_CODE in q):
                return False
    return True


def _ok_encounter(o):
    return _S_SUBJECT in o and "class" in o


def _ok_service_request(o):
    if _S_SUBJECT not in o:
        return False
    code = _get(o, _S_CODE)
    if type(code) is dict:
        for c in _get(code, _S_CODING) or ():
            if type(c) is dict and _get(c, _S_CODE):
                return True
    return _get(o, _S_STATUS) not in _PENDING


def _ok_flag(o):
    code = _get(o, _S_CODE)
    if _S_SUBJECT not in o or type(code) is not dict:
        return False
    if _get(code, _S_TEXT):
        return True
    for c in _get(code, _S_CODING) or ():
        if type(c) is dict and _get(c, _S_CODE):
            return True
    return False


_RULE_NAMES = {"Patient": "_ok_patient", "Condition": "_ok_condition", "AllergyIntolerance": "_ok_allergy",
               "MedicationRequest": "_ok_medication", "Observation": "_ok_observation",
               "Encounter": "_ok_encounter", "ServiceRequest": "_ok_service_request", "Flag": "_ok_flag"}


def clean_rules(ns):
    """validate._CLEAN_RULES compiled, reading validate's constants from its namespace ``ns``.

    Returns None (keep the Python rules) when the rules there are not the ones compiled here (other
    resource types or function names), so a change in validate cannot silently diverge."""
    global _ICN, _COND_CATEGORY, _OBS_CATEGORY, _UCUM, _CONDITION_SYSTEMS, _ALLERGY_SYSTEMS, _PENDING
    global _RXNORM_SET, _LOINC_SET, _COND_CATEGORY_CODES, _EFFECTIVE_KEYS
    rules = ns.get("_CLEAN_RULES")
    if type(rules) is not dict or {k: getattr(f, "__name__", None) for k, f in rules.items()} != _RULE_NAMES:
        return None
    _ICN, _COND_CATEGORY, _OBS_CATEGORY, _UCUM = ns["_ICN"], ns["_COND_CATEGORY"], ns["_OBS_CATEGORY"], ns["_UCUM"]
    _CONDITION_SYSTEMS, _ALLERGY_SYSTEMS, _PENDING = ns["_CONDITION_SYSTEMS"], ns["_ALLERGY_SYSTEMS"], ns["_PENDING"]
    _RXNORM_SET, _LOINC_SET = ns["_RXNORM_SET"], ns["_LOINC_SET"]
    _COND_CATEGORY_CODES, _EFFECTIVE_KEYS = ns["_COND_CATEGORY_CODES"], ns["_EFFECTIVE_KEYS"]
    g = globals()
    return {rt: g[name] for rt, name in _RULE_NAMES.items()}


# --------------------------------------------------------------------------- data_integrity's "clean?" answer
# validate.integrity_clean compiled: the same code, statement for statement, with validate's helpers
# (_bounds, _get, _targets) inlined and exact dicts read directly. compiled_integrity_clean() takes
# validate's namespace for the ICN system and the date paths.
cdef object _DATE_TOP = None, _DATE_NESTED = None
cdef object _S_RESOURCE = "resource"
cdef object _S_ENTRY = "entry"
cdef object _S_RT = "resourceType"
cdef object _S_FULLURL = "fullUrl"
cdef object _S_PATIENT = "Patient"
cdef object _S_Q = "?"


cdef inline object _dget(object o, object k, object default):
    """``o.get(k, default)`` (o a dict or dict subclass)."""
    cdef PyObject *p
    if PyDict_CheckExact(o):
        p = PyDict_GetItemWithError(<dict>o, k)
        return <object>p if p is not NULL else default
    return o.get(k, default)


cdef tuple _bounds(object value):
    """validate._bounds: earliest and latest day a FHIR date/dateTime of any precision may mean."""
    d = value[:10]
    n = len(d)
    if n == 4:
        return d + "-01-01", d + "-12-31"
    if n == 7:
        return d + "-01", d + "-31"
    return d, d


cdef object _get_path(object res, tuple path):
    """validate._get."""
    cur = res
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = _get(cur, p)
    return cur


cdef dict _targets_of(list resources):
    """validate._targets."""
    cdef dict targets = {}
    for e, res in resources:
        rt, rid = _dget(res, _S_RT, _S_Q), _get(res, "id")
        fu = _get(e, _S_FULLURL)
        if isinstance(fu, str):
            targets[fu] = rt
        if rid:
            targets[f"{rt}/{rid}"] = rt
    return targets


def integrity_clean(bundle, refs, patient_refs, *, as_of=None, pairs=None):
    """validate.integrity_clean, compiled (same arguments, same answers)."""
    today = as_of or datetime.now(timezone.utc).date().isoformat()
    cdef dict full = {}
    if pairs is None:
        pairs = [(e, e["resource"]) for e in _get(bundle, _S_ENTRY) or ()
                 if isinstance(e, dict) and isinstance(_get(e, _S_RESOURCE), dict)]
    patient = None
    n_patients = 0
    for e, res in pairs:
        rt = _dget(res, _S_RT, _S_Q)
        fu = _get(e, _S_FULLURL)
        if isinstance(fu, str):
            full[fu] = rt
        if rt == _S_PATIENT:
            patient = res
            n_patients += 1
    if n_patients != 1 or patient is None:
        return False
    icn = None
    for i in _get(patient, "identifier") or ():
        if isinstance(i, dict) and _get(i, _S_SYSTEM) == _ICN:
            v = str(_get(i, "value"))
            if icn is not None and v != icn:
                return False
            icn = v
    targets = None
    for ref in set(refs).difference(full):
        if ref.startswith("#"):
            continue
        if "/" not in ref:
            return False
        if targets is None:
            targets = _targets_of(pairs if type(pairs) is list else list(pairs))
        if ref not in targets:
            return False
    for ref in set(patient_refs):
        if ref.startswith("#"):
            continue
        if "/" in ref:
            if targets is None:
                targets = _targets_of(pairs if type(pairs) is list else list(pairs))
            kind = targets.get(ref)
        else:
            kind = full.get(ref)
        if kind != _S_PATIENT:
            return False
    birth = _get(patient, "birthDate") if isinstance(_get(patient, "birthDate"), str) else None
    death = _get(patient, "deceasedDateTime") if isinstance(_get(patient, "deceasedDateTime"), str) else None
    if (birth and _bounds(birth)[0] > today) or (death and _bounds(death)[0] > today):
        return False
    if birth and death and _bounds(death)[1] < _bounds(birth)[0]:
        return False
    birth_lo = _bounds(birth)[0] if birth else None
    top, nested = _DATE_TOP, _DATE_NESTED
    for _, res in pairs:
        rt = str(_dget(res, _S_RT, _S_Q))
        for key in _dget(top, rt, ()):
            tv = _get(res, key)
            if isinstance(tv, str) and len(tv) >= 4:
                lo, hi = _bounds(tv) if len(tv) < 10 else (tv[:10], tv[:10])
                if lo > today or (birth_lo and hi < birth_lo):
                    return False
        for dp in _dget(nested, rt, ()):
            v = _get_path(res, dp)
            if isinstance(v, str) and len(v) >= 4:
                lo, hi = _bounds(v)
                if lo > today or (birth_lo and hi < birth_lo):
                    return False
        if rt == "Condition":
            on, ab = _get(res, "onsetDateTime"), _get(res, "abatementDateTime")
            if isinstance(on, str) and isinstance(ab, str) and _bounds(ab)[1] < _bounds(on)[0]:
                return False
    return True


def compiled_integrity_clean(ns):
    """validate.integrity_clean compiled, reading validate's ICN system and date paths from ``ns``."""
    global _DATE_TOP, _DATE_NESTED, _ICN
    _ICN, _DATE_TOP, _DATE_NESTED = ns["_ICN"], ns["_DATE_TOP"], ns["_DATE_NESTED"]
    return integrity_clean
