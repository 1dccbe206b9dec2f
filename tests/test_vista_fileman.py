"""FileMan dates: every ISO form of the model round-trips through FileMan's internal form."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vistasim.errors import InputError
from vistasim.vista.fileman import (
    canonical_iso,
    date_to_fm,
    datetime_to_fm,
    fm_to_datetime,
    fm_to_iso,
    iso_to_fm,
)

EXAMPLES = [
    ("2025-01-01", "3250101"),
    ("1925-01-01", "2250101"),
    ("1947", "2470000"),
    ("1947-06", "2470600"),
    ("1947-06-12", "2470612"),
    ("1947-06-12T08:30:00", "2470612.083"),
    ("1947-06-12T10:00:00", "2470612.1"),
    ("1947-06-12T08:30:15", "2470612.083015"),
    ("1947-06-12T00:00:01", "2470612.000001"),
    ("1947-06-12T23:59:59", "2470612.235959"),
    ("1947-06-13T00:00:00", "2470612.24"),  # midnight = end of the day before
    ("2000-03-01T00:00:00", "3000229.24"),  # across a leap day
    ("2025-01-01T00:00:00", "3241231.24"),  # across a year
]


@pytest.mark.parametrize("iso,fm", EXAMPLES)
def test_known_values_both_ways(iso: str, fm: str) -> None:
    assert iso_to_fm(iso) == fm
    assert fm_to_iso(fm) == iso


@pytest.mark.parametrize(
    "iso,canon",
    [
        ("1947-06-12T08:30", "1947-06-12T08:30:00"),
        ("1947-06-12T24:00", "1947-06-13T00:00:00"),
        ("1947-06-12T24:00:00", "1947-06-13T00:00:00"),
        ("1947-06-12T00:00", "1947-06-12T00:00:00"),
    ],
)
def test_non_canonical_inputs_are_accepted_and_normalised(iso: str, canon: str) -> None:
    assert canonical_iso(iso) == canon
    assert fm_to_iso(iso_to_fm(iso)) == canon


def test_end_of_day_input_gives_point_24() -> None:
    assert iso_to_fm("1947-06-12T24:00:00") == "2470612.24"


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "1947-02-30", "1947-13", "1947-00", "1799", "2700-01-01", "1947-06-12T25:00:00",
     "1947-06-12T08:30:00Z", "1947-06-12 08:30:00", "1947-06-12T08:60:00", "1947-06-12T24:00:01",
     "19470612", "1947-6-12", "1947-06-12T08:30:00.5", "+947-06-12"],
)
def test_bad_iso_raises_input_error_naming_value(bad: str) -> None:
    with pytest.raises(InputError) as exc:
        iso_to_fm(bad)
    assert repr(bad) in str(exc.value)


@pytest.mark.parametrize(
    "bad",
    ["", "247061", "24706120", "2470612.", "2470612.0830", "2470612.0", "2470012", "2470600.1", "2470000.1",
     "2471301", "2470230", "2470612.25", "2470612.086", "2470612.1234567", "0990101", "x470612", "2470612.24000"],
)
def test_bad_fileman_raises_input_error_naming_value(bad: str) -> None:
    with pytest.raises(InputError) as exc:
        fm_to_iso(bad)
    assert repr(bad) in str(exc.value)


def test_non_string_inputs_raise() -> None:
    with pytest.raises(InputError):
        iso_to_fm(19470612)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- hypothesis round trips

dates = st.dates(min_value=date(1800, 1, 2), max_value=date(2699, 12, 30))
datetimes = st.datetimes(min_value=datetime(1800, 1, 2), max_value=datetime(2699, 12, 30, 23, 59, 59)).map(
    lambda d: d.replace(microsecond=0)
)


@given(st.integers(1800, 2699))
def test_year_round_trip(y: int) -> None:
    iso = f"{y}"
    fm = iso_to_fm(iso)
    assert fm == f"{y - 1700}0000" and len(fm) == 7
    assert fm_to_iso(fm) == iso


@given(st.integers(1800, 2699), st.integers(1, 12))
def test_month_round_trip(y: int, m: int) -> None:
    iso = f"{y}-{m:02d}"
    assert fm_to_iso(iso_to_fm(iso)) == iso


@given(dates)
def test_day_round_trip(d: date) -> None:
    iso = d.isoformat()
    fm = iso_to_fm(iso)
    assert fm == date_to_fm(d)
    assert fm_to_iso(fm) == iso


@settings(max_examples=300)
@given(datetimes)
def test_datetime_round_trip_with_seconds(dt: datetime) -> None:
    iso = dt.isoformat()  # always YYYY-MM-DDTHH:MM:SS here
    fm = iso_to_fm(iso)
    assert fm == datetime_to_fm(dt)
    assert fm_to_iso(fm) == iso
    assert fm_to_datetime(fm) == dt
    # FileMan's form is canonic: no trailing zero after the point, time part at most 6 digits
    if "." in fm:
        frac = fm.split(".")[1]
        assert not frac.endswith("0") and 1 <= len(frac) <= 6


@given(datetimes)
def test_minute_form_equals_seconds_zero(dt: datetime) -> None:
    dt = dt.replace(second=0)
    assert iso_to_fm(dt.strftime("%Y-%m-%dT%H:%M")) == iso_to_fm(dt.isoformat())


@given(datetimes)
def test_fileman_order_follows_time_order(dt: datetime) -> None:
    later = dt + timedelta(seconds=1)
    if later.year <= 2699:
        assert float(iso_to_fm(later.isoformat())) > float(iso_to_fm(dt.isoformat()))


@settings(max_examples=300)
@given(dates, st.integers(0, 24), st.integers(0, 59), st.integers(0, 59), st.integers(0, 3))
def test_fileman_to_iso_to_fileman(d: date, hh: int, mm: int, ss: int, precision: int) -> None:
    base = date_to_fm(d)
    if precision == 0:
        fm = base
    elif precision == 1:
        fm = base[:5] + "00"
    elif precision == 2:
        fm = base[:3] + "0000"
    else:
        if hh == 24:
            mm = ss = 0
        frac = f"{hh:02d}{mm:02d}{ss:02d}".rstrip("0")
        if not frac:
            return  # midnight at the start of a day has no FileMan form of its own
        fm = f"{base}.{frac}"
    if d == date(2699, 12, 30) and fm.endswith(".24"):
        return
    assert iso_to_fm(fm_to_iso(fm)) == fm


def test_imprecise_dates_cannot_become_datetimes() -> None:
    with pytest.raises(InputError):
        fm_to_datetime("2470600")


def test_aware_datetime_rejected() -> None:
    from datetime import timezone

    with pytest.raises(InputError):
        datetime_to_fm(datetime(2020, 1, 1, 8, 30, tzinfo=timezone.utc))
