"""Batch encoding: a block of patients -> each FileMan file's ZWR lines, built column by column.

``StationWriter.add`` encodes one patient at a time, validating each entry as it goes. A generator
hands the writer thousands of patients at once, so ``encode_block`` works on the whole block per
FileMan file instead: it pulls each field out as a column (``attrgetter`` over the flat entry list),
validates whole columns at once (one ``str.join`` per column finds a caret, a quote or a control
character anywhere; ``set(map(type, ...))`` checks types), converts dates through the encoder's
memo, looks each distinct pointer value up once, and builds the lines with one f-string per entry.

It produces exactly the bytes of ``PatientEncoder.encode_parts`` patient by patient, with the same
pointer IENs: each pointer file is used by exactly one FileMan file, and distinct values are looked
up in order of first use over the block, which is the order the per-patient path meets them. It
has no side effect before it has validated the whole block; when anything is unusual (a caret, a
quote, a type the checked encoder would reject or coerce, an invalid date, DFNs not increasing) it
returns ``None`` and the caller encodes that block patient by patient, which raises the precise
error or copes exactly as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from operator import attrgetter
from typing import Any

from vistasim.model import PatientRecord
from vistasim.vista import fileman as FM
from vistasim.vista import layout as L
from vistasim.vista.globals import _WP_WIDTH, PatientEncoder, _fv, _num, _Slow
from vistasim.vista.zwr import Subscript

__all__ = ["FilePart", "encode_block"]


@dataclass
class FilePart:
    """One FileMan file's entries for a block: IENs, each entry's lines, and the by-patient index."""

    number: str
    iens: list[int]
    texts: list[str]
    nlines: int
    xname: str | None  # by-patient index (value = DFN), or None
    dfns: list[int]  # the patient of each entry


class _Fallback(Exception):
    """Internal: the block needs the per-patient encoder."""


def _flat(recs: Sequence[PatientRecord], attr: str, dfns: list[int]) -> tuple[list[Any], list[int]]:
    lists = list(map(attrgetter(attr), recs))
    items = list(chain.from_iterable(lists))
    return items, list(chain.from_iterable(map(repeat, dfns, map(len, lists))))


def _cols(items: list[Any], *names: str) -> list[list[Any]]:
    return [list(map(attrgetter(n), items)) for n in names]  # one C-level pass per field


def _check_text(*cols: Sequence[Any]) -> None:
    """Every value is a str (None allowed where filtered out before) without caret, quote or control."""
    try:
        s = "".join(chain.from_iterable(cols))
    except TypeError:
        raise _Fallback() from None
    if "^" in s or '"' in s or not s.isprintable():
        raise _Fallback()


def _opt(col: Sequence[Any]) -> list[Any]:
    return [x for x in col if x is not None]


def _check_iens(iens: Sequence[Any]) -> None:
    if iens and (set(map(type, iens)) != {int} or min(iens) <= 0):
        raise _Fallback()


def _dates(enc: PatientEncoder, col: Sequence[Any]) -> list[str]:
    """FileMan forms through the encoder's memo (None -> ""); _Fallback when one is invalid."""
    dc = enc._dc
    try:
        out = list(map(dc.get, col))
    except TypeError:
        raise _Fallback() from None
    if None in out:
        # Date/times rarely repeat whole, so the memo misses them; their day and time of day do repeat:
        # join fileman's memoised (validated) halves. Midnight (time "") and anything else take the full path.
        date, day_get, time_get = enc._date, FM._ISO_DAY.get, FM._ISO_TIME.get
        miss = dict.fromkeys([x for x, f in zip(col, out) if f is None])
        try:
            for x in miss:
                if type(x) is str and len(x) == 19 and x[10] == "T":
                    d, t = day_get(x[:10]), time_get(x[11:])
                    if d is not None and t:
                        miss[x] = d + t
                        continue
                miss[x] = date(x)
        except _Slow:
            raise _Fallback() from None
        get = miss.get
        out = [get(x) if f is None else f for x, f in zip(col, out)]
    return out  # type: ignore[return-value]  # no None left


def _ptrs(lookup: Any, col: Sequence[Any]) -> list[str]:
    """Pointer IEN (as text) of each value, "" for an empty value; distinct values looked up in order of first use."""
    table = {k: (str(lookup(k)) if k else "") for k in dict.fromkeys(col)}
    return list(map(table.__getitem__, col))


def _chunked(text: str) -> list[str]:
    return [text[i : i + _WP_WIDTH] for i in range(0, len(text), _WP_WIDTH)]


def _quoted(z: str) -> str:
    return '"' + z + '"' if "^" in z else _fv(z)


# --------------------------------------------------------------------------- per file: validate (pure), then build


def _patients(enc: PatientEncoder, recs: Sequence[PatientRecord], dfns: list[int]) -> Any:
    (name, sex, ssn, marital, race, eth, phone, period, branch, icn, icn_ck, dob, entry, sep, dod, sc, pct_v,
     addr) = _cols(list(recs), "name", "sex", "ssn", "marital_status", "race", "ethnicity", "phone_home",
                   "period_of_service", "branch", "icn", "icn_checksum", "dob", "service_entry",
                   "service_separation", "date_of_death", "service_connected", "sc_percent", "address")
    s1, s2, s3, city, st, zip_ = _cols(list(addr), "street1", "street2", "street3", "city", "state", "zip")
    # quotes and controls are allowed in a checked patient; here they send the block to the per-patient path
    _check_text(name, sex, ssn, marital, race, eth, phone, period, branch, icn, icn_ck, s1, s2, s3, city, st, zip_)
    dob_f, entry_f, sep_f, dod_f = _dates(enc, dob), _dates(enc, entry), _dates(enc, sep), _dates(enc, dod)
    pct_types = set(map(type, pct_v))
    if not pct_types <= {int, type(None)}:
        raise _Fallback()
    pct = ["" if p is None else str(p) for p in pct_v]

    def build() -> tuple[list[str], int]:
        mptr, rptr, eptr = _ptrs(enc._marital, marital), _ptrs(enc._race, race), _ptrs(enc._eth, eth)
        sptr = _ptrs(enc._state, st)
        pptr, bptr = _ptrs(enc._period, period), _ptrs(enc._branch, branch)
        texts: list[str] = []
        total = 0
        for (dfn, nm, sx, db, mp, sn, rp, ep, a1, a2, a3, ct, stp, zp, ph, scv, pv, pc, pp, bp, en, sp, dd, ic,
             ck) in zip(dfns, name, sex, dob_f, mptr, ssn, rptr, eptr, s1, s2, s3, city, sptr, zip_, phone, sc, pct_v,
                        pct, pptr, bptr, entry_f, sep_f, dod, icn, icn_ck):
            r = f"^DPT({dfn},"
            lines = [f"{r}0)={_quoted(f'{nm}^{sx}^{db}^^{mp}^^^^{sn}'.rstrip('^'))}\n"]
            if rp:
                lines.append(f'{r}.02,0)="^2.02PA^1^1"\n{r}.02,1,0)={rp}\n{r}.02,"B",{rp},1)=""\n')
            if ep:
                lines.append(f'{r}.06,0)="^2.06PA^1^1"\n{r}.06,1,0)={ep}\n{r}.06,"B",{ep},1)=""\n')
            n = 1 + (3 if rp else 0) + (3 if ep else 0)
            ad = f"{a1}^{a2}^{a3}^{ct}^{stp}^{zp}".rstrip("^")
            if ad:
                lines.append(f"{r}.11)={_quoted(ad)}\n")
                n += 1
            if ph:
                lines.append(f"{r}.13)={_fv(ph)}\n")
                n += 1
            if scv or pv is not None:
                lines.append(f"{r}.3)={_fv(('Y^' if scv else 'N^') + pc)}\n")
                n += 1
            mil = f"^^{pp}^^{bp}^{en}^{sp}".rstrip("^")
            if mil:
                lines.append(f"{r}.32)={_quoted(mil)}\n")
                n += 1
            if dd is not None:
                lines.append(f"{r}.35)={dod_map[dd]}\n")
                n += 1
            mpi = f"{ic}^{ck}".rstrip("^")
            if mpi:
                lines.append(f'{r}"MPI")={_quoted(mpi)}\n')
                n += 1
            texts.append("".join(lines))
            total += n
        return texts, total

    dod_map = {d: f for d, f in zip(dod, dod_f) if d is not None}
    return build


def _problems(enc: PatientEncoder, items: list[Any], dfns: list[int]) -> Any:
    iens, code, system, desc, status, snomed, entered, onset, resolved = _cols(
        items, "ien", "icd_code", "icd_system", "description", "status", "snomed", "entered", "onset", "resolved")
    _check_iens(iens)
    _check_text(code, system, desc, status, _opt(snomed))
    ent_f, ons_f = _dates(enc, entered), _dates(enc, onset)
    res_f = _dates(enc, resolved)
    sno = {s: _fv(s) for s in set(snomed) if s is not None}

    def build() -> tuple[list[str], int]:
        icd_table = {k: enc._icd(k) for k in dict.fromkeys(zip(code, system))}
        icd = list(map(icd_table.__getitem__, zip(code, system)))
        narr = _ptrs(enc._narrative, desc)
        texts = [
            f'^AUPNPROB({i},0)="{f"{p}^{d}^^^{nr}^^^{e}^^^^{s}^{o}".rstrip("^")}"\n'
            + (f'^AUPNPROB({i},1)="^^^^^^{rf}"\n' if rv is not None else "")
            + (f"^AUPNPROB({i},800)={sno[sn]}\n" if sn is not None else "")
            for i, p, d, nr, e, s, o, rv, rf, sn in zip(iens, icd, dfns, narr, ent_f, status, ons_f, resolved, res_f,
                                                         snomed)
        ]
        n = len(iens) + (len(resolved) - resolved.count(None)) + (len(snomed) - snomed.count(None))
        return texts, n

    return iens, build


def _vitals(enc: PatientEncoder, items: list[Any], dfns: list[int]) -> Any:
    iens, taken, vt, val = _cols(items, "ien", "taken", "vital_type", "value")
    _check_iens(iens)
    _check_text(vt, val)
    taken_f = _dates(enc, taken)

    def build() -> tuple[list[str], int]:
        vp = _ptrs(enc._vtype, vt)
        if all(val):
            texts = [f'^GMR(120.5,{i},0)="{t}^{d}^{p}^^^^^{v}"\n' for i, t, d, p, v in zip(iens, taken_f, dfns, vp, val)]
        else:
            texts = [f"^GMR(120.5,{i},0)={_quoted(f'{t}^{d}^{p}^^^^^{v}'.rstrip('^'))}\n"
                     for i, t, d, p, v in zip(iens, taken_f, dfns, vp, val)]
        return texts, len(texts)

    return iens, build


def _visits(enc: PatientEncoder, items: list[Any], dfns: list[int]) -> Any:
    iens, when, loc, vtype, cat = _cols(items, "ien", "when", "location", "visit_type", "service_category")
    _check_iens(iens)
    _check_text(loc, vtype, cat)
    when_f = _dates(enc, when)

    def build() -> tuple[list[str], int]:
        lp = _ptrs(enc._loc, loc)
        texts = [f"^AUPNVSIT({i},0)={_quoted(f'{w}^^{t}^^{d}^^{c}^^^^^^^^^^^^^^^{p}'.rstrip('^'))}\n"
                 for i, w, t, d, c, p in zip(iens, when_f, vtype, dfns, cat, lp)]
        return texts, len(texts)

    return iens, build


def _number_strings(col: Sequence[Any], conv: Any) -> list[str]:
    if col and not set(map(type, col)) <= {int, float}:
        raise _Fallback()
    try:
        table = {v: conv(v) for v in set(col)}
    except (TypeError, ValueError, OverflowError):
        raise _Fallback() from None
    return list(map(table.__getitem__, col))


def _to_int_str(x: Any) -> str:
    return str(int(x))


def _prescriptions(enc: PatientEncoder, items: list[Any], dfns: list[int]) -> Any:
    iens, name, rxnorm, number, routing, sig, status, qty, days, refills, issue = _cols(
        items, "ien", "drug_name", "rxnorm", "rx_number", "fill_routing", "sig", "status", "quantity", "days_supply",
        "refills", "issue_date")
    _check_iens(iens)
    _check_text(name, _opt(rxnorm), number, routing)
    sigs = [s for s in sig if s]
    if sigs and set(map(type, sigs)) != {str}:
        raise _Fallback()
    sig_s = "".join(sigs)
    if '"' in sig_s or not sig_s.isprintable():
        raise _Fallback()
    sta = list(map(L.RX_STATUS.get, status)) if status else []
    if None in sta:
        raise _Fallback()
    qty_s, days_s, ref_s = _number_strings(qty, _num), _number_strings(days, _to_int_str), _number_strings(
        refills, _to_int_str)
    issue_f = _dates(enc, issue)
    sig_lines: dict[str, tuple[list[str], int]] = {}
    for s in set(sigs):
        chunks = _chunked(s)
        k = len(chunks)
        sig_lines[s] = ([f'"SIG1",0)="^^{k}^{k}"\n'] + [f'"SIG1",{j},0)={_fv(c)}\n' for j, c in enumerate(chunks, 1)],
                        1 + k)

    def build() -> tuple[list[str], int]:
        drug_table = {k: enc._drug(k) for k in dict.fromkeys(zip(name, rxnorm))}
        drug = list(map(drug_table.__getitem__, zip(name, rxnorm)))
        texts = []
        total = 0
        for i, nb, d, dr, q, dy, rf, rt, isd, sg, stc in zip(iens, number, dfns, drug, qty_s, days_s, ref_s, routing,
                                                              issue_f, sig, sta):
            r = f"^PSRX({i},"
            zero = f"{nb}^{d}^^^^{dr}^{q}^{dy}^{rf}^^{rt}^^{isd}".rstrip("^")
            if sg:
                lines, k = sig_lines[sg]
                texts.append(f'{r}0)="{zero}"\n' + "".join([r + x for x in lines]) + f'{r}"STA")={stc}\n')
                total += 2 + k
            else:
                texts.append(f'{r}0)="{zero}"\n{r}"STA")={stc}\n')
                total += 2
        return texts, total

    return iens, build


def _orders(enc: PatientEncoder, items: list[Any], dfns: list[int]) -> Any:
    iens, kind, status, code, system, text, entered, signed = _cols(
        items, "ien", "kind", "status", "code", "code_system", "text", "entered", "signed")
    _check_iens(iens)
    cs = _opt(code) + _opt(system)
    _check_text(kind, status, cs)
    if ";" in "".join(cs):
        raise _Fallback()
    txts = [t for t in text if t]
    if txts and set(map(type, txts)) != {str}:
        raise _Fallback()
    t_all = "".join(txts)
    if '"' in t_all or not t_all.isprintable():
        raise _Fallback()
    ent_f = _dates(enc, entered)
    sig_code = L.ORDER_SIGNED
    text_lines: dict[str, tuple[str, int]] = {}
    for t in set(txts):
        chunks = _chunked(t)
        k = len(chunks)
        text_lines[t] = (f'8,1,.1,0)="^^{k}^{k}"\n', k)

    def build() -> tuple[list[str], int]:
        group = {k: (enc._group(L.GROUP_BY_KIND.get(k, k)) if k else "") for k in dict.fromkeys(kind)}
        coded = {k: enc._orderable((k[0] or None, k[1] or None)) for k in dict.fromkeys(zip(code, system))
                 if k[0] is not None or k[1] is not None}
        ost = {s: (enc._ostatus(L.ORDER_STATUS_NAME.get(s, s)) if s else "") for s in dict.fromkeys(status)}
        wp = {t: [f"8,1,.1,{j},0)={_fv(c)}\n" for j, c in enumerate(_chunked(t), 1)] for t in text_lines}
        texts = []
        total = 0
        for i, d, k, st, c, sy, tx, e, sg in zip(iens, dfns, kind, status, code, system, text, ent_f, signed):
            r = f"^OR(100,{i},"
            g = group[k]
            out = f'{r}0)="{f"{i}^{d};DPT(^^^^^{e}^^^^{g}".rstrip("^")}"\n'
            n = 3
            if c is not None or sy is not None:
                out += f'{r}.1,0)="^100.001PA^1^1"\n{r}.1,1,0)={coded[(c, sy)]}\n'
                n += 2
            if st:
                out += f'{r}3)="^^{ost[st]}"\n'
                n += 1
            out += f'{r}8,0)="^100.008DA^1^1"\n{r}8,1,0)="{e}^NW^^{sig_code[bool(sg)]}"\n'
            if tx:
                head, k2 = text_lines[tx]
                out += r + head + "".join([r + x for x in wp[tx]])
                n += 1 + k2
            texts.append(out)
            total += n
        return texts, total

    return iens, build


def _allergies(enc: PatientEncoder, items: list[Any], dfns: list[int]) -> Any:
    iens, reactant, code, system, mech, atype, reactions, status, orig = _cols(
        items, "ien", "reactant", "code", "code_system", "mechanism", "allergy_type", "reactions", "status",
        "origination")
    _check_iens(iens)
    try:
        reac = list(chain.from_iterable(reactions))
    except TypeError:
        raise _Fallback() from None
    _check_text(reactant, _opt(code), _opt(system), mech, atype, reac)
    if not set(status) <= {"active", "entered-in-error"}:
        raise _Fallback()
    _dates(enc, orig)

    def build() -> tuple[list[str], int]:
        blocks = [enc._f_allergy(a, d) for a, d in zip(items, dfns)]  # validated above: never falls back
        return [b[1] for b in blocks], sum([b[2] for b in blocks])

    return iens, build


def _flags(enc: PatientEncoder, items: list[Any], dfns: list[int]) -> Any:
    iens, flag, cat, status, review, assigned = _cols(items, "ien", "flag", "category", "status", "review_due",
                                                      "assigned")
    _check_iens(iens)
    _check_text(flag)
    if not set(cat) <= {"I", "II"} or not set(status) <= set(L.FLAG_STATUS):
        raise _Fallback()
    _dates(enc, review)
    _dates(enc, assigned)

    def build() -> tuple[list[str], int]:
        blocks = [enc._f_flag(f, d) for f, d in zip(items, dfns)]
        return [b[1] for b in blocks], len(blocks)

    return iens, build


_CLINICAL = (
    ("9000011", "problems", _problems, "AC"),
    ("120.8", "allergies", _allergies, "B"),
    ("120.5", "vitals", _vitals, "C"),
    ("52", "prescriptions", _prescriptions, None),
    ("9000010", "visits", _visits, "C"),
    ("100", "orders", _orders, "AC"),
    ("26.13", "flags", _flags, "B"),
)


def encode_block(
    enc: PatientEncoder, recs: Sequence[PatientRecord]
) -> tuple[list[FilePart], list[tuple[str, str, list[Subscript], list[int]]]] | None:
    """A block of patients (increasing DFNs) -> per-file parts and the text-keyed indexes.

    Each index comes as (file number, index name, values, IENs), values and IENs in patient order.

    Same lines, line counts, index entries and pointer IENs as ``encode_parts`` patient by patient;
    ``None`` (nothing looked up, nothing changed) when the block needs the per-patient path.
    """
    if not recs:
        return [], []
    try:
        dfns = [p.dfn for p in recs]
        _check_iens(dfns)
        if any(a >= b for a, b in zip(dfns, dfns[1:])):
            raise _Fallback()
        build_patients = _patients(enc, recs, dfns)
        plans = []
        for number, attr, fn, xname in _CLINICAL:
            items, idfns = _flat(recs, attr, dfns)
            if items:
                iens, build = fn(enc, items, idfns)
                plans.append((number, iens, build, xname, idfns, items))
    except (_Fallback, TypeError, AttributeError, ValueError):
        return None
    texts, n = build_patients()
    parts = [FilePart("2", dfns, texts, n, None, dfns)]
    names = [(p.name[:30], d) for p, d in zip(recs, dfns) if p.name]
    ssns = [(p.ssn, d) for p, d in zip(recs, dfns) if p.ssn]
    sx: list[tuple[str, str, list[Subscript], list[int]]] = [
        ("2", "B", [v for v, _ in names], [d for _, d in names]),
        ("2", "SSN", [v for v, _ in ssns], [d for _, d in ssns]),
    ]
    for number, iens, build, xname, idfns, items in plans:
        texts, n = build()
        parts.append(FilePart(number, list(iens), texts, n, xname, idfns))
        if number == "52":
            rxb = [(rx.rx_number, rx.ien) for rx in items if rx.rx_number]
            sx.append(("52", "B", [v for v, _ in rxb], [i for _, i in rxb]))
    return parts, sx
