"""The fast paths of vistasim.vista give the same results as the checked ones.

- the fast encoder builds the same lines as the checked encoder (and the same pointer entries);
- ``iter_source`` streams the same patients and counts as ``read_source``;
- ``write_stations`` writes the same bytes with 1 or 2 worker processes as StationWriter alone.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_vista_globals import _patient, make_patient

from vistasim.errors import ConfigError, InputError
from vistasim.model import PatientRecord
from vistasim.vista import SourceReadResult, StationWriter, iter_source, read_source, write_stations
from vistasim.vista.globals import PatientEncoder
from vistasim.vista.zwr import parse_line


def _write(out: Path, patients: list[PatientRecord], station: str = "528") -> Path:
    with StationWriter(out, station) as w:
        for p in patients:
            w.add(p)
    return out / station


def _tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


def _checked_blocks(enc: PatientEncoder, p: PatientRecord) -> list:
    out = [("2", [enc._patient(p, p.dfn)])]
    for number, items, f in (
        ("9000011", p.problems, enc._problem), ("120.8", p.allergies, enc._allergy), ("120.5", p.vitals, enc._vital),
        ("52", p.prescriptions, enc._prescription), ("9000010", p.visits, enc._visit), ("100", p.orders, enc._order),
        ("26.13", p.flags, enc._flag),
    ):
        if items:
            out.append((number, [f(x, p.dfn) for x in items]))  # type: ignore[operator]
    return out


def _pointer_state(enc: PatientEncoder) -> dict:
    return {n: dict(t.entries) for n, t in enc.pointers.items()}


def _assert_same_encoding(patients: list[PatientRecord]) -> None:
    fast, checked = PatientEncoder(), PatientEncoder()
    for p in patients:
        files, _x = fast.encode_parts(p)
        assert [(n, b) for n, b, _xn in files] == _checked_blocks(checked, p)
    assert _pointer_state(fast) == _pointer_state(checked)


def test_fast_encoder_equals_checked_encoder_on_hand_built_patients() -> None:
    _assert_same_encoding([make_patient(d) for d in range(1, 13)])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.integers(1, 50), min_size=1, max_size=3, unique=True).flatmap(
    lambda dfns: st.tuples(*(_patient(d, d * 100) for d in sorted(dfns)))))
def test_fast_encoder_equals_checked_encoder_on_any_patient(patients: tuple[PatientRecord, ...]) -> None:
    _assert_same_encoding(list(patients))


def test_fast_encoder_hands_odd_values_to_the_checked_path() -> None:
    p = make_patient(1)
    # None where text is meant, a caret in text, a bad date: the checked path copes or raises as before.
    odd = replace(p, marital_status=None, race=None)  # type: ignore[arg-type]
    _assert_same_encoding([odd])
    for bad, match in ((replace(p, name="A^B"), "NAME"), (replace(p, dob="1947-13-01"), "DOB")):
        with pytest.raises(InputError, match=match):
            PatientEncoder().encode_parts(bad)


def test_whole_line_fast_parse_agrees_with_the_general_parser() -> None:
    from vistasim.vista.zwr import _parse_line

    lines = ['^DPT(1,0)="A^B"', '^DPT(1,"MPI")="1^2"', "^GMR(120.5,7,0)=3240101.083", '^X("a,b",2)=""',
             '^X("12",.5)="x"', '^X(1)="a""b"', '^X(1)="a"_$C(9)', "^X(1)=007", '^X("")=1', "^X(01)=1", '^X(1)="a"\r']
    for line in lines:
        try:
            expected: object = _parse_line(line)
        except ValueError as exc:
            expected = ("error", str(exc))
        try:
            got: object = parse_line(line)
        except ValueError as exc:
            got = ("error", str(exc))
        assert got == expected, line


def test_iter_source_streams_what_read_source_reads(tmp_path: Path) -> None:
    for st_, dfns in (("528", range(1, 8)), ("640A4", range(3, 6))):
        _write(tmp_path, [make_patient(d, station=st_) for d in dfns], st_)
    (tmp_path / "528" / "999+OTHER.zwr").write_text('x\n01-JAN-2026 00:00:00 ZWR\n^ZZZ(1)="a"\n')
    res = read_source(tmp_path)
    stats = SourceReadResult(patients=[], stations=[], files=[])
    streamed = list(iter_source(tmp_path, stats=stats))
    assert streamed == res.patients and len(streamed) == 10
    assert (stats.nodes_read, stats.index_nodes, stats.bad_lines) == (res.nodes_read, res.index_nodes, res.bad_lines)
    assert stats.unknown_globals == res.unknown_globals == {"^ZZZ": 1}
    assert stats.stations == res.stations and sorted(stats.files) == sorted(res.files)


def test_iter_source_reads_other_layouts_whole(tmp_path: Path) -> None:
    folder = _write(tmp_path, [make_patient(d) for d in (1, 2)])
    single = tmp_path / "one" / "528"
    single.mkdir(parents=True)
    lines = ["t\n", "01-JAN-2026 00:00:00 ZWR\n"]
    for f in sorted(folder.glob("*.zwr")):
        lines += f.read_text().splitlines(keepends=True)[2:]
    (single / "all.zwr").write_text("".join(lines))
    assert list(iter_source(single)) == read_source(single).patients == read_source(folder).patients


def test_iter_source_rejects_entries_out_of_patient_order(tmp_path: Path) -> None:
    # Patient 2's entries have lower IENs than patient 1's: fine for read_source, not streamable.
    folder = _write(tmp_path, [make_patient(1, base=500), make_patient(2, base=100)])
    assert [p.dfn for p in read_source(folder).patients] == [1, 2]
    with pytest.raises(InputError, match="read_source"):
        list(iter_source(folder))


def test_iter_source_counts_skipped_bad_lines(tmp_path: Path) -> None:
    folder = _write(tmp_path, [make_patient(d) for d in (1, 2, 3)])
    path = folder / "120.5+GMRV VITAL MEASUREMENT.zwr"
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(4, "^GMR(120.5,garbage\n")
    path.write_text("".join(lines))
    stats = SourceReadResult(patients=[], stations=[], files=[])
    streamed = list(iter_source(folder, skip_bad_lines=True, stats=stats))
    res = read_source(folder, skip_bad_lines=True)
    assert streamed == res.patients and stats.bad_lines == res.bad_lines == 1


def _station_patients(station: str, n: int) -> list[PatientRecord]:
    return [make_patient(d, station=station) for d in range(1, n + 1)]


def test_write_stations_bytes_do_not_depend_on_workers() -> None:
    stations = ("528", "640A4", "523")
    trees = []
    for workers, callables in ((1, False), (2, False), (2, True)):
        tmp = Path(tempfile.mkdtemp())
        try:
            if callables:
                sources = {s: functools.partial(_station_patients, s, 6) for s in stations}
            else:
                sources = {s: _station_patients(s, 6) for s in stations}
            written = write_stations(sources, tmp, workers=workers)  # type: ignore[arg-type]
            assert list(written) == sorted(stations)
            assert all(w.patients == 6 and w.lines > 0 for w in written.values())
            trees.append(_tree_bytes(tmp))
        finally:
            shutil.rmtree(tmp)
    tmp = Path(tempfile.mkdtemp())
    try:
        for s in stations:
            _write(tmp, _station_patients(s, 6), s)
        direct = _tree_bytes(tmp)
    finally:
        shutil.rmtree(tmp)
    assert trees[0] == trees[1] == trees[2] == direct
    assert len(direct) == 3 * 25


def test_write_stations_checks_its_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="workers"):
        write_stations({"528": []}, tmp_path, workers=0)
    with pytest.raises(ConfigError, match="station"):
        write_stations({"52": []}, tmp_path)
    with pytest.raises(ConfigError, match="generator"):
        write_stations({"528": iter([]), "529": iter([])}, tmp_path, workers=2)


# --------------------------------------------------------------------------- fast entry reader


_SUB = st.one_of(
    st.integers(-5, 10**6),
    st.sampled_from([".02", ".1", "-.5", "1.25", "B", "SIG1", "MPI", "ER", "a,b", 'q"t', "(x)=y", "0", "007", "12",
                     "1.50", "", "\t", "%Z", "12345678901234567890", "-123456789012345678"]),
    st.text(st.characters(min_codepoint=1, max_codepoint=0x2030), min_size=1, max_size=6),
)
_VALUE = st.one_of(
    st.sampled_from(["", "0", "007", "-0", "1.50", ".5", "3250101.083", "a^b^^c", 'say "hi"', "x\ty", "123456789012345678",
                     "1234567890123456789", "-.123456789012345678"]),
    st.text(st.characters(min_codepoint=1, max_codepoint=0x2030), max_size=12),
)
_ROOTS = [("GMR", ("120.5",)), ("GMR", ("120.5",)), ("GMR", ("120.8",)), ("DPT", ()), ("XTMP", ()), ("DIC", (11,))]


@st.composite
def _nodes(draw: st.DrawFn) -> list[tuple[str, tuple, str]]:
    out = []
    for _ in range(draw(st.integers(1, 25))):
        gname, prefix = draw(st.sampled_from(_ROOTS))
        subs = prefix + tuple(draw(st.lists(_SUB, min_size=0, max_size=4)))
        if draw(st.booleans()):  # mostly entry-like: IEN then subscripts
            subs = prefix + (draw(st.integers(1, 4)),) + tuple(draw(st.lists(_SUB, min_size=1, max_size=3)))
        out.append((gname, subs, draw(_VALUE)))
    return out


def _format_or_raw(node: tuple[str, tuple, str]) -> str:
    from vistasim.vista.zwr import format_node

    try:
        return format_node(*node)
    except ValueError:
        return f"^{node[0]}(garbage"  # an empty-string subscript: a bad line


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(nodes=_nodes(), extra=st.lists(st.sampled_from(["", '^GMR(120.5,1,"")=1', "^GMR(120.5,01,0)=1", "garbage",
                                                        '^GMR(120.5,"C",1,2)=""', '^DPT("B","A,B",3)=""',
                                                        '^DPT("B",12,4)=""', "^GMR(120.5,2,0)=1_2"]), max_size=4))
def test_fast_entries_equal_general_entries(nodes: list, extra: list[str]) -> None:
    """Every line shape (quoted commas, $C, doubled quotes, odd numbers, other globals, blank and bad
    lines): the whole-piece matcher gives the entries, counts and bad lines the general parser gives."""
    from vistasim.vista import layout as L
    from vistasim.vista.station import _StationReader
    from vistasim.vista.zwr import ZWRReader

    lines = [_format_or_raw(n) for n in nodes] + extra
    with tempfile.TemporaryDirectory() as tmp:
        for spec in (L.VITAL, L.PATIENT):
            path = Path(tmp) / spec.filename
            path.write_text("t\n01-JAN-2026 00:00:00 ZWR\n" + "".join(line + "\n" for line in lines),
                            encoding="utf-8", errors="surrogateescape")
            got = []
            for fast in (False, True):
                r = _StationReader([path], "528", skip_bad_lines=True, buffered=True)
                zr = ZWRReader(path, skip_bad_lines=True)
                entries = list(r._entries_fast(zr, spec) if fast else r._entries(zr))
                got.append((entries, r.nodes, r.index_nodes, dict(r.unknown), r.name_index, zr.bad_lines,
                            zr.bad_line_numbers))
            assert got[0] == got[1]


def test_fast_entries_raise_on_a_bad_line_with_its_number(tmp_path: Path) -> None:
    from vistasim.errors import ZWRFormatError

    folder = _write(tmp_path, [make_patient(d) for d in (1, 2)])
    path = folder / "2+PATIENT.zwr"
    lines = path.read_text().splitlines(keepends=True)
    lines[6] = '^DPT(1,.11)="unterminated\n'
    path.write_text("".join(lines))
    with pytest.raises(ZWRFormatError) as exc:
        read_source(folder)
    assert exc.value.line_no == 7 and "unterminated" in exc.value.reason


# --------------------------------------------------------------------------- the "B" index as read


def _drop_b_node(folder: Path, dfn: int) -> None:
    path = folder / "2+PATIENT.zwr"
    lines = path.read_text().splitlines(keepends=True)
    kept = [x for x in lines if not (x.startswith('^DPT("B",') and x.endswith(f",{dfn})=\"\"\n"))]
    assert len(kept) == len(lines) - 1
    path.write_text("".join(kept))


def test_name_index_holds_the_b_nodes_read(tmp_path: Path) -> None:
    patients = [replace(make_patient(d), name=n) for d, n in ((1, "DOE,JANE"), (2, "ROE,RICHARD"), (3, "DOE,JANE"))]
    folder = _write(tmp_path, patients)
    full = read_source(folder)
    assert full.name_index == {"528": {"DOE,JANE": [1, 3], "ROE,RICHARD": [2]}}
    _drop_b_node(folder, 3)
    res = read_source(folder)
    assert res.name_index == {"528": {"DOE,JANE": [1], "ROE,RICHARD": [2]}}
    assert res.patients == full.patients  # the records do not come from the index
    assert (res.nodes_read, res.index_nodes) == (full.nodes_read - 1, full.index_nodes - 1)
    stats = SourceReadResult(patients=[], stations=[], files=[])
    assert list(iter_source(folder, stats=stats)) == res.patients
    assert stats.name_index == res.name_index


def test_name_index_when_read_buffered(tmp_path: Path) -> None:
    # a vital out of IEN order makes the reader start again, buffered; a long name is cut to 30 characters
    long = "WOLFESCHLEGELSTEINHAUSEN,HUBERT BLAINE"
    patients = [replace(make_patient(1), name=long), replace(make_patient(2), name="X,Y")]
    folder = _write(tmp_path, patients)
    path = folder / "120.5+GMRV VITAL MEASUREMENT.zwr"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3] + lines[4:-1] + [lines[3], lines[-1]]))  # first vital moved near the end
    _drop_b_node(folder, 2)
    res = read_source(folder)
    assert res.patients == patients
    assert res.name_index == {"528": {long[:30]: [1]}}


# --------------------------------------------------------------------------- lenient decoding (quarantine)


def _set_piece(folder: Path, filename: str, line_start: str, piece: int, text: str) -> None:
    path = folder / filename
    lines = path.read_text().splitlines(keepends=True)
    i = next(k for k, x in enumerate(lines) if x.startswith(line_start))
    head, _eq, value = lines[i].rstrip("\n").partition(")=")
    parts = value.strip('"').split("^")
    parts[piece - 1] = text
    lines[i] = f'{head})="{"^".join(parts)}"\n'
    path.write_text("".join(lines))


def test_quarantine_leaves_out_bad_entries_and_names_them_without_values(tmp_path: Path) -> None:
    from vistasim.errors import ConfigError

    patients = [make_patient(d) for d in (1, 2, 3)]
    folder = _write(tmp_path, patients)
    _set_piece(folder, "120.5+GMRV VITAL MEASUREMENT.zwr", "^GMR(120.5,12,0)", 1, "3241399.12")  # month 13
    _set_piece(folder, "9000011+PROBLEM.zwr", "^AUPNPROB(31,0)", 2, "X3")  # non-numeric DFN pointer
    _set_piece(folder, "2+PATIENT.zwr", "^DPT(2,0)", 3, "2479999")  # bad DOB: the patient itself fails
    with pytest.raises(InputError):
        read_source(folder)
    with pytest.raises(ConfigError, match="bad_entries"):
        read_source(folder, bad_entries="skip")
    res = read_source(folder, bad_entries="quarantine")
    assert res.parse_failures == {
        "528:2": ["file #2 IEN 2: node 0 piece 3 (DATE OF BIRTH) is not a FileMan date"],
        "528:1": ["file #120.5 IEN 12: node 0 piece 1 (DATE/TIME VITALS TAKEN) is not a FileMan date"],
        "528:unknown": ["file #9000011 IEN 31: node 0 piece 2 (PATIENT NAME) is not a patient pointer (DFN)"],
    }
    assert "3241399" not in str(res.parse_failures) and "X3" not in str(res.parse_failures)
    p1, p2, p3 = res.patients
    assert p1.vitals == [v for v in patients[0].vitals if v.ien != 12]
    assert (p2.dfn, p2.name, p2.dob) == (2, "", None) and p2.vitals == patients[1].vitals  # a stub, entries kept
    assert p3.problems == [pr for pr in patients[2].problems if pr.ien != 31]
    assert p3 == replace(patients[2], problems=p3.problems)
    clean = read_source(_write(tmp_path / "clean", patients), bad_entries="quarantine")
    assert clean.parse_failures == {} and clean.patients == patients
