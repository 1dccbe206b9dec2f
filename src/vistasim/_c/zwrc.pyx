# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled twin of the ZWR reading hot path of ``vistasim.vista.station`` (``_StationReader._entries_fast``).

``Grouper.scan`` walks the lines of a piece of a data file and groups entry nodes into per-entry dicts,
exactly as the ``entry_line_pattern`` findall loop of ``_entries_fast`` does: a line is taken here only
when it has one of the common shapes the pattern certainly classifies the same way (an entry node
``root IEN,subs)=value`` with canonic numbers and plain quoted strings, or a plain index node); any other
line is matched with the pattern itself and handled by the same rules, lines the pattern calls "other"
going back to Python (``other``), so errors, line numbers and counts stay those of the Python reader.
"""

#: Bumped when the interface station.py/globals.py use changes: an older build is then ignored (pure Python).
PROTOCOL = 1

from vistasim._c.calendar cimport days_in_month
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.object cimport PyObject
from cpython.long cimport PyLong_FromLongLong


cdef extern from "Python.h":
    int PyUnicode_KIND(object s)
    void* PyUnicode_DATA(object s)
    Py_UCS4 PyUnicode_READ(int kind, void* data, Py_ssize_t i) nogil
    Py_ssize_t PyUnicode_FindChar(object s, Py_UCS4 ch, Py_ssize_t start, Py_ssize_t end, int direction) except -2
    str PyUnicode_Substring(object s, Py_ssize_t start, Py_ssize_t end)
    Py_ssize_t PyUnicode_GET_LENGTH(object s)
    Py_UCS4 PyUnicode_READ_CHAR(object s, Py_ssize_t i)
    object PyUnicode_DecodeASCII(const char* s, Py_ssize_t size, const char* errors)


cdef inline bint _is_text(Py_UCS4 c) noexcept:
    # the pattern's _P_TEXT: anything but a quote, a C0 control or DEL
    return c != 34 and c >= 32 and c != 127


cdef inline bint _is_digit(Py_UCS4 c) noexcept:
    return 48 <= c <= 57


cdef inline bint _is_alpha(Py_UCS4 c) noexcept:
    return (65 <= c <= 90) or (97 <= c <= 122)


cdef bint _num18(str t, Py_ssize_t a, Py_ssize_t b):
    """``t[a:b]`` fully matches the pattern's _P_NUM18 (a canonic number of at most 18 digits)."""
    cdef Py_ssize_t i = a, j, dot = -1, n
    cdef Py_UCS4 c
    if b - a == 1 and t[a] == u"0":
        return True
    if i < b and t[i] == u"-":
        i += 1
    if i >= b:
        return False
    c = t[i]
    if c == u".":  # -?\.[0-9]{0,16}[1-9]
        n = b - i - 1
        if n < 1 or n > 17:
            return False
        for j in range(i + 1, b):
            if not _is_digit(t[j]):
                return False
        return t[b - 1] != u"0"
    if not (49 <= c <= 57):
        return False
    for j in range(i + 1, b):
        c = t[j]
        if c == u".":
            if dot != -1:
                return False
            dot = j
        elif not _is_digit(c):
            return False
    if dot == -1:  # -?[1-9][0-9]{0,17}
        return b - i <= 18
    # -?[1-9][0-9]{0,8}\.[0-9]{0,8}[1-9]
    n = b - dot - 1
    return dot - i <= 9 and 1 <= n <= 9 and t[b - 1] != u"0"


cdef bint _pnum(str t, Py_ssize_t a, Py_ssize_t b):
    """``t[a:b]`` fully matches the pattern's _P_NUM (index subscripts: canonic, body of at most 18 chars)."""
    cdef Py_ssize_t i = a, j, dot = -1
    cdef Py_UCS4 c
    if b - a == 1 and t[a] == u"0":
        return True
    if i < b and t[i] == u"-":
        i += 1
    if i >= b or b - i > 18:
        return False
    c = t[i]
    if c == u".":  # \.[0-9]*[1-9]
        if b - i < 2:
            return False
        for j in range(i + 1, b):
            if not _is_digit(t[j]):
                return False
        return t[b - 1] != u"0"
    if not (49 <= c <= 57):
        return False
    for j in range(i + 1, b):
        c = t[j]
        if c == u".":
            if dot != -1:
                return False
            dot = j
        elif not _is_digit(c):
            return False
    if dot == -1:
        return True
    return b - dot >= 2 and t[b - 1] != u"0"  # \.[0-9]*[1-9]


def numeric_index_run(str text not None, Py_ssize_t pos, Py_ssize_t stop, str prefix not None):
    """``station._numeric_index_run(text[pos:stop], prefix, k)`` in one pass: the number of lines when each
    line of ``text[pos:stop]`` is ``prefix``, positive canonic integers of at most 18 digits joined by single
    commas, then ``)=""`` and a newline; -1 otherwise (the general handling takes the run)."""
    cdef Py_ssize_t plen = PyUnicode_GET_LENGTH(prefix), i, j, nd, k = 0
    cdef int kind = PyUnicode_KIND(text)
    cdef void* data = PyUnicode_DATA(text)
    cdef int pkind = PyUnicode_KIND(prefix)
    cdef void* pdata = PyUnicode_DATA(prefix)
    cdef Py_UCS4 c
    if pos < 0 or pos >= stop or stop > PyUnicode_GET_LENGTH(text):
        return -1
    while pos < stop:
        if stop - pos < plen + 6:
            return -1
        for j in range(plen):
            if PyUnicode_READ(kind, data, pos + j) != PyUnicode_READ(pkind, pdata, j):
                return -1
        i = pos + plen
        while True:
            c = PyUnicode_READ(kind, data, i)
            if not (49 <= c <= 57):
                return -1
            nd = 1
            i += 1
            while i < stop:
                c = PyUnicode_READ(kind, data, i)
                if not (48 <= c <= 57):
                    break
                nd += 1
                i += 1
            if nd > 18 or i >= stop:
                return -1
            if c == 44:  # ','
                i += 1
                if i >= stop:
                    return -1
                continue
            break
        # ')=""' then the newline
        if i + 5 > stop or c != 41 or PyUnicode_READ(kind, data, i + 1) != 61 \
                or PyUnicode_READ(kind, data, i + 2) != 34 or PyUnicode_READ(kind, data, i + 3) != 34 \
                or PyUnicode_READ(kind, data, i + 4) != 10:
            return -1
        pos = i + 5
        k += 1
    return k


cdef class Sink:
    """``_StationReader._decoder_of``'s closure for one data file when streaming: ``sink(IEN, nodes)`` checks
    the IEN order (``restart`` when it is not increasing), marks decoding started, decodes and keeps the
    entry; a decoding error raises ``restart`` (for the PATIENT file only InputError does, as there)."""

    cdef object reader, last_ien, number, last, decoder, resolver, where, restart, station
    cdef dict patients
    cdef list items
    cdef bint patient_file
    cdef tuple caught

    def __init__(self, reader, dict last_ien, str number, decoder, resolver, where, restart, caught,
                 dict patients=None, list items=None, station=None):
        self.reader = reader
        self.last_ien = last_ien
        self.number = number
        self.last = last_ien.get(number, 0)
        self.decoder = decoder
        self.resolver = resolver
        self.where = where
        self.restart = restart
        self.caught = caught
        self.patients = patients
        self.items = items
        self.station = station
        self.patient_file = patients is not None

    cdef int feed(self, ien, dict nodes) except -1:
        if ien <= self.last:
            raise self.restart()
        self.last = ien
        self.last_ien[self.number] = ien
        self.reader.decoding_started = True
        try:
            if self.patient_file:
                rec = self.decoder(self.station, ien, nodes, self.resolver, f"{self.where}: patient {ien}")
                self.patients[ien] = rec
            else:
                self.items.append(self.decoder(ien, nodes, self.resolver, self.where))
        except self.caught:
            raise self.restart() from None
        return 0

    def __call__(self, ien, dict nodes):
        self.feed(ien, nodes)


cdef class Grouper:
    """The grouping state of one ``_entries_fast`` pass over a data file (see the module docstring).

    ``scan(text, pos, stop)`` handles the lines of ``text[pos:stop]`` (whole lines): it calls ``own(IEN,
    nodes)`` for each finished entry of the file itself when ``own`` is given, and stops to let the caller
    yield any other finished entry (``out``), returning where to go on; -1 when the piece is done.
    ``nodes``/``index`` are the corrections to the caller's counts (blank and bad lines, index nodes),
    ``line_no`` the number of the next line.
    """

    cdef public object cur_key
    cdef public dict cur
    cdef public object cur_s
    cdef public bint is_ptr
    cdef public object out
    cdef public Py_ssize_t nodes
    cdef public Py_ssize_t index
    cdef public Py_ssize_t line_no
    cdef str root
    cdef Py_ssize_t rlen
    cdef object fnum
    cdef object own
    cdef Sink sink
    cdef object pattern
    cdef bint patient_file
    cdef dict name_index
    cdef object b_xtail
    cdef object other
    cdef list tails
    cdef Py_ssize_t tail_hint

    def __init__(self, str root not None, str fnum, own, pattern, dict name_index not None, b_xtail, other):
        self.root = root
        self.rlen = len(root)
        self.fnum = fnum
        self.own = own
        self.sink = own if isinstance(own, Sink) else None
        self.pattern = pattern
        self.patient_file = fnum == "2"
        self.name_index = name_index
        self.b_xtail = b_xtail  # xtail of a ^DPT("B",...) line the fast path leaves -> the Python handling
        self.other = other  # (line number, line) -> -1 bad, 0 unknown, 1 index, or (number, IEN, ptr, key, value)
        self.cur_key = None
        self.cur = {}
        self.cur_s = None
        self.is_ptr = False
        self.out = None
        self.nodes = 0
        self.index = 0
        self.line_no = 0
        self.tails = []
        self.tail_hint = 0

    cdef inline bint _finish(self):
        """Hand the current entry on: to ``own``, or to ``out`` (True: the caller must yield it)."""
        if self.own is not None and self.cur_s is not None:
            if self.sink is not None:
                self.sink.feed((<tuple>self.cur_key)[1], self.cur)
            else:
                self.own(self.cur_key[1], self.cur)
            return False
        self.out = (self.cur_key, self.cur, self.is_ptr)
        return True

    cdef bint _entry_row(self, str ien_s, str tail, str value):
        """An entry row of the file itself (the pattern's first branch). True: yield ``out`` first."""
        cdef bint y = False
        if self.cur_s is None or ien_s != <str>self.cur_s:
            if self.cur_key is not None:
                y = self._finish()
            self.cur_key = (self.fnum, int(ien_s))
            self.cur = {}
            self.is_ptr = False
            self.cur_s = ien_s
        self.cur[tail] = value
        return y

    cdef bint _routed_row(self, tuple r):
        """An entry node the Python handling routed: (number, IEN, is pointer, key, value)."""
        cdef bint y = False
        number, ien, ptr, key, value = r
        ck = self.cur_key
        if ck is None or ien != ck[1] or number != ck[0]:
            if ck is not None:
                y = self._finish()
            self.cur_key = (number, ien)
            self.cur = {}
            self.is_ptr = ptr
            self.cur_s = str(ien) if number == self.fnum else None
        self.cur[key] = value
        return y

    cdef bint _slow_row(self, str text, Py_ssize_t pos, Py_ssize_t eol, Py_ssize_t lno) except -1:
        """A line the fast shapes do not cover: the pattern's groups, handled as ``_entries_fast`` does.
        Returns 1 when ``out`` must be yielded."""
        groups = self.pattern.match(text[pos:eol]).groups()
        ien_s, tail, q, num, xname, xtail, other = groups
        if ien_s:
            return self._entry_row(ien_s, tail, num or q)
        if xname:
            self.index += 1
            if self.patient_file and xname == "B":
                self.b_xtail(xtail)
            return 0
        if not other:
            self.nodes -= 1  # a blank line carries no node
            return 0
        r = self.other(lno, other)
        if type(r) is tuple:
            return self._routed_row(<tuple>r)
        if r == -1:
            self.nodes -= 1
        elif r == 1:
            self.index += 1
        return 0

    cdef Py_ssize_t _index_line(self, str text, Py_ssize_t pos, Py_ssize_t eol) except -2:
        """A plain index line ``root"NAME",subs)=""`` (subscripts canonic numbers or quoted text without
        quotes): 1 when counted here, 0 when the line needs the general handling."""
        cdef Py_ssize_t i = pos + self.rlen + 1, j, nsub = 0, q0 = 0, q1 = 0, n0 = 0, n1 = 0
        cdef Py_ssize_t name0 = i
        cdef Py_UCS4 c
        if i >= eol or not _is_alpha(text[i]):
            return 0
        i += 1
        while i < eol and (_is_alpha(text[i]) or _is_digit(text[i])):
            i += 1
        if i + 1 >= eol or text[i] != u'"' or text[i + 1] != u",":
            return 0
        cdef bint is_b = self.patient_file and i - name0 == 1 and text[name0] == u"B"
        i += 2
        while True:
            if i >= eol:
                return 0
            if text[i] == u'"':
                j = i + 1
                while j < eol and _is_text(text[j]):
                    j += 1
                if j >= eol or j == i + 1 or text[j] != u'"':
                    return 0
                if nsub == 0:
                    q0, q1 = i + 1, j
                j += 1
            else:
                j = i
                while j < eol:
                    c = text[j]
                    if c == u"," or c == u")":
                        break
                    j += 1
                if j >= eol or not _pnum(text, i, j):
                    return 0
                if nsub == 1:
                    n0, n1 = i, j
            nsub += 1
            if j >= eol:
                return 0
            c = text[j]
            if c == u",":
                i = j + 1
                continue
            if c != u")":
                return 0
            # )=""<eol>
            if j + 4 != eol or text[j + 1] != u"=" or text[j + 2] != u'"' or text[j + 3] != u'"':
                return 0
            break
        self.index += 1
        if is_b:
            # ^DPT("B",NAME,DFN): the name index keeps NAME -> DFNs (a positive integer DFN, two subscripts)
            if nsub != 2 or q1 == 0 or n1 == 0 or not (49 <= text[n0] <= 57) or n1 - n0 > 18:
                self.b_xtail(text[name0 + 3 : eol - 4])
                return 1
            for j in range(n0, n1):
                if not _is_digit(text[j]):
                    self.b_xtail(text[name0 + 3 : eol - 4])
                    return 1
            name = text[q0:q1]
            lst = PyDict_GetItem(self.name_index, name)
            if lst is NULL:
                self.name_index[name] = [int(text[n0:n1])]
            else:
                (<list><object>lst).append(int(text[n0:n1]))
        return 1

    def scan(self, str text not None, Py_ssize_t pos, Py_ssize_t stop):
        """Handle the lines of ``text[pos:stop]``; -1 when done, else the position to go on from after
        yielding ``out``."""
        cdef str root = self.root
        cdef Py_ssize_t rlen = self.rlen
        cdef Py_ssize_t eol, i, j, ien0, ien1, t0, t1 = 0, v0, v1, lno
        cdef Py_UCS4 c
        cdef bint ok, y
        cdef str cs
        cdef long long ien
        cdef int kind = PyUnicode_KIND(text)
        cdef void* data = PyUnicode_DATA(text)
        cdef int rkind = PyUnicode_KIND(root)
        cdef void* rdata = PyUnicode_DATA(root)
        if pos < 0 or stop > PyUnicode_GET_LENGTH(text):
            raise ValueError("scan: pos/stop outside the text")
        while pos < stop:
            eol = PyUnicode_FindChar(text, 10, pos, stop, 1)
            if eol < 0:
                eol = stop
            lno = self.line_no
            self.line_no += 1
            ok = eol - pos > rlen
            if ok:
                for j in range(rlen):
                    if PyUnicode_READ(kind, data, pos + j) != PyUnicode_READ(rkind, rdata, j):
                        ok = False
                        break
            y = False
            if ok:
                i = pos + rlen
                c = PyUnicode_READ(kind, data, i)
                if c == 34:  # '"': an index line
                    if self._index_line(text, pos, eol):
                        pos = eol + 1
                        continue
                    ok = False
                elif 49 <= c <= 57:
                    # entry node: IEN [1-9][0-9]{0,17} ","
                    ien0 = i
                    ien = <long long>c - 48
                    i += 1
                    while i < eol:
                        c = PyUnicode_READ(kind, data, i)
                        if not _is_digit(c):
                            break
                        ien = ien * 10 + (<long long>c - 48)
                        i += 1
                    ien1 = i
                    ok = ien1 - ien0 <= 18 and i < eol and PyUnicode_READ(kind, data, i) == 44
                    i += 1
                    t0 = i
                    # subscripts after the IEN: canonic numbers or "[A-Za-z]text*", then ")="
                    while ok:
                        if i >= eol:
                            ok = False
                            break
                        if PyUnicode_READ(kind, data, i) == 34:
                            if i + 1 >= eol or not _is_alpha(PyUnicode_READ(kind, data, i + 1)):
                                ok = False
                                break
                            j = i + 2
                            while j < eol and _is_text(PyUnicode_READ(kind, data, j)):
                                j += 1
                            if j >= eol or PyUnicode_READ(kind, data, j) != 34:
                                ok = False
                                break
                            j += 1
                        else:
                            j = i
                            while j < eol:
                                c = PyUnicode_READ(kind, data, j)
                                if c == 44 or c == 41:
                                    break
                                j += 1
                            if j >= eol or not _num18(text, i, j):
                                ok = False
                                break
                        if j >= eol:
                            ok = False
                            break
                        c = PyUnicode_READ(kind, data, j)
                        if c == 44:
                            i = j + 1
                            continue
                        if c == 41 and j + 1 < eol and PyUnicode_READ(kind, data, j + 1) == 61:
                            t1 = j
                            i = j + 2
                            break
                        ok = False
                    if ok:
                        # the value: "text*" or a canonic number, then the end of the line
                        if i < eol and PyUnicode_READ(kind, data, i) == 34:
                            v0 = i + 1
                            j = v0
                            while j < eol and _is_text(PyUnicode_READ(kind, data, j)):
                                j += 1
                            ok = j == eol - 1 and PyUnicode_READ(kind, data, j) == 34
                            v1 = j
                        else:
                            v0, v1 = i, eol
                            ok = _num18(text, i, eol)
                    if ok:
                        if not self._same_ien(text, kind, data, ien0, ien1):
                            if self.cur_key is not None:
                                y = self._finish()
                            self.cur_s = PyUnicode_Substring(text, ien0, ien1)
                            self.cur_key = (self.fnum, PyLong_FromLongLong(ien))
                            self.cur = {}
                            self.is_ptr = False
                        PyDict_SetItem(self.cur, self._tail(text, kind, data, t0, t1), PyUnicode_Substring(text, v0, v1))
                        pos = eol + 1
                        if y:
                            return pos
                        continue
                else:
                    ok = False
            y = self._slow_row(text, pos, eol, lno)
            pos = eol + 1
            if y:
                return pos
        return -1

    cdef inline str _tail(self, str text, int kind, void* data, Py_ssize_t a, Py_ssize_t b):
        """``text[a:b]``, the subscripts after an IEN: one of the few a file uses, so the same string object
        (hash kept) is handed out again; the search starts after the previous one (nodes come in order)."""
        cdef list tails = self.tails
        cdef Py_ssize_t n = len(tails), k, i, j, length = b - a
        cdef str t
        cdef int k2
        cdef void* d2
        for k in range(n):
            i = self.tail_hint + k
            if i >= n:
                i -= n
            t = <str>tails[i]
            if PyUnicode_GET_LENGTH(t) != length:
                continue
            k2 = PyUnicode_KIND(t)
            d2 = PyUnicode_DATA(t)
            for j in range(length):
                if PyUnicode_READ(kind, data, a + j) != PyUnicode_READ(k2, d2, j):
                    break
            else:
                self.tail_hint = i + 1
                return t
        t = PyUnicode_Substring(text, a, b)
        if n < 48:
            tails.append(t)
        return t

    cdef inline bint _same_ien(self, str text, int kind, void* data, Py_ssize_t a, Py_ssize_t b):
        """``text[a:b]`` is the IEN text of the current entry of the file itself."""
        cdef object cs = self.cur_s
        cdef Py_ssize_t j
        if cs is None:
            return False
        cdef str s = <str>cs
        if len(s) != b - a:
            return False
        cdef int k2 = PyUnicode_KIND(s)
        cdef void* d2 = PyUnicode_DATA(s)
        for j in range(b - a):
            if PyUnicode_READ(kind, data, a + j) != PyUnicode_READ(k2, d2, j):
                return False
        return True


# --------------------------------------------------------------------------- decoders
#
# Twins of the decoders of vistasim.vista.globals (``decode_patient``, ``_problem``, ``_allergy``, ``_vital``,
# ``_prescription``, ``_visit``, ``_order``): the same dataclasses from the same nodes, fields evaluated in the
# same order with the same Python conversions (int(), float(), fm_to_iso, the resolver), so the first bad
# field raises the same exception with the same message. Pieces are cut in C instead of split lists.

from cpython.number cimport PyNumber_Long
from cpython.float cimport PyFloat_FromString

from vistasim.errors import InputError
from vistasim.model import Address, Allergy, Order, PatientRecord, Prescription, Problem, Visit, Vital

# Bound by vistasim.vista.globals when it loads this module (importing vistasim.vista from here would be
# circular): fileman's memos and converter, layout's code tables.
cdef dict _FMC = None  # fileman's memo FileMan -> ISO, cleared in place when it grows
cdef object fm_to_iso = None
cdef Py_ssize_t _FM_LIMIT = 200_000
cdef dict _RX_STATUS_NAME = None
cdef dict _KIND_BY_GROUP = None
cdef dict _ORDER_STATUS_WORD = None
cdef object _SIGNED = None
cdef str _EMPTY = ""


def bind(layout, fileman):
    """Take the tables the decoders share with their Python twins (called by vistasim.vista.globals)."""
    global _FMC, fm_to_iso, _FM_LIMIT, _RX_STATUS_NAME, _KIND_BY_GROUP, _ORDER_STATUS_WORD, _SIGNED
    _FMC = fileman._FM_CACHE
    _FM_LIMIT = fileman._CACHE_LIMIT
    fm_to_iso = fileman.fm_to_iso
    _RX_STATUS_NAME = layout.RX_STATUS_NAME
    _KIND_BY_GROUP = layout.KIND_BY_GROUP
    _ORDER_STATUS_WORD = layout.ORDER_STATUS_WORD
    _SIGNED = layout.ORDER_SIGNED[True]

cdef enum:
    MAXP = 24  # the most pieces a decoder cuts (a struct of fixed arrays)

_ns: dict = {}
exec("def unpack2(t):\n    a, b = t\n    return a, b\n\ndef unpack3(t):\n    a, b, c = t\n    return a, b, c\n", _ns)
cdef object _py_unpack2 = _ns["unpack2"]  # any odd key: Python's own unpacking and its error
cdef object _py_unpack3 = _ns["unpack3"]


cdef inline tuple _three(object t):
    if type(t) is tuple and len(<tuple>t) == 3:
        return <tuple>t
    return _py_unpack3(t)


cdef inline tuple _two(object t):
    if type(t) is tuple and len(<tuple>t) == 2:
        return <tuple>t
    return _py_unpack2(t)


cdef extern from *:
    """
    #include "structmember.h"
    static PyObject* zwrc_alloc(PyObject* cls) {
        PyTypeObject* t = (PyTypeObject*)cls;
        return t->tp_alloc(t, 0);
    }
    static Py_ssize_t zwrc_member_offset(PyObject* descr) {
        PyMemberDef* m;
        if (Py_TYPE(descr) != &PyMemberDescr_Type) return -1;
        m = ((PyMemberDescrObject*)descr)->d_member;
        if (m->type != T_OBJECT_EX || (m->flags & READONLY)) return -1;
        return m->offset;
    }
    static void zwrc_set_slot(PyObject* obj, Py_ssize_t off, PyObject* v) {
        PyObject** p = (PyObject**)((char*)obj + off);
        PyObject* old = *p;
        Py_INCREF(v);
        *p = v;
        Py_XDECREF(old);
    }
    """
    object zwrc_alloc(object cls)
    Py_ssize_t zwrc_member_offset(object descr) except? -2
    void zwrc_set_slot(object obj, Py_ssize_t off, object v)


import dataclasses as _dc


cdef class _Maker:
    """Builds one model dataclass from its field values in order, as ``cls(*values)`` does.

    The model's clinical classes are plain ``@dataclass(slots=True)``: their generated ``__init__`` only
    stores each argument in its slot. When that is so (checked here: generated ``__init__``, every field
    an init field in this order, a writable object slot each, no ``__post_init__`` or own ``__new__``),
    the instance is allocated and its slots filled directly; otherwise the class is called.
    """

    cdef object cls
    cdef Py_ssize_t off[16]
    cdef int n
    cdef public bint direct

    def __init__(self, cls, tuple names):
        self.cls = cls
        self.n = len(names)
        ok = (
            type(cls) is type and _dc.is_dataclass(cls) and self.n <= 16
            and [f.name for f in _dc.fields(cls)] == list(names) and all(f.init for f in _dc.fields(cls))
            and not hasattr(cls, "__post_init__") and cls.__new__ is object.__new__
            and getattr(getattr(cls.__init__, "__code__", None), "co_filename", None) == "<string>"
            and tuple(getattr(cls, "__slots__", ())) == names
        )
        cdef int i
        if ok:
            for i in range(self.n):
                self.off[i] = zwrc_member_offset(cls.__dict__.get(names[i]))
                if self.off[i] < 0:
                    ok = False
        self.direct = ok

    cdef object make(self, tuple vals):
        cdef int i
        if not self.direct:
            return self.cls(*vals)
        obj = zwrc_alloc(self.cls)
        for i in range(self.n):
            zwrc_set_slot(obj, self.off[i], vals[i])
        return obj


cdef _Maker _VITAL = _Maker(Vital, ("ien", "taken", "vital_type", "value"))
cdef _Maker _VISIT = _Maker(Visit, ("ien", "when", "location", "visit_type", "service_category"))
cdef _Maker _ORDER = _Maker(Order, ("ien", "text", "kind", "status", "signed", "entered", "code", "code_system"))
cdef _Maker _PROBLEM = _Maker(Problem, ("ien", "icd_code", "icd_system", "description", "snomed", "status",
                                        "entered", "onset", "resolved"))
cdef _Maker _RX = _Maker(Prescription, ("ien", "rx_number", "drug_name", "rxnorm", "quantity", "days_supply",
                                        "refills", "issue_date", "status", "fill_routing", "sig"))
cdef _Maker _ALLERGY = _Maker(Allergy, ("ien", "reactant", "allergy_type", "mechanism", "verified", "origination",
                                        "code", "code_system", "status", "reactions"))
MAKERS = {"Vital": _VITAL, "Visit": _VISIT, "Order": _ORDER, "Problem": _PROBLEM, "Prescription": _RX,
          "Allergy": _ALLERGY}


cdef struct Cuts:
    Py_ssize_t s[MAXP]
    Py_ssize_t e[MAXP]


cdef inline void _cut(str v, int n, Cuts* c) noexcept:
    """The first ``n`` ``^``-pieces of ``v`` (missing ones empty: ``s == e``), as ``(v + "^" * k).split("^")``."""
    cdef Py_ssize_t length = PyUnicode_GET_LENGTH(v), pos = 0, q
    cdef int i
    for i in range(n):
        if pos > length:
            c.s[i] = c.e[i] = 0
            continue
        q = PyUnicode_FindChar(v, 94, pos, length, 1)
        if q < 0:
            q = length
        c.s[i] = pos
        c.e[i] = q
        pos = q + 1


cdef inline str _p(str v, Cuts* c, int i):
    if c.s[i] == c.e[i]:
        return _EMPTY
    if c.s[i] == 0 and c.e[i] == PyUnicode_GET_LENGTH(v):
        return v
    return PyUnicode_Substring(v, c.s[i], c.e[i])


cdef inline str _piece(str v, int n):
    """``globals._piece(v, n)``: piece ``n`` (1-based) or ""."""
    cdef Cuts c
    _cut(v, n, &c)
    return _p(v, &c, n - 1)


cdef inline str _node(dict n, str key):
    cdef PyObject* v = PyDict_GetItem(n, key)
    return _EMPTY if v is NULL else <str><object>v


cdef inline object _int(str s):
    """``int(s)``: plain ASCII digits in C, anything else through Python's int (same value or error)."""
    cdef Py_ssize_t k, length = PyUnicode_GET_LENGTH(s)
    cdef long long x = 0
    cdef Py_UCS4 ch
    if 0 < length <= 18:
        for k in range(length):
            ch = PyUnicode_READ_CHAR(s, k)
            if not (48 <= ch <= 57):
                return PyNumber_Long(s)
            x = x * 10 + (<long long>ch - 48)
        return PyLong_FromLongLong(x)
    return PyNumber_Long(s)


cdef inline int _d2(str s, Py_ssize_t i):
    """Two ASCII digits at ``s[i]`` as a number, -1 when they are not."""
    cdef Py_UCS4 a = PyUnicode_READ_CHAR(s, i), b = PyUnicode_READ_CHAR(s, i + 1)
    if not (48 <= a <= 57 and 48 <= b <= 57):
        return -1
    return (<int>a - 48) * 10 + (<int>b - 48)


cdef object _fm_plain(str fm):
    """A precise FileMan date or date/time in its canonic form -> the ISO text ``fm_to_iso`` gives, or
    None for anything else (imprecise dates, ``.24``, errors: ``fm_to_iso`` handles those)."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(fm), k
    cdef int yyy, c, mon, day, hh = 0, mm = 0, ss = 0, year
    cdef Py_UCS4 ch
    cdef char buf[20]
    cdef int digits[6]
    if n != 7 and not (9 <= n <= 14 and PyUnicode_READ_CHAR(fm, 7) == 46):
        return None
    c = PyUnicode_READ_CHAR(fm, 0)
    if not (49 <= c <= 57):  # YYY 100-999: years 1800-2699
        return None
    yyy = _d2(fm, 1)
    mon = _d2(fm, 3)
    day = _d2(fm, 5)
    if yyy < 0 or mon < 1 or mon > 12 or day < 1:
        return None
    year = (c - 48) * 100 + yyy + 1700
    if day > days_in_month(year, mon):
        return None
    if n > 7:
        for k in range(6):
            digits[k] = 0
        for k in range(8, n):
            ch = PyUnicode_READ_CHAR(fm, k)
            if not (48 <= ch <= 57):
                return None
            digits[k - 8] = <int>ch - 48
        if digits[n - 9] == 0:  # canonic: no trailing zero
            return None
        hh = digits[0] * 10 + digits[1]
        mm = digits[2] * 10 + digits[3]
        ss = digits[4] * 10 + digits[5]
        if hh > 23 or mm > 59 or ss > 59:
            return None
    buf[0] = 48 + year // 1000
    buf[1] = 48 + (year // 100) % 10
    buf[2] = 48 + (year // 10) % 10
    buf[3] = 48 + year % 10
    buf[4] = 45
    buf[5] = 48 + mon // 10
    buf[6] = 48 + mon % 10
    buf[7] = 45
    buf[8] = 48 + day // 10
    buf[9] = 48 + day % 10
    if n == 7:
        return PyUnicode_DecodeASCII(buf, 10, NULL)
    buf[10] = 84
    buf[11] = 48 + hh // 10
    buf[12] = 48 + hh % 10
    buf[13] = 58
    buf[14] = 48 + mm // 10
    buf[15] = 48 + mm % 10
    buf[16] = 58
    buf[17] = 48 + ss // 10
    buf[18] = 48 + ss % 10
    return PyUnicode_DecodeASCII(buf, 19, NULL)


cdef inline object _iso(str fm):
    """``(_FMC.get(fm) or fm_to_iso(fm))`` for a non-empty ``fm``: a miss of the memo in its plain canonic
    form is converted here (and memoised as fm_to_iso memoises it), any other form by fm_to_iso."""
    cdef PyObject* v = PyDict_GetItem(_FMC, fm)
    if v is not NULL and PyUnicode_GET_LENGTH(<object>v):
        return <object>v
    iso = _fm_plain(fm)
    if iso is None:
        return fm_to_iso(fm)
    if len(_FMC) >= _FM_LIMIT:
        _FMC.clear()
    _FMC[fm] = iso
    return iso


cdef inline object _odate(str fm):
    return _iso(fm) if PyUnicode_GET_LENGTH(fm) else None


cdef inline object _named(dict names, str number, object ptr, str text, object where):
    """``ptr.names[number].get(text)``, else ``ptr.name(number, text, where)``."""
    cdef PyObject* memo = PyDict_GetItem(names, number)
    cdef PyObject* v
    if memo is NULL:
        memo_o = names[number]  # KeyError as the Python decoders raise it
        v = PyDict_GetItem(memo_o, text)
    else:
        v = PyDict_GetItem(<dict><object>memo, text)
    if v is not NULL and <object>v is not None:
        return <object>v
    return ptr.name(number, text, where)


cdef inline object _key(object ptr, str number, object text, object where):
    """``ptr.key(number, text, where)``, answered from the resolver's own memo when it holds the key."""
    cdef object keys = getattr(ptr, "_keys", None)
    cdef PyObject* memo
    cdef PyObject* v
    if type(keys) is dict:
        memo = PyDict_GetItem(<dict>keys, number)
        if memo is not NULL and type(<object>memo) is dict:
            v = PyDict_GetItem(<dict><object>memo, text)
            if v is not NULL:
                return <object>v
    return ptr.key(number, text, where)


cdef str _wp(dict n, str prefix, str key0, str key1):
    """``globals._wp``: word-processing text under ``prefix`` (``key0``/``key1`` are prefix+"0"/"1,0")."""
    cdef PyObject* header = PyDict_GetItem(n, key0)
    if header is NULL:
        return _EMPTY
    count = _piece(<str><object>header, 3)
    if count == "1":
        return _node(n, key1)
    return "".join([_node(n, f"{prefix}{i},0") for i in range(1, PyNumber_Long(count or 0) + 1)])


def vital(ien, dict n not None, ptr, where):
    cdef Cuts c
    cdef str z = _node(n, "0")
    _cut(z, 8, &c)
    dfn = _int(_p(z, &c, 1))
    cdef str taken = _p(z, &c, 0)
    t = _iso(taken) if PyUnicode_GET_LENGTH(taken) else _EMPTY
    vtype = _named(ptr.names, "120.51", ptr, _p(z, &c, 2), where)
    return dfn, _VITAL.make((ien, t, vtype, _p(z, &c, 7)))


def visit(ien, dict n not None, ptr, where):
    cdef Cuts c
    cdef str z = _node(n, "0")
    _cut(z, 22, &c)
    dfn = _int(_p(z, &c, 4))
    cdef str when = _p(z, &c, 0)
    w = _iso(when) if PyUnicode_GET_LENGTH(when) else _EMPTY
    location = _named(ptr.names, "44", ptr, _p(z, &c, 21), where)
    return dfn, _VISIT.make((ien, w, location, _p(z, &c, 2), _p(z, &c, 6)))


def order(ien, dict n not None, ptr, where):
    cdef Cuts c
    cdef str z = _node(n, "0")
    _cut(z, 11, &c)
    dfn = _p(z, &c, 1).partition(";")[0]
    names = ptr.names
    group = _named(names, "100.98", ptr, _p(z, &c, 10), where)
    cdef PyObject* item = PyDict_GetItem(n, ".1,1,0")
    code = system = None
    if item is not NULL:
        code, system = _two(_key(ptr, "101.43", <object>item, where))
    status_name = _named(names, "100.01", ptr, _piece(_node(n, "3"), 3), where)
    signed = _piece(_node(n, "8,1,0"), 4)
    entered = _p(z, &c, 6)
    d = PyNumber_Long(dfn)
    text = _wp(n, "8,1,.1,", "8,1,.1,0", "8,1,.1,1,0")
    kind = _KIND_BY_GROUP.get(group, group)
    status = _ORDER_STATUS_WORD.get(status_name, status_name)
    return d, _ORDER.make((ien, text, kind, status, signed == _SIGNED, _odate(entered), code, system))


def problem(ien, dict n not None, ptr, where):
    cdef Cuts c
    cdef str z = _node(n, "0")
    _cut(z, 13, &c)
    code, system = _two(_key(ptr, "80", _p(z, &c, 0), where))
    cdef PyObject* r = PyDict_GetItem(n, "1")
    resolved = None
    if r is not NULL:
        resolved = _piece(<str><object>r, 7)
    dfn = _int(_p(z, &c, 1))
    description = _named(ptr.names, "9999999.27", ptr, _p(z, &c, 4), where)
    cdef PyObject* snomed = PyDict_GetItem(n, "800")
    return dfn, _PROBLEM.make((
        ien, code, system, description, None if snomed is NULL else <object>snomed, _p(z, &c, 11),
        _odate(_p(z, &c, 7)), _odate(_p(z, &c, 12)), _odate(resolved) if resolved is not None else None,
    ))


def allergy(ien, dict n not None, ptr, where):
    cdef Cuts c
    cdef str z = _node(n, "0")
    _cut(z, 20, &c)
    code = system = None
    cdef str reactant = _p(z, &c, 2)
    if PyUnicode_GET_LENGTH(reactant):
        ien_s = reactant.partition(";")[0]
        _name, code, system = _three(_key(ptr, "120.82", ien_s, where))
    count = _piece(_node(n, "10,0"), 4)
    reactions = [_piece(_node(n, f"10,{i},0"), 2) for i in range(1, PyNumber_Long(count) + 1)] if count else []
    cdef str orig = _p(z, &c, 3)
    d = _int(_p(z, &c, 0))
    return d, _ALLERGY.make((
        ien, _p(z, &c, 1), _p(z, &c, 19), _p(z, &c, 13), _p(z, &c, 15) == "1", _odate(orig), code, system,
        "entered-in-error" if _piece(_node(n, '"ER"'), 1) == "1" else "active", reactions,
    ))


def prescription(ien, dict n not None, ptr, where):
    cdef Cuts c
    cdef str z = _node(n, "0")
    _cut(z, 13, &c)
    cdef str drug = _p(z, &c, 5)
    if PyUnicode_GET_LENGTH(drug):
        name, rxnorm = _two(_key(ptr, "50", drug, where))
    else:
        name, rxnorm = "", None
    cdef PyObject* sta_p = PyDict_GetItem(n, '"STA"')
    sta = "0" if sta_p is NULL else <object>sta_p
    status = _RX_STATUS_NAME.get(sta)
    if status is None:
        raise InputError(f"{where}: prescription {ien} has status code {sta!r}, not one VistA defines; fix the export")
    d = _int(_p(z, &c, 1))
    cdef str qty = _p(z, &c, 6)
    q = PyFloat_FromString(qty) if PyUnicode_GET_LENGTH(qty) else 0.0
    days = _int(_p(z, &c, 7) or "0")
    refills = _int(_p(z, &c, 8) or "0")
    issued = _odate(_p(z, &c, 12))
    return d, _RX.make((
        ien, _p(z, &c, 0), name, rxnorm, q, days, refills, issued, status, _p(z, &c, 10),
        _wp(n, '"SIG1",', '"SIG1",0', '"SIG1",1,0'),
    ))


cdef inline object _date(str fm):
    """``globals._date``: "" -> None, else through the memo."""
    if not PyUnicode_GET_LENGTH(fm):
        return None
    cdef PyObject* v = PyDict_GetItem(_FMC, fm)
    if v is not NULL and <object>v is not None:
        return <object>v
    iso = _fm_plain(fm)
    if iso is None:
        return fm_to_iso(fm)
    if len(_FMC) >= _FM_LIMIT:
        _FMC.clear()
    _FMC[fm] = iso
    return iso


def decode_patient(station, dfn, dict n not None, ptr, where):
    """^DPT(DFN,...) nodes -> PatientRecord (clinical lists empty), as ``globals.decode_patient``."""
    cdef Cuts cz, ca, cm, cs
    cdef str z = _node(n, "0")
    cdef str a = _node(n, ".11")
    cdef PyObject* sc = PyDict_GetItem(n, ".3")
    cdef str mil = _node(n, ".32")
    cdef str mpi = _node(n, '"MPI"')
    _cut(z, 9, &cz)
    _cut(a, 6, &ca)
    _cut(mil, 7, &cm)
    cdef PyObject* race_p = PyDict_GetItem(n, ".02,1,0")
    cdef PyObject* eth_p = PyDict_GetItem(n, ".06,1,0")
    cdef str a4 = _p(a, &ca, 4)
    state = _key(ptr, "5", a4, where) if PyUnicode_GET_LENGTH(a4) else ""
    names = ptr.names
    dob = _date(_p(z, &cz, 2))
    marital = _named(names, "11", ptr, _p(z, &cz, 4), where)
    race = ptr.name("10", <object>race_p, where) if race_p is not NULL and <object>race_p else ""
    eth = ptr.name("10.2", <object>eth_p, where) if eth_p is not NULL and <object>eth_p else ""
    cdef str pct
    if sc is NULL:
        connected, percent = False, None
    else:
        _cut(<str><object>sc, 2, &cs)
        connected = _p(<str><object>sc, &cs, 0) == "Y"
        pct = _p(<str><object>sc, &cs, 1)
        percent = PyNumber_Long(pct) if PyUnicode_GET_LENGTH(pct) else None
    period = _named(names, "21", ptr, _p(mil, &cm, 2), where)
    branch = _named(names, "23", ptr, _p(mil, &cm, 4), where)
    return PatientRecord(
        station, dfn, _p(z, &cz, 0), _p(z, &cz, 1), dob, _p(z, &cz, 8), _piece(mpi, 1), _piece(mpi, 2),
        marital, race, eth,
        Address(_p(a, &ca, 0), _p(a, &ca, 1), _p(a, &ca, 2), _p(a, &ca, 3), state, _p(a, &ca, 5)),
        _piece(_node(n, ".13"), 1), connected, percent, period, branch,
        _date(_p(mil, &cm, 5)), _date(_p(mil, &cm, 6)), _date(_piece(_node(n, ".35"), 1)),
    )


def fm_plain(str fm not None):
    """``_fm_plain`` for the tests: the ISO text of a plain canonic FileMan date, else None."""
    return _fm_plain(fm)


def attach(list items not None, str attr, dict patients not None, station, str number):
    """``_StationReader.result_patients`` for the decoded entries of one file: append each item to its
    patient's list ``attr`` (entries in IEN order; a patient's come together, one lookup per run)."""
    prev = None
    cdef list target = None
    cdef PyObject* p
    for pair in items:
        dfn, item = <tuple>pair
        if target is None or dfn != prev:
            p = PyDict_GetItem(patients, dfn)
            if p is NULL or <object>p is None:
                raise InputError(
                    f"station {station}: file #{number} entry {item.ien} points to patient DFN {dfn}, "
                    "which is not in ^DPT; export the PATIENT file with the data"
                )
            target = getattr(<object>p, attr)
            prev = dfn
        target.append(item)


#: file number -> compiled decoder (the files not listed keep their Python decoder)
DECODERS = {
    "9000011": problem,
    "120.8": allergy,
    "120.5": vital,
    "52": prescription,
    "9000010": visit,
    "100": order,
}
