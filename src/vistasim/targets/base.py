"""What every load target shares: the step protocol, the step results, and bundle -> rows.

A target stands in for Oracle Health in data mode. The pipeline's load stage calls one method per
substage: ``staging`` (a whole wave of person bundles into staging tables, one transaction),
``production`` (promote each person from staging, atomically per person), ``verification`` (read
production back and compare with what was staged) and, when a wave must be rolled back, ``backout``.
Every step writes a journal row in the same transaction as its data, so a run killed at any commit
point and started again with the same inputs skips what is done and ends in the same state.

Resources are stored as canonical JSON (keys sorted, no whitespace: what ``orjson`` writes with
``OPT_SORT_KEYS``), a person's resources as one JSON array (one staging row per person) with the
XXH3-128 of exactly those bytes and an XXH3-64 per resource; verification recomputes them from what
production holds, so an edited body is caught even if its digest column is not. The content hash
of a resource in readers (``dump``) is BLAKE2b-128 of its canonical JSON (:func:`content_hash`).
"""

from __future__ import annotations

import hashlib
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import Any, Protocol, runtime_checkable

import orjson
import xxhash

from ..errors import InputError

ICN_SYSTEM = "urn:oid:2.16.840.1.113883.4.349"

#: Person bundles: ``{person_id: bundle}``, or bundles whose Patient carries an ICN identifier.
BundleInput = Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]]
#: Called before and after every commit with ``"before:<label>"`` / ``"after:<label>"``.
CommitHook = Callable[[str], None]

STEP_STAGED = "staged"
STEP_PROMOTED = "promoted"
STEP_VERIFIED = "verified"
STEP_BACKED_OUT = "backed_out"
JOURNAL_STEPS: tuple[str, ...] = (STEP_STAGED, STEP_PROMOTED, STEP_VERIFIED, STEP_BACKED_OUT)

#: Whole persons per production transaction. 1 = a commit per person; a wave's size = one commit.
#: Any size keeps each person atomic; bigger groups cut commit cost (each commit rewrites the pages it
#: touched, chiefly the key-ownership B-tree's, where a wave's keys land all over). With a staging row
#: per person, production of 20 waves of ~950 mapped persons, best of 3: 0.53 CPU-s with 1,000, 0.54
#: with 500, 0.62 with 200, 0.96 with 50; five times as many persons (95,000, 100 waves): 4.9 vs 6.6
#: CPU-s with 1,000 vs 200. A crash redoes at most 1,000 persons (about 30 ms of production).
DEFAULT_PERSONS_PER_COMMIT = 1000

# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class StagingResult:
    """What ``staging`` wrote. ``skipped``: the journal already had this exact wave staged."""

    wave_id: str
    persons: int
    resources: int
    counts: dict[str, int]
    digest: str
    skipped: bool = False
    restaged: bool = False  # replaced an earlier, different staging of the same wave id


@dataclass(frozen=True)
class PromotionResult:
    """What ``production`` did, per person. ``skipped``: already promoted in this wave (journal)."""

    wave_id: str
    promoted: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: dict[str, str]
    resources_written: int
    resources_removed: int  # resources a re-promoted person no longer has

    @property
    def succeeded(self) -> tuple[str, ...]:
        """Persons in production with this wave's version, whether promoted now or earlier."""
        return self.promoted + self.skipped


@dataclass(frozen=True)
class Mismatch:
    """One difference between staging and production.

    kind: ``missing`` (staged, not in production), ``extra`` (in production, not staged),
    ``changed`` (content hash differs), ``not_in_production`` (the person is not there at all),
    ``superseded`` (a later wave's version of the person is in production).
    """

    person_id: str
    kind: str
    resource_type: str = ""
    id: str = ""


@dataclass(frozen=True)
class PersonCheck:
    person_id: str
    passed: bool
    staged: dict[str, int]
    production: dict[str, int]
    mismatches: tuple[Mismatch, ...] = ()


@dataclass(frozen=True)
class VerificationResult:
    """Per-person read-back of one wave. ``passed`` is None when no person was checked."""

    wave_id: str
    persons: tuple[PersonCheck, ...]
    resources_checked: int

    @property
    def passed(self) -> bool | None:
        return None if not self.persons else all(p.passed for p in self.persons)

    @property
    def n_passed(self) -> int:
        return sum(1 for p in self.persons if p.passed)

    @property
    def n_failed(self) -> int:
        return sum(1 for p in self.persons if not p.passed)

    @property
    def failed_persons(self) -> tuple[str, ...]:
        return tuple(p.person_id for p in self.persons if not p.passed)

    @property
    def mismatches(self) -> list[Mismatch]:
        return [m for p in self.persons for m in p.mismatches]

    @property
    def staged_counts(self) -> dict[str, int]:
        return _sum_counts(p.staged for p in self.persons)

    @property
    def production_counts(self) -> dict[str, int]:
        return _sum_counts(p.production for p in self.persons)


@dataclass(frozen=True)
class BackoutResult:
    """What ``backout`` removed. ``restored``: persons put back to the version an earlier wave loaded.

    ``superseded``: persons a later wave re-promoted; their later version is left in place.
    ``skipped``: the wave was already backed out (journal).
    """

    wave_id: str
    removed: tuple[str, ...]
    restored: tuple[str, ...]
    superseded: tuple[str, ...]
    resources_removed: int
    resources_restored: int
    skipped: bool = False


@dataclass(frozen=True)
class JournalEntry:
    wave_id: str
    step: str
    person_id: str  # "" for a wave-level step
    digest: str


def _sum_counts(parts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in parts:
        for k, v in part.items():
            out[k] = out.get(k, 0) + v
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class Target(Protocol):
    """One method per load substage, plus readers. Implemented by SQLiteTarget and PostgresTarget."""

    url: str

    def staging(
        self, wave_id: str, bundles: BundleInput, *, restage: bool = False, prepared: Prepared | None = None
    ) -> StagingResult: ...

    def production(self, wave_id: str, person_ids: Iterable[str] | None = None) -> PromotionResult: ...

    def verification(self, wave_id: str, person_ids: Iterable[str] | None = None) -> VerificationResult: ...

    def backout(self, wave_id: str) -> BackoutResult: ...

    def read_person(self, person_id: str) -> list[dict[str, Any]]: ...

    def counts(self, person_id: str | None = None) -> dict[str, int]: ...

    def persons(self) -> list[str]: ...

    def journal(self, wave_id: str | None = None) -> list[JournalEntry]: ...

    def dump(self) -> list[tuple[str, str, str, str, str]]: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- bundles -> rows


def canonical_json(resource: Mapping[str, Any]) -> bytes:
    """The stored form of a resource: keys sorted, compact. Equal content gives equal bytes."""
    return orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)


def content_hash(body: bytes) -> str:
    """BLAKE2b-128 of canonical JSON bytes, as 32 hex digits."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def person_id_of(bundle: Mapping[str, Any]) -> str:
    """The ICN of a person bundle: the first Patient identifier in the ICN system (urn:oid:...4.349)."""
    for res in iter_resources(bundle):
        if res.get("resourceType") != "Patient":
            continue
        for ident in res.get("identifier") or ():
            if isinstance(ident, Mapping) and ident.get("system") == ICN_SYSTEM and ident.get("value"):
                return str(ident["value"])
    raise InputError(
        f"bundle {bundle.get('id', '?')!s}: no Patient with an ICN identifier ({ICN_SYSTEM}); "
        "add one, or pass bundles as a {person_id: bundle} mapping"
    )


def iter_resources(bundle: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The resources of a collection or transaction Bundle, in entry order."""
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        raise InputError(
            f"bundle {bundle.get('id', '?')!s}: no 'entry' list; pass FHIR Bundles (type collection or transaction)"
        )
    for entry in entries:
        # type() fast path: isinstance against the Mapping ABC costs more than the rest of staging a row
        res = entry.get("resource") if type(entry) is dict or isinstance(entry, Mapping) else None
        if type(res) is not dict and not isinstance(res, Mapping):
            raise InputError(f"bundle {bundle.get('id', '?')!s}: an entry has no 'resource' object; fix the bundle")
        yield res


def person_bundles(bundles: BundleInput) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(person_id, bundle) pairs from either accepted input shape."""
    if isinstance(bundles, Mapping):
        for pid, bundle in bundles.items():
            if not isinstance(bundle, Mapping):
                raise InputError(f"bundles[{pid!r}]: expected a FHIR Bundle dict, got {type(bundle).__name__}")
            yield str(pid), bundle
        return
    for bundle in bundles:
        if not isinstance(bundle, Mapping):
            raise InputError(f"bundles: expected FHIR Bundle dicts, got {type(bundle).__name__}; pass dicts")
        yield person_id_of(bundle), bundle


#: A person's document as staged: (person, resource types, ids, keys "Type/id", type counts as JSON,
#: keys as a JSON array, digests (see :func:`document_digests`), body). Lists in entry order.
StagedPerson = tuple[str, list[str], list[str], list[str], str, str, str, bytes]


@dataclass
class StagedWave:
    """A wave turned into staging rows (one per person), ready for one insert. Pure data.

    ``persons`` in input order, each a :data:`StagedPerson`: ``keys`` are ``"Type/id"`` (a FHIR
    relative reference; a type never holds '/', so the key splits back at its first '/'), the body is
    the resources' canonical JSON as one JSON array, and the digests are :func:`document_digests` of
    the body and its resources. The body is bytes (UTF-8): each target stores it its own way
    (SQLite compressed, PostgreSQL as JSONB).
    """

    wave_id: str
    persons: list[StagedPerson]
    counts: dict[str, int] = field(default_factory=dict)
    digest: str = ""

    @property
    def n_resources(self) -> int:
        return sum(len(p[3]) for p in self.persons)


#: One person's staging row computed ahead of staging by :func:`prepare_person` (opaque to callers).
PreparedPerson = StagedPerson
#: person id -> what prepare_person returned for exactly the bundle staging is given for that person.
Prepared = Mapping[str, PreparedPerson]


def prepare_person(person_id: str, bundle: Mapping[str, Any]) -> PreparedPerson | None:
    """Canonicalise and hash one person's resources now, for a later ``staging(..., prepared=...)``.

    The pipeline calls it right after validating the person, while the bundle's objects are still in
    the CPU cache: serialising a whole wave later reads them all back from memory (bench: about 40 %
    more CPU for the same bytes). The caller promises not to change the bundle's content afterwards,
    but may drop it: staging never reads a prepared person's bundle again (only that one is given).
    None when the bundle is unusual (a missing key, a non-dict): staging then takes its checked path.
    """
    try:
        return _person_row(person_id, bundle)
    except (_Recheck, KeyError, TypeError, AttributeError):
        return None


def _person_row(pid: str, bundle: Mapping[str, Any]) -> StagedPerson:
    """A person's staging row with C-level loops (map over C callables): no Python bytecode runs per
    resource. Raises on anything unusual (a missing key, a non-dict, a non-str type or id, a value
    orjson refuses); the callers then take the checked path."""
    entries = bundle["entry"]
    if type(entries) is not list:
        raise _Recheck
    resources = list(map(_RESOURCE, entries))
    if resources and set(map(type, resources)) != {dict}:
        raise _Recheck
    # orjson.dumps(resource, None, OPT_SORT_KEYS) with positional arguments: a partial with option=
    # passes a keyword per call (serialising alone: 41 vs 46 us per person; whole prepare: 1-3 us).
    bodies = list(map(orjson.dumps, resources, repeat(None), repeat(orjson.OPT_SORT_KEYS)))
    types = list(map(_TYPE, resources))
    ids = list(map(_ID, resources))
    return _staged_person(pid, types, ids, list(map("/".join, zip(types, ids))), bodies)  # TypeError unless str


def _staged_person(pid: str, types: list[str], ids: list[str], keys: list[str], bodies: list[bytes]) -> StagedPerson:
    """The staging row of a person whose resources serialised to ``bodies`` (keys "Type/id" in entry order)."""
    doc = b"[" + b",".join(bodies) + b"]"
    return (
        pid,
        types,
        ids,
        keys,
        orjson.dumps(Counter(types)).decode(),
        orjson.dumps(keys).decode(),
        document_digests(doc, bodies),
        doc,
    )


def document_digests(doc: bytes, bodies: list[bytes]) -> str:
    """What staging records to check a document later: the XXH3-128 of the document's bytes (32 hex
    digits), then each resource's XXH3-64 (16 hex digits each, entry order).

    The document digest proves it intact; the per-resource ones only say which resources of a
    damaged one changed. Non-cryptographic on purpose: verification guards against loss and
    accidental damage (a collision chance of 2^-128 per document), not against a forger, who could
    rewrite the digest column as well (the journal's wave digest catches that). prepare_person on
    generated + mapped persons spent 21 us per person in SHA-256 + CRC-32s, 2 us in these.
    """
    return doc_digest(doc) + struct.pack(f">{len(bodies)}Q", *map(_xxh64, bodies)).hex()


#: Hex digits of :func:`doc_digest` and of each resource's digest in a staging row's ``hashes``.
DOC_DIGEST_HEX, RESOURCE_DIGEST_HEX = 32, 16
#: The digest scheme a target's layout records (a file staged with another one is refused).
DIGEST_SCHEME = "xxh3-128/xxh3-64"
_xxh64 = xxhash.xxh3_64_intdigest
doc_digest: Callable[[bytes], str] = xxhash.xxh3_128_hexdigest


def resource_digest(body: bytes) -> str:
    """One resource's digest as ``hashes`` holds it (16 hex digits)."""
    return f"{_xxh64(body):016x}"


def stage_rows(wave_id: str, bundles: BundleInput, prepared: Prepared | None = None) -> StagedWave:
    """Canonicalise and hash every resource of a wave; reject what a load could not key.

    Raises InputError for a resource without resourceType or id, a resourceType holding '/', a
    resource that is not JSON, a person twice in one wave, or one (resource_type, id) twice in one
    wave (production is keyed by it). The digest covers persons, keys and document digests in input
    order: same input, same digest. ``prepared``: rows from :func:`prepare_person`, used instead of
    serialising those persons again.
    """
    if not isinstance(wave_id, str) or not wave_id:
        raise InputError(f"wave id {wave_id!r}: must be a non-empty string")
    persons: list[StagedPerson] = []
    seen_persons: set[str] = set()
    types: list[str] = []
    # The hot path works a person at a time (_person_row). Anything unusual raises, and the wave is
    # then redone by _stage_rows_checked, which names the first offending resource (or stages what is
    # merely unusual, such as a dict subclass).
    ready_rows: Mapping[str, PreparedPerson] = prepared if prepared is not None else {}
    get_ready = ready_rows.get
    try:
        ids: list[str] = []
        keys: list[str] = []
        for pid, bundle in person_bundles(bundles):
            if not pid or pid in seen_persons:
                raise _Recheck
            seen_persons.add(pid)
            ready = get_ready(pid)
            row = _person_row(pid, bundle) if ready is None else ready
            persons.append(row)
            types += row[1]
            ids += row[2]
            keys += row[3]
        type_set = set(types)
        if "" in type_set or "" in set(ids) or any("/" in t for t in type_set) or len(set(keys)) != len(keys):
            raise _Recheck
    except (_Recheck, KeyError, TypeError, AttributeError):
        persons = _stage_rows_checked(wave_id, bundles, ready_rows)
        types = [t for p in persons for t in p[1]]
    digest = wave_digest((p[0], (p[6],)) for p in persons)
    return StagedWave(wave_id, persons, dict(sorted(Counter(types).items())), digest)


def wave_digest(persons: Iterable[tuple[str, Iterable[str]]]) -> str:
    """BLAKE2b-128 over, per person in order, a separator with the ICN and its document's digests (hex in,
    raw bytes hashed). The body holds resourceType and id, so the keys are covered too."""
    parts: list[bytes] = []
    for pid, hexes in persons:
        parts.append(f"\x1e{pid}\x1f".encode())
        parts.append(bytes.fromhex("".join(hexes)))
    return hashlib.blake2b(b"".join(parts), digest_size=16).hexdigest()


_RESOURCE, _TYPE, _ID = itemgetter("resource"), itemgetter("resourceType"), itemgetter("id")


class _Recheck(Exception):
    """The fast pass of stage_rows met something it does not check itself."""


def _stage_rows_checked(
    wave_id: str, bundles: BundleInput, prepared: Mapping[str, PreparedPerson]
) -> list[StagedPerson]:
    """stage_rows' persons, checking resource by resource: InputError names the first one a load cannot key.

    A prepared person is checked from its prepared row (types and ids), never from its bundle, so a
    caller may drop a prepared bundle's content (data mode frees it while it is still in cache)."""
    persons: list[StagedPerson] = []
    seen_keys: set[tuple[str, str]] = set()
    seen_persons: set[str] = set()
    for pid, bundle in person_bundles(bundles):
        if not pid:
            raise InputError(f"wave {wave_id}: a person id is empty; every bundle needs its ICN")
        if pid in seen_persons:
            raise InputError(f"wave {wave_id}: person {pid} appears in two bundles; merge them into one bundle per ICN")
        seen_persons.add(pid)
        ready = prepared.get(pid)
        types: list[str] = []
        ids: list[str] = []
        bodies: list[bytes] = []
        for res in iter_resources(bundle) if ready is None else _keyed(ready):
            rtype, rid = res.get("resourceType"), res.get("id")
            if type(rtype) is not str or type(rid) is not str or not rtype or not rid:
                raise InputError(
                    f"wave {wave_id}, person {pid}: a resource lacks resourceType or id; "
                    "the mapper must give every resource a deterministic id"
                )
            if "/" in rtype:
                raise InputError(
                    f"wave {wave_id}, person {pid}: resourceType {rtype!r} holds '/'; use a FHIR type name"
                )
            key = (rtype, rid)
            if key in seen_keys:
                raise InputError(f"wave {wave_id}: {rtype}/{rid} appears twice; resource ids must be unique in a wave")
            seen_keys.add(key)
            if ready is not None:
                continue
            try:
                bodies.append(canonical_json(res))
            except TypeError as exc:
                raise InputError(
                    f"wave {wave_id}, {rtype}/{rid}: not JSON-serialisable ({exc}); fix the resource"
                ) from exc
            types.append(rtype)
            ids.append(rid)
        if ready is not None:
            persons.append(ready)
            continue
        persons.append(_staged_person(pid, types, ids, [f"{t}/{i}" for t, i in zip(types, ids)], bodies))
    return persons


def _keyed(row: PreparedPerson) -> Iterator[dict[str, str]]:
    """The keys of a prepared person as minimal resources, for the checked path's key checks."""
    for rtype, rid in zip(row[1], row[2]):
        yield {"resourceType": rtype, "id": rid}


def compare_person(
    person_id: str,
    staged: Mapping[tuple[str, str], str],
    production: Mapping[tuple[str, str], str],
    current_wave: str | None,
    wave_id: str,
) -> PersonCheck:
    """Compare one person's staged (type, id) -> hash with production's. Pure."""
    mismatches: list[Mismatch] = []
    if current_wave is None:
        mismatches.append(Mismatch(person_id, "not_in_production"))
    elif current_wave != wave_id:
        mismatches.append(Mismatch(person_id, "superseded"))
    for key in sorted(staged):
        got = production.get(key)
        if got is None:
            mismatches.append(Mismatch(person_id, "missing", *key))
        elif got != staged[key]:
            mismatches.append(Mismatch(person_id, "changed", *key))
    for key in sorted(production.keys() - staged.keys()):
        mismatches.append(Mismatch(person_id, "extra", *key))
    return PersonCheck(
        person_id,
        not mismatches,
        _type_counts(staged),
        _type_counts(production),
        tuple(mismatches),
    )


def person_check(
    person_id: str,
    staged: Mapping[str, int],
    production: Mapping[str, int],
    differing: Iterable[tuple[tuple[str, str], str]],
    extra: Iterable[tuple[str, str]],
    current_wave: str | None,
    wave_id: str,
) -> PersonCheck:
    """A person's check from counts per type and the differences alone (the database found them).

    ``differing``: ((type, id), "missing" | "changed") of staged resources; ``extra``: (type, id) in
    production but not staged. Same result, mismatch order included, as :func:`compare_person`.
    """
    mismatches: list[Mismatch] = []
    if current_wave is None:
        mismatches.append(Mismatch(person_id, "not_in_production"))
    elif current_wave != wave_id:
        mismatches.append(Mismatch(person_id, "superseded"))
    for key, kind in sorted(differing):
        mismatches.append(Mismatch(person_id, kind, *key))
    for key in sorted(extra):
        mismatches.append(Mismatch(person_id, "extra", *key))
    return PersonCheck(
        person_id, not mismatches, dict(sorted(staged.items())), dict(sorted(production.items())), tuple(mismatches)
    )


def _type_counts(keys: Iterable[tuple[str, str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for rtype, _ in keys:
        out[rtype] = out.get(rtype, 0) + 1
    return dict(sorted(out.items()))
