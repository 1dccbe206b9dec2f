"""The compiled fullUrl builder (vistasim._c.uuid5) against Python's uuid.uuid5 and the mapper's own."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vistasim import _accel
from vistasim.fhir import mapping as M

U = _accel.load("uuid5")
pytestmark = pytest.mark.skipif(U is None, reason="accelerator uuid5 not built (no C compiler at install)")


def _expected(rtype: str, rid: str) -> str:
    return "urn:uuid:" + str(uuid.uuid5(M._NS, f"{rtype}/{rid}"))


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80), st.text(max_size=700))
def test_full_url_is_uuid5_for_any_name(rtype: str, rid: str) -> None:
    """Any text (non-ASCII, empty, names over one and over several SHA-1 blocks, past the stack buffer)."""
    assert U.full_url(M._NS.bytes, rtype, rid) == _expected(rtype, rid) == M.full_url(rtype, rid)


@pytest.mark.parametrize("n", [0, 1, 30, 31, 38, 39, 40, 47, 48, 102, 103, 104, 495, 496, 497, 1000])
def test_full_url_at_sha1_padding_edges(n: int) -> None:
    """Message lengths around the 55/56/64-byte padding boundaries and the 512-byte stack buffer
    (16 namespace bytes + "Flag/" + n id bytes)."""
    rid = "9" * n
    assert U.full_url(M._NS.bytes, "Flag", rid) == _expected("Flag", rid)


def test_put_entry_is_the_mappers_entry_with_the_same_key_order() -> None:
    res = {"resourceType": "Observation", "id": "500-120.5-7"}
    got = U.put_entry(M._NS.bytes, "Observation", "500-120.5-7", res)
    want = {"fullUrl": _expected("Observation", "500-120.5-7"), "resource": res,
            "request": {"method": "PUT", "url": "Observation/500-120.5-7"}}
    assert got == want and list(got) == list(want) and list(got["request"]) == ["method", "url"]
    assert got["resource"] is res
    with pytest.raises(ValueError, match="16 bytes"):
        U.full_url(b"short", "Flag", "1")
