"""PatientRecord -> station ZWR files -> PatientRecord, lossless; pointers resolve; files are sound."""

from __future__ import annotations

import random
import shutil
import tempfile
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vistasim.errors import ConfigError, InputError, ZWRFormatError
from vistasim.model import Address, Allergy, Order, PatientRecord, Prescription, Problem, RecordFlag, Visit, Vital
from vistasim.vista import StationWriter, is_station, read_globals, read_source
from vistasim.vista import layout as L
from vistasim.vista.zwr import ZWRReader, node_key, read_zwr


def make_patient(dfn: int, station: str = "528", base: int | None = None) -> PatientRecord:
    """A patient exercising every field: imprecise dates, free text, commas and quotes, orphans."""
    b = dfn * 10 if base is None else base
    return PatientRecord(
        station=station, dfn=dfn, name=f'O\'BRIEN-"SMITH",JOHN Q {dfn}', sex="M" if dfn % 2 else "F",
        dob="1947-06" if dfn % 3 else "1951", ssn=f"00000{dfn:04d}", icn=f"{1000000000 + dfn}", icn_checksum="123456",
        marital_status=["MARRIED", "NEVER MARRIED", "COMMON LAW", ""][dfn % 4], race="WHITE",
        ethnicity="NOT HISPANIC OR LATINO",
        address=Address("1 MAIN ST", "APT, 2 \"B\"", "", "SPRINGFIELD", ["IL", "PR", "ZZ"][dfn % 3], "62701-1234"),
        phone_home="(555)555-1234", service_connected=bool(dfn % 2), sc_percent=[70, 0, None][dfn % 3],
        period_of_service=["PERSIAN GULF WAR", "NAVY, MARINE--ACTIVE DUTY", "VIETNAM ERA"][dfn % 3], branch="ARMY",
        service_entry="1990-01-01", service_separation="1994-06", date_of_death="2020-02-02T14:00:00" if dfn == 2 else None,
        problems=[
            Problem(b + 1, "I10", "ICD-10-CM", "Hypertension, essential (primary)", "38341003", "A", "2020-01-02", "2019"),
            Problem(b + 2, "401.9", "ICD-9-CM", "", None, "I", None, None, "2010-05-05T10:00:00"),
        ],
        allergies=[
            Allergy(b + 1, "PENICILLIN", "D", "A", True, "2001-02-03T04:05:06", "7980", "RXNORM", "active", ["HIVES", "RASH"]),
            Allergy(b + 2, 'strawberries "fresh", local', "F", "U", False, None, None, None, "entered-in-error", []),
            Allergy(b + 3, "LATEX", "O", "P", True, "1999", "111088007", "SNOMED", "active", [""]),
        ],
        prescriptions=[
            Prescription(b + 1, "1234567", "LISINOPRIL 10MG TAB", "314076", 30, 30, 3, "2024-01-01", "active", "M",
                         "TAKE ONE TABLET BY MOUTH\tDAILY ^ WITH WATER"),
            Prescription(b + 2, f"R{dfn}A", "ORPHAN COMPOUND, CREAM", None, 2.5, 10, 0, None, "expired", "W", ""),
            Prescription(b + 3, f"{dfn}00", "METFORMIN 500MG TAB", "860975", 0.5, 90, 11, "2023", "discontinued", "M", "x" * 450),
        ],
        vitals=[
            Vital(b + 1, "2024-01-01T08:30:00", "BLOOD PRESSURE", "120/80"),
            Vital(b + 2, "2024-01-01T00:00:00", "WEIGHT", "180.5"),
            Vital(b + 3, "2024-01-01T23:59:59", "PAIN", "3"),
            Vital(b + 4, "2024-01-02T07:00:00", "CUSTOM VITAL", "99"),
        ],
        visits=[Visit(b + 1, "2024-01-01T08:00:00", "PRIMARY CARE, ROOM 1", "V", "A"), Visit(b + 2, "2024-02-01T09:00:00", "", "O", "T")],
        orders=[
            Order(b + 1, "CBC\nwith diff", "lab", "pending", False, "2024-01-01T08:10:00", "58410-2", "LOINC"),
            Order(b + 2, "", "nursing", "active", True, None, None, None),
            Order(b + 3, "ambulate \"as tolerated\"", "diet", "unreleased", False, "2024-01", "12345", None),
            Order(b + 4, "x" * 401, "medication", "complete", True, "2024-03-03T03:03:03", "314076", "RXNORM"),
        ],
        flags=[
            RecordFlag(b + 1, "HIGH RISK FOR SUICIDE", "I", "active", "2023-01-01", "2023-04-01"),
            RecordFlag(b + 2, "BEHAVIORAL", "II", "inactive", None, None),
        ],
    )


def _write(out: Path, patients: list[PatientRecord], station: str = "528", **kw: object) -> Path:
    with StationWriter(out, station, **kw) as w:  # type: ignore[arg-type]
        for p in patients:
            w.add(p)
    return out / station


def test_round_trip_every_field(tmp_path: Path) -> None:
    patients = [make_patient(d) for d in range(1, 8)]
    folder = _write(tmp_path, patients)
    result = read_source(folder)
    assert result.patients == patients
    assert result.stations == ["528"] and result.bad_lines == 0 and result.unknown_globals == {}
    lines = sum(len(Path(f).read_text().splitlines()) - 2 for f in result.files)
    assert result.nodes_read == lines


def test_empty_and_minimal_patients(tmp_path: Path) -> None:
    patients = [PatientRecord(station="640A4", dfn=1, name=""), PatientRecord(station="640A4", dfn=5, name="DOE,JANE")]
    result = read_source(_write(tmp_path, patients, station="640A4"))
    assert result.patients == patients and result.stations == ["640A4"]


def test_file_names_and_headers(tmp_path: Path) -> None:
    folder = _write(tmp_path, [make_patient(1)])
    names = {p.name for p in folder.iterdir()}
    for spec in L.DATA_FILES:
        assert spec.filename in names
    for spec in L.POINTER_SPECS.values():
        assert spec.filename in names
    assert {"2+PATIENT.zwr", "9000011+PROBLEM.zwr", "50+DRUG.zwr", "26.15+PRF NATIONAL FLAG.zwr"} <= names
    assert not [n for n in names if not n.endswith(".zwr")]  # no temporary files left
    header, nodes = read_zwr(folder / "2+PATIENT.zwr")
    assert header == ("vistasim ZWR export: PATIENT (station 528)", "01-JAN-2026 00:00:00 ZWR")
    assert nodes[0] == ("DPT", (0,), "PATIENT^2I^1^1")
    assert ("DPT", ("B", "O'BRIEN-\"SMITH\",JOHN Q 1", 1), "") in nodes
    assert ("DPT", ("SSN", "000000001", 1), "") in nodes


def test_layout_pieces_are_where_design_says(tmp_path: Path) -> None:
    g = read_globals(sorted(_write(tmp_path, [make_patient(1)]).glob("*.zwr")))
    zero = g["DPT"][(1, 0)].split("^")
    assert zero[0].startswith("O'BRIEN") and zero[1] == "M" and zero[2] == "2470600" and zero[8] == "000000001"
    assert g["DIC"][(11, int(zero[4]), 0)].split("^")[0] == "NEVER MARRIED"
    assert g["DPT"][(1, "MPI")] == "1000000001^123456"
    mil = g["DPT"][(1, ".32")].split("^")
    assert g["DIC"][(21, int(mil[2]), 0)].startswith("NAVY, MARINE--ACTIVE DUTY^") and int(mil[2]) == 93
    assert g["DIC"][(23, int(mil[4]), 0)] == "ARMY^AR" and mil[5:] == ["2900101", "2940600"]
    prob = g["AUPNPROB"][(11, 0)].split("^")
    assert prob[1] == "1" and prob[7] == "3200102" and prob[11] == "A" and prob[12] == "3190000"
    assert g["ICD9"][(int(prob[0]), 0)] == "I10" and g["ICD9"][(int(prob[0]), 1)] == "30"
    assert g["AUPNPROB"][(11, 800)] == "38341003"
    al = g["GMR"][("120.8", 11, 0)].split("^")
    assert al[0] == "1" and al[1] == "PENICILLIN" and al[3] == "3010203.040506"
    assert al[13] == "A" and al[15] == "1" and al[19] == "D"
    vit = g["GMR"][("120.5", 11, 0)].split("^")
    assert vit[0] == "3240101.083" and vit[1] == "1" and vit[7] == "120/80"
    assert int(vit[2]) == 1  # BLOOD PRESSURE is IEN 1 in the real GMRV VITAL TYPE file
    assert g["GMR"][("120.5", 12, 0)].split("^")[0] == "3231231.24"  # midnight, FileMan style
    rx = g["PSRX"][(11, 0)].split("^")
    assert rx[0] == "1234567" and rx[1] == "1" and rx[6:9] == ["30", "30", "3"] and rx[10] == "M" and rx[12] == "3240101"
    assert g["PSRX"][(11, "STA")] == "0" and g["PSRX"][(12, "STA")] == "11" and g["PSRX"][(13, "STA")] == "12"
    assert g["PSRX"][(13, 0)].split("^")[6] == ".5"
    vis = g["AUPNVSIT"][(11, 0)].split("^")
    assert vis[0] == "3240101.08" and vis[2] == "V" and vis[4] == "1" and vis[6] == "A"
    assert g["SC"][(int(vis[21]), 0)].startswith("PRIMARY CARE, ROOM 1")
    flag = g["DGPF"][("26.13", 11, 0)].split("^")
    ien, _s, root = flag[1].partition(";")
    assert flag[0] == "1" and root == "DGPF(26.15," and flag[2] == "1"
    assert g["DGPF"][("26.15", int(ien), 0)].startswith("HIGH RISK FOR SUICIDE")


# Pointer fields: (global, first subscripts, node, piece) -> (target global, target prefix)
POINTERS = [
    ("DPT", (), 0, 5, "DIC", (11,)),
    ("DPT", (), ".11", 5, "DIC", (5,)),
    ("DPT", (), ".32", 3, "DIC", (21,)),
    ("DPT", (), ".32", 5, "DIC", (23,)),
    ("AUPNPROB", (), 0, 1, "ICD9", ()),
    ("AUPNPROB", (), 0, 5, "AUTNPOV", ()),
    ("GMR", ("120.5",), 0, 3, "GMRD", ("120.51",)),
    ("PSRX", (), 0, 6, "PSDRUG", ()),
    ("AUPNVSIT", (), 0, 22, "SC", ()),
    ("OR", (100,), 0, 11, "ORD", ("100.98",)),
    ("OR", (100,), 3, 3, "ORD", ("100.01",)),
]


def test_every_pointer_resolves(tmp_path: Path) -> None:
    g = read_globals(sorted(_write(tmp_path, [make_patient(d) for d in range(1, 5)]).glob("*.zwr")))
    checked = 0
    for gname, pre, node, piece, tg, tpre in POINTERS:
        for subs, value in g[gname].items():
            n = len(pre)
            if subs[:n] != pre or len(subs) != n + 2 or type(subs[n]) is not int or subs[n + 1] != node:
                continue
            ptr = value.split("^")[piece - 1] if len(value.split("^")) >= piece else ""
            if ptr:
                assert tpre + (int(ptr), 0) in g[tg], (gname, subs, piece)
                checked += 1
    for gname, pre, node in [("DPT", (), ".02"), ("DPT", (), ".06"), ("OR", (100,), ".1")]:
        target = {".02": ("DIC", (10,)), ".06": ("DIC", ("10.2",)), ".1": ("ORD", ("101.43",))}[node]
        for subs, value in g[gname].items():
            if subs[len(pre) + 1 : len(pre) + 3] == (node, 1) and len(subs) == len(pre) + 4:
                assert target[1] + (int(value), 0) in g[target[0]]
                checked += 1
    for gname, file, piece in [("GMR", "120.8", 3), ("DGPF", "26.13", 2)]:
        for subs, value in g[gname].items():
            if subs[0] == file and len(subs) == 3 and subs[2] == 0:
                vptr = value.split("^")[piece - 1]
                if vptr:
                    ien, _s, root = vptr.partition(";")
                    tgt_g, _p, tgt_file = root.partition("(")
                    assert (tgt_file.rstrip(","), int(ien), 0) in g[tgt_g]
                    checked += 1
    assert checked >= 4 * 20
    assert ("PSDRUG", ) and g["PSDRUG"][(2, 0)] == "ORPHAN COMPOUND, CREAM" and (2, "RXN") not in g["PSDRUG"]


def test_values_missing_from_reference_files_get_new_iens(tmp_path: Path) -> None:
    folder = _write(tmp_path, [make_patient(d) for d in range(1, 5)])
    _h, nodes = read_zwr(folder / "11+MARITAL STATUS.zwr")
    d = {s: v for _g, s, v in nodes}
    assert d[(11, 8, 0)] == "COMMON LAW" and d[(11, "B", "COMMON LAW", 8)] == ""
    assert d[(11, 0)] == "MARITAL STATUS^11^8^7"
    _h, nodes = read_zwr(folder / "120.51+GMRV VITAL TYPE.zwr")
    d = {s: v for _g, s, v in nodes}
    assert d[("120.51", 23, 0)] == "CUSTOM VITAL" and d[("120.51", 0)] == "GMRV VITAL TYPE^120.51I^23^9"
    _h, nodes = read_zwr(folder / "5+STATE.zwr")
    d = {s: v for _g, s, v in nodes}
    assert d[(5, 17, 0)] == "ILLINOIS^IL^17" and d[(5, 72, 0)] == "PUERTO RICO^PR^72" and d[(5, 73, 0)] == "ZZ^ZZ"


def test_every_file_is_in_collation_order(tmp_path: Path) -> None:
    patients = [make_patient(d) for d in range(1, 12)]
    random.Random(3).shuffle(patients)  # out-of-DFN order and a tiny spill limit exercise the merge
    folder = _write(tmp_path, patients, spill_limit=3)
    for path in folder.glob("*.zwr"):
        _h, nodes = read_zwr(path)
        keys = [(g, node_key(s)) for g, s, _v in nodes]
        assert keys == sorted(keys), path.name
        assert len(set(keys)) == len(keys), path.name
    assert read_source(folder).patients == sorted(patients, key=lambda p: p.dfn)


def test_same_output_whatever_the_order(tmp_path: Path) -> None:
    patients = [make_patient(d) for d in range(1, 9)]
    a = _write(tmp_path / "a", patients)
    shuffled = patients[:]
    random.Random(7).shuffle(shuffled)
    b = _write(tmp_path / "b", sorted(shuffled, key=lambda p: p.dfn), spill_limit=2)
    for path in a.glob("*.zwr"):
        assert path.read_bytes() == (b / path.name).read_bytes(), path.name


def test_duplicate_iens_are_rejected(tmp_path: Path) -> None:
    p1, p2 = make_patient(1), make_patient(2, base=10)
    with pytest.raises(InputError, match="twice"):
        _write(tmp_path, [p1, p2])
    assert not list((tmp_path / "528").glob("*.zwr"))  # nothing half-written
    with pytest.raises(InputError, match="twice"):
        _write(tmp_path, [make_patient(3), make_patient(1), make_patient(2, base=30)], spill_limit=1)
    assert not list((tmp_path / "528").iterdir())


def test_bad_data_names_patient_and_field_not_value(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        _write(tmp_path, [replace(make_patient(1), name="SMITH^JOHN")])
    msg = str(exc.value)
    assert "528:1" in msg and "NAME" in msg and "SMITH" not in msg
    with pytest.raises(InputError) as exc:
        _write(tmp_path, [replace(make_patient(1), dob="1947-02-30")])
    assert "DOB" in str(exc.value) and "1947" not in str(exc.value)
    bad_rx = replace(make_patient(1).prescriptions[0], status="lost")
    with pytest.raises(InputError, match="prescription status"):
        _write(tmp_path, [replace(make_patient(1), prescriptions=[bad_rx])])
    with pytest.raises(InputError, match="station"):
        _write(tmp_path, [make_patient(1, station="640")])
    with pytest.raises(ConfigError):
        StationWriter(tmp_path, "52")
    assert not list((tmp_path / "528").glob("*.zwr"))


def test_station_numbers() -> None:
    assert all(is_station(s) for s in ["528", "640A4", "528A6", "657GA"])
    assert not any(is_station(s) for s in ["52", "5280A44", "abc", "528-A", ""])


def test_read_single_file_and_station_folders(tmp_path: Path) -> None:
    _write(tmp_path, [make_patient(1), make_patient(2)], station="528")
    _write(tmp_path, [make_patient(1, station="640A4")], station="640A4")
    both = read_source(tmp_path)
    assert both.stations == ["528", "640A4"] and [p.patient_id for p in both.patients] == ["528:1", "528:2", "640A4:1"]
    only = read_source(tmp_path, station="640A4")
    assert [p.patient_id for p in only.patients] == ["640A4:1"]
    # one file holding everything, data before pointer files: the reader falls back to buffering
    combined = tmp_path / "all.zwr"
    parts = ["combined\n01-JAN-2026 00:00:00 ZWR\n"]
    data_first = sorted((tmp_path / "528").glob("*.zwr"), key=lambda p: p.name.split("+")[0] in L.POINTER_SPECS)
    for path in data_first:
        parts += path.read_text().splitlines(keepends=True)[2:]
    combined.write_text("".join(parts))
    with pytest.raises(InputError, match="station"):
        read_source(combined)
    res = read_source(combined, station="528")
    assert res.patients == [make_patient(1), make_patient(2)]


def test_unknown_globals_are_counted(tmp_path: Path) -> None:
    folder = _write(tmp_path, [make_patient(1)])
    (folder / "4+INSTITUTION.zwr").write_text(
        'T\n01-JAN-2026 00:00:00 ZWR\n^DIC(4,1,0)="SITE"\n^DIC(4,2,0)="X"\n^XTMP("A",1)=1\n^DIC(999)=1\n'
    )
    res = read_source(folder)
    assert res.unknown_globals == {"^DIC(4": 2, "^DIC(999": 1, "^XTMP": 1} and res.unknown_nodes == 4
    assert res.patients == [make_patient(1)]


def test_bad_lines_raise_or_are_skipped_and_counted(tmp_path: Path) -> None:
    folder = _write(tmp_path, [make_patient(1), make_patient(2)])
    path = folder / "120.5+GMRV VITAL MEASUREMENT.zwr"
    lines = path.read_text().splitlines(keepends=True)
    lines[3] = lines[3][:20] + "\n"  # corrupt the first vital of patient 1 (file line 4)
    path.write_text("".join(lines))
    with pytest.raises(ZWRFormatError) as exc:
        read_source(folder)
    assert exc.value.line_no == 4 and exc.value.path.endswith("120.5+GMRV VITAL MEASUREMENT.zwr")
    res = read_source(folder, skip_bad_lines=True)
    assert res.bad_lines == 1
    assert [len(p.vitals) for p in res.patients] == [3, 4]
    # a truncated file: the last line is cut
    path = folder / "2+PATIENT.zwr"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ZWRFormatError, match="truncated"):
        read_source(folder)
    assert read_source(folder, skip_bad_lines=True).bad_lines == 2


def test_dangling_pointer_and_missing_patient_raise(tmp_path: Path) -> None:
    folder = _write(tmp_path, [make_patient(1)])
    (folder / "50+DRUG.zwr").write_text("T\n01-JAN-2026 00:00:00 ZWR\n^PSDRUG(0)=\"DRUG^50^0^0\"\n")
    with pytest.raises(InputError, match="DRUG"):
        read_source(folder)
    folder = _write(tmp_path / "b", [make_patient(1)])
    path = folder / "2+PATIENT.zwr"
    path.write_text("T\n01-JAN-2026 00:00:00 ZWR\n^DPT(0)=\"PATIENT^2I^0^0\"\n")
    with pytest.raises(InputError, match="DFN 1"):
        read_source(folder)


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with StationWriter(tmp_path, "528") as w:
            w.add(make_patient(1))
            raise RuntimeError("boom")
    assert list((tmp_path / "528").iterdir()) == []


# --------------------------------------------------------------------------- hypothesis: any patient round-trips

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="^"), max_size=12)
_name = _text.filter(lambda s: s.strip() != "" or s == "")
_wp = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
_code = st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="^;"), min_size=1, max_size=8))
_dates = st.one_of(
    st.none(),
    st.integers(1800, 2699).map(str),
    st.dates(date(1800, 1, 1), date(2699, 12, 31)).map(lambda d: d.isoformat()[:7]),
    st.dates(date(1800, 1, 1), date(2699, 12, 31)).map(date.isoformat),
    st.datetimes(datetime(1800, 1, 2), datetime(2699, 12, 31, 23, 59, 59)).map(lambda d: d.replace(microsecond=0).isoformat()),
)
_dt = st.datetimes(datetime(1800, 1, 2), datetime(2699, 12, 31)).map(lambda d: d.replace(microsecond=0).isoformat())


@st.composite
def _patient(draw: st.DrawFn, dfn: int, base: int) -> PatientRecord:
    ien = iter(range(base, base + 1000))
    n = st.integers(0, 2)
    return PatientRecord(
        station="528", dfn=dfn, name=draw(_name), sex=draw(_text), dob=draw(_dates), ssn=draw(_text),
        icn=draw(_text), icn_checksum=draw(_text), marital_status=draw(_text), race=draw(_text), ethnicity=draw(_text),
        address=Address(*(draw(_text) for _ in range(6))), phone_home=draw(_text),
        service_connected=draw(st.booleans()), sc_percent=draw(st.one_of(st.none(), st.integers(-5, 100))),
        period_of_service=draw(_text), branch=draw(_text), service_entry=draw(_dates),
        service_separation=draw(_dates), date_of_death=draw(_dates),
        problems=[Problem(next(ien), draw(_text), draw(st.sampled_from(["ICD-10-CM", "ICD-9-CM", "SNOMED-CT"])),
                          draw(_text), draw(st.one_of(st.none(), _text)), draw(_text), draw(_dates), draw(_dates),
                          draw(_dates)) for _ in range(draw(n))],
        allergies=[Allergy(next(ien), draw(_text), draw(_text), draw(_text), draw(st.booleans()), draw(_dates),
                           draw(_code), draw(_code), draw(st.sampled_from(["active", "entered-in-error"])),
                           draw(st.lists(_text, max_size=3))) for _ in range(draw(n))],
        prescriptions=[Prescription(next(ien), draw(_text), draw(_text), draw(st.one_of(st.none(), _text)),
                                    draw(st.floats(0, 1e7, allow_nan=False)), draw(st.integers(0, 400)),
                                    draw(st.integers(0, 12)), draw(_dates), draw(st.sampled_from(sorted(L.RX_STATUS))),
                                    draw(_text), draw(_wp)) for _ in range(draw(n))],
        vitals=[Vital(next(ien), draw(_dt), draw(_text), draw(_text)) for _ in range(draw(n))],
        visits=[Visit(next(ien), draw(_dt), draw(_text), draw(_text), draw(_text)) for _ in range(draw(n))],
        orders=[Order(next(ien), draw(_wp), draw(st.sampled_from(["lab", "medication", "consult", "imaging", "nursing", "diet"])),
                      draw(st.sampled_from(["pending", "active", "complete", "discontinued", "expired", "unreleased", "held"])),
                      draw(st.booleans()), draw(_dates), draw(_code), draw(_code)) for _ in range(draw(n))],
        flags=[RecordFlag(next(ien), draw(_text), draw(st.sampled_from(["I", "II"])),
                          draw(st.sampled_from(["active", "inactive"])), draw(_dates), draw(_dates)) for _ in range(draw(n))],
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.integers(1, 50), min_size=1, max_size=3, unique=True).flatmap(
    lambda dfns: st.tuples(*(_patient(d, d * 100) for d in sorted(dfns)))))
def test_any_patient_round_trips(patients: tuple[PatientRecord, ...]) -> None:
    tmp = Path(tempfile.mkdtemp())
    try:
        result = read_source(_write(tmp, list(patients)))
        assert result.patients == list(patients)
    finally:
        shutil.rmtree(tmp)


def test_reader_counts_match_file_lines(tmp_path: Path) -> None:
    folder = _write(tmp_path, [make_patient(d) for d in range(1, 4)])
    total = 0
    for path in folder.glob("*.zwr"):
        reader = ZWRReader(path)
        total += sum(1 for _ in reader)
    res = read_source(folder)
    assert res.nodes_read == total and res.index_nodes > 0
