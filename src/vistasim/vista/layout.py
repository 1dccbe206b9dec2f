"""Where vistasim puts each patient field in FileMan globals, and the pointer files it writes.

This module is the single place that knows the layout (see ``docs`` in ``vistasim.vista``):
which FileMan file lives under which global root, the set-of-codes tables, and the pointer files
(#5 STATE ... #26.15 PRF NATIONAL FLAG) with the way their entries are built and read.

Pointer files come in two kinds:

- reference files, copied from FOIA VistA (#11, #21, #23, #120.51 in ``vistasim/data/vista``) or
  fixed here (#100.01 ORDER STATUS, #100.98 DISPLAY GROUP): written in full, looked up by NAME;
- built files (#5, #10, #10.2, #44, #50, #80, #120.82, #26.11, #26.15, #9999999.27): an entry is
  created the first time a patient needs it, so an orphan drug or an unknown clinic still resolves.

A value missing from a reference file gets a new IEN after the highest one (never reusing IENs).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from vistasim.vista.zwr import Node, Subscript, node_key, read_zwr

# --------------------------------------------------------------------------- clinical (data) files


@dataclass(frozen=True)
class DataFile:
    """A FileMan file holding patient data: its number, name, global and the subscripts before IEN."""

    number: str
    name: str
    gname: str
    prefix: tuple[Subscript, ...]
    flags: str  # second piece of the header node after the number (I = IEN-based identifier, P = pointer .01)

    @property
    def filename(self) -> str:
        return f"{self.number}+{self.name}.zwr"

    @property
    def root(self) -> str:
        """Text every node line of this file starts with: ``^GMR(120.8,``."""
        return "^" + self.gname + "(" + "".join(f"{s}," for s in self.prefix)


PATIENT = DataFile("2", "PATIENT", "DPT", (), "I")
PROBLEM = DataFile("9000011", "PROBLEM", "AUPNPROB", (), "P")
ALLERGY = DataFile("120.8", "PATIENT ALLERGIES", "GMR", ("120.8",), "I")
VITAL = DataFile("120.5", "GMRV VITAL MEASUREMENT", "GMR", ("120.5",), "")
PRESCRIPTION = DataFile("52", "PRESCRIPTION", "PSRX", (), "I")
VISIT = DataFile("9000010", "VISIT", "AUPNVSIT", (), "")
ORDER = DataFile("100", "ORDER", "OR", (100,), "")
FLAG_ASSIGNMENT = DataFile("26.13", "PRF ASSIGNMENT", "DGPF", ("26.13",), "P")

DATA_FILES: tuple[DataFile, ...] = (PATIENT, PROBLEM, ALLERGY, VITAL, PRESCRIPTION, VISIT, ORDER, FLAG_ASSIGNMENT)

# --------------------------------------------------------------------------- set-of-codes tables

SEX_CODES = frozenset({"M", "F"})
PROBLEM_STATUS = frozenset({"A", "I"})
ALLERGY_MECHANISM = frozenset({"A", "P", "U"})
# PRESCRIPTION "STA" node (field 100 STATUS), the codes of VistA's set.
RX_STATUS: dict[str, str] = {
    "active": "0",
    "non-verified": "1",
    "hold": "3",
    "drug interactions": "4",
    "suspended": "5",
    "expired": "11",
    "discontinued": "12",
    "deleted": "13",
    "discontinued by provider": "14",
    "discontinued (edit)": "15",
    "provider hold": "16",
}
RX_STATUS_NAME = {v: k for k, v in RX_STATUS.items()}
FLAG_STATUS = {"active": "1", "inactive": "0"}
FLAG_STATUS_NAME = {v: k for k, v in FLAG_STATUS.items()}
# ORDER action SIGNATURE STATUS (#100.008 field 4): 1 electronic, 2 not signed.
ORDER_SIGNED = {True: "1", False: "2"}
ICD_SYSTEM = {"ICD-9-CM": "1", "ICD-10-CM": "30"}  # #80 field 1.1 CODING SYSTEM (pointer to #80.4)
ICD_SYSTEM_NAME = {v: k for k, v in ICD_SYSTEM.items()}

# ORDER STATUS #100.01 as VistA numbers it; the model's lowercase words map onto these names.
ORDER_STATUS_TABLE: tuple[tuple[int, str, str], ...] = (
    (1, "DISCONTINUED", "dc"),
    (2, "COMPLETE", "c"),
    (3, "HOLD", "h"),
    (4, "FLAGGED", "f"),
    (5, "PENDING", "p"),
    (6, "ACTIVE", "a"),
    (7, "EXPIRED", "e"),
    (8, "SCHEDULED", "s"),
    (9, "PARTIAL RESULTS", "pr"),
    (10, "DELAYED", "dly"),
    (11, "UNRELEASED", "u"),
    (12, "DISCONTINUED/EDIT", "dce"),
    (13, "CANCELLED", "ca"),
    (14, "LAPSED", "l"),
    (15, "RENEWED", "rnw"),
    (99, "NO STATUS", "ns"),
)
# DISPLAY GROUP #100.98: the order kinds of the model (simplified: one group per kind).
DISPLAY_GROUP_TABLE: tuple[tuple[int, str, str], ...] = (
    (1, "LABORATORY", "lab"),
    (2, "PHARMACY", "medication"),
    (3, "CONSULTS", "consult"),
    (4, "IMAGING", "imaging"),
    (5, "NURSING", "nursing"),
)
ORDER_STATUS_NAME = {name.lower(): name for _i, name, _a in ORDER_STATUS_TABLE}  # "active" -> "ACTIVE"
ORDER_STATUS_WORD = {name: word for word, name in ORDER_STATUS_NAME.items()}
KIND_BY_GROUP = {name: kind for _i, name, kind in DISPLAY_GROUP_TABLE}
GROUP_BY_KIND = {kind: name for _i, name, kind in DISPLAY_GROUP_TABLE}


def _load_states() -> dict[str, tuple[int, str]]:
    text = resources.files("vistasim").joinpath("data/vista/states.tsv").read_text(encoding="utf-8")
    out: dict[str, tuple[int, str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            ien, name, abbr = line.split("\t")
            out[abbr] = (int(ien), name)
    return out


# --------------------------------------------------------------------------- pointer files

EntryNodes = list[tuple[tuple[Subscript, ...], str]]  # (subscripts after the IEN, value)


@dataclass
class PointerSpec:
    """How a pointer file is named, stored, and how an entry is made from a lookup key."""

    number: str
    name: str
    gname: str
    prefix: tuple[Subscript, ...]
    make: Callable[[Hashable], EntryNodes]  # entry nodes for a new key
    xref: Callable[[Hashable], list[tuple[str, Subscript]]]  # (xref name, value) pairs for a new key
    key_of: Callable[[dict[tuple[Subscript, ...], str]], Hashable | None]  # key of an existing entry
    reference: str | None = None  # ZWR file in vistasim/data/vista with the real entries
    fixed: tuple[tuple[int, str, str], ...] | None = None  # (IEN, NAME, abbreviation) rows
    preferred_ien: Callable[[Hashable], int | None] | None = None

    @property
    def filename(self) -> str:
        return f"{self.number}+{self.name}.zwr"

    @property
    def header_flags(self) -> str:
        return self.number


def _piece(value: str, n: int) -> str:
    parts = value.split("^")
    return parts[n - 1] if len(parts) >= n else ""


def _name_key(nodes: dict[tuple[Subscript, ...], str]) -> Hashable | None:
    zero = nodes.get((0,))
    return _piece(zero, 1) if zero is not None else None


def _b_on_name(key: Any) -> list[tuple[str, Subscript]]:
    name = str(key)
    return [("B", name[:30])] if name else []


_STATES = _load_states()


def _state_make(key: Any) -> EntryNodes:
    code = str(key)
    ien_name = _STATES.get(code)
    name = ien_name[1] if ien_name else code
    fips = f"{ien_name[0]:02d}" if ien_name else ""
    return [((0,), f"{name}^{code}^{fips}".rstrip("^"))]


def _state_key(nodes: dict[tuple[Subscript, ...], str]) -> Hashable | None:
    zero = nodes.get((0,))
    return _piece(zero, 2) if zero is not None else None


def _state_xref(key: Any) -> list[tuple[str, Subscript]]:
    code = str(key)
    name = _STATES[code][1] if code in _STATES else code
    return [("B", name[:30]), ("C", code)] if code else []


def _drug_make(key: Any) -> EntryNodes:
    name, rxnorm = key
    nodes: EntryNodes = [((0,), name), (("ND",), f"^{name}")]
    if rxnorm is not None:
        nodes.append((("RXN",), rxnorm))  # vistasim: RxNorm carried on the drug (VistA maps it via #50.68)
    return nodes


def _drug_key(nodes: dict[tuple[Subscript, ...], str]) -> Hashable | None:
    zero = nodes.get((0,))
    if zero is None:
        return None
    return (_piece(zero, 1), nodes.get(("RXN",)))


def _icd_make(key: Any) -> EntryNodes:
    code, system = key
    return [((0,), code), ((1,), ICD_SYSTEM.get(system, system))]


def _icd_key(nodes: dict[tuple[Subscript, ...], str]) -> Hashable | None:
    zero = nodes.get((0,))
    if zero is None:
        return None
    sys_code = _piece(nodes.get((1,), ""), 1)
    return (_piece(zero, 1), ICD_SYSTEM_NAME.get(sys_code, sys_code))


def _icd_xref(key: Any) -> list[tuple[str, Subscript]]:
    code = key[0]  # type: ignore[index]
    return [("BA", code + " ")] if code else []  # FileMan's "BA" index: code plus a space, so it is a string


def _coded_make(key: Any) -> EntryNodes:
    name, code, system = key
    return [((0,), name or "UNCODED"), (("CODE",), f"{code or ''}^{system or ''}")]


def _coded_key(nodes: dict[tuple[Subscript, ...], str]) -> Hashable | None:
    zero = nodes.get((0,))
    code = nodes.get(("CODE",))
    if zero is None or code is None:
        return None
    c, s = _piece(code, 1), _piece(code, 2)
    return (_piece(zero, 1), c or None, s or None)


def _orderable_make(key: Any) -> EntryNodes:
    code, system = key
    # NAME^ID, the ID in VistA's "code;coding system" form.
    return [((0,), f"{code or 'UNCODED'}^{code or ''};{system or ''}")]


def _orderable_key(nodes: dict[tuple[Subscript, ...], str]) -> Hashable | None:
    zero = nodes.get((0,))
    if zero is None:
        return None
    code, _semi, system = _piece(zero, 2).partition(";")
    return (code or None, system or None)


def _orderable_xref(key: Any) -> list[tuple[str, Subscript]]:
    return [("B", (key[0] or "UNCODED")[:30])]  # type: ignore[index]


def _simple_make(suffix: str = "") -> Callable[[Hashable], EntryNodes]:
    return lambda key: [((0,), f"{key}{suffix}")]


def _no_xref(key: Any) -> list[tuple[str, Subscript]]:
    return []


POINTER_SPECS: dict[str, PointerSpec] = {
    s.number: s
    for s in (
        PointerSpec("5", "STATE", "DIC", (5,), _state_make, _state_xref, _state_key,
                    preferred_ien=lambda k: _STATES[str(k)][0] if str(k) in _STATES else None),
        PointerSpec("10", "RACE", "DIC", (10,), _simple_make(), _b_on_name, _name_key),
        PointerSpec("10.2", "ETHNICITY", "DIC", ("10.2",), _simple_make(), _b_on_name, _name_key),
        PointerSpec("11", "MARITAL STATUS", "DIC", (11,), _simple_make(), _b_on_name, _name_key,
                    reference="11+MARITAL STATUS.zwr"),
        PointerSpec("21", "PERIOD OF SERVICE", "DIC", (21,), _simple_make(), _b_on_name, _name_key,
                    reference="21+PERIOD OF SERVICE (excerpt).zwr"),
        PointerSpec("23", "BRANCH OF SERVICE", "DIC", (23,), _simple_make(), _b_on_name, _name_key,
                    reference="23+BRANCH OF SERVICE.zwr"),
        PointerSpec("44", "HOSPITAL LOCATION", "SC", (), _simple_make("^^C"), _b_on_name, _name_key),
        PointerSpec("50", "DRUG", "PSDRUG", (), _drug_make, lambda k: _b_on_name(k[0]), _drug_key),  # type: ignore[index]
        PointerSpec("80", "ICD DIAGNOSIS", "ICD9", (), _icd_make, _icd_xref, _icd_key),
        PointerSpec("120.51", "GMRV VITAL TYPE", "GMRD", ("120.51",), _simple_make(), _b_on_name, _name_key,
                    reference="120.51+GMRV VITAL TYPE (excerpt).zwr"),
        PointerSpec("120.82", "GMR ALLERGIES", "GMRD", ("120.82",), _coded_make,
                    lambda k: _b_on_name(k[0] or "UNCODED"), _coded_key),  # type: ignore[index]
        PointerSpec("26.11", "PRF LOCAL FLAG", "DGPF", ("26.11",), _simple_make("^1"), _b_on_name, _name_key),
        PointerSpec("26.15", "PRF NATIONAL FLAG", "DGPF", ("26.15",), _simple_make("^1"), _b_on_name, _name_key),
        PointerSpec("100.01", "ORDER STATUS", "ORD", ("100.01",), _simple_make(), _b_on_name, _name_key,
                    fixed=ORDER_STATUS_TABLE),
        PointerSpec("100.98", "DISPLAY GROUP", "ORD", ("100.98",), _simple_make(), _b_on_name, _name_key,
                    fixed=DISPLAY_GROUP_TABLE),
        PointerSpec("101.43", "ORDERABLE ITEMS", "ORD", ("101.43",), _orderable_make, _orderable_xref,
                    _orderable_key),
        PointerSpec("9999999.27", "PROVIDER NARRATIVE", "AUTNPOV", (), _simple_make(), _b_on_name, _name_key),
    )
}


def pointer_roots() -> dict[tuple[str, Subscript], str]:
    """(global, first subscript or "") -> pointer file number, to route nodes when reading."""
    out: dict[tuple[str, Subscript], str] = {}
    for spec in POINTER_SPECS.values():
        out[(spec.gname, spec.prefix[0] if spec.prefix else "")] = spec.number
    return out


def reference_nodes(filename: str) -> list[Node]:
    """The nodes of a reference ZWR file shipped in ``vistasim/data/vista``."""
    path = resources.files("vistasim").joinpath(f"data/vista/{filename}")
    with resources.as_file(path) as p:
        _header, nodes = read_zwr(p)
    return nodes


class PointerTable:
    """One pointer file while writing: key -> IEN, creating entries on first use."""

    def __init__(self, spec: PointerSpec) -> None:
        self.spec = spec
        n = len(spec.prefix)
        self.entries: dict[int, dict[tuple[Subscript, ...], str]] = {}  # IEN -> {subs after IEN: value}
        self.other: list[Node] = []  # reference nodes that are not entries (header, DD, indexes)
        self.header: str | None = None
        self.index: dict[Hashable, int] = {}
        self.new_xrefs: list[tuple[str, Subscript, int]] = []
        if spec.reference:
            for gname, subs, value in reference_nodes(spec.reference):
                rest = subs[n:]
                if rest == (0,):
                    self.header = value
                elif rest and type(rest[0]) is int and rest[0] > 0:
                    self.entries.setdefault(rest[0], {})[rest[1:]] = value
                else:
                    self.other.append((gname, subs, value))
        if spec.fixed:
            for ien, name, abbr in spec.fixed:
                self.entries[ien] = {(0,): f"{name}^{abbr}"}
                self.new_xrefs.append(("B", name[:30], ien))
        for ien, nodes in self.entries.items():
            key = spec.key_of(nodes)
            if key is not None and key not in self.index:
                self.index[key] = ien

    def lookup(self, key: Hashable) -> int:
        """IEN of the entry for ``key``; a new entry when there is none yet."""
        ien = self.index.get(key)
        if ien is not None:
            return ien
        ien = self.spec.preferred_ien(key) if self.spec.preferred_ien else None
        if ien is None or ien in self.entries:
            ien = max(self.entries, default=0) + 1
        self.entries[ien] = dict(self.spec.make(key))
        self.index[key] = ien
        for xname, value in self.spec.xref(key):
            if value != "":
                self.new_xrefs.append((xname, value, ien))
        return ien

    def nodes(self) -> list[Node]:
        """Every node of the file, header first, in M collation order."""
        spec = self.spec
        g, pre = spec.gname, spec.prefix
        last = max(self.entries, default=0)
        if self.header is not None:
            pieces = self.header.split("^")
            pieces += [""] * (4 - len(pieces))
            pieces[2], pieces[3] = str(last), str(len(self.entries))
            header = "^".join(pieces)
        else:
            header = f"{spec.name}^{spec.header_flags}^{last}^{len(self.entries)}"
        out: list[Node] = [(g, pre + (0,), header)]
        for ien, nodes in self.entries.items():
            out.extend((g, pre + (ien,) + rest, value) for rest, value in nodes.items())
        out.extend(self.other)
        out.extend((g, pre + (x, v, ien), "") for x, v, ien in self.new_xrefs)
        out.sort(key=lambda nd: node_key(nd[1]))
        return out
