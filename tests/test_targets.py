"""Behaviour of the load targets, run identically against SQLite and PostgreSQL.

Staging is all or nothing, promotion is atomic per person and idempotent, a re-promote replaces a
person exactly, verification catches tampered and missing rows, backout removes a wave (restoring
earlier versions) and leaves other waves alone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from _pg import pg_server, pg_url  # noqa: F401  (fixtures)
from _targets_fixtures import icn, person_bundle, sorted_resources, wave

from vistasim.errors import InputError
from vistasim.targets import Target, load_wave, open_target
from vistasim.targets.sqlite import decode_body, encode_body

Raw = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]


class Boom(RuntimeError):
    pass


def _sqlite_raw(path: str) -> Raw:
    def run(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(path)
        with conn:
            rows = conn.execute(sql, params).fetchall()
        conn.close()
        return rows

    return run


def _pg_raw(url: str) -> Raw:
    def run(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            cur = conn.execute(sql.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []

    return run


def _edit_document(raw: Raw, person: str, edit: Callable[[list[dict[str, Any]]], None], *, digests: bool) -> None:
    """Rewrite, behind the target's back, the staged document production points to for a person:
    ``edit`` changes its resources in place; with ``digests`` its digest column is rewritten to match."""
    from vistasim.targets import canonical_json
    from vistasim.targets.base import document_digests

    [(sid, body)] = raw(
        "SELECT s.sid, s.body FROM persons p JOIN staging s ON s.sid = p.sid WHERE p.person_id = ?", (person,)
    )
    compressed = isinstance(body, bytes)  # SQLite's stored form; PostgreSQL gives JSONB back parsed
    resources = orjson.loads(decode_body(body)) if compressed else body
    edit(resources)
    bodies = [canonical_json(r) for r in resources]
    doc = b"[" + b",".join(bodies) + b"]"
    stored = encode_body(doc) if compressed else doc.decode()
    if digests:
        raw("UPDATE staging SET body = ?, hashes = ? WHERE sid = ?", (stored, document_digests(doc, bodies), sid))
    else:
        raw("UPDATE staging SET body = ? WHERE sid = ?", (stored, sid))


def _forge_row(raw: Raw, backend: str, person: str, resources: list[dict[str, Any]]) -> int:
    """A staging row outside any wave's range holding these resources for a person, self-consistent
    (keys, digests and counts agree with the body); its sid."""
    from collections import Counter

    from vistasim.targets import canonical_json
    from vistasim.targets.base import document_digests

    bodies = [canonical_json(r) for r in resources]
    doc = b"[" + b",".join(bodies) + b"]"
    keys = [f"{r['resourceType']}/{r['id']}" for r in resources]
    cast = "" if backend.startswith("sqlite") else "::jsonb"
    raw(
        "INSERT INTO staging (sid, wave_id, person_id, n, types, keys, hashes, body) "
        f"SELECT MAX(sid) + 1, 'W1', ?, ?, ?, ?{cast}, ?, ?{cast} FROM staging",
        (
            person,
            len(resources),
            orjson.dumps(Counter(r["resourceType"] for r in resources)).decode(),
            orjson.dumps(keys).decode(),
            document_digests(doc, bodies),
            encode_body(doc) if backend.startswith("sqlite") else doc.decode(),
        ),
    )
    return int(raw("SELECT MAX(sid) FROM staging", ())[0][0])


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Any) -> tuple[str, Raw]:
    """(url, raw SQL runner) of an empty target of each kind."""
    if request.param == "sqlite":
        path = str(tmp_path / "target.db")
        return f"sqlite:///{path}", _sqlite_raw(path)
    url = request.getfixturevalue("pg_url")
    return url, _pg_raw(url)


@pytest.fixture
def target(backend: tuple[str, Raw]) -> Iterator[Target]:
    t = open_target(backend[0])
    yield t
    t.close()


def _raise_at(label: str) -> Callable[[str], None]:
    def hook(event: str) -> None:
        if event == f"before:{label}":
            raise Boom(event)

    return hook


# --------------------------------------------------------------------------- staging


def test_staging_counts_and_digest(target: Target) -> None:
    bundles = wave([(k, 0) for k in range(5)])
    expected = sum(len(b["entry"]) for b in bundles)
    res = target.staging("W1", bundles)
    assert (res.persons, res.resources, res.skipped) == (5, expected, False)
    assert res.counts["Patient"] == 5 and res.counts["Condition"] == 5
    assert sum(res.counts.values()) == expected
    again = target.staging("W1", wave([(k, 0) for k in range(5)]))
    assert again.skipped and again.digest == res.digest
    assert target.persons() == []  # staging is not production


def test_staging_is_all_or_nothing_when_the_commit_fails(target: Target) -> None:
    target.on_commit = _raise_at("staged:W1")  # type: ignore[attr-defined]
    with pytest.raises(Boom):
        target.staging("W1", wave([(k, 0) for k in range(20)]))
    target.on_commit = None  # type: ignore[attr-defined]
    assert target.journal() == []
    with pytest.raises(InputError, match="nothing staged"):
        target.production("W1")
    # and the wave can then be staged for real
    assert target.staging("W1", wave([(k, 0) for k in range(20)])).persons == 20


def test_staging_rejects_a_bad_resource_midway_and_stages_nothing(target: Target) -> None:
    bundles = wave([(k, 0) for k in range(6)])
    del bundles[3]["entry"][1]["resource"]["id"]
    with pytest.raises(InputError, match="lacks resourceType or id"):
        target.staging("W1", bundles)
    dup = wave([(1, 0), (1, 1)])
    with pytest.raises(InputError, match="appears in two bundles"):
        target.staging("W1", dup)
    assert target.journal() == []


# --------------------------------------------------------------------------- production


def test_promote_is_atomic_per_person(backend: tuple[str, Raw]) -> None:
    target = open_target(backend[0], persons_per_commit=1)
    bundles = wave([(k, 0) for k in range(6)])
    target.staging("W1", bundles)
    target.on_commit = _raise_at(f"promoted:W1:{icn(3)}")  # type: ignore[attr-defined]
    with pytest.raises(Boom):
        target.production("W1")
    target.on_commit = None  # type: ignore[attr-defined]
    # persons 0-2 are in completely, person 3 not at all
    assert target.persons() == sorted(icn(k) for k in range(3))
    for k in range(3):
        assert target.read_person(icn(k)) == sorted_resources(bundles[k])
    assert target.read_person(icn(3)) == []
    assert sum(target.counts().values()) == sum(len(bundles[k]["entry"]) for k in range(3))
    # resume: the journal skips 0-2 and promotes the rest
    res = target.production("W1")
    assert res.skipped == tuple(icn(k) for k in range(3))
    assert res.promoted == tuple(icn(k) for k in range(3, 6))
    assert target.verification("W1").passed is True
    target.close()


def test_group_commits_keep_whole_persons(backend: tuple[str, Raw]) -> None:
    t = open_target(backend[0], persons_per_commit=4, on_commit=_raise_at(f"promoted:W1:{icn(4)}..{icn(7)}"))
    bundles = wave([(k, 0) for k in range(10)])
    t.staging("W1", bundles)
    with pytest.raises(Boom):
        t.production("W1")
    assert t.persons() == sorted(icn(k) for k in range(4))
    t.on_commit = None  # type: ignore[attr-defined]
    assert len(t.production("W1").promoted) == 6
    assert t.verification("W1").n_passed == 10
    t.close()


def test_rerun_is_idempotent(target: Target) -> None:
    bundles = wave([(k, 0) for k in range(8)])
    first = load_wave(target, "W1", bundles)
    counts, dump = target.counts(), target.dump()
    second = load_wave(target, "W1", wave([(k, 0) for k in range(8)]))
    assert second.staging.skipped and second.production.promoted == ()
    assert second.production.skipped == first.production.promoted
    assert target.counts() == counts and target.dump() == dump
    assert len(dump) == len({(t, i) for _, t, i, _, _ in dump}) == sum(len(b["entry"]) for b in bundles)
    # a direct second promote of the same wave writes nothing either
    assert target.production("W1").resources_written == 0


def test_repromote_replaces_person_exactly(target: Target) -> None:
    old = person_bundle(1, 0, n_obs=6)
    new = person_bundle(1, 1, n_obs=2)
    load_wave(target, "W1", [old, person_bundle(2, 0)])
    assert len(target.read_person(icn(1))) == 8
    res = load_wave(target, "W2", [new])
    assert res.production.resources_removed == 4  # obs 2..5 no longer exist
    assert target.read_person(icn(1)) == sorted_resources(new)
    assert target.read_person(icn(2)) == sorted_resources(person_bundle(2, 0))
    assert target.counts(icn(1)) == {"Condition": 1, "Observation": 2, "Patient": 1}
    assert res.verification.passed is True


def test_restaging_a_wave_with_new_content_repromotes(target: Target) -> None:
    load_wave(target, "W1", [person_bundle(1, 0, n_obs=5)])
    res = load_wave(target, "W1", [person_bundle(1, 1, n_obs=3)])
    assert res.staging.restaged and res.production.promoted == (icn(1),)
    assert target.read_person(icn(1)) == sorted_resources(person_bundle(1, 1, n_obs=3))


def test_unknown_person_fails_without_touching_others(target: Target) -> None:
    target.staging("W1", wave([(0, 0), (1, 0)]))
    res = target.production("W1", [icn(0), "NOPE"])
    assert res.promoted == (icn(0),) and "NOPE" in res.failed
    assert target.persons() == [icn(0)]


# --------------------------------------------------------------------------- verification


def test_verification_detects_tampered_missing_and_extra_rows(target: Target, backend: tuple[str, Raw]) -> None:
    url, raw = backend
    load_wave(target, "W1", wave([(k, 0) for k in range(4)]))
    edited = {"resourceType": "Observation", "id": "obs-1-0", "status": "entered-in-error"}

    def edit_obs(resources: list[dict[str, Any]]) -> None:
        resources[[r["id"] for r in resources].index("obs-1-0")] = edited

    # the document production points to is edited; its digests are not
    _edit_document(raw, icn(1), edit_obs, digests=False)
    # a key production held for person 2 is gone
    raw("DELETE FROM resource_keys WHERE rkey = 'Condition/cond-2-1'", ())
    # person 3 points to a document with one resource more, and holds its keys
    flag = {"resourceType": "Flag", "id": "f1", "status": "active"}
    sid = _forge_row(raw, url, icn(3), [*sorted_resources(person_bundle(3, 0)), flag])
    raw("UPDATE resource_keys SET sid = ? WHERE sid = (SELECT sid FROM persons WHERE person_id = ?)", (sid, icn(3)))
    raw("INSERT INTO resource_keys (rkey, sid) VALUES ('Flag/f1', ?)", (sid,))
    raw("UPDATE persons SET sid = ? WHERE person_id = ?", (sid, icn(3)))
    res = target.verification("W1")
    assert res.passed is False
    assert (res.n_passed, res.n_failed) == (1, 3)
    kinds = {(m.person_id, m.kind, m.resource_type, m.id) for m in res.mismatches}
    assert kinds == {
        (icn(1), "changed", "Observation", "obs-1-0"),
        (icn(2), "missing", "Condition", "cond-2-1"),
        (icn(3), "extra", "Flag", "f1"),
    }
    by_person = {p.person_id: p for p in res.persons}
    assert by_person[icn(2)].staged["Condition"] == 1 and "Condition" not in by_person[icn(2)].production
    assert by_person[icn(3)].production["Flag"] == 1 and "Flag" not in by_person[icn(3)].staged
    assert res.staged_counts["Condition"] - res.production_counts["Condition"] == 1
    # the readers show the same production
    assert edited in target.read_person(icn(1))
    assert "cond-2-1" not in {r["id"] for r in target.read_person(icn(2))}
    assert flag in target.read_person(icn(3)) and target.counts(icn(3))["Flag"] == 1
    # and a verification in another process (no staging cache) finds the same
    other = open_target(url)
    assert {(m.person_id, m.kind, m.resource_type, m.id) for m in other.verification("W1").mismatches} == kinds
    other.close()


_FORGED = {"resourceType": "Condition", "id": "cond-0-1", "clinicalStatus": {"coding": [{"code": "resolved"}]}}


def test_verification_catches_production_repointed_to_a_consistent_forgery(
    target: Target, backend: tuple[str, Raw]
) -> None:
    """A production key pointed at another document whose body and digests agree: staging disagrees."""
    url, raw = backend
    load_wave(target, "W1", wave([(0, 0), (1, 0)]))
    sid = _forge_row(raw, url, icn(0), [_FORGED])
    raw("UPDATE resource_keys SET sid = ? WHERE rkey = 'Condition/cond-0-1'", (sid,))
    res = target.verification("W1")
    assert [(m.person_id, m.kind, m.id) for m in res.mismatches] == [(icn(0), "changed", "cond-0-1")]
    assert target.read_person(icn(0))[0] == _FORGED


def test_verification_catches_a_body_edited_with_its_hash_column(target: Target, backend: tuple[str, Raw]) -> None:
    """The staged document production points to rewritten with matching digests: the journal's wave digest disagrees."""
    raw = backend[1]
    load_wave(target, "W1", wave([(0, 0), (1, 0)]))

    def forge(resources: list[dict[str, Any]]) -> None:
        resources[[r["id"] for r in resources].index("cond-0-1")] = _FORGED

    _edit_document(raw, icn(0), forge, digests=True)
    res = target.verification("W1")
    assert res.passed is False
    assert (icn(0), "changed", "cond-0-1") in {(m.person_id, m.kind, m.id) for m in res.mismatches}


def test_verification_without_the_staging_cache_and_of_reformatted_documents(
    target: Target, backend: tuple[str, Raw]
) -> None:
    """Another target object (another process: nothing cached) verifies from the digests alone, and a
    document holding the same content in another form (key order, whitespace) still passes."""
    url, raw = backend
    bundles = wave([(k, 0) for k in range(3)])
    load_wave(target, "W1", bundles)
    [(sid,)] = raw("SELECT sid FROM persons WHERE person_id = ?", (icn(1),))
    resources = [dict(reversed(list(r.items()))) for r in sorted_resources(bundles[1])]
    raw(
        "UPDATE staging SET body = ? WHERE sid = ?", (orjson.dumps(resources, option=orjson.OPT_INDENT_2).decode(), sid)
    )
    for t in (target, open_target(url)):
        res = t.verification("W1")
        assert res.passed is True and res.resources_checked == sum(len(b["entry"]) for b in bundles)
    assert target.read_person(icn(1)) == sorted_resources(bundles[1])


def test_verification_of_nothing_is_unknown_not_a_pass(target: Target) -> None:
    target.staging("W1", wave([(0, 0)]))
    res = target.verification("W1")
    assert res.persons == () and res.passed is None
    res = target.verification("W1", [icn(0)])  # staged, never promoted
    assert res.passed is False and res.mismatches[0].kind == "not_in_production"


# --------------------------------------------------------------------------- backout


def test_backout_removes_wave_and_restores_earlier_versions(target: Target) -> None:
    load_wave(target, "W1", wave([(k, 0) for k in range(4)]))
    after_w1 = target.dump()
    load_wave(target, "W2", wave([(1, 1), (4, 0), (5, 0)]))
    assert target.read_person(icn(1)) == sorted_resources(person_bundle(1, 1))
    res = target.backout("W2")
    assert res.removed == (icn(4), icn(5)) and res.restored == (icn(1),) and not res.skipped
    assert res.resources_removed == sum(len(person_bundle(k, v)["entry"]) for k, v in [(1, 1), (4, 0), (5, 0)])
    assert res.resources_restored == len(person_bundle(1, 0)["entry"])
    assert target.dump() == after_w1
    assert target.read_person(icn(1)) == sorted_resources(person_bundle(1, 0))
    assert target.verification("W1").passed is True
    # idempotent, and a backed-out wave stays out until restaged
    assert target.backout("W2").skipped
    assert set(target.production("W2").failed) == {icn(1), icn(4), icn(5)}
    assert target.dump() == after_w1
    target.staging("W2", wave([(1, 1), (4, 0), (5, 0)]), restage=True)
    assert len(target.production("W2").promoted) == 3


def test_backout_leaves_later_versions_alone(target: Target) -> None:
    load_wave(target, "W1", wave([(0, 0), (1, 0)]))
    load_wave(target, "W2", wave([(0, 1)]))
    res = target.backout("W1")
    assert res.superseded == (icn(0),) and res.removed == (icn(1),)
    assert target.persons() == [icn(0)]
    assert target.read_person(icn(0)) == sorted_resources(person_bundle(0, 1))


def test_backout_restores_a_resource_another_person_took(target: Target) -> None:
    a = person_bundle(0, 0, n_obs=2)
    b = person_bundle(1, 0, n_obs=1)
    stolen = dict(a["entry"][2]["resource"], valueQuantity={"value": 1.0, "unit": "/min"})
    b["entry"].append({"resource": stolen})  # same (Observation, obs-0-0) under person 1
    load_wave(target, "W1", [a])
    load_wave(target, "W2", [b])
    check = target.verification("W1")
    assert [(m.person_id, m.kind, m.id) for m in check.mismatches] == [(icn(0), "missing", "obs-0-0")]
    target.backout("W2")
    assert target.read_person(icn(0)) == sorted_resources(a)
    assert target.persons() == [icn(0)]


def test_a_key_passed_between_persons_walks_back_on_newest_first_backouts(target: Target) -> None:
    """A takes a key back from B, who took it from A: backing the waves out newest first restores every state."""
    a = person_bundle(0, 0, n_obs=2)
    b = person_bundle(1, 0, n_obs=1)
    b["entry"].append({"resource": dict(a["entry"][2]["resource"], status="amended")})  # B's Observation/obs-0-0
    a2 = person_bundle(0, 1, n_obs=3)  # A again, obs-0-0 included
    states = [target.dump()]
    for wave_id, bundles in (("W1", [a]), ("W2", [b]), ("W3", [a2])):
        load_wave(target, wave_id, bundles)
        states.append(target.dump())
    holder = {s[2]: s[0] for s in states[2] if s[1] == "Observation"}
    assert holder["obs-0-0"] == icn(1) and {s[2]: s[0] for s in states[3]}["obs-0-0"] == icn(0)
    assert [(m.kind, m.id) for m in target.verification("W2").mismatches] == [("missing", "obs-0-0")]
    assert target.read_person(icn(0)) == sorted_resources(a2) and len(target.read_person(icn(1))) == 3
    assert target.counts(icn(1)) == {"Condition": 1, "Observation": 1, "Patient": 1}
    for wave_id, before in (("W3", states[2]), ("W2", states[1]), ("W1", states[0])):
        target.backout(wave_id)
        assert target.dump() == before
    assert target.persons() == []


# --------------------------------------------------------------------------- readers


def test_readers(target: Target) -> None:
    bundles = wave([(k, 0) for k in (3, 1, 2)])
    load_wave(target, "W1", bundles)
    assert target.persons() == sorted(icn(k) for k in (1, 2, 3))
    n_obs = sum(len(b["entry"]) - 2 for b in bundles)
    assert target.counts() == {"Condition": 3, "Observation": n_obs, "Patient": 3}
    got = target.read_person(icn(2))
    assert [r["resourceType"] for r in got][:2] == ["Condition", "Observation"]
    steps = [(e.step, e.person_id) for e in target.journal("W1")]
    assert ("staged", "") in steps and ("verified", "") in steps
    assert sum(1 for s, _ in steps if s == "promoted") == 3


# --------------------------------------------------------------------------- content fidelity


def test_awkward_content_round_trips_exactly(target: Target) -> None:
    b = person_bundle(1, 0, n_obs=1)
    b["entry"].append(
        {
            "resource": {
                "resourceType": "Flag",
                "id": "flag-1",
                "code": {"text": 'HIGH RISK \\ "suicide"\tline1\nline2\r – é ✓ 😀'},
                "period": {"start": "2024-01-01"},
                "extension": [
                    {"valueDecimal": 0.1},
                    {"valueInteger": -7},
                    {"valueBoolean": False},
                    {"valueString": ""},
                ],
            }
        }
    )
    res = load_wave(target, "W1", [b])
    assert res.verification.passed is True
    assert target.read_person(icn(1)) == sorted_resources(b)


def test_nul_characters_are_kept_or_rejected_whole(target: Target, backend: tuple[str, Raw]) -> None:
    b = person_bundle(1, 0, n_obs=1)
    b["entry"][0]["resource"]["name"][0]["family"] = "NUL\u0000BYTE"
    if backend[0].startswith("sqlite"):
        assert load_wave(target, "W1", [b]).verification.passed is True
        assert target.read_person(icn(1)) == sorted_resources(b)
    else:  # jsonb cannot hold \u0000: the whole wave is refused, nothing staged
        with pytest.raises(InputError, match="staging rejected"):
            target.staging("W1", [person_bundle(0, 0), b])
        assert target.journal() == []


# --------------------------------------------------------------------------- with the real mapper


def test_generated_and_mapped_persons_load_and_verify(target: Target) -> None:
    from vistasim.fhir.mapping import map_people
    from vistasim.generate import generate_patients

    bundles = list(map_people(generate_patients(60, seed=11, sites=2)))
    n_resources = sum(len(b["entry"]) for b in bundles)
    res = load_wave(target, "W1", bundles)
    assert res.staging.persons == len(bundles) and res.staging.resources == n_resources
    assert res.verification.passed is True and res.verification.resources_checked == n_resources
    assert len(target.persons()) == len(bundles) and sum(target.counts().values()) == n_resources
    again = load_wave(target, "W1", list(map_people(generate_patients(60, seed=11, sites=2))))
    assert again.staging.skipped and again.production.promoted == ()


@pytest.mark.parametrize("table", ["resources", "staging_persons"])
def test_a_database_with_an_earlier_layout_is_refused(backend: tuple[str, Raw], table: str) -> None:
    """A file or schema written by an earlier layout (a row per resource) is refused, one line, naming it."""
    url, raw = backend
    raw(f"CREATE TABLE {table} (wave_id TEXT, person_id TEXT)", ())
    with pytest.raises(InputError, match=f"earlier vistasim load layout \\(table {table}") as err:
        open_target(url)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("edit", ["no layout table", "other digests", "body as text"])
def test_a_target_staged_in_another_layout_is_refused(backend: tuple[str, Raw], edit: str) -> None:
    """Staged rows this version would misread are refused in one line naming what differs: a target
    from before the layout table (SHA-256/CRC-32 digests, SQLite bodies as JSON text), another
    recorded digest scheme, another body format. A target this version created opens again."""
    url, raw = backend
    target = open_target(url)
    load_wave(target, "W1", [person_bundle(1), person_bundle(2)])
    target.close()
    open_target(url).close()  # its own layout: fine
    sqlite = url.startswith("sqlite")
    if edit == "no layout table":
        raw("DROP TABLE layout", ())
        want = "digests SHA-256/CRC-32; this one reads xxh3-128/xxh3-64"
    elif edit == "other digests":
        raw("UPDATE layout SET value = 'SHA-256/CRC-32' WHERE name = 'digests'", ())
        want = "digests SHA-256/CRC-32; this one reads xxh3-128/xxh3-64"
    else:
        raw("DELETE FROM layout WHERE name = 'body'", ())
        want = "body JSON text; this one reads lz4-block JSON" if sqlite else "body JSONB; this one reads JSONB"
        if not sqlite:  # PostgreSQL has always stored JSONB: nothing to refuse
            open_target(url).close()
            return
    with pytest.raises(InputError, match=f"staged by an earlier vistasim \\({want}\\); load into a new target") as err:
        open_target(url)
    assert "\n" not in str(err.value)


def test_a_damaged_compressed_document_is_reported_not_raised(tmp_path: Any) -> None:
    """SQLite stores documents LZ4-compressed: a flipped byte or an absurd size header in a stored blob
    makes verification report the person's resources changed (no exception, no huge allocation)."""
    path = str(tmp_path / "t.db")
    raw = _sqlite_raw(path)
    target = open_target(f"sqlite:///{path}")
    bundles = [person_bundle(1), person_bundle(2)]
    load_wave(target, "W1", bundles)
    [(sid1, blob1)] = raw("SELECT sid, body FROM staging WHERE person_id = ?", (icn(1),))
    [(sid2, blob2)] = raw("SELECT sid, body FROM staging WHERE person_id = ?", (icn(2),))
    assert isinstance(blob1, bytes) and decode_body(blob1).startswith(b"[{")
    assert len(blob1) < len(decode_body(blob1))
    flipped = blob1[:-3] + bytes([blob1[-3] ^ 0xFF]) + blob1[-2:]
    raw("UPDATE staging SET body = ? WHERE sid = ?", (flipped, sid1))
    raw("UPDATE staging SET body = ? WHERE sid = ?", ((2**31).to_bytes(4, "little") + blob2[4:], sid2))
    with pytest.raises(ValueError, match="size header"):
        decode_body((2**31).to_bytes(4, "little") + blob2[4:])
    res = open_target(f"sqlite:///{path}").verification("W1")  # another object: nothing cached
    assert res.passed is False
    changed = {(m.person_id, m.kind) for m in res.mismatches}
    assert changed == {(icn(1), "changed"), (icn(2), "changed")}
    n2 = len(bundles[1]["entry"])
    assert sum(1 for m in res.mismatches if m.person_id == icn(2)) == n2  # undecodable: every resource suspect
