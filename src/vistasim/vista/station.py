"""A VistA station on disk: ``OUT/<station>/<file number>+<FILE NAME>.zwr``, written and read back.

``StationWriter`` streams patients (in increasing DFN order, normally) into one ZWR file per
FileMan file; at ``close()`` it writes the header nodes, the indexes and the pointer files, each
file first under a temporary name then renamed, so a file is complete or absent. Memory stays
bounded: entry lines go straight to disk when their IENs arrive in increasing order (the normal
case), and only the indexes keyed by text (``^DPT("B")``, ``^DPT("SSN")``, ``^PSRX("B")``) and any
out-of-order entries are held, sorted and spilled to disk in runs of ``spill_limit`` then merged.

``read_source`` reads a ``.zwr`` file, a station folder, or a folder of station folders, resolves
every pointer and returns the PatientRecords in DFN order with counts of what it read and skipped.
"""

from __future__ import annotations

import heapq
import operator
import os
import pickle
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from vistasim import _accel
from vistasim.errors import ConfigError, InputError, OutputError
from vistasim.model import PatientRecord
from vistasim.vista import layout as L
from vistasim.vista.block import encode_block
from vistasim.vista.fileman import fm_to_iso
from vistasim.vista.globals import DECODERS, PatientEncoder, PointerResolver, decode_patient
from vistasim.vista.zwr import (
    Node,
    Subscript,
    ZWRReader,
    _Bad,
    entry_line_pattern,
    format_subscript,
    parse_line,
    subscript_key,
    zwr_date_line,
)

__all__ = ["StationWriter", "read_source", "iter_source", "write_stations", "StationWritten", "read_globals", "SourceReadResult", "is_station", "DEFAULT_EXPORT_TIME"]

STATION_RE = re.compile(r"\d{3}[A-Z0-9]{0,3}")
DEFAULT_EXPORT_TIME = datetime(2026, 1, 1, 0, 0, 0)  # fixed, so identical inputs give identical bytes


def is_station(name: str) -> bool:
    """True for a VA station number: 3 digits, optionally a suffix such as ``A4`` (``528A6``)."""
    return STATION_RE.fullmatch(name) is not None


# --------------------------------------------------------------------------- sorted sections


class _Section:
    """Lines of one part of a file (the entries, or one index), kept in collation order on disk.

    Blocks whose key exceeds the last one are appended to a text run; others are buffered, sorted
    and spilled as pickled runs, and everything is merged when read back. ``line_key`` recovers a
    line's key from the text run when a merge is needed.
    """

    def __init__(self, tmpdir: Path, tag: str, line_key: Callable[[str], Any], spill_limit: int) -> None:
        self.tmpdir = tmpdir
        self.tag = tag
        self.line_key = line_key
        self.spill_limit = spill_limit
        self.path = tmpdir / f"{tag}.main"
        self._f: IO[str] | None = None
        self.last: Any = None
        self.buffer: list[tuple[Any, str]] = []
        self.runs: list[Path] = []
        self.lines = 0
        self._pending: list[str] = []
        self._pending_n = 0

    def add(self, key: Any, text: str, nlines: int, what: str) -> None:
        self.lines += nlines
        last = self.last
        if last is None or key > last:
            self._out(text)
            self.last = key
        elif key == last:
            raise InputError(f"{what} is used twice in this station; IENs must be unique per file")
        else:
            self.buffer.append((key, text))
            if len(self.buffer) >= self.spill_limit:
                self._spill()

    def add_many(self, keys: list[Any], texts: list[str]) -> None:
        """One line per key: one run when the keys ascend past everything so far, else buffered (repeats
        of a key are caught when the buffer is merged at ``write_to``)."""
        if not keys:
            return
        self.lines += len(keys)
        last = self.last
        if (last is None or keys[0] > last) and all(map(operator.lt, keys, keys[1:])):
            self._out("".join(texts))
            self.last = keys[-1]
            return
        self.buffer.extend(zip(keys, texts))
        if len(self.buffer) >= self.spill_limit:
            self._spill()

    def append_run(self, first: Any, last: Any, text: str, nlines: int) -> bool:
        """Append lines whose keys run from ``first`` to ``last`` (ascending) when they all come after
        everything so far; False (nothing done) otherwise, and the caller adds them one by one."""
        prev = self.last
        if prev is not None and not first > prev:
            return False
        self._out(text)
        self.last = last
        self.lines += nlines
        return True

    def _out(self, text: str) -> None:
        # Lines are gathered and written in large pieces: one write call per ~256 K characters, not per entry.
        pend = self._pending
        pend.append(text)
        self._pending_n += len(text)
        if self._pending_n >= 262_144:  # characters: whole blocks come in one piece
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        f = self._f
        if f is None:
            f = self._f = open(self.path, "w", encoding="utf-8", errors="surrogateescape", newline="\n")
        f.write("".join(self._pending))
        self._pending = []
        self._pending_n = 0

    def _spill(self) -> None:
        self.buffer.sort(key=lambda kt: kt[0])
        path = self.tmpdir / f"{self.tag}.run{len(self.runs)}"
        with open(path, "wb") as f:
            for i in range(0, len(self.buffer), 10_000):
                pickle.dump(self.buffer[i : i + 10_000], f, protocol=pickle.HIGHEST_PROTOCOL)
        self.runs.append(path)
        self.buffer = []

    @staticmethod
    def _read_run(path: Path, src: int) -> Iterator[tuple[Any, int, str]]:
        with open(path, "rb") as f:
            while True:
                try:
                    chunk = pickle.load(f)
                except EOFError:
                    return
                for key, text in chunk:
                    yield key, src, text

    def _main_items(self) -> Iterator[tuple[Any, int, str]]:
        with open(self.path, encoding="utf-8", errors="surrogateescape", newline="\n") as f:
            for line in f:
                yield self.line_key(line), 0, line

    def write_to(self, out: IO[str], what: str) -> None:
        self._flush()
        if self._f is not None:
            self._f.close()
        if not self.buffer and not self.runs:
            if self._f is not None:
                # The in-order run is already final text: copy its bytes (no decode/encode round).
                out.flush()
                with open(self.path, "rb") as f:
                    shutil.copyfileobj(f, out.buffer, 1 << 20)  # type: ignore[attr-defined]
            return
        self.buffer.sort(key=lambda kt: kt[0])
        sources: list[Iterable[tuple[Any, int, str]]] = []
        if self._f is not None:
            sources.append(self._main_items())
        sources += [self._read_run(p, i + 1) for i, p in enumerate(self.runs)]
        n = len(sources) + 1
        sources.append((k, n, t) for k, t in self.buffer)
        prev_key: Any = None
        prev_src = -1
        for key, src, text in heapq.merge(*sources, key=lambda item: item[0]):
            # Lines of one entry share a key only inside the in-order run; anywhere else it is a repeat.
            if key == prev_key and not (src == 0 and prev_src == 0):
                raise InputError(f"{what}: an IEN is used twice in this station; IENs must be unique per file")
            out.write(text)
            prev_key, prev_src = key, src

    def cleanup(self) -> None:
        self._pending = []
        if self._f is not None and not self._f.closed:
            self._f.close()
        for p in [self.path, *self.runs]:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass


class _DataFileSink:
    """One clinical/patient FileMan file being written: its entries and its indexes."""

    def __init__(self, spec: L.DataFile, tmpdir: Path, spill_limit: int) -> None:
        self.spec = spec
        self.root = spec.root
        n = len(spec.prefix)
        self.count = 0
        self.last_ien = 0
        self.entries = _Section(tmpdir, f"{spec.number}.data", lambda line: parse_line(line)[1][n], spill_limit)
        self._xref_key = lambda line: _xref_line_key(line, n)
        self.xrefs: dict[str, _Section] = {}
        self.tmpdir = tmpdir
        self.spill_limit = spill_limit
        self._xref_roots: dict[str, str] = {}

    def add_patient(self, blocks: list[tuple[int, str, int]], xname: str | None, dfn: int) -> None:
        """One patient's entries of this file (and their by-patient index lines, under ``xname``)."""
        if len(blocks) == 1:
            ien, text, nlines = blocks[0]
            iens = None
            first = last = ien
        else:
            iens = [b[0] for b in blocks]
            first, last = iens[0], iens[-1]
            if not all(map(operator.lt, iens, iens[1:])):
                first = None  # not ascending: the general path sorts them
        if first is None or not self.entries.append_run(first, last, "".join([b[1] for b in blocks]) if iens else text,
                                                        sum([b[2] for b in blocks]) if iens else nlines):
            self.add_blocks(blocks)
            if xname is not None:
                self.add_xrefs([(xname, dfn, b[0]) for b in blocks])
            return
        self.count += len(blocks)
        self.last_ien = last  # the in-order run's last key is the highest IEN so far
        if xname is None:
            return
        sec = self.xrefs.get(xname)
        if sec is None:
            sec = self._new_xref(xname)
        dkey = subscript_key(dfn)
        root = f'{self._xref_roots[xname]}{dfn},'
        if iens is None:
            text = f'{root}{first})=""\n'
            n = 1
        else:
            text = "".join([f'{root}{i})=""\n' for i in iens])
            n = len(iens)
        if not sec.append_run((dkey, first), (dkey, last), text, n):
            self.add_xrefs([(xname, dfn, b[0]) for b in blocks])

    def add_part(self, iens: list[int], texts: list[str], nlines: int, xname: str | None, dfns: list[int]) -> None:
        """A block's entries of this file (patients in increasing DFN order, each entry's lines in ``texts``).

        Appended as one run when the IENs ascend past everything so far (the normal case); otherwise
        entry by entry, exactly as ``add_patient`` would.
        """
        if not iens:
            return
        ascending = len(iens) == 1 or all(map(operator.lt, iens, iens[1:]))
        if not ascending or not self.entries.append_run(iens[0], iens[-1], "".join(texts), nlines):
            self.add_blocks([(i, t, t.count("\n")) for i, t in zip(iens, texts)])
            if xname is not None:
                self.add_xrefs([(xname, d, i) for d, i in zip(dfns, iens)])
            return
        self.count += len(iens)
        self.last_ien = iens[-1]
        if xname is None:
            return
        sec = self.xrefs.get(xname)
        if sec is None:
            sec = self._new_xref(xname)
        root = self._xref_roots[xname]
        # (DFN, IEN) ascends: DFNs do not decrease over the block and IENs ascend within it
        if not sec.append_run((subscript_key(dfns[0]), iens[0]), (subscript_key(dfns[-1]), iens[-1]),
                              "".join([f'{root}{d},{i})=""\n' for d, i in zip(dfns, iens)]), len(iens)):
            self.add_xrefs([(xname, d, i) for d, i in zip(dfns, iens)])

    def _new_xref(self, xname: str) -> _Section:
        sec = self.xrefs[xname] = _Section(
            self.tmpdir, f"{self.spec.number}.x{len(self.xrefs)}", self._xref_key, self.spill_limit
        )
        self._xref_roots[xname] = f'{self.root}"{xname}",'
        return sec

    def add_blocks(self, blocks: list[tuple[int, str, int]]) -> None:
        add = self.entries.add
        for ien, text, nlines in blocks:
            add(ien, text, nlines, f"{self.spec.name} (#{self.spec.number}) IEN {ien}")
            if ien > self.last_ien:
                self.last_ien = ien
        self.count += len(blocks)

    def add_xrefs(self, entries: list[tuple[str, Subscript, int]]) -> None:
        for xname, value, ien in entries:
            sec = self.xrefs.get(xname)
            if sec is None:
                sec = self._new_xref(xname)
            key = (subscript_key(value), ien)
            sec.add(key, f'{self._xref_roots[xname]}{format_subscript(value)},{ien})=""\n', 1,
                    f"index {xname} of {self.spec.name}")

    def add_xref_run(self, xname: str, values: list[Subscript], iens: list[int]) -> None:
        """Index entries ``(value, IEN)`` of one index in bulk (same lines as ``add_xrefs`` one by one)."""
        sec = self.xrefs.get(xname)
        if sec is None:
            sec = self._new_xref(xname)
        root = self._xref_roots[xname]
        sk, fs = subscript_key, format_subscript
        sec.add_many([(sk(v), i) for v, i in zip(values, iens)], [f'{root}{fs(v)},{i})=""\n' for v, i in zip(values, iens)])

    def write(self, path: Path, title: str, date_line: str) -> int:
        spec = self.spec
        header = f"{spec.name}^{spec.number}{spec.flags}^{self.last_ien}^{self.count}"
        from vistasim.vista.zwr import format_value

        with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="\n") as out:
            out.write(f"{title}\n{date_line}\n{self.root}0)={format_value(header)}\n")
            self.entries.write_to(out, f"{spec.name} (#{spec.number})")
            for xname in sorted(self.xrefs, key=subscript_key):
                self.xrefs[xname].write_to(out, f"index {xname} of {spec.name}")
        return 1 + self.entries.lines + sum(s.lines for s in self.xrefs.values())

    def cleanup(self) -> None:
        self.entries.cleanup()
        for s in self.xrefs.values():
            s.cleanup()


def _xref_line_key(line: str, n: int) -> tuple:
    subs = parse_line(line)[1]
    return (subscript_key(subs[n + 1]), subs[n + 2])


# --------------------------------------------------------------------------- writer


class StationWriter:
    """Write one station's patients as ZWR files under ``out_dir/<station>/``.

    >>> with StationWriter(Path("OUT"), "528") as w:      # doctest: +SKIP
    ...     for patient in patients:                      # increasing DFN
    ...         w.add(patient)

    ``exported`` is the date on every file's header line (fixed by default, so output is
    reproducible). ``lines_written``/``files_written`` are filled in by ``close()``.
    """

    def __init__(
        self,
        out_dir: str | Path,
        station: str,
        exported: datetime = DEFAULT_EXPORT_TIME,
        spill_limit: int = 200_000,
    ) -> None:
        if not isinstance(station, str) or not is_station(station):
            raise ConfigError(f"station {station!r} is not a station number; use 3 digits plus an optional suffix (528, 640A4)")
        self.station = station
        self.dir = Path(out_dir) / station
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._tmp = Path(tempfile.mkdtemp(prefix=".vistasim-", dir=self.dir))
        except OSError as exc:
            raise OutputError(f"{self.dir}: cannot create the station folder ({exc.strerror}); check --out") from None
        self.date_line = zwr_date_line(exported)
        self.encoder = PatientEncoder()
        self.sinks = {spec.number: _DataFileSink(spec, self._tmp, spill_limit) for spec in L.DATA_FILES}
        self.patients = 0
        self.lines_written = 0
        self.files_written: list[Path] = []
        self._closed = False

    def add(self, patient: PatientRecord) -> None:
        """Encode one patient (raises InputError naming the patient and field on bad data)."""
        if self._closed:
            raise OutputError(f"{self.dir}: the station writer is closed; open a new one")
        if patient.station != self.station:
            raise InputError(
                f"patient {patient.patient_id} belongs to station {patient.station!r}, not {self.station}; "
                "give each station its own writer"
            )
        files, text_xrefs = self.encoder.encode_parts(patient)
        sinks = self.sinks
        dfn = patient.dfn
        for number, blocks, xname in files:
            sinks[number].add_patient(blocks, xname, dfn)
        for number, xname, value, ien in text_xrefs:
            sinks[number].add_xrefs([(xname, value, ien)])
        self.patients += 1

    def add_block(self, patients: Sequence[PatientRecord]) -> None:
        """Encode a block of patients (increasing DFNs, e.g. one generator block) column by column.

        Writes the same bytes as ``add`` called for each patient in turn, several times faster;
        blocks that need the checked path (unusual text, invalid dates, DFNs out of order, another
        station) are simply added patient by patient, with the errors ``add`` raises.
        """
        if self._closed:
            raise OutputError(f"{self.dir}: the station writer is closed; open a new one")
        station = self.station
        parts = None
        if all(p.station == station for p in patients):
            parts = encode_block(self.encoder, patients)
        if parts is None:
            for p in patients:
                self.add(p)
            return
        files, text_xrefs = parts
        sinks = self.sinks
        for part in files:
            sinks[part.number].add_part(part.iens, part.texts, part.nlines, part.xname, part.dfns)
        for number, xname, values, iens in text_xrefs:
            sinks[number].add_xref_run(xname, values, iens)
        self.patients += len(patients)

    def _title(self, name: str) -> str:
        return f"vistasim ZWR export: {name} (station {self.station})"

    def close(self) -> list[Path]:
        """Write every file (temporary names, then renamed); returns the paths written."""
        if self._closed:
            return self.files_written
        staged: list[tuple[Path, Path]] = []
        try:
            for sink in self.sinks.values():
                final = self.dir / sink.spec.filename
                tmp = self._tmp / (sink.spec.filename + ".tmp")
                self.lines_written += sink.write(tmp, self._title(sink.spec.name), self.date_line)
                staged.append((tmp, final))
            for table in self.encoder.pointers.values():
                spec = table.spec
                tmp = self._tmp / (spec.filename + ".tmp")
                nodes = table.nodes()
                _write_nodes(tmp, nodes, self._title(spec.name), self.date_line)
                self.lines_written += len(nodes)
                staged.append((tmp, self.dir / spec.filename))
            for tmp, final in staged:
                os.replace(tmp, final)
                self.files_written.append(final)
        except OSError as exc:
            self.abort()
            raise OutputError(f"{self.dir}: cannot write the station files ({exc.strerror}); check free space") from None
        except BaseException:
            self.abort()
            raise
        self._closed = True
        shutil.rmtree(self._tmp, ignore_errors=True)
        return self.files_written

    def abort(self) -> None:
        """Drop everything not yet renamed into place (temporary files and folder)."""
        self._closed = True
        for sink in self.sinks.values():
            sink.cleanup()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> StationWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _write_nodes(path: Path, nodes: list[Node], title: str, date_line: str) -> None:
    from vistasim.vista.zwr import format_node

    with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="\n") as f:
        f.write(f"{title}\n{date_line}\n")
        f.writelines(format_node(g, s, v) + "\n" for g, s, v in nodes)


# --------------------------------------------------------------------------- reading


@dataclass
class SourceReadResult:
    """What ``read_source`` found: the patients (DFN order; stations sorted) and the counts."""

    patients: list[PatientRecord]
    stations: list[str]
    files: list[str]
    nodes_read: int = 0
    bad_lines: int = 0
    index_nodes: int = 0  # cross-reference and header nodes (rebuilt, not read)
    unknown_globals: dict[str, int] = field(default_factory=dict)  # global (or ^G(file) root) -> nodes skipped
    # station -> NAME -> DFNs: the ^DPT("B",NAME,DFN) nodes present in the input (not rebuilt from the
    # records), NAME as subscripted (FileMan keeps its first 30 characters), DFNs in file order
    name_index: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    # read_source(bad_entries="quarantine"): patient_id -> why its entries were left out (no values)
    parse_failures: dict[str, list[str]] = field(default_factory=dict)

    @property
    def unknown_nodes(self) -> int:
        return sum(self.unknown_globals.values())


# global -> {first subscript (or "" when the file is the whole global): (file number, is_pointer_file)}
_ROUTES: dict[str, dict[Subscript, tuple[str, bool]]] = {}
for _spec in L.DATA_FILES:
    _ROUTES.setdefault(_spec.gname, {})[_spec.prefix[0] if _spec.prefix else ""] = (_spec.number, False)
for (_g, _first), _num in L.pointer_roots().items():
    _ROUTES.setdefault(_g, {})[_first] = (_num, True)
_PREFIX_LEN = {s.number: len(s.prefix) for s in L.DATA_FILES}
_PREFIX_LEN.update({s.number: len(s.prefix) for s in L.POINTER_SPECS.values()})
_DATA_NUMBERS = {s.number for s in L.DATA_FILES}
_DATA_SPECS = {s.number: s for s in L.DATA_FILES}
_LINE_PATTERNS = {s.number: entry_line_pattern(s.root) for s in L.DATA_FILES}


_XNAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_RUN_ENDS: dict[str, re.Pattern[str]] = {}  # index line prefix -> "a newline not followed by it"


def _index_run(text: str, pos: int, skip: int) -> tuple[int, str | None]:
    """The index line at ``pos`` (``root"NAME",...``): the end of the run of lines sharing its
    ``root"NAME",`` prefix, and that prefix (None, and the end of this one line, for an odd name)."""
    q = text.find('",', pos + skip)
    if q == -1 or _XNAME.fullmatch(text, pos + skip, q) is None:
        return text.index("\n", pos) + 1, None
    prefix = text[pos : q + 2]
    ends = _RUN_ENDS.get(prefix)
    if ends is None:
        if len(_RUN_ENDS) > 1000:
            _RUN_ENDS.clear()
        ends = _RUN_ENDS[prefix] = re.compile("\n(?!" + re.escape(prefix) + ")")
    return ends.search(text, pos).start() + 1, prefix  # type: ignore[union-attr]


def _numeric_index_run(seg: str, prefix: str, k: int) -> bool:
    """True when each of the ``k`` lines of ``seg`` is ``prefix`` then positive canonic integers (at
    most 18 digits) joined by commas then ``)=""``: valid index nodes, counted without parsing them.

    One ``prefix`` per line, at its start, and one ``)=""`` per line, at its end; what is left
    between them must be digits and single commas, no number starting with 0.
    """
    if seg.count(prefix) != k or seg.count("\n" + prefix) != k - 1 or seg.count(')=""\n') != k:
        return False
    body = seg.replace(prefix, "").replace(')=""\n', ",")
    digits = body.replace(",", "")
    if not (digits.isascii() and digits.isdigit()) or body[0] in "0," or ",," in body or ",0" in body:
        return False
    return max(map(len, body.split(","))) <= 18


def _text_key(subs: tuple[Subscript, ...]) -> str:
    """Subscripts after an IEN as the canonic ZWR text data entries are keyed by (``.02,1,0``, ``"SIG1",2,0``)."""
    return ",".join([format_subscript(s) for s in subs])


_ZWRC = _accel.load("zwrc")  # the compiled line grouper, or None (pure Python)


class _Restart(Exception):
    """The input is not in the order the streaming reader needs: read it again, buffered."""


def _file_rank(path: Path) -> tuple[int, str]:
    number = path.name.partition("+")[0]
    if number in L.POINTER_SPECS:
        return (0, path.name)
    if number == "2":
        return (1, path.name)
    if number in _DATA_NUMBERS:
        return (2, path.name)
    return (3, path.name)


# Where each data file keeps its patient pointer and the fields a decoder converts, to name the
# field of a failed entry (quarantine): (node, piece, field name, kind).
_DFN_PIECE = {"9000011": 2, "120.8": 1, "120.5": 2, "52": 2, "9000010": 5, "100": 2, "26.13": 1}
_CHECKED_FIELDS: dict[str, tuple[tuple[str, int, str, str], ...]] = {
    "2": (("0", 3, "DATE OF BIRTH", "date"), (".3", 2, "SERVICE CONNECTED PERCENTAGE", "int"),
          (".32", 6, "SERVICE ENTRY DATE", "date"), (".32", 7, "SERVICE SEPARATION DATE", "date"),
          (".35", 1, "DATE OF DEATH", "date")),
    "9000011": (("0", 2, "PATIENT NAME", "dfn"), ("0", 8, "DATE ENTERED", "date"), ("0", 13, "DATE OF ONSET", "date"),
                ("1", 7, "DATE RESOLVED", "date")),
    "120.8": (("0", 1, "PATIENT", "dfn"), ("0", 4, "ORIGINATION DATE/TIME", "date"), ("10,0", 4, "REACTIONS", "int")),
    "120.5": (("0", 1, "DATE/TIME VITALS TAKEN", "date"), ("0", 2, "PATIENT", "dfn")),
    "52": (("0", 2, "PATIENT", "dfn"), ("0", 7, "QTY", "num"), ("0", 8, "DAYS SUPPLY", "int"),
           ("0", 9, "# OF REFILLS", "int"), ("0", 13, "ISSUE DATE", "date")),
    "9000010": (("0", 1, "VISIT/ADMIT DATE&TIME", "date"), ("0", 5, "PATIENT NAME", "dfn")),
    "100": (("0", 2, "OBJECT OF ORDER", "dfn"), ("0", 7, "WHEN ENTERED", "date")),
    "26.13": (("0", 1, "PATIENT NAME", "dfn"), ("0", 6, "REVIEW DATE", "date"), ("0", 7, "ASSIGNMENT DATE", "date")),
}


def _entry_dfn(number: str, nodes: dict) -> int | None:
    """The patient a data entry points to, when its pointer piece is a plain number."""
    text = _piece_of(nodes.get("0", ""), _DFN_PIECE[number])
    text = text.partition(";")[0]
    return int(text) if text.isascii() and text.isdigit() else None


def _piece_of(value: str, n: int) -> str:
    parts = value.split("^")
    return parts[n - 1] if len(parts) >= n else ""


def _bad_field(kind: str, text: str) -> bool:
    if kind == "date":
        try:
            fm_to_iso(text)
        except InputError:
            return True
        return False
    if kind == "dfn":
        text = text.partition(";")[0]
        return not (text.isascii() and text.isdigit())
    try:
        float(text) if kind == "num" else int(text)
    except ValueError:
        return True
    return False


def _failure_reason(number: str, nodes: dict, exc: Exception) -> str:
    """Why an entry failed to decode, naming the node and field but never the value (no PHI)."""
    for node, piece, name, kind in _CHECKED_FIELDS.get(number, ()):
        text = _piece_of(nodes.get(node, ""), piece)
        if text and _bad_field(kind, text):
            what = {"date": "a FileMan date", "dfn": "a patient pointer (DFN)", "int": "an integer",
                    "num": "a number"}[kind]
            return f"node {node} piece {piece} ({name}) is not {what}"
    if isinstance(exc, InputError) and "points to" in str(exc):
        return "a pointer does not resolve in its pointer file"
    return f"the entry's nodes could not be decoded ({type(exc).__name__})"


class _StationReader:
    def __init__(
        self, files: list[Path], station: str, skip_bad_lines: bool, buffered: bool, quarantine: bool = False
    ) -> None:
        self.files = sorted(files, key=_file_rank)
        self.station = station
        self.skip = skip_bad_lines
        self.quarantine = quarantine  # buffered only: entries that fail to decode are left out and listed
        self.parse_failures: dict[str, list[str]] = {}
        self.buffered = buffered
        self.pointers: dict[str, dict[int, dict]] = {}
        self.raw: dict[str, dict[int, dict]] = {}  # buffered mode: data entries not yet decoded
        self.patients: dict[int, PatientRecord] = {}
        self.items: dict[str, list[tuple[int, Any]]] = {n: [] for n in DECODERS}
        self.last_ien: dict[str, int] = {}
        self.decoding_started = False
        self.resolver = PointerResolver(self.pointers)
        self.unknown: Counter[str] = Counter()
        self.nodes = 0
        self.bad = 0
        self.index_nodes = 0
        self.name_index: dict[str, list[int]] = {}  # ^DPT("B",NAME,DFN) nodes read: NAME -> DFNs

    def run(self) -> None:
        for path in self.files:
            reader = ZWRReader(path, skip_bad_lines=self.skip)
            self._read(reader, str(path), _DATA_SPECS.get(path.name.partition("+")[0]))
            self.bad += reader.bad_lines
        if self.buffered:
            for number in sorted(self.raw, key=lambda n: n != "2"):
                for ien in sorted(self.raw[number]):
                    self._decode(number, ien, self.raw[number][ien], "buffered input")

    def _read(self, reader: ZWRReader, where: str, spec: L.DataFile | None = None) -> None:
        finish = self._finish
        if spec is None:
            entries = self._entries(reader)
        else:
            entries = self._entries_fast(reader, spec, None if self.buffered else self._decoder_of(spec.number, where))
        for key, nodes, is_ptr in entries:
            finish(key, nodes, is_ptr, where)

    def _decoder_of(self, number: str, where: str) -> Callable[[int, dict], None]:
        """``_finish`` for the entries of data file ``number`` when streaming, in one call: the same
        order check, decoding and errors (any decoding error restarts the read, buffered)."""
        last_ien = self.last_ien
        resolver = self.resolver
        if _ZWRC is not None:  # the same closure, compiled (called by the compiled grouper directly)
            if number == "2":
                return _ZWRC.Sink(self, last_ien, number, decode_patient, resolver, where, _Restart, (InputError,),
                                  patients=self.patients, station=self.station)
            return _ZWRC.Sink(self, last_ien, number, DECODERS[number][0], resolver, where, _Restart,
                              (InputError, ValueError, TypeError), items=self.items[number])
        if number == "2":
            patients, station = self.patients, self.station

            def patient(ien: int, nodes: dict) -> None:
                if ien <= last_ien.get(number, 0):
                    raise _Restart()
                last_ien[number] = ien
                self.decoding_started = True
                try:
                    patients[ien] = decode_patient(station, ien, nodes, resolver, f"{where}: patient {ien}")
                except InputError:
                    raise _Restart() from None

            return patient
        decoder = DECODERS[number][0]
        append = self.items[number].append
        last = last_ien.get(number, 0)  # only this closure moves it while the file is read

        def entry(ien: int, nodes: dict) -> None:
            nonlocal last
            if ien <= last:
                raise _Restart()
            last = last_ien[number] = ien
            self.decoding_started = True
            try:
                append(decoder(ien, nodes, resolver, where))
            except (InputError, ValueError, TypeError):
                raise _Restart() from None

        return entry

    def _b_node(self, subs: tuple[Subscript, ...]) -> None:
        """Keep ``^DPT("B",NAME,DFN)`` (``subs`` after ``"B"``) in the name index."""
        if len(subs) == 2 and type(subs[1]) is int and subs[1] > 0:
            self.name_index.setdefault(str(subs[0]), []).append(subs[1])

    def _route(self, gname: str, subs: tuple[Subscript, ...]) -> tuple[str, bool] | None:
        """(file number, is pointer file) of a node, or None (counted in ``unknown``)."""
        table = _ROUTES.get(gname)
        route = None
        if table is not None and subs:
            route = table.get(subs[0]) if subs[0] in table else table.get("")
        if route is None:
            self.unknown[f"^{gname}" if table is None or "" in table or not subs else f"^{gname}({subs[0]}"] += 1
        return route

    def _entries_fast(
        self, reader: ZWRReader, spec: L.DataFile, own: Callable[[int, dict], None] | None = None
    ) -> Iterator[tuple[tuple[str, int], dict, bool]]:
        """``_entries`` for a file named after the data file ``spec`` (see ``_entries_fast_py``), through
        the compiled line grouper ``vistasim._c.zwrc`` when it is built, which gives the same results."""
        if _ZWRC is not None:
            return self._entries_fast_c(reader, spec, own, _ZWRC)
        return self._entries_fast_py(reader, spec, own)

    def _other_row(self, reader: ZWRReader, lno: int, line: str) -> int | tuple[str, int, bool, Any, str]:
        """A line the entry pattern calls "other" (``_entries_fast``'s handling, for the compiled grouper):
        -1 a bad line (reported), 0 an unknown global (counted), 1 an index node, else the entry node as
        (file number, IEN, is pointer file, key, value)."""
        try:
            gname, subs, value = parse_line(line)
        except _Bad as exc:
            reader.bad(lno, str(exc))
            return -1
        route = self._route(gname, subs)
        if route is None:
            return 0
        number, ptr = route
        n = _PREFIX_LEN[number]
        ien = subs[n] if len(subs) > n else None
        if type(ien) is not int or ien <= 0 or len(subs) == n + 1:
            if number == "2" and n == 0 and subs[0] == "B":
                self._b_node(subs[1:])
            return 1
        return number, ien, ptr, (subs[n + 1 :] if ptr else _text_key(subs[n + 1 :])), value

    def _entries_fast_c(
        self, reader: ZWRReader, spec: L.DataFile, own: Callable[[int, dict], None] | None, zwrc: Any
    ) -> Iterator[tuple[tuple[str, int], dict, bool]]:
        """``_entries_fast_py`` with the lines of each piece grouped by ``zwrc.Grouper`` (same pieces,
        index runs, counts, errors and line numbers; lines it does not take come back to ``_other_row``)."""
        pattern = _LINE_PATTERNS[spec.number]
        patient_file = spec.number == "2"
        g = zwrc.Grouper(
            spec.root, spec.number, own, pattern, self.name_index,
            lambda xtail: self._b_node(parse_line(f'^X({xtail})=""')[1]),
            lambda lno, line: self._other_row(reader, lno, line),
        )
        scan = g.scan
        numeric_run = zwrc.numeric_index_run
        xroot = spec.root + '"'
        xline = "\n" + xroot
        for line_no, text in reader.chunks():
            nodes = index = 0
            pos, end = 0, len(text)
            while pos < end:
                if text.startswith(xroot, pos):
                    stop, prefix = _index_run(text, pos, len(xroot))
                    if prefix is not None and not (patient_file and prefix == '^DPT("B",'):
                        k = numeric_run(text, pos, stop, prefix)  # _numeric_index_run in one pass
                        if k > 0:
                            nodes += k
                            index += k
                            line_no += k
                            pos = stop
                            continue
                else:
                    stop = text.find(xline, pos) + 1 or end  # up to the next index line
                g.line_no = line_no
                p = scan(text, pos, stop)
                while p >= 0:
                    yield g.out
                    p = scan(text, p, stop)
                k = g.line_no - line_no  # the piece's lines: scan counts them (each ends in a newline)
                nodes += k
                pos = stop
                line_no += k
            self.nodes += nodes + g.nodes
            self.index_nodes += index + g.index
            g.nodes = g.index = 0
        if g.cur_key is not None:
            if own is not None and g.cur_s is not None:
                own(g.cur_key[1], g.cur)
            else:
                yield g.cur_key, g.cur, g.is_ptr

    def _entries_fast_py(
        self, reader: ZWRReader, spec: L.DataFile, own: Callable[[int, dict], None] | None = None
    ) -> Iterator[tuple[tuple[str, int], dict, bool]]:
        """``_entries`` for a file named after the data file ``spec``: the same entries and counts.
        With ``own``, entries of ``spec`` itself go to ``own(IEN, nodes)`` instead of being yielded.

        Whole pieces of the file are handled at once: a run of index lines of plain numbers
        (``^GMR(120.5,"C",DFN,IEN)=""``) is checked and counted by string operations on the whole run;
        other lines by one ``entry_line_pattern`` findall, which takes the entry nodes of ``spec``
        (nearly every line) and its other index nodes from the match; any other line (another global,
        quoted subscripts with commas, ``$C``, odd numbers ...) goes through ``parse_line`` and the
        general routing, as ``_entries`` does.
        """
        pattern = _LINE_PATTERNS[spec.number]
        fnum = spec.number
        patient_file = fnum == "2"
        cur_key: tuple[str, int] | None = None
        cur: dict = {}
        cur_s: str | None = None  # IEN text of the current entry when it is an entry of ``spec``
        is_ptr = False
        xroot = spec.root + '"'  # an index line of this file starts so
        xline = "\n" + xroot
        for line_no, text in reader.chunks():
            nodes = index = 0
            pos, end = 0, len(text)
            # The piece is cut into runs: the lines of one index (all of one ``"NAME",`` prefix) and the
            # lines between them. An index run of plain numbers is checked and counted by string
            # operations on the whole run; any other run is matched line by line (one findall).
            while pos < end:
                if text.startswith(xroot, pos):
                    stop, prefix = _index_run(text, pos, len(xroot))
                    if prefix is not None and not (patient_file and prefix == '^DPT("B",'):
                        k = text.count("\n", pos, stop)
                        if _numeric_index_run(text[pos:stop], prefix, k):
                            nodes += k
                            index += k
                            line_no += k
                            pos = stop
                            continue
                else:
                    stop = text.find(xline, pos) + 1 or end  # up to the next index line
                rows = pattern.findall(text, pos, stop)
                k = text.count("\n", pos, stop)
                if len(rows) == k + 1:
                    rows.pop()  # the empty match after the last newline
                else:  # not expected: match line by line
                    rows = [pattern.match(line).groups() for line in text[pos : stop - 1].split("\n")]  # type: ignore[union-attr]
                nodes += k
                pos = stop
                for lno, (ien_s, tail, q, num, xname, xtail, other) in enumerate(rows, line_no):
                    if ien_s:
                        if ien_s != cur_s:
                            if cur_key is not None:
                                if own is not None and cur_s is not None:
                                    own(cur_key[1], cur)
                                else:
                                    yield cur_key, cur, is_ptr
                            cur_key, cur, is_ptr, cur_s = (fnum, int(ien_s)), {}, False, ien_s
                        cur[tail] = num or q
                    elif xname:
                        index += 1
                        if patient_file and xname == "B":
                            self._b_node(parse_line(f'^X({xtail})=""')[1])
                    elif not other:
                        nodes -= 1  # a blank line carries no node
                    else:
                        try:
                            gname, subs, value = parse_line(other)
                        except _Bad as exc:
                            nodes -= 1
                            reader.bad(lno, str(exc))
                            continue
                        route = self._route(gname, subs)
                        if route is None:
                            continue
                        number, ptr = route
                        n = _PREFIX_LEN[number]
                        ien = subs[n] if len(subs) > n else None
                        if type(ien) is not int or ien <= 0 or len(subs) == n + 1:
                            index += 1
                            if number == "2" and n == 0 and subs[0] == "B":
                                self._b_node(subs[1:])
                            continue
                        if cur_key is None or ien != cur_key[1] or number != cur_key[0]:
                            if cur_key is not None:
                                if own is not None and cur_s is not None:
                                    own(cur_key[1], cur)
                                else:
                                    yield cur_key, cur, is_ptr
                            cur_key, cur, is_ptr = (number, ien), {}, ptr
                            cur_s = str(ien) if number == fnum else None
                        cur[subs[n + 1 :] if ptr else _text_key(subs[n + 1 :])] = value
                line_no += k
            self.nodes += nodes
            self.index_nodes += index
        if cur_key is not None:
            if own is not None and cur_s is not None:
                own(cur_key[1], cur)
            else:
                yield cur_key, cur, is_ptr

    def _entries(self, reader: ZWRReader) -> Iterator[tuple[tuple[str, int], dict, bool]]:
        """The entries of one file in file order: ((file number, IEN), {subs after IEN: value}, is pointer file).

        Header and index nodes are counted in ``index_nodes``, unknown globals in ``unknown``.
        """
        routes = _ROUTES
        cur_key: tuple[str, int] | None = None
        cur: dict = {}
        is_ptr = False
        nodes = 0
        # A file holds one FileMan file: remember the last routing so most nodes skip the lookups.
        last_g: str | None = None
        last_first: Any = None
        number, ptr, n = "", False, 0
        cur_ien: Any = None
        for gname, subs, value in reader:
            nodes += 1
            if gname != last_g or not subs or subs[0] != last_first or type(subs[0]) is not type(last_first):
                table = routes.get(gname)
                route = None
                if table is not None and subs:
                    route = table.get(subs[0]) if subs[0] in table else table.get("")
                if route is None:
                    last_g = None
                    self.unknown[f"^{gname}" if table is None or "" in table or not subs else f"^{gname}({subs[0]}"] += 1
                    continue
                number, ptr = route
                n = _PREFIX_LEN[number]
                # Cache only a route decided by the first subscript (a whole-global file's first
                # subscript is the IEN, which changes every entry).
                last_g, last_first = (gname, subs[0]) if n else (None, None)
            ien = subs[n] if len(subs) > n else None
            if type(ien) is not int or ien <= 0 or len(subs) == n + 1:
                self.index_nodes += 1
                if number == "2" and n == 0 and subs[0] == "B":
                    self._b_node(subs[1:])
                continue
            if ien != cur_ien or number != cur_key[0]:  # type: ignore[index]
                if cur_key is not None:
                    yield cur_key, cur, is_ptr
                cur_key, cur, is_ptr, cur_ien = (number, ien), {}, ptr, ien
            # pointer entries keep subscript tuples (PointerSpec.key_of reads them); data entries are
            # keyed by canonic text, as _entries_fast keys them
            cur[subs[n + 1 :] if ptr else _text_key(subs[n + 1 :])] = value
            if nodes >= 65536:  # keep the count live for streaming readers
                self.nodes += nodes
                nodes = 0
        self.nodes += nodes
        if cur_key is not None:
            yield cur_key, cur, is_ptr

    def _finish(self, key: tuple[str, int], nodes: dict, is_ptr: bool, where: str) -> None:
        number, ien = key
        if is_ptr:
            if self.decoding_started:
                raise _Restart()
            self.pointers.setdefault(number, {}).setdefault(ien, {}).update(nodes)
            self.resolver.clear()
            return
        if self.buffered:
            self.raw.setdefault(number, {}).setdefault(ien, {}).update(nodes)
            return
        if ien <= self.last_ien.get(number, 0):
            raise _Restart()
        self.last_ien[number] = ien
        self._decode(number, ien, nodes, where)

    def _decode(self, number: str, ien: int, nodes: dict, where: str) -> None:
        self.decoding_started = True
        try:
            self._decode_entry(number, ien, nodes, where)
        except (InputError, ValueError, TypeError) as exc:
            if not self.buffered:
                if isinstance(exc, InputError):
                    raise _Restart() from None  # the pointer file may simply come later in this input
                raise
            if not self.quarantine:
                raise
            self._quarantine(number, ien, nodes, exc)

    def _quarantine(self, number: str, ien: int, nodes: dict, exc: Exception) -> None:
        """Leave a failed entry out (a PATIENT entry becomes a stub record) and say why, without values."""
        reason = f"file #{number} IEN {ien}: {_failure_reason(number, nodes, exc)}"
        if number == "2":
            self.patients[ien] = PatientRecord(self.station, ien, "")
            dfn: int | None = ien
        else:
            dfn = _entry_dfn(number, nodes)
        pid = f"{self.station}:{dfn if dfn is not None else 'unknown'}"
        self.parse_failures.setdefault(pid, []).append(reason)

    def _decode_entry(self, number: str, ien: int, nodes: dict, where: str) -> None:
        if number == "2":
            self.patients[ien] = decode_patient(self.station, ien, nodes, self.resolver, f"{where}: patient {ien}")
            return
        decoder, _attr = DECODERS[number]
        try:
            self.items[number].append(decoder(ien, nodes, self.resolver, where))
        except (ValueError, TypeError) as exc:
            raise InputError(f"{where}: entry {ien} of file #{number} is malformed ({exc}); fix the export") from None

    def result_patients(self) -> list[PatientRecord]:
        for number, items in self.items.items():
            attr = DECODERS[number][1]
            if _ZWRC is not None:  # the same loop, compiled
                _ZWRC.attach(items, attr, self.patients, self.station, number)
                continue
            # already in IEN order: decoded in increasing IEN (streaming checks it; buffered sorts first)
            prev: int | None = None
            target: list = []
            for dfn, item in items:
                if dfn != prev:  # a patient's entries mostly come together: one lookup per run
                    patient = self.patients.get(dfn)
                    if patient is None:
                        raise InputError(
                            f"station {self.station}: file #{number} entry {item.ien} points to patient DFN {dfn}, "
                            "which is not in ^DPT; export the PATIENT file with the data"
                        )
                    target = getattr(patient, attr)
                    prev = dfn
                target.append(item)
        return [self.patients[d] for d in sorted(self.patients)]


def _station_files(path: Path, station: str | None) -> list[tuple[str, list[Path]]]:
    """(station, files) groups for a file, a station folder, or a folder of station folders."""
    if path.is_file():
        st = station or (path.parent.name if is_station(path.parent.name) else None)
        if st is None:
            raise InputError(f"{path}: cannot tell the station from the folder name; pass station= (e.g. '528')")
        return [(st, [path])]
    if not path.is_dir():
        raise InputError(f"{path}: no such file or folder; pass a .zwr file or a station folder")
    files = sorted(p for p in path.glob("*.zwr") if p.is_file())
    if files:
        st = station or (path.name if is_station(path.name) else None)
        if st is None:
            raise InputError(f"{path}: the folder name is not a station number; pass station= (e.g. '528')")
        return [(st, files)]
    groups = [
        (d.name, sorted(p for p in d.glob("*.zwr") if p.is_file()))
        for d in sorted(path.iterdir())
        if d.is_dir() and is_station(d.name) and (station is None or d.name == station)
    ]
    groups = [g for g in groups if g[1]]
    if not groups:
        raise InputError(f"{path}: no .zwr files here or in station folders (528/, 640A4/ ...); check the path")
    return groups


def read_source(
    path: str | Path, station: str | None = None, skip_bad_lines: bool = False, bad_entries: str = "raise"
) -> SourceReadResult:
    """Read a station export (file or folder) back into PatientRecords, every pointer resolved.

    Unknown globals are counted (not an error); with ``skip_bad_lines`` corrupt lines are counted
    and skipped, otherwise they raise ZWRFormatError naming the file and line. A dangling pointer or
    a clinical entry whose patient is missing raises InputError.

    ``bad_entries="quarantine"`` (default ``"raise"``): an entry that fails to decode (bad date,
    non-numeric pointer, dangling pointer ...) is left out and listed in ``parse_failures`` under
    its patient (``station:DFN``, ``station:unknown`` when the DFN itself is unreadable), naming file,
    IEN, node and field but never the value; a failed PATIENT entry is kept as a stub record (DFN
    only, empty name) so the pipeline can fail it at "parse". A clinical entry whose patient is
    missing from ^DPT still raises.
    """
    if station is not None and not is_station(station):
        raise ConfigError(f"station {station!r} is not a station number; use 3 digits plus an optional suffix")
    if bad_entries not in ("raise", "quarantine"):
        raise ConfigError(f"bad_entries={bad_entries!r} is not 'raise' or 'quarantine'; pass one of those")
    quarantine = bad_entries == "quarantine"
    result = SourceReadResult(patients=[], stations=[], files=[])
    unknown: Counter[str] = Counter()
    for st, files in _station_files(Path(path), station):
        reader = _StationReader(files, st, skip_bad_lines, buffered=False)
        try:
            reader.run()
        except _Restart:
            reader = _StationReader(files, st, skip_bad_lines, buffered=True, quarantine=quarantine)
            reader.run()
        except (ValueError, TypeError):
            if not quarantine:
                raise
            reader = _StationReader(files, st, skip_bad_lines, buffered=True, quarantine=True)
            reader.run()
        for pid, reasons in reader.parse_failures.items():
            result.parse_failures.setdefault(pid, []).extend(reasons)
        result.patients.extend(reader.result_patients())
        result.stations.append(st)
        result.files.extend(str(f) for f in reader.files)
        result.nodes_read += reader.nodes
        result.bad_lines += reader.bad
        result.index_nodes += reader.index_nodes
        result.name_index[st] = reader.name_index
        unknown.update(reader.unknown)
    result.unknown_globals = dict(sorted(unknown.items()))
    return result


def read_globals(paths: Iterable[str | Path], skip_bad_lines: bool = False) -> dict[str, dict[tuple, str]]:
    """Every node of the given ZWR files as ``{global: {subscripts: value}}`` (small exports only)."""
    out: dict[str, dict[tuple, str]] = {}
    for p in paths:
        for gname, subs, value in ZWRReader(p, skip_bad_lines=skip_bad_lines):
            out.setdefault(gname, {})[subs] = value
    return out



# --------------------------------------------------------------------------- streaming read


def _streamable(files: list[Path]) -> bool:
    """True when the files are laid out as StationWriter writes them: one file per FileMan file."""
    numbers = [f.name.partition("+")[0] for f in files]
    known = [n for n in numbers if n in _DATA_NUMBERS or n in L.POINTER_SPECS]
    return len(known) == len(numbers) and len(set(numbers)) == len(numbers) and "2" in numbers


def _iter_station(files: list[Path], st: str, skip_bad_lines: bool, stats: SourceReadResult) -> Iterator[PatientRecord]:
    reader = _StationReader(files, st, skip_bad_lines, buffered=False)
    readers: list[ZWRReader] = []

    def entries(path: Path) -> Iterator[tuple[tuple[str, int], dict, bool]]:
        zr = ZWRReader(path, skip_bad_lines=skip_bad_lines)
        readers.append(zr)
        spec = _DATA_SPECS.get(path.name.partition("+")[0])
        yield from (reader._entries(zr) if spec is None else reader._entries_fast(zr, spec))

    stats.name_index[st] = reader.name_index  # filled as the PATIENT file streams (its "B" nodes come last)

    bad_counted = [0]

    def fold_counts() -> None:
        stats.nodes_read += reader.nodes
        bad = sum(r.bad_lines for r in readers)
        stats.bad_lines += bad - bad_counted[0]
        bad_counted[0] = bad
        stats.index_nodes += reader.index_nodes
        for g, c in reader.unknown.items():
            stats.unknown_globals[g] = stats.unknown_globals.get(g, 0) + c
        reader.nodes = reader.index_nodes = 0
        reader.unknown.clear()

    by_number = {f.name.partition("+")[0]: f for f in files}
    for number, path in by_number.items():  # pointer files are small: read them whole first
        if number in L.POINTER_SPECS:
            for key, nodes, is_ptr in entries(path):
                if is_ptr:
                    reader.pointers.setdefault(key[0], {}).setdefault(key[1], {}).update(nodes)
    resolver = reader.resolver

    # One cursor per clinical file: its entries decoded in file (IEN) order, (DFN, item) at a time.
    def cursor(number: str, path: Path) -> Iterator[tuple[int, Any]]:
        decoder = DECODERS[number][0]
        where = str(path)
        for (num, ien), nodes, is_ptr in entries(path):
            if is_ptr or num != number:
                raise InputError(f"{path}: holds entries of file #{num}, not only #{number}; read it with read_source")
            try:
                yield decoder(ien, nodes, resolver, where)
            except (ValueError, TypeError) as exc:
                raise InputError(f"{where}: entry {ien} of file #{number} is malformed ({exc}); fix the export") from None

    cursors: list[tuple[str, Iterator[tuple[int, Any]], list]] = []
    for number, path in by_number.items():
        if number in DECODERS:
            it = cursor(number, path)
            cursors.append((DECODERS[number][1], it, [next(it, None)]))
    last_dfn = 0
    where_dpt = str(by_number["2"])
    for (num, dfn), nodes, _is_ptr in entries(by_number["2"]):
        if num != "2" or dfn <= last_dfn:
            raise InputError(f"{where_dpt}: patients are not in increasing DFN order (DFN {dfn}); read it with read_source")
        last_dfn = dfn
        patient = decode_patient(st, dfn, nodes, resolver, f"{where_dpt}: patient {dfn}")
        for attr, it, head in cursors:
            items = getattr(patient, attr)
            h = head[0]
            while h is not None and h[0] <= dfn:
                if h[0] < dfn:
                    raise InputError(
                        f"station {st}: a {attr[:-1]} entry (IEN {h[1].ien}) points to patient DFN {h[0]}, which is "
                        "not in ^DPT or comes out of patient order; read this export with read_source"
                    )
                items.append(h[1])
                h = next(it, None)
            head[0] = h
        fold_counts()
        yield patient
    for attr, _it, head in cursors:
        if head[0] is not None:
            h = head[0]
            raise InputError(
                f"station {st}: a {attr[:-1]} entry (IEN {h[1].ien}) points to patient DFN {h[0]}, which is not in "
                "^DPT; export the PATIENT file with the data"
            )
    fold_counts()


def iter_source(
    path: str | Path,
    station: str | None = None,
    skip_bad_lines: bool = False,
    stats: SourceReadResult | None = None,
) -> Iterator[PatientRecord]:
    """Stream the patients of a station export one at a time, with bounded memory.

    Yields the same PatientRecords, in the same order, as ``read_source(...).patients`` for exports
    laid out as StationWriter writes them (one ``<number>+<NAME>.zwr`` per FileMan file) whose
    clinical entries come in patient order (IENs given patient by patient, as vistasim.generate
    does): only the pointer files and one entry per file are held. Pass a ``SourceReadResult`` as
    ``stats`` to have its counts (nodes, bad lines, index nodes, unknown globals, stations, files)
    filled in as the stream goes; its ``name_index`` of a streamed station is complete only once
    that station's patients have all been yielded (the ``"B"`` nodes follow the entries in the file). Other layouts are read whole with ``read_source`` and then
    yielded. A clinical entry that comes after its patient was yielded raises InputError naming
    read_source, which handles any order.
    """
    if station is not None and not is_station(station):
        raise ConfigError(f"station {station!r} is not a station number; use 3 digits plus an optional suffix")
    stats = stats if stats is not None else SourceReadResult(patients=[], stations=[], files=[])
    for st, files in _station_files(Path(path), station):
        stats.stations.append(st)
        stats.files.extend(str(f) for f in sorted(files, key=_file_rank))
        if _streamable(files):
            yield from _iter_station(files, st, skip_bad_lines, stats)
            continue
        reader = _StationReader(files, st, skip_bad_lines, buffered=True)
        reader.run()
        stats.nodes_read += reader.nodes
        stats.bad_lines += reader.bad
        stats.index_nodes += reader.index_nodes
        stats.name_index[st] = reader.name_index
        for g, c in reader.unknown.items():
            stats.unknown_globals[g] = stats.unknown_globals.get(g, 0) + c
        yield from reader.result_patients()


# --------------------------------------------------------------------------- several stations at once

PatientSource = Iterable[PatientRecord] | Callable[[], Iterable[PatientRecord]]


@dataclass(frozen=True)
class StationWritten:
    """What ``write_stations`` wrote for one station."""

    station: str
    patients: int
    lines: int
    files: tuple[str, ...]


def _write_one(out_dir: str, station: str, source: PatientSource, exported: datetime) -> StationWritten:
    patients = source() if callable(source) else source
    with StationWriter(out_dir, station, exported=exported) as w:
        for p in patients:
            w.add(p)
    return StationWritten(station, w.patients, w.lines_written, tuple(str(f) for f in w.files_written))


def write_stations(
    sources: Mapping[str, PatientSource],
    out_dir: str | Path,
    workers: int = 1,
    exported: datetime = DEFAULT_EXPORT_TIME,
) -> dict[str, StationWritten]:
    """Write several stations, each by its own StationWriter, in up to ``workers`` processes.

    ``sources`` maps a station number to its patients in DFN order: a list, or (best with workers,
    so each process makes its own patients instead of receiving them) a picklable callable
    returning an iterable, e.g. ``functools.partial(make_patients, station)``. Stations are
    independent, so the bytes written are the same whatever ``workers`` is. Returns what was
    written per station, in station order.
    """
    if type(workers) is not int or workers < 1:
        raise ConfigError(f"workers={workers!r} is not a positive integer; pass 1 or more")
    for st in sources:
        if not isinstance(st, str) or not is_station(st):
            raise ConfigError(f"station {st!r} is not a station number; use 3 digits plus an optional suffix (528, 640A4)")
    order = sorted(sources)
    out = str(out_dir)
    if workers == 1 or len(order) <= 1:
        return {st: _write_one(out, st, sources[st], exported) for st in order}
    for st in order:
        src = sources[st]
        if not callable(src) and not isinstance(src, (list, tuple)):
            raise ConfigError(
                f"station {st}: with workers > 1 pass a list of patients or a picklable callable returning them, "
                "not a generator"
            )
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(workers, len(order))) as pool:
        futures = {st: pool.submit(_write_one, out, st, sources[st], exported) for st in order}
        return {st: futures[st].result() for st in order}
