"""The load steps as SQL shared by the SQLite and PostgreSQL targets.

Both databases speak the same upsert (``INSERT ... ON CONFLICT``), so the step logic and the table
layout live here once; a subclass supplies the connection, its transaction handling, the column
types, the bulk staging write, how a JSON array column is unnested and how a stored document turns
back into resources. SQL is written with ``?`` placeholders; the PostgreSQL target rewrites them to
``%s``.

Layout: one row per person, not per resource. Every insert costs about the same whatever its
size (SQLite: ~130 k rows/s with their index entries), so a wave writes one staging row per person,
and production moves per-person pointers; only the key ownership is kept per resource, in a narrow
table filled by SQL from each staging row's key list (``json_each`` / ``jsonb_array_elements_text``),
so Python never binds a row per resource.

- ``staging``        sid -> wave_id, person_id, n, types, keys, hashes, body: one person's resources as
                     a wave brought them. ``body`` is a JSON array of the resources' canonical JSON (keys
                     sorted, compact) in entry order; ``keys`` the JSON array of their keys
                     ``"Type/id"`` in the same order; ``hashes`` the body's XXH3-128 and each resource's
                     XXH3-64 (``base.document_digests``); ``types`` the count per resource type (JSON).
                     Rows are only appended: a wave's rows take consecutive sids (the rowid on SQLite).
- ``waves``          wave_id -> lo, hi: the sid range of the wave's current staging. Restaging a wave
                     appends new rows and moves the range; the earlier rows stay for the production and
                     backout rows that may still point to them (they cost disk only).
- ``persons``        person_id -> wave_id, sid: who is in production, with which staged document.
- ``resource_keys``  rkey -> sid: which document holds a resource key in production. A person's
                     production resources are the keys of its document held by a document of that
                     person, each with its body from that document; a key another person's document
                     took is not the person's (it shows as missing), and backout hands it back.
- ``backout_persons`` (wave_id, person_id) -> prev_wave, prev_sid: the person's version before the wave
- ``backout_keys``   (wave_id, rkey) -> person_id, sid: the key's holder the wave's promote replaced
- ``journal``        (wave_id, step, person_id) -> digest: the commit points reached
- ``layout``         name -> value: what the file was written with (``digests``: the digest scheme);
                     a target staged with another scheme is refused rather than misread

Alternatives measured (a bare script, 20 waves of ~950 generated + mapped persons, 551 k resources,
CPU us per person, staging / production / verification, rows prepared beforehand): ownership keyed
by one text ``"Type/id"`` 46 / 25 / 23; by two text columns (type, id) 45 / 44 / 41 (a wider key:
more pages, slower probes); a rowid table with the same two columns as a unique key 49 / 51 / 46;
inserting the keys sorted (ORDER BY) 45 / 29 / 22. Without any per-key table, production could not
see that a key is already held by another person (the take-over the semantics require) without
scanning every document. These targets, bench/targets.py --mapped 20000 --waves 20 --prepared:
57-83 / 32 / 31 (staging is mostly the kernel writing ~460 MB, and varies run to run); with the
documents LZ4-compressed on SQLite (~100 MB) and XXH3 digests, 37 / 29 / 26; the previous
layout (a staging row per resource, a production pointer per resource with a person index) took
109 / 106 / 72 (staging without serialising).

Atomicity: staging writes a whole wave (rows, range, journal row) in one transaction. Production's
unit is the person: a transaction always holds whole persons (pointer, keys, backout snapshot,
journal row), so a person is in production completely or not at all, and the journal never claims
more than production holds. How many persons share a commit is ``persons_per_commit`` (default
1,000, see ``base.DEFAULT_PERSONS_PER_COMMIT``). Backout is one transaction per wave.

Verification reads production back per person: the production pointer must name the wave's staged
document, every key of that document must be held by it (one probe per key, in SQL), and the
document must still be what was staged (compared with what this object stored, byte for byte, or else
hashed and compared with its digest, the per-resource digests then naming the damaged ones); the wave
digest is recomputed from the staged digest columns and compared with the journal's, so a body
edited together with its digest column is caught too. Only a person failing one of these is
compared resource by resource (missing, changed, extra) against what production holds for it.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator
from operator import itemgetter
from typing import Any

import orjson

from .._gc import gc_paused
from ..errors import InputError, OutputError
from .base import (
    DEFAULT_PERSONS_PER_COMMIT,
    DIGEST_SCHEME,
    DOC_DIGEST_HEX,
    RESOURCE_DIGEST_HEX,
    STEP_BACKED_OUT,
    STEP_PROMOTED,
    STEP_STAGED,
    STEP_VERIFIED,
    BackoutResult,
    BundleInput,
    CommitHook,
    JournalEntry,
    PersonCheck,
    Prepared,
    PromotionResult,
    StagedWave,
    StagingResult,
    VerificationResult,
    canonical_json,
    content_hash,
    doc_digest,
    person_check,
    resource_digest,
    stage_rows,
    wave_digest,
)

#: The tables, with the dialect's types: {json} a JSON column, {doc} a staged document, {sid} staging's key, {without_rowid}
#: for tables that need no rowid besides their key.
DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS staging (
        sid {sid}, wave_id TEXT NOT NULL, person_id TEXT NOT NULL, n INTEGER NOT NULL, types TEXT NOT NULL,
        keys {json} NOT NULL, hashes TEXT NOT NULL, body {doc} NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS waves (
        wave_id TEXT PRIMARY KEY, lo BIGINT NOT NULL, hi BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS persons (
        person_id TEXT PRIMARY KEY, wave_id TEXT NOT NULL, sid BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS resource_keys (
        rkey TEXT PRIMARY KEY, sid BIGINT NOT NULL){without_rowid}""",
    """CREATE TABLE IF NOT EXISTS backout_persons (
        wave_id TEXT NOT NULL, person_id TEXT NOT NULL, prev_wave TEXT, prev_sid BIGINT,
        PRIMARY KEY (wave_id, person_id))""",
    """CREATE TABLE IF NOT EXISTS backout_keys (
        wave_id TEXT NOT NULL, person_id TEXT NOT NULL, rkey TEXT NOT NULL, sid BIGINT NOT NULL,
        PRIMARY KEY (wave_id, rkey)){without_rowid}""",
    "CREATE INDEX IF NOT EXISTS backout_keys_person ON backout_keys (wave_id, person_id)",
    "CREATE TABLE IF NOT EXISTS layout (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS journal (
        wave_id TEXT NOT NULL, step TEXT NOT NULL, person_id TEXT NOT NULL, digest TEXT NOT NULL,
        PRIMARY KEY (wave_id, step, person_id))""",
)

#: Tables of earlier layouts: a file or schema holding one is refused.
_EARLIER_TABLES = ("resources", "staging_persons")

# In the statements below {each} unnests the key list of staging row ``s`` as rows ``j(value)``.

_UPSERT_WAVE = """
INSERT INTO waves (wave_id, lo, hi) VALUES (?, ?, ?)
ON CONFLICT (wave_id) DO UPDATE SET lo = excluded.lo, hi = excluded.hi"""

# The common case, persons new to production: insert their keys, and see from the row count whether
# any key was already held (then the group takes the snapshot-and-upsert path).
_INSERT_KEYS = """
INSERT INTO resource_keys (rkey, sid)
SELECT j.value, s.sid FROM staging s CROSS JOIN {each} WHERE s.sid BETWEEN ? AND ?
ON CONFLICT DO NOTHING"""

_UPSERT_KEYS = """
INSERT INTO resource_keys (rkey, sid)
SELECT j.value, s.sid FROM staging s CROSS JOIN {each} WHERE s.sid BETWEEN ? AND ?
ON CONFLICT (rkey) DO UPDATE SET sid = excluded.sid"""

# Keys of these staged documents that another person's document (of another wave) holds: the promote
# takes them over, backout hands them back. CROSS JOIN keeps SQLite driving from the staged range.
_SNAP_DISPLACED = """
INSERT INTO backout_keys (wave_id, person_id, rkey, sid)
SELECT ?, s.person_id, k.rkey, k.sid
FROM staging s CROSS JOIN {each} CROSS JOIN resource_keys k CROSS JOIN staging o
WHERE s.sid BETWEEN ? AND ? AND k.rkey = j.value AND o.sid = k.sid
  AND o.person_id <> s.person_id AND o.wave_id <> ?
ON CONFLICT DO NOTHING"""

_SNAP_OWN = """
INSERT INTO backout_keys (wave_id, person_id, rkey, sid) VALUES (?, ?, ?, ?)
ON CONFLICT DO NOTHING"""

_SNAP_PERSON = """
INSERT INTO backout_persons (wave_id, person_id, prev_wave, prev_sid) VALUES (?, ?, ?, ?)
ON CONFLICT DO NOTHING"""

# What production holds for these persons: the keys of each one's document held by a document of the
# same person: (person, key, holding sid, that document's wave).
_HELD = """
SELECT p.person_id, j.value, k.sid, o.wave_id
FROM persons p CROSS JOIN staging s CROSS JOIN {each} CROSS JOIN resource_keys k CROSS JOIN staging o
WHERE p.person_id IN ({marks}) AND s.sid = p.sid AND k.rkey = j.value AND o.sid = k.sid
  AND o.person_id = p.person_id"""

_UPSERT_PERSON = """
INSERT INTO persons (person_id, wave_id, sid) VALUES (?, ?, ?)
ON CONFLICT (person_id) DO UPDATE SET wave_id = excluded.wave_id, sid = excluded.sid"""

_JOURNAL = """
INSERT INTO journal (wave_id, step, person_id, digest) VALUES (?, ?, ?, ?)
ON CONFLICT (wave_id, step, person_id) DO UPDATE SET digest = excluded.digest"""

# Backout: the person's keys held by its documents of the wave go ...
_DELETE_OWN = """
DELETE FROM resource_keys WHERE rkey IN (
  SELECT j.value FROM persons p CROSS JOIN staging s CROSS JOIN {each} WHERE p.person_id = ? AND s.sid = p.sid)
AND EXISTS (SELECT 1 FROM staging o WHERE o.sid = resource_keys.sid AND o.person_id = ? AND o.wave_id = ?)"""
# ... and what the wave replaced comes back, unless a later wave has since taken that key.
_RESTORE = """
INSERT INTO resource_keys (rkey, sid)
SELECT rkey, sid FROM backout_keys WHERE wave_id = ? AND person_id = ?
ON CONFLICT (rkey) DO UPDATE SET sid = excluded.sid
WHERE EXISTS (SELECT 1 FROM staging o WHERE o.sid = resource_keys.sid AND o.wave_id = ?)"""

# Verification: the staged documents with their production pointer ...
_CHECK_ROWS = """
SELECT s.sid, s.person_id, s.n, s.types, s.keys, s.hashes, s.body, p.sid, p.wave_id
FROM staging s LEFT JOIN persons p ON p.person_id = s.person_id WHERE s.sid BETWEEN ? AND ? ORDER BY s.sid"""
# ... and how many of each document's keys that document holds.
_HELD_COUNTS = """
SELECT s.sid, COUNT(*) FROM staging s CROSS JOIN {each} CROSS JOIN resource_keys k
WHERE s.sid BETWEEN ? AND ? AND k.rkey = j.value AND k.sid = s.sid GROUP BY s.sid"""

# read_person's common case: the person's document, and how many of its keys it holds.
_READ_PERSON = """
SELECT s.sid, s.n, s.body,
  (SELECT COUNT(*) FROM {each} CROSS JOIN resource_keys k WHERE k.rkey = j.value AND k.sid = s.sid)
FROM persons p CROSS JOIN staging s WHERE p.person_id = ? AND s.sid = p.sid"""

_IN_LIST_MAX = 500  # persons per IN (...) list: far below SQLite's and PostgreSQL's parameter limits

_by_key = itemgetter("resourceType", "id")


def split_key(rkey: str) -> tuple[str, str]:
    """``"Type/id"`` -> (type, id): a resource type holds no '/', an id may."""
    rtype, _, rid = rkey.partition("/")
    return rtype, rid


def _ranges(sids: Iterable[int]) -> list[tuple[int, int]]:
    """Inclusive (lo, hi) ranges covering these sids, adjacent ones joined."""
    out: list[list[int]] = []
    for sid in sorted(sids):
        if out and out[-1][1] + 1 == sid:
            out[-1][1] = sid
        else:
            out.append([sid, sid])
    return [(lo, hi) for lo, hi in out]


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _resource_digests(hashes: str) -> list[str]:
    """The per-resource digests after a staging row's document digest (see ``base.document_digests``)."""
    step = RESOURCE_DIGEST_HEX
    return [hashes[i : i + step] for i in range(DOC_DIGEST_HEX, len(hashes), step)]


class SQLTarget:
    """Step logic over a DB-API connection; subclasses provide the dialect."""

    url: str
    #: What the dialect records in the ``layout`` table besides the digest scheme (how bodies are stored),
    #: and what a target written before that table existed held instead.
    _LAYOUT: dict[str, str] = {}
    _LAYOUT_BEFORE: dict[str, str] = {"digests": "SHA-256/CRC-32"}
    #: Column types for :data:`DDL`.
    _DDL_TYPES: dict[str, str] = {}
    #: A staging row's keys (``s.keys``) unnested as rows ``j(value)``.
    _EACH = ""
    #: The resource type of ``rkey`` in SQL.
    _KEY_TYPE = ""

    def __init__(
        self, url: str, *, persons_per_commit: int = DEFAULT_PERSONS_PER_COMMIT, on_commit: CommitHook | None = None
    ) -> None:
        if not isinstance(persons_per_commit, int) or persons_per_commit < 1:
            raise InputError(f"persons_per_commit={persons_per_commit!r}: must be an integer >= 1")
        self.url = url
        self.persons_per_commit = persons_per_commit
        self.on_commit = on_commit
        # The last wave this object staged: (first sid, bodies as written). Verification in the same
        # process compares the documents it reads back with these (C-level string equality) instead
        # of re-serialising and hashing them; anything that differs takes the hashing path.
        self._staged_cache: tuple[int, list[Any]] | None = None
        self._sql_cache: dict[str, str] = {}

    # ------------------------------------------------------------------ dialect hooks

    def _q(self, sql: str) -> str:
        return sql

    def _tx(self) -> contextlib.AbstractContextManager[Any]:  # pragma: no cover - abstract
        """A transaction yielding a cursor; commits on exit, rolls back on an exception."""
        raise NotImplementedError

    def _cursor(self) -> Any:  # pragma: no cover - abstract
        """A cursor for reads outside any explicit transaction."""
        raise NotImplementedError

    def _write_staging(self, cur: Any, wave: StagedWave, first_sid: int) -> list[Any] | None:  # pragma: no cover - abstract
        """The wave's staging rows with sids first_sid, first_sid + 1, ... in person order. Returns the bodies
        as the database gives them back (verification compares those with what it reads), or None when
        they come back in another form."""
        raise NotImplementedError

    def _table_names(self, execute: Any) -> set[str]:  # pragma: no cover - abstract
        """Tables already in the database (schema)."""
        raise NotImplementedError

    def _load_doc(self, body: Any) -> list[Any]:  # pragma: no cover - abstract
        """A stored body as its list of resources (raises ValueError/TypeError if it is not one)."""
        raise NotImplementedError

    def _load_json(self, value: Any) -> Any:  # pragma: no cover - abstract
        """A stored JSON column (keys) as Python."""
        raise NotImplementedError

    def _doc_bytes(self, body: Any) -> bytes:  # pragma: no cover - abstract
        """A stored body as the bytes its digest was taken of, if it is unchanged."""
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __enter__(self) -> SQLTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers

    def _sql(self, template: str, **extra: str) -> str:
        """A statement with the dialect's unnesting and placeholders filled in (cached when fixed)."""
        if extra:
            return self._q(template.format(each=self._EACH, **extra))
        sql = self._sql_cache.get(template)
        if sql is None:
            sql = self._sql_cache[template] = self._q(template.format(each=self._EACH))
        return sql

    def _create_tables(self, execute: Any) -> None:
        """Create the tables (idempotent); refuse a file or schema holding an earlier layout."""
        names = self._table_names(execute)
        earlier = names & set(_EARLIER_TABLES)
        if earlier:
            raise InputError(
                f"{self.url}: holds an earlier vistasim load layout (table {sorted(earlier)[0]}, a row per "
                "resource); load into a new target"
            )
        want = {"digests": DIGEST_SCHEME, **self._LAYOUT}
        if "staging" in names:
            got = dict(execute("SELECT name, value FROM layout").fetchall()) if "layout" in names else {}
            for name, value in want.items():
                have = got.get(name, self._LAYOUT_BEFORE.get(name, "unknown"))
                if have != value:
                    raise InputError(
                        f"{self.url}: staged by an earlier vistasim ({name} {have}; this one reads {value}); "
                        "load into a new target"
                    )
        for stmt in DDL:
            execute(stmt.format(**self._DDL_TYPES))
        for item in want.items():
            execute(self._q("INSERT INTO layout (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"), item)

    @contextlib.contextmanager
    def _commit_point(self, label: str) -> Iterator[Any]:
        """A transaction whose commit is a named commit point (the hook sees before/after)."""
        with self._tx() as cur:
            yield cur
            if self.on_commit is not None:
                self.on_commit(f"before:{label}")
        if self.on_commit is not None:
            self.on_commit(f"after:{label}")

    def _all(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._cursor()
        cur.execute(self._q(sql), params)
        return list(cur.fetchall())

    def _journal_rows(self, wave_id: str, step: str) -> dict[str, str]:
        rows = self._all("SELECT person_id, digest FROM journal WHERE wave_id = ? AND step = ?", (wave_id, step))
        return {r[0]: r[1] for r in rows}

    def _wave_range(self, wave_id: str) -> tuple[int, int] | None:
        rows = self._all("SELECT lo, hi FROM waves WHERE wave_id = ?", (wave_id,))
        return (int(rows[0][0]), int(rows[0][1])) if rows else None

    def _wave_persons(self, wave_id: str) -> dict[str, tuple[int, int]]:
        """The wave's staged persons in input order: person -> (sid, resource count)."""
        span = self._wave_range(wave_id)
        if span is None:
            return {}
        rows = self._all("SELECT person_id, sid, n FROM staging WHERE sid BETWEEN ? AND ? ORDER BY sid", span)
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}

    def _doc_resources(self, body: Any) -> dict[str, bytes]:
        """{key: canonical JSON} of the resources a stored document holds ({} if it is not a list)."""
        try:
            resources = self._load_doc(body)
        except (ValueError, TypeError):
            return {}
        out: dict[str, bytes] = {}
        for res in resources:
            if isinstance(res, dict) and isinstance(res.get("resourceType"), str) and isinstance(res.get("id"), str):
                out[f"{res['resourceType']}/{res['id']}"] = canonical_json(res)
        return out

    def _damaged(self, body: Any, hashes: str, keys: list[str]) -> dict[str, str]:
        """Keys of a staged document that no longer hold what was staged ({} if it is intact).

        Intact: its bytes, or else its resources re-serialised canonically in the staged key order
        (equal content in another form passes), still give the digest recorded at staging. A damaged
        document's resources are told apart by their own digests; if none differs (a forgery keeping
        them), all are suspect.
        """
        digest = hashes[:DOC_DIGEST_HEX]
        try:
            if doc_digest(self._doc_bytes(body)) == digest:
                return {}
        except (ValueError, TypeError, AttributeError):
            pass
        found = self._doc_resources(body)
        if all(k in found for k in keys):
            rebuilt = b"[" + b",".join(found[k] for k in keys) + b"]"
            if doc_digest(rebuilt) == digest:
                return {}
        bad = {}
        for key, want in zip(keys, _resource_digests(hashes)):
            got = found.get(key)
            if got is None or resource_digest(got) != want:
                bad[key] = "changed"
        return bad or dict.fromkeys(keys, "changed")

    def _docs(self, sids: Iterable[int]) -> dict[int, Any]:
        """Stored bodies by sid."""
        out: dict[int, Any] = {}
        wanted = sorted(set(sids))
        for start in range(0, len(wanted), _IN_LIST_MAX):
            part = wanted[start : start + _IN_LIST_MAX]
            marks = ",".join("?" * len(part))
            out.update((int(s), b) for s, b in self._all(f"SELECT sid, body FROM staging WHERE sid IN ({marks})", part))
        return out

    def _held(self, person_ids: list[str]) -> dict[str, list[tuple[str, int, str]]]:
        """What production holds for these persons: person -> [(key, holding sid, its wave)]."""
        out: dict[str, list[tuple[str, int, str]]] = {p: [] for p in person_ids}
        for chunk in _chunks(person_ids, _IN_LIST_MAX):
            sql = self._sql(_HELD, marks=",".join("?" * len(chunk)))
            cur = self._cursor()
            cur.execute(sql, chunk)
            for pid, rkey, sid, wave in cur.fetchall():
                out[pid].append((rkey, int(sid), wave))
        return out

    def _production_bodies(self, person_ids: list[str]) -> dict[str, dict[str, bytes]]:
        """person -> {key: canonical JSON of the body production holds for it (b'' if none)}."""
        held = self._held(person_ids)
        docs = self._docs(sid for rows in held.values() for _, sid, _ in rows)
        found = {sid: self._doc_resources(body) for sid, body in docs.items()}
        return {pid: {rkey: found.get(sid, {}).get(rkey, b"") for rkey, sid, _ in rows} for pid, rows in held.items()}

    # ------------------------------------------------------------------ steps

    def staging(
        self, wave_id: str, bundles: BundleInput, *, restage: bool = False, prepared: Prepared | None = None
    ) -> StagingResult:
        """Write a wave's bundles to staging in one transaction.

        Same input as the journal's staged digest: nothing is written (``skipped``), also after a
        backout (``restage=True`` reopens a backed-out wave). Different input: the wave's staging is
        replaced and its promote/verify/backout journal rows cleared, so production re-promotes it.
        """
        with gc_paused():  # tens of thousands of acyclic strings and lists (see verification)
            wave = stage_rows(wave_id, bundles, prepared)
        n_res = wave.n_resources
        staged = self._journal_rows(wave_id, STEP_STAGED)
        previous = staged.get("")
        if previous == wave.digest and not restage:
            return StagingResult(wave_id, len(wave.persons), n_res, wave.counts, wave.digest, skipped=True)
        q = self._q
        self._staged_cache = None
        with self._commit_point(f"{STEP_STAGED}:{wave_id}") as cur:
            if previous is not None:
                # The earlier rows stay: production and backout rows may still point to them.
                cur.execute(
                    q("DELETE FROM journal WHERE wave_id = ? AND step IN (?, ?, ?)"),
                    (wave_id, STEP_PROMOTED, STEP_VERIFIED, STEP_BACKED_OUT),
                )
            cur.execute("SELECT COALESCE(MAX(sid), 0) + 1 FROM staging")
            first = int(cur.fetchone()[0])
            stored = self._write_staging(cur, wave, first)
            cur.execute(q(_UPSERT_WAVE), (wave_id, first, first + len(wave.persons) - 1))
            cur.execute(q(_JOURNAL), (wave_id, STEP_STAGED, "", wave.digest))
        self._staged_cache = (first, stored) if stored is not None else None
        return StagingResult(wave_id, len(wave.persons), n_res, wave.counts, wave.digest, restaged=previous is not None)

    def production(self, wave_id: str, person_ids: Iterable[str] | None = None) -> PromotionResult:
        """Promote persons of a staged wave (default: all, in input order), atomically per person."""
        spans = self._wave_persons(wave_id)
        if not spans:
            raise InputError(f"wave {wave_id}: nothing staged; run staging for this wave first")
        wanted = list(spans) if person_ids is None else list(dict.fromkeys(person_ids))
        done = self._journal_rows(wave_id, STEP_PROMOTED)
        digest = self._journal_rows(wave_id, STEP_STAGED).get("", "")
        failed: dict[str, str] = {}
        backed_out = bool(self._journal_rows(wave_id, STEP_BACKED_OUT))
        skipped, todo = [], []
        for pid in wanted:
            if pid not in spans:
                failed[pid] = f"not staged in wave {wave_id}"
            elif pid in done:
                skipped.append(pid)
            elif backed_out:
                failed[pid] = f"wave {wave_id} was backed out; restage it (restage=True) to load it again"
            else:
                todo.append(pid)
        written = removed = 0
        step = self.persons_per_commit
        for start in range(0, len(todo), step):
            group = todo[start : start + step]
            label = f"{STEP_PROMOTED}:{wave_id}:{group[0]}" + (f"..{group[-1]}" if len(group) > 1 else "")
            with self._commit_point(label) as cur:
                for chunk in _chunks(group, _IN_LIST_MAX):
                    w, r = self._promote_group(cur, wave_id, chunk, spans)
                    written += w
                    removed += r
                cur.executemany(self._q(_JOURNAL), [(wave_id, STEP_PROMOTED, p, digest) for p in group])
        return PromotionResult(wave_id, tuple(todo), tuple(skipped), failed, written, removed)

    def _promote_group(
        self, cur: Any, wave_id: str, group: list[str], spans: dict[str, tuple[int, int]]
    ) -> tuple[int, int]:
        """Point these persons at their staged documents and hand them their keys; keep what is
        replaced for backout. Set-based: a few statements per group (per sid range of the group);
        persons that already have a version in production cost a few rows more each."""
        q = self._q
        marks = ",".join("?" * len(group))
        cur.execute(q(f"SELECT person_id, wave_id, sid FROM persons WHERE person_id IN ({marks})"), group)
        prev = {pid: (wave, int(sid)) for pid, wave, sid in cur.fetchall()}
        # The first promote of a person in this wave records the version before it; a re-promote
        # after a restage finds that row and must not replace it with the wave's own version.
        snaps: list[tuple[str, str, str | None, int | None]] = []
        for pid in group:
            before = prev.get(pid)
            if before is None or before[0] == wave_id:
                snaps.append((wave_id, pid, None, None))
            else:
                snaps.append((wave_id, pid, before[0], before[1]))
        cur.executemany(q(_SNAP_PERSON), snaps)
        ranges = _ranges(spans[p][0] for p in group)
        written = 0
        if not prev:
            # No person of the group is in production yet: nothing of theirs to snapshot or drop, and
            # a key already held (by another person) shows as a row the insert skipped.
            conflicts = []
            insert = self._sql(_INSERT_KEYS)
            for lo, hi in ranges:
                want = sum(spans[p][1] for p in group if lo <= spans[p][0] <= hi)
                cur.execute(insert, (lo, hi))
                if int(cur.rowcount) == want:
                    written += want
                else:
                    conflicts.append((lo, hi))
            ranges = conflicts
        for lo, hi in ranges:
            cur.execute(self._sql(_SNAP_DISPLACED), (wave_id, lo, hi, wave_id))
        removed = 0
        if prev:
            held = self._held_in(cur, list(prev))
            staged_keys = self._keys_of(cur, [spans[p][0] for p in prev])
            own, dropped = [], []
            for pid, rows in held.items():
                keep = staged_keys.get(spans[pid][0], set())
                snapshot = prev[pid][0] != wave_id
                for rkey, sid, wave in rows:
                    if snapshot and wave != wave_id:
                        own.append((wave_id, pid, rkey, sid))
                    if rkey not in keep:
                        dropped.append((rkey,))
            if own:
                cur.executemany(q(_SNAP_OWN), own)
            if dropped:
                cur.executemany(q("DELETE FROM resource_keys WHERE rkey = ?"), dropped)
            removed = len(dropped)
        upsert = self._sql(_UPSERT_KEYS)
        for lo, hi in ranges:
            cur.execute(upsert, (lo, hi))
            written += int(cur.rowcount)
        cur.executemany(q(_UPSERT_PERSON), [(p, wave_id, spans[p][0]) for p in group])
        return written, removed

    def _held_in(self, cur: Any, person_ids: list[str]) -> dict[str, list[tuple[str, int, str]]]:
        """Like :meth:`_held`, inside the caller's transaction."""
        out: dict[str, list[tuple[str, int, str]]] = {p: [] for p in person_ids}
        cur.execute(self._sql(_HELD, marks=",".join("?" * len(person_ids))), person_ids)
        for pid, rkey, sid, wave in cur.fetchall():
            out[pid].append((rkey, int(sid), wave))
        return out

    def _keys_of(self, cur: Any, sids: list[int]) -> dict[int, set[str]]:
        """The key sets of these staging rows."""
        cur.execute(self._q(f"SELECT sid, keys FROM staging WHERE sid IN ({','.join('?' * len(sids))})"), sids)
        return {int(sid): set(self._load_json(keys)) for sid, keys in cur.fetchall()}

    def verification(self, wave_id: str, person_ids: Iterable[str] | None = None) -> VerificationResult:
        """Read production back for the wave's persons and compare it with staging.

        Default persons: those the journal says this wave promoted. Always re-reads (a check must see
        the database as it is now, also after a resume); records a ``verified`` journal row.
        """
        spans = self._wave_persons(wave_id)
        if not spans:
            raise InputError(f"wave {wave_id}: nothing staged; run staging for this wave first")
        if person_ids is None:
            promoted = self._journal_rows(wave_id, STEP_PROMOTED)
            persons = [p for p in spans if p in promoted]
        else:
            persons = list(dict.fromkeys(person_ids))
        # Cyclic GC is paused meanwhile: the rows read are acyclic and freed by reference counting, and
        # with a large heap (a pipeline's live records) each collection they would trigger costs more
        # than the reading.
        with gc_paused():
            checks, n = self._check_persons(wave_id, spans, persons)
        result = VerificationResult(wave_id, tuple(checks), n)
        with self._commit_point(f"{STEP_VERIFIED}:{wave_id}") as cur:
            cur.execute(self._q(_JOURNAL), (wave_id, STEP_VERIFIED, "", f"{result.n_passed}/{len(checks)}"))
        return result

    def _check_persons(
        self, wave_id: str, spans: dict[str, tuple[int, int]], persons: list[str]
    ) -> tuple[list[PersonCheck], int]:
        in_wave = [p for p in persons if p in spans]
        ranges = _ranges(spans[p][0] for p in in_wave)
        wanted = set(in_wave)
        rows: dict[str, tuple[Any, ...]] = {}
        held_n: dict[int, int] = {}
        for lo, hi in ranges:
            for row in self._all(_CHECK_ROWS, (lo, hi)):
                if row[1] in wanted:
                    rows[row[1]] = row
            cur = self._cursor()
            cur.execute(self._sql(_HELD_COUNTS), (lo, hi))
            held_n.update(cur.fetchall())
        # Per person: the staged keys (read when needed), and the differences found.
        staged: dict[str, list[str]] = {}
        diffs: dict[str, dict[str, str]] = {}
        extras: dict[str, list[str]] = {}
        slow: list[str] = []
        cache = self._staged_cache
        first, cached = cache if cache is not None else (0, [])

        def keys_of(pid: str) -> list[str]:
            got = staged.get(pid)
            if got is None:
                got = staged[pid] = list(self._load_json(rows[pid][4]))
            return got

        for pid in in_wave:
            sid, _, n, _, _, hashes, body, psid, _ = rows[pid]
            # The staged document must still be what was staged: compared as stored with what this
            # object wrote, else checked against its digests (the damaged resources named).
            if not (0 <= sid - first < len(cached) and cached[sid - first] == body):
                bad = self._damaged(body, hashes, keys_of(pid))
                if bad:
                    diffs[pid] = bad
            if psid is None or int(psid) != sid or held_n.get(sid, 0) != n:
                slow.append(pid)
        # Persons whose pointer names another document, or whose document does not hold all its keys:
        # what production holds for them, resource by resource, against the staged document.
        for pid, prod in self._production_bodies(slow).items():
            keys = keys_of(pid)
            want = self._doc_resources(rows[pid][6])
            bad = {}
            for k in keys:
                holds = prod.get(k)
                if holds is None:
                    bad[k] = "missing"
                elif holds != want.get(k):
                    bad[k] = "changed"
            bad.update((k, v) for k, v in diffs.get(pid, {}).items() if k not in bad)
            if bad:
                diffs[pid] = bad
            extras[pid] = [k for k in prod if k not in set(keys)]
        # The staged digest columns must still give the wave digest the journal recorded at staging;
        # if not, a digest was edited too and which resource cannot be told: every checked one is suspect.
        if not self._hashes_match_journal(wave_id, spans, rows):
            for pid in in_wave:
                bad = diffs.setdefault(pid, {})
                for k in keys_of(pid):
                    bad.setdefault(k, "changed")
        checks: list[PersonCheck] = []
        n_checked = 0
        for pid in persons:
            if pid not in spans:
                checks.append(person_check(pid, {}, {}, (), (), None, wave_id))
                continue
            srow = rows[pid]
            staged_n: dict[str, int] = orjson.loads(srow[3])
            prod_n = dict(staged_n)
            found = diffs.get(pid, {})
            for k, kind in found.items():
                if kind == "missing":
                    prod_n[split_key(k)[0]] -= 1
            extra = [split_key(k) for k in extras.get(pid, ())]
            for rtype, _ in extra:
                prod_n[rtype] = prod_n.get(rtype, 0) + 1
            prod_n = {t: c for t, c in prod_n.items() if c}
            n_checked += sum(prod_n.values())
            differing = [(split_key(k), kind) for k, kind in found.items()]
            checks.append(person_check(pid, staged_n, prod_n, differing, extra, srow[8], wave_id))
        return checks, n_checked

    def _hashes_match_journal(
        self, wave_id: str, spans: dict[str, tuple[int, int]], rows: dict[str, tuple[Any, ...]]
    ) -> bool:
        """Do the staged digest columns still give the wave digest the journal recorded at staging?

        ``rows``: staged rows already read (person -> row, digests at index 5); the rest are read here.
        """
        hashes = {pid: row[5] for pid, row in rows.items()}
        if len(hashes) < len(spans):
            span = self._wave_range(wave_id)
            if span is not None:
                for pid, h in self._all("SELECT person_id, hashes FROM staging WHERE sid BETWEEN ? AND ?", span):
                    hashes.setdefault(pid, h)
        digest = wave_digest((pid, (hashes.get(pid, ""),)) for pid in spans)
        return digest == self._journal_rows(wave_id, STEP_STAGED).get("")

    def backout(self, wave_id: str) -> BackoutResult:
        """Remove the wave's persons from production in one transaction, restoring earlier versions.

        A person a later wave has re-promoted is left alone (``superseded``): back waves out newest first.
        """
        journal = self._journal_rows(wave_id, STEP_BACKED_OUT)
        if journal:
            return BackoutResult(wave_id, (), (), (), 0, 0, skipped=True)
        snaps = self._all(
            "SELECT bp.person_id, bp.prev_wave, bp.prev_sid, p.wave_id FROM backout_persons bp "
            "LEFT JOIN persons p ON p.person_id = bp.person_id WHERE bp.wave_id = ? ORDER BY bp.person_id",
            (wave_id,),
        )
        removed, restored, superseded = [], [], []
        n_removed = n_restored = 0
        q = self._q
        delete_own, restore = self._sql(_DELETE_OWN), self._sql(_RESTORE)
        with self._commit_point(f"{STEP_BACKED_OUT}:{wave_id}") as cur:
            for pid, prev_wave, prev_sid, current in snaps:
                if current != wave_id:
                    superseded.append(pid)
                    continue
                cur.execute(delete_own, (pid, pid, wave_id))
                n_removed += cur.rowcount
                cur.execute(restore, (wave_id, pid, wave_id))
                n_restored += cur.rowcount
                if prev_wave is None:
                    cur.execute(q("DELETE FROM persons WHERE person_id = ?"), (pid,))
                    removed.append(pid)
                else:
                    cur.execute(
                        q("UPDATE persons SET wave_id = ?, sid = ? WHERE person_id = ?"), (prev_wave, prev_sid, pid)
                    )
                    restored.append(pid)
            cur.execute(q("DELETE FROM backout_keys WHERE wave_id = ?"), (wave_id,))
            cur.execute(q("DELETE FROM backout_persons WHERE wave_id = ?"), (wave_id,))
            cur.execute(
                q("DELETE FROM journal WHERE wave_id = ? AND step IN (?, ?)"), (wave_id, STEP_PROMOTED, STEP_VERIFIED)
            )
            cur.execute(q(_JOURNAL), (wave_id, STEP_BACKED_OUT, "", f"{len(removed) + len(restored)}"))
        return BackoutResult(wave_id, tuple(removed), tuple(restored), tuple(superseded), n_removed, n_restored)

    # ------------------------------------------------------------------ readers

    def read_person(self, person_id: str) -> list[dict[str, Any]]:
        """A person's production resources, ordered by (resource_type, id)."""
        cur = self._cursor()
        cur.execute(self._sql(_READ_PERSON), (person_id,))
        row = cur.fetchone()
        if row is None:
            return []
        _, n, body, held = row
        if held == n:  # the common case: the person's document holds all its keys
            try:
                resources = [r for r in self._load_doc(body) if isinstance(r, dict)]
                resources.sort(key=_by_key)
                return resources
            except (ValueError, TypeError, KeyError):
                pass
        rows = self._held([person_id])[person_id]
        docs = {sid: self._load_doc_or_empty(b) for sid, b in self._docs(sid for _, sid, _ in rows).items()}
        out = []
        for rkey, sid, _ in rows:
            res = docs.get(sid, {}).get(rkey)
            if res is not None:
                out.append(res)
        out.sort(key=lambda r: (str(r.get("resourceType")), str(r.get("id"))))
        return out

    def _load_doc_or_empty(self, body: Any) -> dict[str, dict[str, Any]]:
        """A stored document's resources by key ({} if it is not a list of resources)."""
        try:
            resources = self._load_doc(body)
        except (ValueError, TypeError):
            return {}
        return {
            f"{r.get('resourceType')}/{r.get('id')}": r
            for r in (resources if isinstance(resources, list) else ())
            if isinstance(r, dict)
        }

    def counts(self, person_id: str | None = None) -> dict[str, int]:
        """Production resources per resource type (of one person, or of everyone)."""
        if person_id is None:
            rows = self._all(f"SELECT {self._KEY_TYPE}, COUNT(*) FROM resource_keys GROUP BY {self._KEY_TYPE}")
            return {r[0]: int(r[1]) for r in sorted(rows)}
        types = Counter(split_key(rkey)[0] for rkey, _, _ in self._held([person_id])[person_id])
        return dict(sorted(types.items()))

    def persons(self) -> list[str]:
        """Persons (ICNs) in production, sorted."""
        return [r[0] for r in self._all("SELECT person_id FROM persons ORDER BY person_id")]

    def journal(self, wave_id: str | None = None) -> list[JournalEntry]:
        """The commit points reached (of one wave, or all), in (wave, step, person) order."""
        if wave_id is None:
            rows = self._all("SELECT wave_id, step, person_id, digest FROM journal")
        else:
            rows = self._all("SELECT wave_id, step, person_id, digest FROM journal WHERE wave_id = ?", (wave_id,))
        return [JournalEntry(*r) for r in sorted(rows)]

    def dump(self) -> list[tuple[str, str, str, str, str]]:
        """Canonical production state: (person_id, resource_type, id, wave_id, content hash), sorted.

        One row per held key; the hash is of the body's canonical form ('' for a body that is missing
        or not JSON).
        """
        held = self._all(
            "SELECT k.rkey, k.sid, o.person_id, o.wave_id FROM resource_keys k LEFT JOIN staging o ON o.sid = k.sid"
        )
        digests: dict[int, dict[str, str]] = {}
        cur = self._cursor()
        cur.execute("SELECT sid, body FROM staging WHERE sid IN (SELECT sid FROM resource_keys)")
        while True:
            part = cur.fetchmany(1000)
            if not part:
                break
            for sid, body in part:
                digests[int(sid)] = {k: content_hash(b) for k, b in self._doc_resources(body).items()}
        out = []
        for rkey, sid, pid, wave in held:
            rtype, rid = split_key(rkey)
            out.append((pid or "", rtype, rid, wave or "", digests.get(int(sid), {}).get(rkey, "")))
        return sorted(out)


def check_contiguous(url: str, first: int, n: int, last: int | None) -> None:
    """Staging's rows must have taken sids first .. first + n - 1 (OutputError otherwise)."""
    if n and last != first + n - 1:  # pragma: no cover - SQLite assigns max(rowid) + 1 to each new row
        raise OutputError(
            f"{url}: staging rows did not get consecutive ids ({first}..{last} for {n}); restage the wave"
        )
