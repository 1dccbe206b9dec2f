"""``StationWriter.add_block`` (column-by-column encoding) writes exactly what ``add`` writes.

Same bytes and pointer IENs for hand-built patients (every field, imprecise dates, free text),
for any hypothesis patients, for generated blocks with defects, and for blocks that the batch
encoder hands back to the per-patient path (carets, quotes, bad dates, DFNs out of order), which
then raises the same errors.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_vista_globals import _patient, make_patient

from vistasim.errors import InputError
from vistasim.model import PatientRecord
from vistasim.vista import StationWriter
from vistasim.vista.block import encode_block
from vistasim.vista.globals import PatientEncoder


def _bytes(folder: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(folder.glob("*.zwr"))}


def _both(patients: list[PatientRecord], blocks: list[int] | None = None, station: str = "528") -> tuple[dict, dict]:
    """Files written with ``add`` one by one and with ``add_block`` over blocks of the given sizes."""
    tmp = Path(tempfile.mkdtemp())
    try:
        with StationWriter(tmp / "one", station) as w:
            for p in patients:
                w.add(p)
        sizes = blocks or [len(patients)]
        with StationWriter(tmp / "block", station) as w:
            i = 0
            for k in sizes:
                w.add_block(patients[i : i + k])
                i += k
            w.add_block(patients[i:])
        return _bytes(tmp / "one" / station), _bytes(tmp / "block" / station)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_block_equals_per_patient_on_hand_built_patients() -> None:
    pats = [make_patient(d) for d in range(1, 13)]
    one, block = _both(pats, [5, 4])
    assert one == block and len(one) > 10


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.integers(1, 50), min_size=1, max_size=4, unique=True).flatmap(
    lambda dfns: st.tuples(*(_patient(d, d * 100) for d in sorted(dfns)))))
def test_block_equals_per_patient_on_any_patient(patients: tuple[PatientRecord, ...]) -> None:
    one, block = _both(list(patients))
    assert one == block


def test_block_equals_per_patient_on_generated_blocks_with_defects() -> None:
    from vistasim.generate import DefectConfig
    from vistasim.generate.layout import Layout
    from vistasim.generate.population import build_block

    layout = Layout.build(3000, 1)
    recs, _keys = build_block(3, layout, 0, np.arange(1, 1201, dtype=np.int64), DefectConfig.of(0.2))
    recs = [replace(r, station="528") for r in recs]
    one, block = _both(recs, [400, 400])
    assert one == block
    assert encode_block(PatientEncoder(), recs[:400]) is not None  # the batch path really ran
    assert sum(len(v) for v in one.values()) > 500_000


def test_odd_blocks_fall_back_to_the_per_patient_path() -> None:
    p = [make_patient(d) for d in (1, 2, 3)]
    enc = PatientEncoder()
    cases = [
        [p[0], replace(p[1], name='O"BRIEN,PAT'), p[2]],  # a quote: checked path doubles it
        [p[0], replace(p[1], marital_status=None), p[2]],  # None where text is meant: checked path copes
        [p[1], p[0], p[2]],  # DFNs out of order
        [p[0], replace(p[1], vitals=[replace(v, value="") for v in p[1].vitals]), p[2]],
    ]
    for pats in cases:
        one, block = _both(pats)
        assert one == block
    assert encode_block(enc, cases[0]) is None and encode_block(enc, cases[2]) is None
    assert all(not t.new_xrefs or t.spec.fixed or t.spec.reference for t in enc.pointers.values())  # nothing grew


@pytest.mark.parametrize("bad,match", [({"name": "A^B"}, "NAME"), ({"dob": "1947-13-01"}, "DOB")])
def test_bad_patient_in_a_block_raises_as_add_does(tmp_path: Path, bad: dict, match: str) -> None:
    pats = [make_patient(1), replace(make_patient(2), **bad)]
    with StationWriter(tmp_path, "528") as w:
        with pytest.raises(InputError, match=match):
            w.add_block(pats)
        assert w.patients == 1  # the first patient went in, as with add one by one
