"""ZWR reader and writer: real OSEHRA exports re-write byte-identically; bad lines are reported."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vistasim.errors import ZWRFormatError
from vistasim.vista.zwr import (
    ZWRReader,
    ZWRWriter,
    format_node,
    format_string,
    format_subscript,
    format_value,
    is_canonic,
    node_key,
    parse_line,
    read_zwr,
    write_zwr,
)

REFERENCE = sorted(Path("/work/shared/vista-reference").glob("*.zwr"))
PACKAGED = sorted((Path(__file__).parents[1] / "src/vistasim/data/vista").glob("*.zwr"))


def _ref_files() -> list[Path]:
    return REFERENCE or PACKAGED


@pytest.mark.parametrize("path", _ref_files(), ids=lambda p: p.name)
@pytest.mark.parametrize("sort", [False, True])
def test_reference_files_rewrite_byte_identically(path: Path, sort: bool, tmp_path: Path) -> None:
    header, nodes = read_zwr(path)
    assert header is not None and header[1].endswith("ZWR")
    out = tmp_path / "out.zwr"
    n = write_zwr(out, nodes, header, sort=sort)
    assert n == len(nodes) == len(path.read_text().splitlines()) - 2
    assert out.read_bytes() == path.read_bytes()


def test_packaged_copies_equal_the_reference() -> None:
    if not REFERENCE:
        pytest.skip("shared reference folder not mounted")
    assert [p.name for p in PACKAGED] == [p.name for p in REFERENCE]
    for a, b in zip(PACKAGED, REFERENCE):
        assert a.read_bytes() == b.read_bytes()


def _nodes(name: str) -> dict:
    path = next(p for p in _ref_files() if p.name.startswith(name))
    return {(g, s): v for g, s, v in read_zwr(path)[1]}


def test_reference_content_is_parsed_as_m_means_it() -> None:
    pos = _nodes("21+")
    assert pos[("DIC", (21, "B", "NAVY, MARINE--ACTIVE DUTY", 93))] == ""
    assert pos[("DIC", (21, 1, "E", 1, 0))] == "1"  # a bare number comes back as its text
    vt = _nodes("120.51+")
    assert vt[("GMRD", ("120.51", 1, "TERMSTATUS", "B", "3060726.170105", 511))] == ""
    assert vt[("GMRD", ("120.51", 2, 1))].startswith('K:(+X\'=X!(X>120)!(X<0)!(X?.E1"."3N.N))')
    ms = _nodes("11+")
    assert ms[("DIC", (11, "%MSC"))] == "3180228.171456"
    assert ms[("DIC", (11, 2, 0))] == "MARRIED^^M"


def test_parse_line_forms() -> None:
    assert parse_line('^X("a""b",1.5,"c,d")="x"_$C(9,10)_"y"\n') == ("X", ("a\"b", "1.5", "c,d"), "x\t\ny")
    assert parse_line("^X=5") == ("X", (), "5")
    assert parse_line('^%ZOSF("OS")="GT.M"') == ("%ZOSF", ("OS",), "GT.M")
    assert parse_line('^X("(a)=b",-2,.5)=$C(1)') == ("X", ("(a)=b", -2, ".5"), "\x01")
    assert parse_line('^X($C(9)_"t")=""') == ("X", ("\tt",), "")
    assert parse_line('^X("7")=1') == ("X", (7,), "1")  # a quoted canonic integer is the number 7
    assert parse_line('^X("007")="007"') == ("X", ("007",), "007")


@pytest.mark.parametrize(
    "line,reason",
    [
        ('^X(1,"abc)="x"', "unexpected"),
        ('^X(1,"abc)=1', "unterminated"),
        ("^X(1,2", "no '='"),
        ('^X(1)="abc', "unterminated"),
        ('^X(1)="a"_', "ends inside"),
        ("^X(1)=abc", "canonic"),
        ("^X(01)=1", "subscript"),
        ('X(1)="a"', "start with"),
        ("^X()=1", "empty"),
        ('^X(1)="a"junk', "unexpected"),
        ('^X(1)=$Z(5)', "unknown function"),
        ("^1X(1)=1", "global name"),
        ('^X(1)=', "no value"),
    ],
)
def test_parse_line_rejects(line: str, reason: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_line(line)
    assert reason in str(exc.value)


def test_canonic_numbers() -> None:
    for s in ["0", "1", "-1", ".5", "-.5", "3060726.170105", "123456789012345678"]:
        assert is_canonic(s), s
    for s in ["", "01", "1.0", "1.", "0.5", "-0", "+1", "1e5", " 1", "1 ", "-", ".", "1234567890123456789", "00"]:
        assert not is_canonic(s), s


def test_value_and_subscript_formatting() -> None:
    assert format_value("30") == "30" and format_value("030") == '"030"'
    assert format_value('say "hi"') == '"say ""hi"""'
    assert format_value("a\tb") == '"a"_$C(9)_"b"'
    assert format_value("\t\n") == "$C(9,10)"
    assert format_value("") == '""'
    assert format_string("é\u2028x") == '"é\u2028x"'  # printable-or-not, only C0 controls and DEL use $C
    assert format_subscript(5) == "5" and format_subscript("3.5") == "3.5" and format_subscript("B") == '"B"'
    assert format_subscript(10**20) == '"100000000000000000000"'
    with pytest.raises(ValueError):
        format_subscript("")
    with pytest.raises(TypeError):
        format_subscript(True)


def test_collation_numbers_before_strings_by_value_then_bytes() -> None:
    subs = [("B",), (10,), (2,), ("10.5",), ("a",), ("AB",), ("-1",), (".5",), (0,), ("Z",), (2, 0), (2, "x")]
    ordered = sorted(subs, key=node_key)
    assert ordered == [("-1",), (0,), (".5",), (2,), (2, 0), (2, "x"), (10,), ("10.5",), ("AB",), ("B",), ("Z",), ("a",)]
    assert node_key(("3060726.170105",))[0] == (0, Decimal("3060726.170105"))


# --------------------------------------------------------------------------- hypothesis round trips

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_subscript = st.one_of(
    st.integers(-(10**17), 10**17),
    st.decimals(min_value=-10**6, max_value=10**6, places=6, allow_nan=False).map(
        lambda d: format(d.normalize(), "f")
    ).filter(lambda s: is_canonic(s) and "." in s),
    _text.filter(lambda s: s != ""),
)
_gname = st.from_regex(r"%?[A-Za-z][A-Za-z0-9]{0,7}", fullmatch=True)


def _norm(s: object) -> object:
    """M semantics: a string that is a canonic integer is that integer."""
    if isinstance(s, str) and is_canonic(s) and "." not in s:
        return int(s)
    return s


@settings(max_examples=400)
@given(_gname, st.lists(_subscript, max_size=5).map(tuple), _text)
def test_format_parse_round_trip(gname: str, subs: tuple, value: str) -> None:
    line = format_node(gname, subs, value)
    assert "\n" not in line and "\r" not in line
    g, s, v = parse_line(line + "\n")
    assert g == gname and v == value
    assert s == tuple(_norm(x) for x in subs)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.lists(_subscript, min_size=1, max_size=3).map(tuple), _text), max_size=40))
def test_sorted_write_then_read_is_in_collation_order(tmp_path_factory: pytest.TempPathFactory, items: list) -> None:
    path = tmp_path_factory.mktemp("z") / "h.zwr"
    nodes = {tuple(_norm(x) for x in s): v for s, v in items}
    write_zwr(path, [("X", s, v) for s, v in nodes.items()], ("T", "01-JAN-2026 00:00:00 ZWR"), sort=True)
    header, back = read_zwr(path)
    assert header == ("T", "01-JAN-2026 00:00:00 ZWR")
    keys = [node_key(s) for _g, s, _v in back]
    assert keys == sorted(keys) and len(set(map(tuple, keys))) == len(keys)
    assert {s: v for _g, s, v in back} == nodes


# --------------------------------------------------------------------------- headers, truncation, corruption


def _copy_ref(tmp_path: Path, name: str = "11+") -> Path:
    src = next(p for p in _ref_files() if p.name.startswith(name))
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    return dst


def test_truncated_file_names_file_and_line(tmp_path: Path) -> None:
    path = _copy_ref(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])  # cut inside the last line
    lines = data.decode().splitlines()
    with pytest.raises(ZWRFormatError) as exc:
        list(ZWRReader(path))
    assert exc.value.line_no == len(lines) and exc.value.path == str(path)
    assert str(path) in str(exc.value) and f"line {len(lines)}" in str(exc.value)
    reader = ZWRReader(path, skip_bad_lines=True)
    nodes = list(reader)
    assert reader.bad_lines == 1 and len(nodes) == len(lines) - 3


def test_corrupt_lines_raise_or_are_counted(tmp_path: Path) -> None:
    path = _copy_ref(tmp_path, "21+")
    lines = path.read_text().splitlines(keepends=True)
    lines[4] = '^DIC(21,1,0)="KOREAN^^0^2500627\n'  # unterminated string, file line 5
    lines[10] = "garbage\n"  # file line 11
    path.write_text("".join(lines))
    with pytest.raises(ZWRFormatError) as exc:
        read_zwr(path)
    assert exc.value.line_no == 5 and "unterminated" in exc.value.reason
    reader = ZWRReader(path, skip_bad_lines=True)
    nodes = list(reader)
    assert reader.bad_lines == 2 and reader.bad_line_numbers == [5, 11]
    assert len(nodes) == len(lines) - 2 - 2 == reader.nodes_read


@pytest.mark.parametrize(
    "header",
    [
        "GT.M MUPIP EXTRACT UTF-8\n08-JAN-2019  14:35:26 ZWR\n",
        "Cache %GO export of ^DIC\n07-Feb-2019 14:35:26 ZWR\r\n",
        "OSEHRA ZGO Export: MARITAL STATUS\n07-FEB-2019 14:35:26 ZWR\n",
    ],
)
def test_header_variants(header: str, tmp_path: Path) -> None:
    path = tmp_path / "h.zwr"
    path.write_text(header + '^DIC(11,1,0)="DIVORCED^^D"\n', newline="")
    h, nodes = read_zwr(path)
    assert h is not None and h[1].rstrip().endswith("ZWR")
    assert nodes == [("DIC", (11, 1, 0), "DIVORCED^^D")]


def test_headerless_dump_and_bad_headers(tmp_path: Path) -> None:
    path = tmp_path / "h.zwr"
    path.write_text('^X(1)="a"\n^X(2)=2\n')
    assert read_zwr(path) == (None, [("X", (1,), "a"), ("X", (2,), "2")])
    path.write_text("title\nnot a date line\n^X(1)=1\n")
    with pytest.raises(ZWRFormatError) as exc:
        read_zwr(path)
    assert exc.value.line_no == 2
    path.write_text("")
    with pytest.raises(ZWRFormatError) as exc:
        read_zwr(path)
    assert exc.value.line_no == 1


def test_writer_is_atomic_and_checks_order(tmp_path: Path) -> None:
    path = tmp_path / "w.zwr"
    with pytest.raises(ValueError):
        with ZWRWriter(path, "T", "01-JAN-2026 00:00:00 ZWR", check_order=True) as w:
            w.write("X", (2,), "b")
            w.write("X", (1,), "a")
    assert not path.exists() and not list(tmp_path.iterdir())
    with ZWRWriter(path, "T", "01-JAN-2026 00:00:00 ZWR", check_order=True) as w:
        w.write("X", (1,), "a")
        w.write("X", (1, "s"), "b")
        w.write("X", ("s",), "c")
    assert path.read_text() == 'T\n01-JAN-2026 00:00:00 ZWR\n^X(1)="a"\n^X(1,"s")="b"\n^X("s")="c"\n'


def test_bytes_outside_utf8_survive(tmp_path: Path) -> None:
    path = tmp_path / "b.zwr"
    path.write_bytes(b'T\n01-JAN-2026 00:00:00 ZWR\n^X(1)="caf\xe9"\n')
    header, nodes = read_zwr(path)
    out = tmp_path / "o.zwr"
    write_zwr(out, nodes, header)  # type: ignore[arg-type]
    assert out.read_bytes() == path.read_bytes()
