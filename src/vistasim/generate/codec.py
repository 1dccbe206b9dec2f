"""Compact tuples for shipping PatientRecords between processes.

Pickling slots dataclasses goes through ``copyreg`` object by object and is slower than generating
them; flat tuples pickle at C speed. ``operator.attrgetter`` packs, positional constructors unpack.
"""

from __future__ import annotations

from dataclasses import fields
from itertools import starmap
from operator import attrgetter
from typing import Any

from ..model import Address, Allergy, Order, PatientRecord, Prescription, Problem, RecordFlag, Visit, Vital

_LISTS = (("problems", Problem), ("allergies", Allergy), ("prescriptions", Prescription), ("vitals", Vital),
          ("visits", Visit), ("orders", Order), ("flags", RecordFlag))
_SCALARS = [f.name for f in fields(PatientRecord) if f.name not in {name for name, _ in _LISTS}]
_get_scalars = attrgetter(*_SCALARS)
_get_addr = attrgetter(*(f.name for f in fields(Address)))
_getters = tuple(attrgetter(*(f.name for f in fields(cls))) for _, cls in _LISTS)
_get_lists = attrgetter(*(name for name, _ in _LISTS))
_CLASSES = tuple(cls for _, cls in _LISTS)
_ADDR_POS = _SCALARS.index("address")
# PatientRecord declares its scalar fields before its lists, so positional construction is safe
_POSITIONAL = [f.name for f in fields(PatientRecord)] == _SCALARS + [name for name, _ in _LISTS]


def pack(r: PatientRecord) -> tuple[Any, ...]:
    s = list(_get_scalars(r))
    s[_ADDR_POS] = _get_addr(r.address)
    lists = _get_lists(r)
    return (tuple(s), tuple([g(e) for e in lst] for g, lst in zip(_getters, lists)))


def unpack(t: tuple[Any, ...]) -> PatientRecord:
    s, lists = t
    s = list(s)
    s[_ADDR_POS] = Address(*s[_ADDR_POS])
    # starmap calls each constructor from C: no per-entry bytecode
    args = [list(starmap(cls, lst)) if lst else [] for cls, lst in zip(_CLASSES, lists)]
    if _POSITIONAL:
        return PatientRecord(*s, *args)
    return _build(s, args)


def _build(s: list[Any], lists: list[list[Any]]) -> PatientRecord:
    kw = dict(zip(_SCALARS, s))
    kw.update({name: lst for (name, _), lst in zip(_LISTS, lists)})
    return PatientRecord(**kw)
