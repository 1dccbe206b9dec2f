"""Writing a generated population to disk: ZWR (via :mod:`vistasim.vista`), CSV and JSON Lines.

Layout of an output folder ``OUT``::

    OUT/<station>/<file number>+<FILE NAME>.zwr   --format zwr (the vista helper's StationWriter)
    OUT/json/<station>.jsonl                      --format json: one PatientRecord per line, fields as in
                                                  vistasim.model (nested lists for clinical entries)
    OUT/csv/<station>/<table>.csv                 --format csv: patients.csv (one row per record, address
                                                  flattened to address_*) and one file per clinical list
                                                  (problems, allergies, prescriptions, vitals, visits,
                                                  orders, flags), each row starting with patient_id;
                                                  list fields (allergy reactions) joined with "|"
    OUT/answer_key.csv                            patient_id,file,field,defect,detail (header always written)
    OUT/manifest.json                             parameters, stations and record counts (no wall clock)

Every file is written under a temporary name and renamed when complete, so a folder never holds a
half-written file under its final name.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import IO, Any

import orjson

from ..errors import ConfigError, OutputError
from ..model import Address, Allergy, Order, PatientRecord, Prescription, Problem, RecordFlag, Visit, Vital
from .defects import ANSWER_KEY_HEADER, DefectEntry

FORMATS: tuple[str, ...] = ("zwr", "csv", "json")
_PATIENT_FIELDS = [f.name for f in fields(PatientRecord) if f.name not in
                   ("address", "problems", "allergies", "prescriptions", "vitals", "visits", "orders", "flags")]
_ADDRESS_FIELDS = [f.name for f in fields(Address)]
_LISTS: dict[str, tuple[str, type]] = {
    "problems": ("problems", Problem),
    "allergies": ("allergies", Allergy),
    "prescriptions": ("prescriptions", Prescription),
    "vitals": ("vitals", Vital),
    "visits": ("visits", Visit),
    "orders": ("orders", Order),
    "flags": ("flags", RecordFlag),
}


def parse_formats(text: str) -> tuple[str, ...]:
    """``"zwr,csv"`` -> ("zwr", "csv"); unknown names raise ConfigError."""
    items = tuple(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))
    bad = [p for p in items if p not in FORMATS]
    if bad or not items:
        raise ConfigError(f"--format {text!r}: use a comma-separated list of {', '.join(FORMATS)}")
    return items


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, list):
        return "|".join(v)
    return v


class _AtomicFile:
    """A text file written under ``.name.tmp`` and renamed on close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.fh: IO[str] = open(self.tmp, "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise OutputError(f"{path}: cannot write ({exc.strerror}); check --out") from None

    def close(self) -> None:
        self.fh.close()
        os.replace(self.tmp, self.path)


class StationOutputs:
    """All output files of one station (except the answer key): add patients in DFN order, then close."""

    def __init__(self, out_dir: Path, station: str, formats: Sequence[str]) -> None:
        self.station = station
        self.count = 0
        self._zwr = None
        self._zwr_done = False  # add_block has written the ZWR side of the patients being added
        self._json: _AtomicFile | None = None
        self._csv: dict[str, Any] = {}
        self._files: list[_AtomicFile] = []
        if "zwr" in formats:
            from ..vista import StationWriter

            self._zwr = StationWriter(out_dir, station)
        if "json" in formats:
            self._json = _AtomicFile(out_dir / "json" / f"{station}.jsonl")
            self._files.append(self._json)
        if "csv" in formats:
            base = out_dir / "csv" / station
            f = _AtomicFile(base / "patients.csv")
            self._files.append(f)
            w = csv.writer(f.fh, lineterminator="\n")
            w.writerow(["patient_id", *_PATIENT_FIELDS, *(f"address_{a}" for a in _ADDRESS_FIELDS)])
            self._csv["patients"] = w
            for table, (_, cls) in _LISTS.items():
                f = _AtomicFile(base / f"{table}.csv")
                self._files.append(f)
                w = csv.writer(f.fh, lineterminator="\n")
                w.writerow(["patient_id", *(x.name for x in fields(cls))])
                self._csv[table] = (w, [x.name for x in fields(cls)])

    def add(self, p: PatientRecord) -> None:
        self.count += 1
        if self._zwr is not None and not self._zwr_done:
            self._zwr.add(p)
        if self._json is not None:
            self._json.fh.write(orjson.dumps(p).decode())
            self._json.fh.write("\n")
        if self._csv:
            pid = p.patient_id
            a = p.address
            self._csv["patients"].writerow([pid, *(_cell(getattr(p, k)) for k in _PATIENT_FIELDS),
                                            *(getattr(a, k) for k in _ADDRESS_FIELDS)])
            for table, (attr, _) in _LISTS.items():
                w, names = self._csv[table]
                w.writerows([pid, *(_cell(getattr(e, k)) for k in names)] for e in getattr(p, attr))

    def add_block(self, recs: Sequence[PatientRecord]) -> None:
        """A block of patients in DFN order: ZWR encodes it column by column (same bytes as ``add`` each)."""
        if self._zwr is not None and not self._json and not self._csv:
            self.count += len(recs)
            self._zwr.add_block(recs)
            return
        if self._zwr is not None:
            self._zwr.add_block(recs)
            self._zwr_done = True
        try:
            for p in recs:
                self.add(p)
        finally:
            self._zwr_done = False

    def close(self) -> None:
        if self._zwr is not None:
            self._zwr.close()
        for f in self._files:
            f.close()


def write_answer_key(path: Path, entries: Iterable[DefectEntry]) -> int:
    """Write the answer key CSV (header always); returns the number of rows."""
    f = _AtomicFile(path)
    w = csv.writer(f.fh, lineterminator="\n")
    w.writerow(ANSWER_KEY_HEADER)
    count = 0
    for e in entries:
        w.writerow(e.as_row())
        count += 1
    f.close()
    return count


def read_answer_key(path: Path) -> list[DefectEntry]:
    """Read an answer key written by :func:`write_answer_key`."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise OutputError(f"{path}: cannot read the answer key ({exc.strerror})") from None
    if not rows or tuple(rows[0]) != ANSWER_KEY_HEADER:
        raise ConfigError(f"{path}: not an answer key (expected header {','.join(ANSWER_KEY_HEADER)})")
    return [DefectEntry(*r) for r in rows[1:]]


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    f = _AtomicFile(path)
    f.fh.write(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    f.fh.write("\n")
    f.close()
