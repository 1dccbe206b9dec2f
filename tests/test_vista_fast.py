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
