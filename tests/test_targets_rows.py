"""Pure parts of the load layer (bundle -> rows, hashing, URLs) and a model-based property test:
any sequence of wave loads leaves each person at the version last loaded, and backing the waves out
newest first walks production back through every earlier state exactly."""

from __future__ import annotations

import socket
import sys
from typing import Any

import pytest
import xxhash
from _targets_fixtures import icn, person_bundle, sorted_resources, wave
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vistasim.errors import InputError, MissingDependencyError
from vistasim.targets import canonical_json, content_hash, load_wave, open_target, person_id_of
from vistasim.targets.base import stage_rows
from vistasim.targets.url import sqlite_path


def test_canonical_json_ignores_key_order() -> None:
    a = {"resourceType": "Patient", "id": "x", "name": [{"given": ["A"], "family": "B"}]}
    b = {"name": [{"family": "B", "given": ["A"]}], "id": "x", "resourceType": "Patient"}
    assert canonical_json(a) == canonical_json(b)
    assert content_hash(canonical_json(a)) == content_hash(canonical_json(b))
    assert len(content_hash(b"{}")) == 32


def test_person_id_comes_from_the_icn_identifier() -> None:
    assert person_id_of(person_bundle(7)) == icn(7)
    no_icn = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "p"}}]}
    with pytest.raises(InputError, match="no Patient with an ICN"):
        person_id_of(no_icn)


def test_stage_rows_accepts_a_mapping_and_keeps_input_order() -> None:
    import orjson

    bundles = {"B": person_bundle(2), "A": person_bundle(1)}
    staged = stage_rows("W", bundles)
    assert [p[0] for p in staged.persons] == ["B", "A"]
    for (_pid, types, ids, keys, counts, keys_json, hashes, body), bundle in zip(staged.persons, bundles.values()):
        resources = [e["resource"] for e in bundle["entry"]]
        # one document per person: its resources' canonical JSON as one array, in entry order
        assert body == b"[" + b",".join(canonical_json(r) for r in resources) + b"]"
        assert orjson.loads(body) == resources
        assert keys == [f"{t}/{i}" for t, i in zip(types, ids)] == orjson.loads(keys_json)
        assert types == [r["resourceType"] for r in resources] and ids == [r["id"] for r in resources]
        # the document's XXH3-128, then each resource's XXH3-64
        assert hashes[:32] == xxhash.xxh3_128(body).hexdigest()
        assert hashes[32:] == "".join(xxhash.xxh3_64(canonical_json(r)).hexdigest() for r in resources)
        assert len(hashes) == 32 + 16 * len(resources)
        assert orjson.loads(counts) == {t: types.count(t) for t in types}
    assert staged.n_resources == sum(len(b["entry"]) for b in bundles.values())
    assert staged.counts == dict(sorted({"Patient": 2, "Condition": 2, "Observation": staged.n_resources - 4}.items()))


def test_prepare_person_is_what_staging_computes() -> None:
    from vistasim.targets.base import prepare_person

    bundles = wave([(1, 0), (2, 1)])
    prepared = {icn(k): prepare_person(icn(k), b) for k, b in zip((1, 2), bundles)}
    assert stage_rows("W", bundles, prepared) == stage_rows("W", bundles)  # type: ignore[arg-type]
    assert [p[0] for p in stage_rows("W", bundles).persons] == [icn(1), icn(2)]
    assert prepare_person("X", {"entry": [{"resource": {"resourceType": "Patient"}}]}) is None


def test_staging_never_reads_a_prepared_bundle_again() -> None:
    """Data mode frees a prepared person's objects before staging: staging, and its checked path's
    errors, must come from the prepared rows alone."""
    from vistasim.targets.base import prepare_person

    bundles = wave([(1, 0), (2, 1)])
    want = stage_rows("W", bundles)
    prepared = {icn(k): prepare_person(icn(k), b) for k, b in zip((1, 2), bundles)}
    emptied = {icn(k): {} for k in (1, 2)}
    assert stage_rows("W", emptied, prepared) == want  # type: ignore[arg-type]
    # a key twice in the wave is still named, from the prepared rows
    dup = person_bundle(3)
    dup["entry"].append(dict(dup["entry"][-1]))
    row = prepare_person(icn(3), dup)
    assert row is not None
    with pytest.raises(InputError, match=r"appears twice"):
        stage_rows("W", {icn(3): {}}, {icn(3): row})
    # an unprepared person beside prepared ones still takes the resource-by-resource path
    mixed = {icn(1): {}, icn(2): bundles[1]}
    assert stage_rows("W", mixed, {icn(1): prepared[icn(1)]}) == want  # type: ignore[dict-item]


def test_stage_rows_digest_tracks_content() -> None:
    d0 = stage_rows("W", wave([(1, 0), (2, 0)])).digest
    assert stage_rows("W", wave([(1, 0), (2, 0)])).digest == d0
    assert stage_rows("W", wave([(1, 1), (2, 0)])).digest != d0


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b[0]["entry"][1]["resource"].pop("resourceType"), "lacks resourceType or id"),
        (lambda b: b[1]["entry"].append(b[0]["entry"][1]), "appears twice"),
        (lambda b: b[0]["entry"][1]["resource"].update(bad={1, 2}), "not JSON-serialisable"),
        (lambda b: b[0].pop("entry"), "no 'entry' list"),
        (lambda b: b[0]["entry"].append({"fullUrl": "x"}), "no 'resource' object"),
        (lambda b: b[0]["entry"][1]["resource"].update(resourceType="Condition/x"), "holds '/'"),
    ],
)
def test_stage_rows_rejects_unkeyable_input(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    bundles = wave([(1, 0), (2, 0)])
    mutate(bundles)
    with pytest.raises(InputError, match=message):
        stage_rows("W", bundles)


def test_sqlite_urls() -> None:
    assert sqlite_path("sqlite:///:memory:") == ":memory:"
    assert sqlite_path("sqlite:///out/x.db") == "out/x.db"
    assert sqlite_path("sqlite:////abs/x.db") == "/abs/x.db"


@pytest.mark.parametrize("url", ["", "out.db", "mysql://u@h/db", "sqlite://", "sqlite:///"])
def test_bad_urls_are_input_errors_naming_the_url(url: str) -> None:
    with pytest.raises(InputError) as err:
        open_target(url)
    assert "\n" not in str(err.value)


def test_missing_folder_is_an_input_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'nope' / 'x.db'}"
    with pytest.raises(InputError, match="does not exist"):
        open_target(url)


def test_unreachable_postgres_is_an_input_error_naming_the_url() -> None:
    pytest.importorskip("psycopg")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://someone:secret@127.0.0.1:{port}/db"
    with pytest.raises(InputError) as err:
        open_target(url)
    msg = str(err.value)
    assert f"127.0.0.1:{port}/db" in msg and "secret" not in msg and "\n" not in msg


def test_postgres_without_psycopg_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'vistasim\[postgres\]'"):
        open_target("postgresql://u@127.0.0.1:1/db")


# --------------------------------------------------------------------------- model-based property

waves_strategy = st.lists(
    st.lists(st.tuples(st.integers(0, 7), st.integers(0, 3)), min_size=1, max_size=5, unique_by=lambda kv: kv[0]),
    min_size=1,
    max_size=5,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(waves=waves_strategy)
def test_loads_then_backouts_walk_the_same_states(waves: list[list[tuple[int, int]]]) -> None:
    t = open_target("sqlite:///:memory:")
    latest: dict[int, int] = {}
    states = [t.dump()]
    for w, spec in enumerate(waves):
        res = load_wave(t, f"W{w}", wave(spec))
        assert res.verification.passed is True
        latest.update(dict(spec))
        for k, v in latest.items():
            assert t.read_person(icn(k)) == sorted_resources(person_bundle(k, v))
        assert t.persons() == sorted(icn(k) for k in latest)
        states.append(t.dump())
    # a second run of the same waves changes nothing
    for w, spec in enumerate(waves):
        assert load_wave(t, f"W{w}", wave(spec)).production.promoted == ()
    assert t.dump() == states[-1]
    for w in reversed(range(len(waves))):
        t.backout(f"W{w}")
        assert t.dump() == states[w]
    t.close()


def _with_stolen_key(k: int, v: int, steal: int | None) -> dict[str, Any]:
    """Person k's bundle, holding also (with its own content) person ``steal``'s first observation key."""
    bundle = person_bundle(k, v, n_obs=2)
    if steal is not None and steal != k:
        stolen = dict(person_bundle(steal, 0, n_obs=2)["entry"][2]["resource"], status=f"taken-by-{k}-{v}")
        bundle["entry"].append({"resource": stolen})
    return bundle


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    waves=st.lists(
        st.lists(
            st.tuples(st.integers(0, 4), st.integers(0, 2), st.none() | st.integers(0, 4)),
            min_size=1,
            max_size=3,
            unique_by=lambda kvs: kvs[0],
        ),
        min_size=1,
        max_size=4,
    )
)
def test_keys_taken_between_persons_walk_back_on_backouts(waves: list[list[tuple[int, int, int | None]]]) -> None:
    """Persons taking each other's resource keys: every load verifies, and newest-first backouts walk
    production back through every earlier state exactly."""
    t = open_target("sqlite:///:memory:")
    states = [t.dump()]
    for w, spec in enumerate(waves):
        # one wave never holds a key twice: no steal from a person of the same wave, nor twice from one
        in_wave, taken, bundles = {k for k, _, _ in spec}, set(), []
        for k, v, s in spec:
            ok = s is not None and s not in in_wave and s not in taken
            taken |= {s} if ok else set()
            bundles.append(_with_stolen_key(k, v, s if ok else None))
        res = load_wave(t, f"W{w}", bundles)
        assert res.verification.passed is True
        states.append(t.dump())
    assert sorted({p for p, *_ in states[-1]}) == t.persons()
    for w in reversed(range(len(waves))):
        t.backout(f"W{w}")
        assert t.dump() == states[w]
    t.close()


# --------------------------------------------------------------------------- public surface


def test_public_api_list_resolves_and_both_targets_follow_the_protocol(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import vistasim.targets as targets
    from vistasim.targets import PostgresTarget, SQLiteTarget, Target

    assert sorted(targets.__all__) == sorted(set(targets.__all__))
    for name in targets.__all__:
        assert getattr(targets, name) is not None
    t = targets.open_target(f"sqlite:///{tmp_path / 'x.db'}")
    assert isinstance(t, Target) and isinstance(t, SQLiteTarget)
    t.close()
    steps = ("staging", "production", "verification", "backout", "read_person", "counts", "persons", "journal", "dump")
    assert all(callable(getattr(PostgresTarget, s)) for s in steps)


def test_postgres_tests_never_skip_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    import _pg

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        _pg._unavailable("no initdb")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="no initdb"):
        _pg._unavailable("no initdb")


def test_person_check_from_differences_equals_compare_person() -> None:
    """Verification builds checks from counts and differences found in SQL: same as the full comparison."""
    from vistasim.targets.base import compare_person, person_check

    staged = {("Condition", "c1"): "h1", ("Condition", "c2"): "h2", ("Observation", "o1"): "h3", ("Patient", "p"): "h4"}
    prod = {("Condition", "c2"): "hX", ("Observation", "o1"): "h3", ("Patient", "p"): "h4", ("Flag", "f"): "h5"}
    counts = lambda keys: {t: sum(1 for k in keys if k[0] == t) for t in {k[0] for k in keys}}  # noqa: E731
    diffs = [(("Condition", "c2"), "changed"), (("Condition", "c1"), "missing")]
    for current in (None, "W1", "W0"):
        want = compare_person("P", staged, prod, current, "W1")
        got = person_check("P", counts(staged), counts(prod), diffs, [("Flag", "f")], current, "W1")
        assert got == want


@pytest.mark.parametrize(
    "ddl",
    [
        # bodies in every production row
        "CREATE TABLE resources (resource_type TEXT, id TEXT, person_id TEXT, wave_id TEXT, hash TEXT, body TEXT, "
        "PRIMARY KEY (resource_type, id))",
        # a staging row per resource, production pointer rows
        "CREATE TABLE staging (sid INTEGER PRIMARY KEY, person_id TEXT, resource_type TEXT, id TEXT, hash TEXT, "
        "body TEXT); CREATE TABLE staging_persons (wave_id TEXT, person_id TEXT, ord INTEGER, first BIGINT, "
        "n INTEGER, types TEXT); CREATE TABLE resources (resource_type TEXT, id TEXT, person_id TEXT, "
        "wave_id TEXT, sid BIGINT)",
    ],
)
def test_a_target_file_with_an_earlier_layout_is_refused(tmp_path, ddl: str) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(ddl)
    conn.close()
    with pytest.raises(InputError, match="earlier vistasim load layout") as err:
        open_target(f"sqlite:///{path}")
    assert "\n" not in str(err.value)
