"""PatientRecord <-> FileMan global nodes: the layout of every field, both directions.

Encoding turns one patient into ZWR text, one block of lines per entry (``^DPT(DFN,...)``,
``^AUPNPROB(IEN,...)`` ...), already in M collation order inside the entry, plus the index entries
the station writer files under each global. Decoding turns the nodes of one entry back into the
dataclass. Pointer fields go through ``PointerTable`` (writing) and ``PointerResolver`` (reading).

Layout (piece numbers are FileMan's ``^``-pieces; VistA's own where it has the field, otherwise a
documented vistasim choice marked *):

``^DPT(DFN,0)``            1 NAME, 2 SEX, 3 DOB, 5 MARITAL STATUS (#11), 9 SSN
``^DPT(DFN,.02,1,0)``      RACE (#10) multiple; ``.06,1,0`` ETHNICITY (#10.2)
``^DPT(DFN,.11)``          1-3 street, 4 city, 5 STATE (#5), 6 zip
``^DPT(DFN,.13)``          1 home phone; ``.3`` 1 SC Y/N, 2 SC%; ``.35`` 1 date of death
``^DPT(DFN,.32)``          3 PERIOD OF SERVICE (#21), 5 BRANCH (#23), 6 entry, 7 separation
``^DPT(DFN,"MPI")``        1 ICN, 2 checksum; indexes ``"B"`` (name, 30 chars) and ``"SSN"``
``^AUPNPROB(IEN,0)``       1 ICD (#80, whose node 1 gives ICD-9-CM/ICD-10-CM), 2 DFN, 5 PROVIDER
                           NARRATIVE (#9999999.27, the description), 8 entered, 12 status, 13 onset;
                           node 1 piece 7 resolved; node 800 SNOMED CT; index ``"AC"`` by patient
``^GMR(120.8,IEN,0)``      1 DFN, 2 reactant, 3 GMR ALLERGY (``ien;GMRD(120.82,``, the coded
                           reactant*), 4 origination, 14 mechanism, 16 verified 1/0, 20 type;
                           ``10,n,0`` piece 2 reaction (OTHER REACTION text); ``"ER"`` 1 entered in
                           error; index ``"B"`` by patient
``^GMR(120.5,IEN,0)``      1 taken, 2 DFN, 3 VITAL TYPE (#120.51), 8 value; index ``"C"``* by patient
``^PSRX(IEN,0)``           1 Rx#, 2 DFN, 6 DRUG (#50), 7 qty, 8 days, 9 refills, 11 M/W, 13 issue;
                           ``"SIG1"`` word processing; ``"STA"`` status code; index ``"B"`` by Rx#
``^AUPNVSIT(IEN,0)``       1 date/time, 3 type, 5 DFN, 7 service category, 22 HOSPITAL LOCATION
                           (#44); index ``"C"`` by patient
``^OR(100,IEN,0)``*        1 order number, 2 ``DFN;DPT(``, 7 entered, 11 DISPLAY GROUP (#100.98, the
                           kind); ``.1,1,0`` ORDERABLE ITEM (#101.43, ID ``code;system``); ``3`` piece
                           3 STATUS (#100.01); ``8,1,0`` action: 1 entered, 2 ``NW``, 4 signature
                           status (1 electronic, 2 not signed); ``8,1,.1,n,0`` order text;
                           index ``"AC"``* by patient
``^DGPF(26.13,IEN,0)``     1 DFN, 2 FLAG (``ien;DGPF(26.15,`` category I, ``ien;DGPF(26.11,`` II),
                           3 status 1/0, 6 review due, 7 assigned*; index ``"B"`` by patient

Rules: free text may not contain ``^`` (FileMan forbids it in a piece; word-processing text may);
an empty optional code/field is read back as ``None``; lists come back in IEN order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from vistasim import _accel
from vistasim.errors import InputError
from vistasim.model import (
    Address,
    Allergy,
    Order,
    PatientRecord,
    Prescription,
    Problem,
    RecordFlag,
    Visit,
    Vital,
)
from vistasim.vista import layout as L
from vistasim.vista.fileman import _FM_CACHE, fm_to_iso, iso_to_fm
from vistasim.vista.zwr import _NUM_START, Subscript, format_value, is_canonic

__all__ = ["PatientEncoder", "EncodedPatient", "PointerResolver", "decode_patient", "DECODERS"]

_WP_WIDTH = 200  # characters per word-processing line (FileMan allows 245)

NodeMap = dict[tuple[Subscript, ...], str]  # subscripts after the IEN -> value


# --------------------------------------------------------------------------- small helpers


def _num(x: float) -> str:
    """A number as FileMan stores it: canonic (30.0 -> 30, 0.5 -> .5)."""
    if isinstance(x, int):
        return str(x)
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")
    if x == int(x) and abs(x) < 1e18:
        return str(int(x))
    s = format(Decimal(repr(x)), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s.startswith("0."):
        s = s[1:]
    elif s.startswith("-0."):
        s = "-" + s[2:]
    return s


def _chunks(text: str) -> list[str]:
    return [text[i : i + _WP_WIDTH] for i in range(0, len(text), _WP_WIDTH)]


def _piece(value: str, n: int) -> str:
    parts = value.split("^")
    return parts[n - 1] if len(parts) >= n else ""


def _pieces(value: str, n: int) -> list[str]:
    parts = value.split("^")
    if len(parts) < n:
        parts += [""] * (n - len(parts))
    return parts


def _opt_date(fm: str) -> str | None:
    return fm_to_iso(fm) if fm else None


def _fv(v: str) -> str:
    """``format_value`` with a fast path for the common case: printable text without quotes."""
    if '"' not in v and v.isprintable():
        if "^" in v or not v or v[0] not in _NUM_START or not is_canonic(v):
            return '"' + v + '"'
        return v
    return format_value(v)


class _Slow(Exception):
    """Internal: an entry needs the checked (slow) encoder, which raises the precise error or copes."""


_DATE_CACHE_LIMIT = 200_000


# --------------------------------------------------------------------------- encoding


@dataclass
class EncodedPatient:
    """One patient as ZWR text: per data file, (IEN, lines, line count) blocks and index entries."""

    blocks: dict[str, list[tuple[int, str, int]]] = field(default_factory=dict)  # file number -> blocks
    # file number -> (index name, value, IEN) entries; value is the DFN for by-patient indexes
    xrefs: dict[str, list[tuple[str, Subscript, int]]] = field(default_factory=dict)


class PatientEncoder:
    """Encodes patients against one station's pointer tables (which grow as patients need entries)."""

    def __init__(self, pointers: dict[str, L.PointerTable] | None = None) -> None:
        self.pointers = pointers if pointers is not None else {n: L.PointerTable(s) for n, s in L.POINTER_SPECS.items()}
        self._pid = ""
        self._dc: dict[object, str] = {None: ""}  # ISO date -> FileMan form, memo for the fast path
        # Bind each table's lookup once: the hot path calls them per entry.
        p = self.pointers
        self._state, self._race, self._eth = p["5"].lookup, p["10"].lookup, p["10.2"].lookup
        self._marital, self._period, self._branch = p["11"].lookup, p["21"].lookup, p["23"].lookup
        self._loc, self._drug, self._icd = p["44"].lookup, p["50"].lookup, p["80"].lookup
        self._vtype, self._reactant = p["120.51"].lookup, p["120.82"].lookup
        self._local_flag, self._nat_flag = p["26.11"].lookup, p["26.15"].lookup
        self._ostatus, self._group, self._orderable = p["100.01"].lookup, p["100.98"].lookup, p["101.43"].lookup
        self._narrative = p["9999999.27"].lookup

    # -- checks that name the patient and field, never the (possibly PHI) value
    def _bad(self, what: str, fix: str) -> InputError:
        return InputError(f"patient {self._pid}: {what}; {fix}")

    def _t(self, s: str, what: str) -> str:
        if not isinstance(s, str):
            raise self._bad(f"{what} must be a string", "pass text")
        if "^" in s:
            raise self._bad(f"{what} contains '^', which FileMan cannot store in a field", "remove the caret")
        return s

    def _d(self, iso: str | None, what: str) -> str:
        if iso is None:
            return ""
        try:
            return iso_to_fm(iso)
        except InputError:
            raise self._bad(f"{what} is not an ISO date of the model", "use YYYY[-MM[-DD[THH:MM:SS]]]") from None

    def _ien(self, ien: object, what: str) -> int:
        if type(ien) is not int or ien <= 0:
            raise self._bad(f"{what} IEN must be a positive integer", "assign unique IENs from 1")
        return ien

    def _code(self, value: str, table: dict, what: str) -> str:
        code = table.get(value)
        if code is None:
            raise self._bad(f"{what} {value!r} is not one of {sorted(table)}", "use a value of the model")
        return code

    def encode(self, p: PatientRecord) -> EncodedPatient:
        self._pid = f"{p.station}:{p.dfn}"
        dfn = self._ien(p.dfn, "DFN")
        out = EncodedPatient()
        out.blocks["2"] = [self._patient(p, dfn)]
        x: list[tuple[str, Subscript, int]] = [("B", self._t(p.name, "NAME")[:30], dfn)] if p.name else []
        if p.ssn:
            x.append(("SSN", self._t(p.ssn, "SSN"), dfn))
        out.xrefs["2"] = x
        for number, items, enc, xname in (
            ("9000011", p.problems, self._problem, "AC"),
            ("120.8", p.allergies, self._allergy, "B"),
            ("120.5", p.vitals, self._vital, "C"),
            ("52", p.prescriptions, self._prescription, None),
            ("9000010", p.visits, self._visit, "C"),
            ("100", p.orders, self._order, "AC"),
            ("26.13", p.flags, self._flag, "B"),
        ):
            if not items:
                continue
            blocks = [enc(item, dfn) for item in items]  # type: ignore[operator, arg-type]
            out.blocks[number] = blocks
            if xname is not None:
                out.xrefs[number] = [(xname, dfn, b[0]) for b in blocks]
        if p.prescriptions:
            out.xrefs["52"] = [("B", self._t(rx.rx_number, "Rx number"), rx.ien) for rx in p.prescriptions if rx.rx_number]
        return out

    # -- one block per entry; lines in M collation order within the entry
    def _patient(self, p: PatientRecord, dfn: int) -> tuple[int, str, int]:
        t, d = self._t, self._d
        r = f"^DPT({dfn},"
        marital = str(self._marital(t(p.marital_status, "MARITAL STATUS"))) if p.marital_status else ""
        zero = "^".join(
            (t(p.name, "NAME"), t(p.sex, "SEX"), d(p.dob, "DOB"), "", marital, "", "", "", t(p.ssn, "SSN"))
        ).rstrip("^")
        lines = [f"{r}0)={format_value(zero)}\n"]
        if p.race:
            ptr = self._race(t(p.race, "RACE"))
            lines += [f'{r}.02,0)="^2.02PA^1^1"\n', f"{r}.02,1,0)={ptr}\n", f'{r}.02,"B",{ptr},1)=""\n']
        if p.ethnicity:
            ptr = self._eth(t(p.ethnicity, "ETHNICITY"))
            lines += [f'{r}.06,0)="^2.06PA^1^1"\n', f"{r}.06,1,0)={ptr}\n", f'{r}.06,"B",{ptr},1)=""\n']
        a = p.address
        state = str(self._state(t(a.state, "STATE"))) if a.state else ""
        addr = "^".join(
            (t(a.street1, "STREET 1"), t(a.street2, "STREET 2"), t(a.street3, "STREET 3"), t(a.city, "CITY"),
             state, t(a.zip, "ZIP"))
        ).rstrip("^")
        if addr:
            lines.append(f"{r}.11)={format_value(addr)}\n")
        if p.phone_home:
            lines.append(f"{r}.13)={format_value(t(p.phone_home, 'PHONE'))}\n")
        if p.service_connected or p.sc_percent is not None:
            pct = "" if p.sc_percent is None else str(int(p.sc_percent))
            lines.append(f"{r}.3)={format_value(('Y' if p.service_connected else 'N') + '^' + pct)}\n")
        period = str(self._period(t(p.period_of_service, "PERIOD OF SERVICE"))) if p.period_of_service else ""
        branch = str(self._branch(t(p.branch, "BRANCH"))) if p.branch else ""
        mil = "^".join(
            ("", "", period, "", branch, d(p.service_entry, "SERVICE ENTRY"),
             d(p.service_separation, "SERVICE SEPARATION"))
        ).rstrip("^")
        if mil:
            lines.append(f"{r}.32)={format_value(mil)}\n")
        if p.date_of_death is not None:
            lines.append(f"{r}.35)={d(p.date_of_death, 'DATE OF DEATH')}\n")
        mpi = (t(p.icn, "ICN") + "^" + t(p.icn_checksum, "ICN checksum")).rstrip("^")
        if mpi:
            lines.append(f'{r}"MPI")={format_value(mpi)}\n')
        return dfn, "".join(lines), len(lines)

    def _problem(self, pr: Problem, dfn: int) -> tuple[int, str, int]:
        t, d = self._t, self._d
        ien = self._ien(pr.ien, "problem")
        r = f"^AUPNPROB({ien},"
        icd = self._icd((t(pr.icd_code, "problem ICD code"), t(pr.icd_system, "problem ICD system")))
        narr = str(self._narrative(t(pr.description, "problem description"))) if pr.description else ""
        zero = f"{icd}^{dfn}^^^{narr}^^^{d(pr.entered, 'problem entered')}^^^^{t(pr.status, 'problem status')}^" \
               f"{d(pr.onset, 'problem onset')}".rstrip("^")
        lines = [f"{r}0)={format_value(zero)}\n"]
        if pr.resolved is not None:
            lines.append(f'{r}1)="^^^^^^{d(pr.resolved, "problem resolved")}"\n')
        if pr.snomed is not None:
            lines.append(f"{r}800)={format_value(t(pr.snomed, 'problem SNOMED'))}\n")
        return ien, "".join(lines), len(lines)

    def _allergy(self, al: Allergy, dfn: int) -> tuple[int, str, int]:
        t, d = self._t, self._d
        ien = self._ien(al.ien, "allergy")
        r = f"^GMR(120.8,{ien},"
        reactant = t(al.reactant, "allergy reactant")
        vptr = ""
        if al.code is not None or al.code_system is not None:
            key = (reactant, t(al.code or "", "allergy code") or None, t(al.code_system or "", "allergy code system") or None)
            vptr = f"{self._reactant(key)};GMRD(120.82,"
        verified = "1" if al.verified else "0"
        zero = (
            f"{dfn}^{reactant}^{vptr}^{d(al.origination, 'allergy origination')}^^^^^^^^^^"
            f"{t(al.mechanism, 'allergy mechanism')}^^{verified}^^^^{t(al.allergy_type, 'allergy type')}"
        ).rstrip("^")
        lines = [f"{r}0)={format_value(zero)}\n"]
        if al.reactions:
            n = len(al.reactions)
            lines.append(f'{r}10,0)="^120.81PA^{n}^{n}"\n')
            for i, reaction in enumerate(al.reactions, 1):
                lines.append(f"{r}10,{i},0)={format_value('^' + t(reaction, 'allergy reaction'))}\n")
        if al.status != "active":
            if al.status != "entered-in-error":
                raise self._bad(f"allergy status {al.status!r} is not active or entered-in-error", "use one of those")
            lines.append(f'{r}"ER")=1\n')
        return ien, "".join(lines), len(lines)

    def _vital(self, v: Vital, dfn: int) -> tuple[int, str, int]:
        t = self._t
        ien = self._ien(v.ien, "vital")
        vtype = self._vtype(t(v.vital_type, "vital type")) if v.vital_type else ""
        zero = f"{self._d(v.taken, 'vital taken')}^{dfn}^{vtype}^^^^^{t(v.value, 'vital value')}".rstrip("^")
        return ien, f"^GMR(120.5,{ien},0)={format_value(zero)}\n", 1

    def _prescription(self, rx: Prescription, dfn: int) -> tuple[int, str, int]:
        t = self._t
        ien = self._ien(rx.ien, "prescription")
        r = f"^PSRX({ien},"
        drug = self._drug((t(rx.drug_name, "drug name"), None if rx.rxnorm is None else t(rx.rxnorm, "RxNorm")))
        try:
            qty, days, refills = _num(rx.quantity), str(int(rx.days_supply)), str(int(rx.refills))
        except (TypeError, ValueError):
            raise self._bad("prescription quantity, days supply or refills is not a number", "pass numbers") from None
        zero = (
            f"{t(rx.rx_number, 'Rx number')}^{dfn}^^^^{drug}^{qty}^{days}^{refills}^^"
            f"{t(rx.fill_routing, 'fill routing')}^^{self._d(rx.issue_date, 'issue date')}"
        ).rstrip("^")
        lines = [f"{r}0)={format_value(zero)}\n"]
        if rx.sig:
            chunks = _chunks(rx.sig)
            lines.append(f'{r}"SIG1",0)="^^{len(chunks)}^{len(chunks)}"\n')
            lines += [f'{r}"SIG1",{i},0)={format_value(c)}\n' for i, c in enumerate(chunks, 1)]
        lines.append(f'{r}"STA")={self._code(rx.status, L.RX_STATUS, "prescription status")}\n')
        return ien, "".join(lines), len(lines)

    def _visit(self, v: Visit, dfn: int) -> tuple[int, str, int]:
        t = self._t
        ien = self._ien(v.ien, "visit")
        loc = str(self._loc(t(v.location, "visit location"))) if v.location else ""
        zero = (
            f"{self._d(v.when, 'visit date')}^^{t(v.visit_type, 'visit type')}^^{dfn}^^"
            f"{t(v.service_category, 'service category')}^^^^^^^^^^^^^^^{loc}"
        ).rstrip("^")
        return ien, f"^AUPNVSIT({ien},0)={format_value(zero)}\n", 1

    def _order(self, o: Order, dfn: int) -> tuple[int, str, int]:
        t = self._t
        ien = self._ien(o.ien, "order")
        r = f"^OR(100,{ien},"
        kind = t(o.kind, "order kind")
        group = self._group(L.GROUP_BY_KIND.get(kind, kind)) if kind else ""
        entered = self._d(o.entered, "order entered")
        zero = f"{ien}^{dfn};DPT(^^^^^{entered}^^^^{group}".rstrip("^")
        lines = [f"{r}0)={format_value(zero)}\n"]
        if o.code is not None or o.code_system is not None:
            key = (t(o.code or "", "order code") or None, t(o.code_system or "", "order code system") or None)
            for part in key:
                if part is not None and ";" in part:
                    raise self._bad("order code or code system contains ';'", "remove it")
            lines += [f'{r}.1,0)="^100.001PA^1^1"\n', f"{r}.1,1,0)={self._orderable(key)}\n"]
        status = t(o.status, "order status")
        if status:
            lines.append(f'{r}3)="^^{self._ostatus(L.ORDER_STATUS_NAME.get(status, status))}"\n')
        signed = L.ORDER_SIGNED[bool(o.signed)]
        lines += [f'{r}8,0)="^100.008DA^1^1"\n', f'{r}8,1,0)={format_value(f"{entered}^NW^^{signed}")}\n']
        if o.text:
            chunks = _chunks(o.text)
            lines.append(f'{r}8,1,.1,0)="^^{len(chunks)}^{len(chunks)}"\n')
            lines += [f"{r}8,1,.1,{i},0)={format_value(c)}\n" for i, c in enumerate(chunks, 1)]
        return ien, "".join(lines), len(lines)

    def _flag(self, f: RecordFlag, dfn: int) -> tuple[int, str, int]:
        t, d = self._t, self._d
        ien = self._ien(f.ien, "record flag")
        name = t(f.flag, "flag name")
        if f.category == "I":
            vptr = f"{self._nat_flag(name)};DGPF(26.15,"
        elif f.category == "II":
            vptr = f"{self._local_flag(name)};DGPF(26.11,"
        else:
            raise self._bad(f"flag category {f.category!r} is not I or II", "use I (national) or II (local)")
        status = self._code(f.status, L.FLAG_STATUS, "flag status")
        zero = f"{dfn}^{vptr}^{status}^^^{d(f.review_due, 'flag review')}^{d(f.assigned, 'flag assigned')}".rstrip("^")
        return ien, f"^DGPF(26.13,{ien},0)={format_value(zero)}\n", 1


    # -- fast path -------------------------------------------------------------------------------
    # Each ``_f_*`` method first checks every field of the entry without side effects (types, carets,
    # codes, dates through a memo). If anything looks off it hands the whole entry to the checked
    # method above, which raises the precise error (or copes, e.g. a None where "" is meant), so
    # errors and pointer-table growth are exactly as before. Otherwise it makes the pointer lookups
    # in the same order as the checked method and builds the same bytes with direct string joins.

    def _date(self, iso: object) -> str:
        """FileMan form of an ISO date (``None`` -> ``""``) through a memo; raises _Slow when invalid."""
        try:
            fm = self._dc.get(iso)  # type: ignore[call-overload]
        except TypeError:
            raise _Slow() from None
        if fm is not None:
            return fm
        try:
            fm = iso_to_fm(iso)  # type: ignore[arg-type]
        except InputError:
            raise _Slow() from None
        dc = self._dc
        if len(dc) >= _DATE_CACHE_LIMIT:
            dc.clear()
            dc[None] = ""
        dc[iso] = fm
        return fm

    def encode_parts(
        self, p: PatientRecord
    ) -> tuple[list[tuple[str, list[tuple[int, str, int]], str | None]], list[tuple[str, str, Subscript, int]]]:
        """One patient -> ([(file number, blocks, by-patient index name)], [(file, index, value, IEN)]).

        ``blocks`` are (IEN, lines, line count) in the patient's list order; the first list holds the
        patient file, whose text-keyed indexes (NAME, SSN, Rx number) come in the second list.
        """
        self._pid = f"{p.station}:{p.dfn}"
        dfn = self._ien(p.dfn, "DFN")
        files: list[tuple[str, list[tuple[int, str, int]], str | None]] = [("2", [self._f_patient(p, dfn)], None)]
        name = p.name
        sx: list[tuple[str, str, Subscript, int]] = [("2", "B", name[:30], dfn)] if name else []
        if p.ssn:
            sx.append(("2", "SSN", p.ssn, dfn))
        if p.problems:
            files.append(("9000011", [self._f_problem(x, dfn) for x in p.problems], "AC"))
        if p.allergies:
            files.append(("120.8", [self._f_allergy(x, dfn) for x in p.allergies], "B"))
        if p.vitals:
            files.append(("120.5", [self._f_vital(x, dfn) for x in p.vitals], "C"))
        if p.prescriptions:
            files.append(("52", [self._f_prescription(x, dfn) for x in p.prescriptions], None))
            sx += [("52", "B", rx.rx_number, rx.ien) for rx in p.prescriptions if rx.rx_number]
        if p.visits:
            files.append(("9000010", [self._f_visit(x, dfn) for x in p.visits], "C"))
        if p.orders:
            files.append(("100", [self._f_order(x, dfn) for x in p.orders], "AC"))
        if p.flags:
            files.append(("26.13", [self._f_flag(x, dfn) for x in p.flags], "B"))
        return files, sx

    def _f_patient(self, p: PatientRecord, dfn: int) -> tuple[int, str, int]:
        a = p.address
        try:
            name, sex, ssn, marital, race, eth = p.name, p.sex, p.ssn, p.marital_status, p.race, p.ethnicity
            s1, s2, s3, city, st, zip_ = a.street1, a.street2, a.street3, a.city, a.state, a.zip
            phone, period, branch, icn, icn_ck = p.phone_home, p.period_of_service, p.branch, p.icn, p.icn_checksum
            if "^" in "".join((name, sex, ssn, marital, race, eth, s1, s2, s3, city, st, zip_, phone, period,
                               branch, icn, icn_ck)):
                raise _Slow()
            date = self._date
            dob, entry, sep = date(p.dob), date(p.service_entry), date(p.service_separation)
            dod = None if p.date_of_death is None else date(p.date_of_death)
            sc, pct_v = p.service_connected, p.sc_percent
            pct = "" if pct_v is None else str(int(pct_v))
        except (TypeError, ValueError, _Slow):
            return self._patient(p, dfn)
        r = f"^DPT({dfn},"
        mptr = str(self._marital(marital)) if marital else ""
        zero = f"{name}^{sex}^{dob}^^{mptr}^^^^{ssn}".rstrip("^")
        lines = [f"{r}0)={_fv(zero)}\n"]
        if race:
            ptr = self._race(race)
            lines.append(f'{r}.02,0)="^2.02PA^1^1"\n{r}.02,1,0)={ptr}\n{r}.02,"B",{ptr},1)=""\n')
        if eth:
            ptr = self._eth(eth)
            lines.append(f'{r}.06,0)="^2.06PA^1^1"\n{r}.06,1,0)={ptr}\n{r}.06,"B",{ptr},1)=""\n')
        state = str(self._state(st)) if st else ""
        n = 1 + (3 if race else 0) + (3 if eth else 0)
        addr = f"{s1}^{s2}^{s3}^{city}^{state}^{zip_}".rstrip("^")
        if addr:
            lines.append(f"{r}.11)={_fv(addr)}\n")
            n += 1
        if phone:
            lines.append(f"{r}.13)={_fv(phone)}\n")
            n += 1
        if sc or pct_v is not None:
            lines.append(f"{r}.3)={_fv(('Y^' if sc else 'N^') + pct)}\n")
            n += 1
        pptr = str(self._period(period)) if period else ""
        bptr = str(self._branch(branch)) if branch else ""
        mil = f"^^{pptr}^^{bptr}^{entry}^{sep}".rstrip("^")
        if mil:
            lines.append(f"{r}.32)={_fv(mil)}\n")
            n += 1
        if dod is not None:
            lines.append(f"{r}.35)={dod}\n")
            n += 1
        mpi = f"{icn}^{icn_ck}".rstrip("^")
        if mpi:
            lines.append(f'{r}"MPI")={_fv(mpi)}\n')
            n += 1
        return dfn, "".join(lines), n

    def _f_problem(self, pr: Problem, dfn: int) -> tuple[int, str, int]:
        ien = pr.ien
        try:
            code, system, desc, status, snomed = pr.icd_code, pr.icd_system, pr.description, pr.status, pr.snomed
            if type(ien) is not int or ien <= 0 or "^" in "".join((code, system, desc, status, "" if snomed is None else snomed)):
                raise _Slow()
            date = self._date
            entered, onset = date(pr.entered), date(pr.onset)
            resolved = None if pr.resolved is None else date(pr.resolved)
        except (TypeError, _Slow):
            return self._problem(pr, dfn)
        icd = self._icd((code, system))
        narr = str(self._narrative(desc)) if desc else ""
        zero = f"{icd}^{dfn}^^^{narr}^^^{entered}^^^^{status}^{onset}".rstrip("^")
        text = f"^AUPNPROB({ien},0)={_fv(zero)}\n"
        n = 1
        if resolved is not None:
            text += f'^AUPNPROB({ien},1)="^^^^^^{resolved}"\n'
            n += 1
        if snomed is not None:
            text += f"^AUPNPROB({ien},800)={_fv(snomed)}\n"
            n += 1
        return ien, text, n

    def _f_allergy(self, al: Allergy, dfn: int) -> tuple[int, str, int]:
        ien = al.ien
        try:
            reactant, code, system, mech, atype = al.reactant, al.code, al.code_system, al.mechanism, al.allergy_type
            reactions, status = al.reactions, al.status
            if (
                type(ien) is not int
                or ien <= 0
                or (status != "active" and status != "entered-in-error")
                or "^" in "".join((reactant, code or "", system or "", mech, atype, *reactions))
            ):
                raise _Slow()
            orig = self._date(al.origination)
        except (TypeError, _Slow):
            return self._allergy(al, dfn)
        r = f"^GMR(120.8,{ien},"
        vptr = ""
        if code is not None or system is not None:
            vptr = f"{self._reactant((reactant, code or None, system or None))};GMRD(120.82,"
        zero = (
            f"{dfn}^{reactant}^{vptr}^{orig}^^^^^^^^^^{mech}^^{'1' if al.verified else '0'}^^^^{atype}"
        ).rstrip("^")
        lines = [f"{r}0)={_fv(zero)}\n"]
        n = 1
        if reactions:
            k = len(reactions)
            lines.append(f'{r}10,0)="^120.81PA^{k}^{k}"\n')
            lines += [f"{r}10,{i},0)={_fv('^' + x)}\n" for i, x in enumerate(reactions, 1)]
            n += 1 + k
        if status != "active":
            lines.append(f'{r}"ER")=1\n')
            n += 1
        return ien, "".join(lines), n

    def _f_vital(self, v: Vital, dfn: int) -> tuple[int, str, int]:
        ien, vt, val = v.ien, v.vital_type, v.value
        try:
            if type(ien) is not int or ien <= 0 or "^" in "".join((vt, val)):
                raise _Slow()
            taken = self._date(v.taken)
        except (TypeError, _Slow):
            return self._vital(v, dfn)
        vtype = self._vtype(vt) if vt else ""
        return ien, f"^GMR(120.5,{ien},0)={_fv(f'{taken}^{dfn}^{vtype}^^^^^{val}'.rstrip('^'))}\n", 1

    def _f_prescription(self, rx: Prescription, dfn: int) -> tuple[int, str, int]:
        ien = rx.ien
        try:
            name, rxnorm, number, routing, sig = rx.drug_name, rx.rxnorm, rx.rx_number, rx.fill_routing, rx.sig
            status = L.RX_STATUS.get(rx.status)
            if (
                type(ien) is not int
                or ien <= 0
                or status is None
                or (sig and type(sig) is not str)
                or "^" in "".join((name, "" if rxnorm is None else rxnorm, number, routing))
            ):
                raise _Slow()
            qty, days, refills = _num(rx.quantity), str(int(rx.days_supply)), str(int(rx.refills))
            issued = self._date(rx.issue_date)
        except (TypeError, ValueError, _Slow):
            return self._prescription(rx, dfn)
        r = f"^PSRX({ien},"
        drug = self._drug((name, rxnorm))
        zero = f"{number}^{dfn}^^^^{drug}^{qty}^{days}^{refills}^^{routing}^^{issued}".rstrip("^")
        lines = [f"{r}0)={_fv(zero)}\n"]
        n = 2
        if sig:
            chunks = _chunks(sig)
            k = len(chunks)
            lines.append(f'{r}"SIG1",0)="^^{k}^{k}"\n')
            lines += [f'{r}"SIG1",{i},0)={_fv(c)}\n' for i, c in enumerate(chunks, 1)]
            n += 1 + k
        lines.append(f'{r}"STA")={status}\n')
        return ien, "".join(lines), n

    def _f_visit(self, v: Visit, dfn: int) -> tuple[int, str, int]:
        ien, loc, vtype, cat = v.ien, v.location, v.visit_type, v.service_category
        try:
            if type(ien) is not int or ien <= 0 or "^" in "".join((loc, vtype, cat)):
                raise _Slow()
            when = self._date(v.when)
        except (TypeError, _Slow):
            return self._visit(v, dfn)
        lptr = str(self._loc(loc)) if loc else ""
        zero = f"{when}^^{vtype}^^{dfn}^^{cat}^^^^^^^^^^^^^^^{lptr}".rstrip("^")
        return ien, f"^AUPNVSIT({ien},0)={_fv(zero)}\n", 1

    def _f_order(self, o: Order, dfn: int) -> tuple[int, str, int]:
        ien = o.ien
        try:
            kind, status, code, system, text = o.kind, o.status, o.code, o.code_system, o.text
            c, s = code or "", system or ""
            if (
                type(ien) is not int
                or ien <= 0
                or (text and type(text) is not str)
                or ";" in c
                or ";" in s
                or "^" in "".join((kind, status, c, s))
            ):
                raise _Slow()
            entered = self._date(o.entered)
            signed = L.ORDER_SIGNED[bool(o.signed)]
        except (TypeError, _Slow):
            return self._order(o, dfn)
        r = f"^OR(100,{ien},"
        group = self._group(L.GROUP_BY_KIND.get(kind, kind)) if kind else ""
        zero = f"{ien}^{dfn};DPT(^^^^^{entered}^^^^{group}".rstrip("^")
        lines = [f"{r}0)={_fv(zero)}\n"]
        n = 3
        if code is not None or system is not None:
            lines.append(f'{r}.1,0)="^100.001PA^1^1"\n{r}.1,1,0)={self._orderable((c or None, s or None))}\n')
            n += 2
        if status:
            lines.append(f'{r}3)="^^{self._ostatus(L.ORDER_STATUS_NAME.get(status, status))}"\n')
            n += 1
        lines.append(f'{r}8,0)="^100.008DA^1^1"\n{r}8,1,0)={_fv(f"{entered}^NW^^{signed}")}\n')
        if text:
            chunks = _chunks(text)
            k = len(chunks)
            lines.append(f'{r}8,1,.1,0)="^^{k}^{k}"\n')
            lines += [f"{r}8,1,.1,{i},0)={_fv(c)}\n" for i, c in enumerate(chunks, 1)]
            n += 1 + k
        return ien, "".join(lines), n

    def _f_flag(self, f: RecordFlag, dfn: int) -> tuple[int, str, int]:
        ien, name, cat = f.ien, f.flag, f.category
        try:
            status = L.FLAG_STATUS.get(f.status)
            if (
                type(ien) is not int
                or ien <= 0
                or status is None
                or (cat != "I" and cat != "II")
                or "^" in name
                or type(name) is not str
            ):
                raise _Slow()
            review, assigned = self._date(f.review_due), self._date(f.assigned)
        except (TypeError, _Slow):
            return self._flag(f, dfn)
        vptr = f"{self._nat_flag(name)};DGPF(26.15," if cat == "I" else f"{self._local_flag(name)};DGPF(26.11,"
        zero = f"{dfn}^{vptr}^{status}^^^{review}^{assigned}".rstrip("^")
        return ien, f"^DGPF(26.13,{ien},0)={_fv(zero)}\n", 1


# --------------------------------------------------------------------------- decoding
#
# A data entry is read back as {subscripts after the IEN, as canonic ZWR text: value}, e.g.
# {"0": "...", ".02,1,0": "1", '"MPI"': "..."} (the station reader keys them so, however a line was
# written); pointer-file entries keep subscript tuples. Pieces are split once per node, padded by
# appending carets, and dates go through fileman's memo first: these run once per entry read.

TextNodeMap = dict[str, str]  # data entry: canonic subscript text after the IEN -> value

_FMC = _FM_CACHE  # FileMan date -> ISO, fileman's own memo (cleared in place when it grows)


def _date(fm: str) -> str | None:
    """``_opt_date`` through the memo: "" -> None."""
    if not fm:
        return None
    iso = _FMC.get(fm)
    return iso if iso is not None else fm_to_iso(fm)


class PointerResolver:
    """Pointer files read back: IEN -> entry nodes, with the lookups the decoders need.

    ``name`` and ``key`` are memoised per (file, pointer text): the tables are complete before the
    first lookup (the reader restarts if a pointer entry comes after decoding began); ``clear``
    drops the memo if they change.
    """

    def __init__(self, tables: dict[str, dict[int, NodeMap]]) -> None:
        self.tables = tables
        # pointer text -> name, per file: the decoders look here first (a dict get, not a method call)
        self.names: dict[str, dict[str, str]] = {number: {} for number in L.POINTER_SPECS}
        self._names = self.names
        self._keys: dict[str, dict[str, object]] = {}

    def clear(self) -> None:
        for memo in self.names.values():
            memo.clear()
        self._keys.clear()

    def entry(self, number: str, ptr: str, where: str) -> NodeMap:
        try:
            return self.tables[number][int(ptr)]
        except (KeyError, ValueError):
            spec = L.POINTER_SPECS[number]
            raise InputError(
                f"{where} points to {spec.name} (#{number}) entry {ptr!r}, which is not in {spec.filename}; "
                "export the pointer file with the data"
            ) from None

    def name(self, number: str, ptr: str, where: str) -> str:
        memo = self._names.get(number)
        if memo is None:
            memo = self._names[number] = {}
        else:
            name = memo.get(ptr)
            if name is not None:
                return name
        name = _piece(self.entry(number, ptr, where).get((0,), ""), 1) if ptr else ""
        memo[ptr] = name
        return name

    def key(self, number: str, ptr: str, where: str):  # type: ignore[no-untyped-def]
        memo = self._keys.get(number)
        if memo is None:
            memo = self._keys[number] = {}
        elif ptr in memo:
            return memo[ptr]
        key = memo[ptr] = L.POINTER_SPECS[number].key_of(self.entry(number, ptr, where))
        return key


def decode_patient(station: str, dfn: int, n: TextNodeMap, ptr: PointerResolver, where: str) -> PatientRecord:
    """^DPT(DFN,...) nodes -> PatientRecord (clinical lists empty; the reader appends them)."""
    z = (n.get("0", "") + "^^^^^^^^").split("^")  # at least 9 pieces
    a = (n.get(".11", "") + "^^^^^").split("^")  # at least 6
    sc = n.get(".3")
    mil = (n.get(".32", "") + "^^^^^^").split("^")  # at least 7
    mpi = (n.get('"MPI"', "") + "^").split("^")
    race = n.get(".02,1,0")
    eth = n.get(".06,1,0")
    state = ptr.key("5", a[4], where) if a[4] else ""
    names = ptr.names
    # fields in the model's order, evaluated in that order (the first bad one raises, as before)
    dob = _date(z[2])
    marital = names["11"].get(z[4])
    if marital is None:
        marital = ptr.name("11", z[4], where)
    race = ptr.name("10", race, where) if race else ""
    eth = ptr.name("10.2", eth, where) if eth else ""
    if sc is None:
        connected, percent = False, None
    else:
        sc_pieces = (sc + "^").split("^")
        connected = sc_pieces[0] == "Y"
        percent = int(sc_pieces[1]) if sc_pieces[1] else None
    period = names["21"].get(mil[2])
    if period is None:
        period = ptr.name("21", mil[2], where)
    branch = names["23"].get(mil[4])
    if branch is None:
        branch = ptr.name("23", mil[4], where)
    return PatientRecord(
        station,
        dfn,
        z[0],
        z[1],
        dob,
        z[8],
        mpi[0],
        mpi[1],
        marital,
        race,
        eth,
        Address(a[0], a[1], a[2], a[3], state, a[5]),  # type: ignore[arg-type]
        _piece(n.get(".13", ""), 1),
        connected,
        percent,
        period,
        branch,
        _date(mil[5]),
        _date(mil[6]),
        _date(_piece(n.get(".35", ""), 1)),
    )


# The decoders below pass the dataclass fields positionally, in the model's field order (faster than
# keywords), and evaluate them in that order, so the first bad field raises as before.


def _problem(ien: int, n: TextNodeMap, ptr: PointerResolver, where: str) -> tuple[int, Problem]:
    z = (n.get("0", "") + "^^^^^^^^^^^^").split("^")  # at least 13 pieces
    code, system = ptr.key("80", z[0], where)
    entered, onset = z[7], z[12]
    resolved = n.get("1")
    if resolved is not None:
        resolved = _piece(resolved, 7)
    dfn = int(z[1])
    description = ptr.names["9999999.27"].get(z[4])
    if description is None:
        description = ptr.name("9999999.27", z[4], where)
    return dfn, Problem(
        ien,
        code,
        system,
        description,
        n.get("800"),
        z[11],
        ((_FMC.get(entered) or fm_to_iso(entered)) if entered else None),
        ((_FMC.get(onset) or fm_to_iso(onset)) if onset else None),
        ((_FMC.get(resolved) or fm_to_iso(resolved)) if resolved else None),
    )


def _allergy(ien: int, n: TextNodeMap, ptr: PointerResolver, where: str) -> tuple[int, Allergy]:
    z = (n.get("0", "") + "^^^^^^^^^^^^^^^^^^^").split("^")  # at least 20 pieces
    code = system = None
    if z[2]:
        ien_s, _semi, _root = z[2].partition(";")
        _name, code, system = ptr.key("120.82", ien_s, where)
    count = _piece(n.get("10,0", ""), 4)
    reactions = [_piece(n.get(f"10,{i},0", ""), 2) for i in range(1, int(count) + 1)] if count else []
    orig = z[3]
    return int(z[0]), Allergy(
        ien,
        z[1],
        z[19],
        z[13],
        z[15] == "1",
        ((_FMC.get(orig) or fm_to_iso(orig)) if orig else None),
        code,
        system,
        "entered-in-error" if _piece(n.get('"ER"', ""), 1) == "1" else "active",
        reactions,
    )


def _vital(ien: int, n: TextNodeMap, ptr: PointerResolver, where: str) -> tuple[int, Vital]:
    z = (n.get("0", "") + "^^^^^^^").split("^")  # at least 8 pieces
    dfn = int(z[1])
    taken = z[0]
    taken = (_FMC.get(taken) or fm_to_iso(taken)) if taken else ""
    vtype = ptr.names["120.51"].get(z[2])
    if vtype is None:
        vtype = ptr.name("120.51", z[2], where)
    return dfn, Vital(ien, taken, vtype, z[7])


def _wp(n: TextNodeMap, prefix: str) -> str:
    """Word-processing text under ``prefix`` (subscript text ending in a comma, e.g. ``"SIG1",``)."""
    header = n.get(prefix + "0")
    if header is None:
        return ""
    count = _piece(header, 3)
    if count == "1":  # the common case: one line
        return n.get(prefix + "1,0", "")
    return "".join([n.get(f"{prefix}{i},0", "") for i in range(1, int(count or 0) + 1)])


def _number(s: str) -> float:
    return float(s) if s else 0.0


def _prescription(ien: int, n: TextNodeMap, ptr: PointerResolver, where: str) -> tuple[int, Prescription]:
    z = (n.get("0", "") + "^^^^^^^^^^^^").split("^")  # at least 13 pieces
    name, rxnorm = ptr.key("50", z[5], where) if z[5] else ("", None)
    sta = n.get('"STA"', "0")
    status = L.RX_STATUS_NAME.get(sta)
    if status is None:
        raise InputError(f"{where}: prescription {ien} has status code {sta!r}, not one VistA defines; fix the export")
    issued = z[12]
    return int(z[1]), Prescription(
        ien,
        z[0],
        name,
        rxnorm,
        float(z[6]) if z[6] else 0.0,
        int(z[7] or 0),
        int(z[8] or 0),
        ((_FMC.get(issued) or fm_to_iso(issued)) if issued else None),
        status,
        z[10],
        _wp(n, '"SIG1",'),
    )


def _visit(ien: int, n: TextNodeMap, ptr: PointerResolver, where: str) -> tuple[int, Visit]:
    z = (n.get("0", "") + "^^^^^^^^^^^^^^^^^^^^^").split("^")  # at least 22 pieces
    dfn = int(z[4])
    when = z[0]
    when = (_FMC.get(when) or fm_to_iso(when)) if when else ""
    location = ptr.names["44"].get(z[21])
    if location is None:
        location = ptr.name("44", z[21], where)
    return dfn, Visit(ien, when, location, z[2], z[6])


def _order(ien: int, n: TextNodeMap, ptr: PointerResolver, where: str) -> tuple[int, Order]:
    z = (n.get("0", "") + "^^^^^^^^^^").split("^")  # at least 11 pieces
    dfn = z[1].partition(";")[0]
    group = ptr.names["100.98"].get(z[10])
    if group is None:
        group = ptr.name("100.98", z[10], where)
    item = n.get(".1,1,0")
    code = system = None
    if item is not None:
        code, system = ptr.key("101.43", item, where)
    status_ptr = _piece(n.get("3", ""), 3)
    status_name = ptr.names["100.01"].get(status_ptr)
    if status_name is None:
        status_name = ptr.name("100.01", status_ptr, where)
    action = _pieces(n.get("8,1,0", ""), 4)
    entered = z[6]
    return int(dfn), Order(
        ien,
        _wp(n, "8,1,.1,"),
        L.KIND_BY_GROUP.get(group, group),
        L.ORDER_STATUS_WORD.get(status_name, status_name),
        action[3] == L.ORDER_SIGNED[True],
        ((_FMC.get(entered) or fm_to_iso(entered)) if entered else None),
        code,
        system,
    )


def _flag(ien: int, n: TextNodeMap, ptr: PointerResolver, where: str) -> tuple[int, RecordFlag]:
    z = _pieces(n.get("0", ""), 7)
    ien_s, _semi, root = z[1].partition(";")
    number, category = ("26.15", "I") if root == "DGPF(26.15," else ("26.11", "II")
    status = L.FLAG_STATUS_NAME.get(z[2])
    if status is None:
        raise InputError(f"{where}: flag assignment {ien} has status {z[2]!r} (expected 1 or 0); fix the export")
    return int(z[0]), RecordFlag(
        ien,
        ptr.name(number, ien_s, where),
        category,
        status,
        _date(z[6]),
        _date(z[5]),
    )


# file number -> (decoder, PatientRecord list attribute)
DECODERS = {
    "9000011": (_problem, "problems"),
    "120.8": (_allergy, "allergies"),
    "120.5": (_vital, "vitals"),
    "52": (_prescription, "prescriptions"),
    "9000010": (_visit, "visits"),
    "100": (_order, "orders"),
    "26.13": (_flag, "flags"),
}

# The pure-Python decoders stay the reference; the compiled twins (vistasim._c.zwrc) give the same records
# and errors and are used when built (VISTASIM_PURE_PYTHON=1 switches them off).
_PY_DECODERS = dict(DECODERS)
_py_decode_patient = decode_patient
_ZWRC = _accel.load("zwrc")
if _ZWRC is not None:
    from vistasim.vista import fileman as _fileman

    _ZWRC.bind(L, _fileman)
    decode_patient = _ZWRC.decode_patient  # noqa: F811
    DECODERS = {number: (_ZWRC.DECODERS.get(number, fn), attr) for number, (fn, attr) in DECODERS.items()}
