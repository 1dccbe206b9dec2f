"""FileMan internal dates <-> the ISO 8601 strings of the patient model.

FileMan stores a date/time as the canonic number ``YYYMMDD.HHMMSS`` with ``YYY`` = year - 1700
(``3250101`` is 2025-01-01, ``2250101`` is 1925-01-01). Canonic means trailing zeros are dropped
(08:30 -> ``.083``, 10:00 -> ``.1``), so FileMan cannot tell 08:30 from 08:30:00. Month or day
``00`` marks an imprecise date, and ``.24`` is midnight at the *end* of the day (FileMan has no
``.0000``: the start of a day is the end of the day before).

The model's ISO forms, one per FileMan form, so both round trips are lossless:

============================  ==========================  ===============================
FileMan                       ISO (canonical output)      note
============================  ==========================  ===============================
``2470000``                   ``1947``                    year only
``2470600``                   ``1947-06``                 month
``2470612``                   ``1947-06-12``              day
``2470612.083``               ``1947-06-12T08:30:00``     any time: always with seconds
``2470612.083015``            ``1947-06-12T08:30:15``
``2470611.24``                ``1947-06-12T00:00:00``     .24 = 00:00 of the next day
============================  ==========================  ===============================

``iso_to_fm`` also accepts two non-canonical inputs: minutes without seconds (``T08:30``, read as
``T08:30:00``) and ``T24:00[:00]`` (end of that day). ``canonical_iso`` gives the canonical form of
any accepted input; ``fm_to_iso(iso_to_fm(x)) == canonical_iso(x)``. No time zones: VistA stores
local time. Years run from 1800 to 2699 (``YYY`` 100-999, so the date part always has 7 digits).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from vistasim.errors import InputError

__all__ = [
    "iso_to_fm",
    "fm_to_iso",
    "canonical_iso",
    "date_to_fm",
    "datetime_to_fm",
    "fm_to_datetime",
    "MIN_YEAR",
    "MAX_YEAR",
]

MIN_YEAR = 1800
MAX_YEAR = 2699

_DIGITS = frozenset("0123456789")
_CACHE_LIMIT = 200_000

# Both directions are memoised: a population reuses the same days and times of day over and over,
# and this sits on the hot path of writing and reading ZWR. The caches are cleared when they grow
# past _CACHE_LIMIT so memory stays bounded.
_ISO_DAY: dict[str, str] = {}  # "YYYY-MM-DD" -> "YYYMMDD"
_ISO_TIME: dict[str, str] = {}  # "HH:MM:SS" -> ".HHMMSS" canonic ("" for 00:00:00)
_FM_CACHE: dict[str, str] = {}  # FileMan -> canonical ISO
_FM_DAY: dict[str, str] = {}  # "YYYMMDD" of a precise date seen with a time -> "YYYY-MM-DD"
_FM_TIME: dict[str, str] = {}  # canonic time digits seen -> "THH:MM:SS" (never "24")


def _bad(value: object, why: str) -> InputError:
    return InputError(f"{value!r} is not a valid {why}")


def _isdigits(s: str) -> bool:
    return bool(s) and s.isascii() and s.isdigit()


def _check_year(year: int, value: object) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise _bad(value, f"date: year must be {MIN_YEAR}-{MAX_YEAR} (FileMan YYY 100-999)")


def _day_fm(iso10: str, value: str) -> str:
    """'YYYY-MM-DD' -> 'YYYMMDD' (validated, memoised)."""
    fm = _ISO_DAY.get(iso10)
    if fm is not None:
        return fm
    if len(iso10) != 10 or iso10[4] != "-" or iso10[7] != "-":
        raise _bad(value, "ISO date: use YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS")
    y, m, d = iso10[:4], iso10[5:7], iso10[8:10]
    if not (_isdigits(y) and _isdigits(m) and _isdigits(d)):
        raise _bad(value, "ISO date: year, month and day must be digits")
    year = int(y)
    _check_year(year, value)
    try:
        date(year, int(m), int(d))
    except ValueError as exc:
        raise _bad(value, f"ISO date ({exc})") from None
    fm = f"{year - 1700}{m}{d}"
    if len(_ISO_DAY) >= _CACHE_LIMIT:
        _ISO_DAY.clear()
    _ISO_DAY[iso10] = fm
    return fm


def _time_frac(hms: str, value: str) -> str:
    """'HH:MM:SS' or 'HH:MM' -> canonic '.HHMMSS' ('' for midnight, '.24' for 24:00)."""
    frac = _ISO_TIME.get(hms)
    if frac is not None:
        return frac
    parts = hms.split(":")
    if len(parts) == 2:
        parts.append("00")
    if len(parts) != 3 or not all(len(p) == 2 and _isdigits(p) for p in parts):
        raise _bad(value, "ISO time: use THH:MM:SS (or THH:MM), no fractions or time zone")
    hh, mm, ss = (int(p) for p in parts)
    if hh > 24 or mm > 59 or ss > 59 or (hh == 24 and (mm or ss)):
        raise _bad(value, "ISO time: hours 00-23 (or 24:00:00), minutes and seconds 00-59")
    frac = ("." + "".join(parts)).rstrip("0").rstrip(".") if (hh, mm, ss) != (0, 0, 0) else ""
    _ISO_TIME[hms] = frac
    return frac


def _prev_day_fm(fm7: str) -> str:
    d = date(int(fm7[:3]) + 1700, int(fm7[3:5]), int(fm7[5:7])) - timedelta(days=1)
    _check_year(d.year, fm7)
    return f"{d.year - 1700}{d.month:02d}{d.day:02d}"


def iso_to_fm(iso: str) -> str:
    """An ISO date of the model (any precision, see the module table) -> FileMan internal form.

    Raises InputError naming the value when it is not one of the accepted forms.
    """
    if not isinstance(iso, str):
        raise _bad(iso, "ISO date string")
    n = len(iso)
    if n == 10:
        return _day_fm(iso, iso)
    if n == 19 or n == 16:
        if iso[10] != "T":
            raise _bad(iso, "ISO date-time: expected 'T' between date and time")
        day = _day_fm(iso[:10], iso)
        frac = _time_frac(iso[11:], iso)
        if frac:
            return day + frac
        return _prev_day_fm(day) + ".24"  # 00:00 is the end of the day before, as FileMan keeps it
    if n == 4:
        if not _isdigits(iso):
            raise _bad(iso, "ISO year: four digits")
        _check_year(int(iso), iso)
        return f"{int(iso) - 1700}0000"
    if n == 7:
        if iso[4] != "-" or not _isdigits(iso[:4]) or not _isdigits(iso[5:]):
            raise _bad(iso, "ISO year-month: YYYY-MM")
        year, month = int(iso[:4]), int(iso[5:])
        _check_year(year, iso)
        if not 1 <= month <= 12:
            raise _bad(iso, "ISO year-month: month 01-12")
        return f"{year - 1700}{iso[5:]}00"
    raise _bad(iso, "ISO date: use YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS")


def _fm_to_iso_uncached(fm: str) -> str:
    date_part, dot, frac = fm.partition(".")
    if len(date_part) != 7 or not _isdigits(date_part):
        raise _bad(fm, "FileMan date: YYYMMDD[.HHMMSS] with a 7-digit date part")
    year = int(date_part[:3]) + 1700
    _check_year(year, fm)
    month, day = int(date_part[3:5]), int(date_part[5:7])
    if month == 0:
        if day != 0 or dot:
            raise _bad(fm, "FileMan date: an unknown month needs day 00 and no time")
        return f"{year}"
    if month > 12:
        raise _bad(fm, "FileMan date: month 00-12")
    if day == 0:
        if dot:
            raise _bad(fm, "FileMan date: an imprecise date (day 00) cannot carry a time")
        return f"{year}-{date_part[3:5]}"
    try:
        d = date(year, month, day)
    except ValueError as exc:
        raise _bad(fm, f"FileMan date ({exc})") from None
    if not dot:
        return d.isoformat()
    if not frac or len(frac) > 6 or not _isdigits(frac) or frac.endswith("0"):
        raise _bad(fm, "FileMan time: 1-6 digits after the point, canonic (no trailing zeros)")
    hms = frac.ljust(6, "0")
    hh, mm, ss = int(hms[:2]), int(hms[2:4]), int(hms[4:])
    if hh == 24 and mm == 0 and ss == 0:
        nxt = d + timedelta(days=1)
        _check_year(nxt.year, fm)
        return f"{nxt.isoformat()}T00:00:00"
    if hh > 23 or mm > 59 or ss > 59:
        raise _bad(fm, "FileMan time: hours 00-24, minutes and seconds 00-59")
    return f"{d.isoformat()}T{hms[:2]}:{hms[2:4]}:{hms[4:]}"


def fm_to_iso(fm: str) -> str:
    """A FileMan internal date/time -> the canonical ISO form of the model (see the module table).

    Raises InputError naming the value when it is not a canonic FileMan date.
    """
    iso = _FM_CACHE.get(fm)  # type: ignore[arg-type]
    if iso is not None:
        return iso
    if not isinstance(fm, str):
        raise _bad(fm, "FileMan date string")
    # Date/times rarely repeat whole, but their day and their time of day do: join the two halves.
    day, dot, frac = fm.partition(".")
    day_iso = _FM_DAY.get(day) if dot else None
    time_iso = _FM_TIME.get(frac) if day_iso is not None else None
    if time_iso is not None:
        iso = day_iso + time_iso  # type: ignore[operator]
    else:
        iso = _fm_to_iso_uncached(fm)
        if dot and frac != "24":  # a valid day and a valid time of day (.24 moves the day)
            if len(_FM_DAY) >= _CACHE_LIMIT:
                _FM_DAY.clear()
            if len(_FM_TIME) >= _CACHE_LIMIT:
                _FM_TIME.clear()
            _FM_DAY[day] = iso[:10]
            _FM_TIME[frac] = iso[10:]
    if len(_FM_CACHE) >= _CACHE_LIMIT:
        _FM_CACHE.clear()
    _FM_CACHE[fm] = iso
    return iso


def canonical_iso(iso: str) -> str:
    """The canonical form of an accepted ISO input (``T08:30`` -> ``T08:30:00``, ``T24:00`` -> next day)."""
    return fm_to_iso(iso_to_fm(iso))


def optional_iso_to_fm(iso: str | None) -> str:
    """``None`` (empty in VistA) -> ``""``; otherwise ``iso_to_fm``."""
    return "" if iso is None else iso_to_fm(iso)


def optional_fm_to_iso(fm: str) -> str | None:
    """``""`` (an empty FileMan field) -> ``None``; otherwise ``fm_to_iso``."""
    return fm_to_iso(fm) if fm else None


def date_to_fm(d: date) -> str:
    """A ``datetime.date`` -> FileMan ``YYYMMDD`` (a ``datetime`` goes through ``datetime_to_fm``)."""
    if isinstance(d, datetime):
        return datetime_to_fm(d)
    _check_year(d.year, d)
    return f"{d.year - 1700}{d.month:02d}{d.day:02d}"


def datetime_to_fm(dt: datetime) -> str:
    """A naive ``datetime`` (local time; microseconds dropped) -> FileMan ``YYYMMDD.HHMMSS``."""
    if dt.tzinfo is not None:
        raise _bad(dt, "FileMan date-time: VistA keeps local time, pass a naive datetime")
    _check_year(dt.year, dt)
    if dt.hour == 0 and dt.minute == 0 and dt.second == 0:
        prev = dt.date() - timedelta(days=1)
        _check_year(prev.year, dt)
        return f"{prev.year - 1700}{prev.month:02d}{prev.day:02d}.24"
    frac = f"{dt.hour:02d}{dt.minute:02d}{dt.second:02d}".rstrip("0")
    return f"{dt.year - 1700}{dt.month:02d}{dt.day:02d}.{frac}"


def fm_to_datetime(fm: str) -> datetime:
    """A precise FileMan date or date/time -> naive ``datetime`` (imprecise dates raise InputError)."""
    iso = fm_to_iso(fm)
    if len(iso) < 10:
        raise _bad(fm, "precise FileMan date: month and day are unknown (00)")
    return datetime.fromisoformat(iso)
