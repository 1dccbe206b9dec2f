# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled twin of the ZWR reading hot path of ``vistasim.vista.station`` (``_StationReader._entries_fast``).

``Grouper.scan`` walks the lines of a piece of a data file and groups entry nodes into per-entry dicts,
exactly as the ``entry_line_pattern`` findall loop of ``_entries_fast`` does: a line is taken here only
when it has one of the common shapes the pattern certainly classifies the same way (an entry node
``root IEN,subs)=value`` with canonic numbers and plain quoted strings, or a plain index node); any other
line is matched with the pattern itself and handled by the same rules, lines the pattern calls "other"
going back to Python (``other``), so errors, line numbers and counts stay those of the Python reader.
"""

from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.object cimport PyObject
from cpython.long cimport PyLong_FromLongLong


cdef extern from "Python.h":
    int PyUnicode_KIND(object s)
    void* PyUnicode_DATA(object s)
    Py_UCS4 PyUnicode_READ(int kind, void* data, Py_ssize_t i) nogil
    Py_ssize_t PyUnicode_FindChar(object s, Py_UCS4 ch, Py_ssize_t start, Py_ssize_t end, int direction) except -2
    str PyUnicode_Substring(object s, Py_ssize_t start, Py_ssize_t end)


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
    cdef object pattern
    cdef bint patient_file
    cdef dict name_index
    cdef object b_xtail
    cdef object other

    def __init__(self, str root, str fnum, own, pattern, dict name_index, b_xtail, other):
        self.root = root
        self.rlen = len(root)
        self.fnum = fnum
        self.own = own
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

    cdef inline bint _finish(self):
        """Hand the current entry on: to ``own``, or to ``out`` (True: the caller must yield it)."""
        if self.own is not None and self.cur_s is not None:
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

    def scan(self, str text, Py_ssize_t pos, Py_ssize_t stop):
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
                        PyDict_SetItem(self.cur, PyUnicode_Substring(text, t0, t1), PyUnicode_Substring(text, v0, v1))
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
