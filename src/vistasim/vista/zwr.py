"""ZWR global export format: read and write ``^G(subs)=value`` lines, and M collation order.

A ZWR file (OSEHRA ``ZGO``, GT.M ``mupip extract -format=zwr``, ``%GO``) has two header lines, a
title and a date line ending in ``ZWR``, then one node per line. Strings are quoted with inner
quotes doubled; canonic numbers are bare; control characters are written ``$C(n[,n...])`` and
joined to the quoted parts with ``_`` (``"abc"_$C(9)_"def"``). The same rules apply to subscripts.

Representation chosen here (M has no types: ``"1"`` and ``1`` are the same subscript):

- a node is a plain tuple ``(global_name, subscripts, value)``; ``global_name`` has no caret
  (``"DPT"``), ``value`` is always a ``str`` (a bare number comes back as its canonic text);
- a subscript is an ``int`` when it is a canonic integer, otherwise a ``str``: a canonic non-integer
  number stays exact as its canonic text (``"3060726.170105"``) and still collates as a number.

Canonic number: M's own form (no leading zeros, no trailing fractional zeros, no ``+``, ``.5`` not
``0.5``, ``-0`` is not canonic) with at most 18 significant digits (GT.M's precision; longer digit
strings are strings). Files are read and written as UTF-8 with ``surrogateescape``, so any byte
survives a round trip.

Collation (``subscript_key``/``node_key``): numbers before strings, numbers by value, strings by
their bytes, parents before children. The streaming writer requires sorted input (check it with
``check_order=True``); ``write_zwr(..., sort=True)`` sorts in memory for small files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO

from vistasim.errors import OutputError, ZWRFormatError

__all__ = [
    "Subscript",
    "Node",
    "is_canonic",
    "format_string",
    "format_value",
    "format_subscript",
    "format_node",
    "parse_line",
    "subscript_key",
    "node_key",
    "zwr_date_line",
    "ZWRReader",
    "read_zwr",
    "entry_line_pattern",
    "ZWRWriter",
    "write_zwr",
]

Subscript = int | str
Node = tuple[str, tuple[Subscript, ...], str]

_CANONIC = re.compile(r"-?(?:[1-9][0-9]*(?:\.[0-9]*[1-9])?|\.[0-9]*[1-9])|0")
_NUM_START = frozenset("-.0123456789")
_GLOBAL_NAME = re.compile(r"%?[A-Za-z][A-Za-z0-9]*")
_MAX_DIGITS = 18
_ENC = "utf-8"
_ERRS = "surrogateescape"
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


# --------------------------------------------------------------------------- canonic numbers, formatting


def is_canonic(s: str) -> bool:
    """True when ``s`` is an M canonic number (and so is written bare and collates as a number)."""
    if not s or s[0] not in _NUM_START or _CANONIC.fullmatch(s) is None:
        return False
    if len(s) <= _MAX_DIGITS:
        return True
    digits = s.replace("-", "").replace(".", "").lstrip("0")
    return len(digits) <= _MAX_DIGITS


def _is_control(c: str) -> bool:
    return c < " " or c == "\x7f"


def format_string(s: str) -> str:
    """A string as a ZWR literal: quoted, quotes doubled, control characters as ``$C(...)``."""
    if s.isprintable():
        return '"' + s.replace('"', '""') + '"' if '"' in s else '"' + s + '"'
    # isprintable() is also False for non-ASCII separators; only C0 controls and DEL need $C.
    if not any(_is_control(c) for c in s):
        return '"' + s.replace('"', '""') + '"'
    parts: list[str] = []
    run: list[str] = []
    codes: list[str] = []
    for c in s:
        if _is_control(c):
            if run:
                parts.append('"' + "".join(run).replace('"', '""') + '"')
                run = []
            codes.append(str(ord(c)))
        else:
            if codes:
                parts.append("$C(" + ",".join(codes) + ")")
                codes = []
            run.append(c)
    if run:
        parts.append('"' + "".join(run).replace('"', '""') + '"')
    if codes:
        parts.append("$C(" + ",".join(codes) + ")")
    return "_".join(parts)


def format_value(v: str) -> str:
    """A node value as ZWR writes it: bare when canonic, else a string literal."""
    if v and v[0] in _NUM_START and is_canonic(v):
        return v
    return format_string(v)


def format_subscript(s: Subscript) -> str:
    """A subscript as ZWR writes it (ints and canonic strings bare, other strings quoted)."""
    if type(s) is int:
        return str(s) if -(10**_MAX_DIGITS) < s < 10**_MAX_DIGITS else '"' + str(s) + '"'
    if isinstance(s, str):
        if s == "":
            raise ValueError("an M subscript cannot be the empty string")
        return format_value(s)
    raise TypeError(f"subscript {s!r} must be int or str")


def format_node(gname: str, subs: tuple[Subscript, ...], value: str) -> str:
    """One ZWR line (without its newline)."""
    if subs:
        return f"^{gname}({','.join(format_subscript(s) for s in subs)})={format_value(value)}"
    return f"^{gname}={format_value(value)}"


# --------------------------------------------------------------------------- collation


def subscript_key(s: Subscript) -> tuple:
    """M collation key of one subscript: numbers (by value) before strings (by bytes)."""
    if isinstance(s, int):
        if -(10**_MAX_DIGITS) < s < 10**_MAX_DIGITS:
            return (0, s)
        return (1, str(s).encode(_ENC))
    if is_canonic(s):
        return (0, int(s) if "." not in s else Decimal(s))
    return (1, s.encode(_ENC, _ERRS))


def node_key(subs: tuple[Subscript, ...]) -> tuple:
    """M collation key of a subscript tuple (parents sort before their children)."""
    return tuple(subscript_key(s) for s in subs)


# --------------------------------------------------------------------------- parsing


class _Bad(ValueError):
    """Internal: a line could not be parsed (the reader adds path and line number)."""


_SUB_CACHE: dict[str, Subscript] = {}  # bare subscript token -> value: tokens repeat on every line


def _number_sub(tok: str) -> Subscript:
    sub = _SUB_CACHE.get(tok)
    if sub is not None:
        return sub
    sub = _number_sub_uncached(tok)
    if len(_SUB_CACHE) >= 100_000:
        _SUB_CACHE.clear()
    _SUB_CACHE[tok] = sub
    return sub


# Quoted-or-numeric subscript lists without $C(...): one regex instead of the general scanner.
_SIMPLE_SUBS = re.compile(r'\(((?:"(?:[^"]|"")*"|[-.0-9]+)(?:,(?:"(?:[^"]|"")*"|[-.0-9]+))*)\)=')
_SUB_TOKEN = re.compile(r'"((?:[^"]|"")*)"|([-.0-9]+)')


def _number_sub_uncached(tok: str) -> Subscript:
    if tok.isdigit() and tok.isascii() and (tok[0] != "0" or tok == "0") and len(tok) <= _MAX_DIGITS:
        return int(tok)
    if not is_canonic(tok):
        raise _Bad(f"subscript {tok!r} is neither a canonic number nor a quoted string")
    return tok if "." in tok else int(tok)


def _string_sub(s: str) -> Subscript:
    # A quoted canonic integer is the same M subscript as the bare number: keep one representation.
    if s and s[0] in _NUM_START and is_canonic(s) and "." not in s:
        return int(s)
    return s


def _char_fn(line: str, pos: int) -> tuple[str, int]:
    """Parse ``$C(n,...)``/``$CHAR``/``$ZCH(...)`` at ``pos``; return (text, position after ``)``)."""
    open_ = line.find("(", pos)
    close = line.find(")", pos)
    if open_ == -1 or close == -1 or close < open_:
        raise _Bad("unterminated $C(...)")
    fn = line[pos + 1 : open_].upper()
    if fn not in ("C", "CHAR", "ZCH", "ZCHAR"):
        raise _Bad(f"unknown function ${fn} (only $C/$CHAR/$ZCH are allowed in ZWR)")
    out = []
    for code in line[open_ + 1 : close].split(","):
        if not code.isdigit() or not code.isascii():
            raise _Bad(f"bad character code {code!r} in ${fn}(...)")
        n = int(code)
        # $ZCH(n) is a raw byte: keep bytes >127 as surrogate escapes so they are written back as bytes.
        out.append(chr(0xDC00 + n) if fn.startswith("Z") and 128 <= n <= 255 else chr(n))
    return "".join(out), close + 1


def _quoted(line: str, pos: int) -> tuple[str, int]:
    """Parse a quoted string starting at ``line[pos] == '"'``; return (text, position after it)."""
    j = pos + 1
    while True:
        j = line.find('"', j)
        if j == -1:
            raise _Bad("unterminated string (missing closing quote)")
        if line.startswith('"', j + 1):
            j += 2
            continue
        text = line[pos + 1 : j]
        return (text.replace('""', '"') if '""' in text else text), j + 1


def _expr(line: str, pos: int, stops: str) -> tuple[str, bool, int]:
    """Parse a ZWR expression (strings, $C(...), numbers joined by ``_``) up to a char in ``stops``.

    Returns (text, is_bare_number, end position).
    """
    parts: list[str] = []
    bare = False
    n = len(line)
    while True:
        if pos >= n:
            raise _Bad("line ends inside an expression")
        c = line[pos]
        if c == '"':
            text, pos = _quoted(line, pos)
        elif c == "$":
            text, pos = _char_fn(line, pos)
        else:
            end = pos
            while end < n and line[end] not in stops and line[end] != "_":
                end += 1
            text = line[pos:end]
            if not is_canonic(text):
                raise _Bad(f"{text!r} is neither a canonic number nor a quoted string")
            bare = not parts
            pos = end
        parts.append(text)
        if pos < n and line[pos] == "_":
            bare = False
            pos += 1
            continue
        if pos < n and line[pos] not in stops:
            raise _Bad(f"unexpected {line[pos]!r} at column {pos + 1}")
        return "".join(parts), bare and len(parts) == 1, pos


def _parse_value(text: str) -> str:
    """The text after ``=`` -> the value (fast paths for a plain quoted string and a bare number)."""
    if text[:1] == '"' and text[-1:] == '"' and len(text) >= 2:
        inner = text[1:-1]
        if '"' not in inner:
            return inner
        if '"' not in inner.replace('""', ""):
            return inner.replace('""', '"')
    elif text and text[0] in _NUM_START and is_canonic(text):
        return text
    if not text:
        raise _Bad("no value after '='")
    value, _bare, end = _expr(text, 0, "")
    if end != len(text):
        raise _Bad("trailing characters after the value")
    return value


# The common line, whole: ^G(subscripts)=value where the subscripts are bare numbers or quoted strings
# without inner quotes and the value is a plain quoted string or a bare number. Anything else (and
# anything this path doubts) goes through the general parser, which also words the errors.
_FAST_LINE = re.compile(
    r'\^(%?[A-Za-z][A-Za-z0-9]*)\(((?:[-.0-9]+|"[^"]+")(?:,(?:[-.0-9]+|"[^"]+"))*)\)=(?:"([^"]*)"|([-.0-9]+))(?:\r?\n)?'
)
_FAST_SUB = re.compile(r'"([^"]+)"|([-.0-9]+)')


def parse_line(line: str) -> Node:
    """Parse one ZWR node line (with or without its newline) -> (global, subscripts, value).

    Raises ValueError (the reader turns it into ZWRFormatError with file and line).
    """
    m = _FAST_LINE.fullmatch(line)
    if m is not None:
        gname, seg, quoted, bare = m.groups()
        cache = _SUB_CACHE
        try:
            if '"' not in seg:
                subs = tuple([cache[t] if t in cache else _number_sub(t) for t in seg.split(",")])
            else:
                subs = tuple([_string_sub(q) if q else (cache[n] if n in cache else _number_sub(n))
                              for q, n in _FAST_SUB.findall(seg)])
        except _Bad:
            return _parse_line(line)
        if quoted is not None:
            return gname, subs, quoted
        if is_canonic(bare):
            return gname, subs, bare
    return _parse_line(line)


def _parse_line(line: str) -> Node:
    if line.endswith("\n"):
        line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
    if not line.startswith("^"):
        raise _Bad("a node line must start with '^'")
    p = line.find("(")
    e = line.find("=")
    if e == -1:
        raise _Bad("no '=' (truncated or corrupt line)")
    if p == -1 or e < p:
        gname = line[1:e]
        if _GLOBAL_NAME.fullmatch(gname) is None:
            raise _Bad(f"bad global name {gname!r}")
        return gname, (), _parse_value(line[e + 1 :])
    gname = line[1:p]
    if _GLOBAL_NAME.fullmatch(gname) is None:
        raise _Bad(f"bad global name {gname!r}")
    k = line.find(")", p)
    if k == -1:
        raise _Bad("no ')' closing the subscripts (truncated or corrupt line)")
    seg = line[p + 1 : k]
    subs: tuple[Subscript, ...]
    if '"' not in seg and "$" not in seg:
        # Fast path: only numeric subscripts, so the first ')' closes the list.
        if not seg:
            raise _Bad("empty subscript list '()'")
        cache = _SUB_CACHE
        subs = tuple([cache[t] if t in cache else _number_sub(t) for t in seg.split(",")])
        end = k + 1
    elif "$" not in line[p:] and (m := _SIMPLE_SUBS.match(line, p)) is not None:
        out_: list[Subscript] = []
        for q, num in _SUB_TOKEN.findall(m.group(1)):
            if num:
                out_.append(_number_sub(num))
            elif q:
                out_.append(_string_sub(q.replace('""', '"') if '""' in q else q))
            else:
                raise _Bad("empty string subscript")
        subs = tuple(out_)
        end = m.end() - 1
    else:
        out: list[Subscript] = []
        pos = p + 1
        while True:
            text, bare, pos = _expr(line, pos, ",)")
            if text == "":
                raise _Bad("empty string subscript")
            out.append(_number_sub(text) if bare else _string_sub(text))
            if pos >= len(line):
                raise _Bad("no ')' closing the subscripts (truncated or corrupt line)")
            if line[pos] == ")":
                end = pos + 1
                break
            pos += 1  # the comma
        subs = tuple(out)
    if line[end : end + 1] != "=":
        raise _Bad("expected '=' after the subscripts")
    return gname, subs, _parse_value(line[end + 1 :])


# --------------------------------------------------------------------------- reading


class ZWRReader:
    """Iterate the nodes of one ZWR file. Use as a context manager or just iterate once.

    ``header`` is the (title, date line) pair, or None for a bare ``ZWRITE`` dump without header.
    With ``skip_bad_lines`` bad lines are skipped and counted in ``bad_lines`` (their line numbers in
    ``bad_line_numbers``, first 100) instead of raising ZWRFormatError. A last line without its
    newline is a truncated file.
    """

    def __init__(self, path: str | Path, skip_bad_lines: bool = False) -> None:
        self.path = str(path)
        self.skip_bad_lines = skip_bad_lines
        self.bad_lines = 0
        self.bad_line_numbers: list[int] = []
        self.nodes_read = 0
        try:
            self._f: IO[str] = open(self.path, encoding=_ENC, errors=_ERRS)
        except OSError as exc:
            from vistasim.errors import InputError

            raise InputError(f"{self.path}: cannot open ZWR file ({exc.strerror}); check the path") from None
        self._first_line_no = 1
        self._pending: str | None = None
        self.header: tuple[str, str] | None = self._read_header()

    def _read_header(self) -> tuple[str, str] | None:
        first = self._f.readline()
        if first == "":
            self._f.close()
            raise ZWRFormatError(self.path, 1, "empty file: a ZWR export starts with two header lines")
        if first.startswith("^"):
            self._pending = first  # a bare dump: no header
            return None
        second = self._f.readline()
        if not second.endswith("\n") or not second.rstrip().upper().endswith("ZWR"):
            self._f.close()
            raise ZWRFormatError(self.path, 2, "the second header line must be a date line ending in 'ZWR'")
        self._first_line_no = 3
        return first.rstrip("\r\n"), second.rstrip("\r\n")

    def _bad(self, line_no: int, reason: str) -> None:
        if not self.skip_bad_lines:
            self.close()
            raise ZWRFormatError(self.path, line_no, reason)
        self.bad_lines += 1
        if len(self.bad_line_numbers) < 100:
            self.bad_line_numbers.append(line_no)

    def __iter__(self) -> Iterator[Node]:
        line_no = self._first_line_no - 1
        f = self._f
        lines: Iterable[str] = f if self._pending is None else _chain_first(self._pending, f)
        parse = parse_line
        try:
            for line in lines:
                line_no += 1
                if line[-1:] != "\n":
                    self._bad(line_no, "truncated file: the last line has no end-of-line")
                    continue
                if line == "\n" or line == "\r\n":
                    continue  # blank lines carry no node (some exporters end with one)
                try:
                    node = parse(line)
                except _Bad as exc:
                    self._bad(line_no, str(exc))
                    continue
                self.nodes_read += 1
                yield node
        finally:
            self.close()

    def chunks(self, size: int = 1 << 22) -> Iterator[tuple[int, str]]:
        """The node lines as text, in pieces of about ``size`` characters: (number of the piece's
        first line, whole lines each ending in a newline).

        For readers that match many lines at once (``entry_line_pattern``); the caller parses the
        lines, counts them and reports bad ones through ``bad``. A last line without its newline
        (a truncated file) is reported here, after every piece before it, as iteration does.
        ``nodes_read`` is not counted.
        """
        f = self._f
        line_no = self._first_line_no
        carry = self._pending or ""
        self._pending = None
        try:
            while True:
                block = f.read(size)
                if not block:
                    break
                text = carry + block if carry else block
                cut = text.rfind("\n") + 1
                carry = text[cut:]
                if cut:
                    piece = text[:cut] if carry else text
                    yield line_no, piece
                    line_no += piece.count("\n")
            if carry:
                self._bad(line_no, "truncated file: the last line has no end-of-line")
        finally:
            self.close()

    def bad(self, line_no: int, reason: str) -> None:
        """Report a bad line found by a ``chunks`` reader: raise ZWRFormatError, or count it when skipping."""
        self._bad(line_no, reason)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> ZWRReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _chain_first(first: str, rest: Iterable[str]) -> Iterator[str]:
    yield first
    yield from rest


# Pieces of the line patterns of ``entry_line_pattern``. Only lines whose meaning is certain match:
# canonic bare numbers of at most 18 digits (so they are canonic by ``is_canonic``), quoted strings
# without control characters; a quoted data subscript must start with a letter (so it is not a number
# and its text is already the one ``format_subscript`` gives). Everything else is left to parse_line.
_P_TEXT = r'[^"\x00-\x1f\x7f]'
_P_NUM = r"(?:0|-?(?=[.0-9]{1,18}[,)])(?:[1-9][0-9]*(?:\.[0-9]*[1-9])?|\.[0-9]*[1-9]))"
# Entry subscripts and bare values: canonic numbers of at most 18 digits spelt out without a lookahead
# (faster on the hot path; a longer canonic number simply goes to parse_line).
_P_NUM18 = r"(?:0|-?[1-9][0-9]{0,17}|-?[1-9][0-9]{0,8}\.[0-9]{0,8}[1-9]|-?\.[0-9]{0,16}[1-9])"
_P_DATA_SUB = rf'(?:{_P_NUM18}|"[A-Za-z]{_P_TEXT}*")'
_P_ANY_SUB = rf'(?:{_P_NUM}|"(?:{_P_TEXT}|"")+")'


def entry_line_pattern(root: str) -> re.Pattern[str]:
    """A multi-line pattern with one match per line of a file whose entries live under ``root``
    (``^GMR(120.5,``, ``^DPT(``): ``findall`` on whole lines gives, per line, the 7-tuple

    (IEN, subscripts after the IEN, quoted value, bare value, index name, index subscripts, other).

    - an entry node ``root IEN,subs)=value``: IEN (a positive integer of at most 18 digits), the
      subscripts after it as ZWR text, already canonic (``format_subscript`` of each, joined by
      commas, e.g. ``.02,1,0`` or ``"SIG1",2,0``), and the value: quoted (no quotes or control
      characters inside) or a canonic bare number; the other fields are empty;
    - an index node ``root "NAME",subs)=""``: index name and its subscripts (text as in the file);
    - any other line: the whole line in the last field (empty for a blank line), for ``parse_line``.
    """
    r = re.escape(root)
    return re.compile(
        rf'^(?:{r}([1-9][0-9]{{0,17}}),({_P_DATA_SUB}(?:,{_P_DATA_SUB})*)\)=(?:"({_P_TEXT}*)"|({_P_NUM18}))'
        rf'|{r}"([A-Za-z][A-Za-z0-9]*)",({_P_ANY_SUB}(?:,{_P_ANY_SUB})*)\)=""'
        rf"|(.*))$",
        re.MULTILINE,
    )


def read_zwr(path: str | Path, skip_bad_lines: bool = False) -> tuple[tuple[str, str] | None, list[Node]]:
    """Read a whole (small) ZWR file: (header, nodes). Large files: iterate a ``ZWRReader``."""
    reader = ZWRReader(path, skip_bad_lines=skip_bad_lines)
    return reader.header, list(reader)


# --------------------------------------------------------------------------- writing


def zwr_date_line(when: datetime) -> str:
    """The second header line in OSEHRA's form: ``07-FEB-2019 14:35:26 ZWR``."""
    return f"{when.day:02d}-{_MONTHS[when.month - 1]}-{when.year} {when:%H:%M:%S} ZWR"


class ZWRWriter:
    """Stream nodes (already in M collation order) to a ZWR file, atomically.

    Lines go to ``<path>.tmp`` and are renamed onto ``path`` at ``close()``: the file is complete or
    absent. ``abort()`` (or leaving a ``with`` block by an exception) removes the temporary file.
    ``check_order=True`` raises ValueError on a node out of collation order (costs a key per node).
    """

    def __init__(
        self,
        path: str | Path,
        title: str,
        date_line: str,
        check_order: bool = False,
    ) -> None:
        self.path = Path(path)
        self.tmp_path = self.path.with_name(self.path.name + ".tmp")
        self.check_order = check_order
        self.lines_written = 0
        self._last_key: tuple | None = None
        try:
            self._f: IO[str] = open(self.tmp_path, "w", encoding=_ENC, errors=_ERRS, newline="\n")
        except OSError as exc:
            raise OutputError(f"{self.tmp_path}: cannot write ({exc.strerror}); check the output folder") from None
        self._f.write(f"{title}\n{date_line}\n")

    def write(self, gname: str, subs: tuple[Subscript, ...], value: str) -> None:
        if self.check_order:
            key = (gname, node_key(subs))
            if self._last_key is not None and key <= self._last_key:
                raise ValueError(f"node ^{gname}{subs!r} is out of M collation order (or repeated)")
            self._last_key = key
        self._f.write(format_node(gname, subs, value) + "\n")
        self.lines_written += 1

    def write_lines(self, text: str, count: int = 0) -> None:
        """Append preformatted lines (each ending in newline); ``count`` keeps ``lines_written`` right."""
        self._f.write(text)
        self.lines_written += count

    def close(self) -> None:
        if self._f.closed:
            return
        self._f.close()
        os.replace(self.tmp_path, self.path)

    def abort(self) -> None:
        if not self._f.closed:
            self._f.close()
        try:
            os.unlink(self.tmp_path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> ZWRWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_zwr(
    path: str | Path,
    nodes: Iterable[Node],
    header: tuple[str, str],
    sort: bool = False,
) -> int:
    """Write ``nodes`` with the (title, date line) header; ``sort=True`` sorts them in memory first.

    Returns the number of node lines written.
    """
    if sort:
        nodes = sorted(nodes, key=lambda n: (n[0], node_key(n[1])))
    with ZWRWriter(path, header[0], header[1]) as w:
        for gname, subs, value in nodes:
            w.write(gname, subs, value)
        return w.lines_written
