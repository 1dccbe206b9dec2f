"""The load steps as SQL shared by the SQLite and PostgreSQL targets.

Both databases speak the same upsert (``INSERT ... ON CONFLICT``), so the step logic and the table
layout live here once; a subclass supplies the connection, its transaction handling, the column
types, the bulk staging write and how a stored body turns back into canonical bytes. SQL is written
with ``?`` placeholders; the PostgreSQL target rewrites them to ``%s``.

Layout. A body is written once: staging rows are the bodies, appended with consecutive sids (the
rowid on SQLite, so a wave's write is an append with no secondary index to maintain), each with the
BLAKE2b-128 digest of its canonical JSON. Production and backout hold small pointer rows that name a
staging row by sid, so promotion and backout move pointers, never bodies. A wave is a list of
persons, each a sid range; restaging a wave writes new rows and repoints its persons, leaving the
old rows for the production and backout rows that may still point to them (they cost disk only).
(A content-addressed ``bodies`` table with a unique digest index was measured too: its random-order
index made staging slower than writing bodies twice.)

- ``staging``           sid -> person_id, resource_type, id, hash, body: what waves brought
- ``staging_persons``   (wave_id, person_id) -> ord, first sid, n, types: a wave's persons in input
                        order, each a sid range, with its resources per type (JSON) for verification
- ``resources``         (resource_type, id) -> person_id, wave_id, sid: production
- ``persons``           person_id -> wave_id: who is in production, and which wave's version
- ``backout_resources`` (wave_id, resource_type, id) -> the production row a wave's promote replaced
- ``backout_persons``   (wave_id, person_id) -> prev_wave: the person's version before the wave (NULL: none)
- ``journal``           (wave_id, step, person_id) -> digest: the commit points reached

Atomicity: staging writes a whole wave (rows, persons, journal row) in one
transaction. Production's unit is the person: a transaction always holds whole persons (their
rows, their backout snapshot and their journal row), so a person is in production completely or
not at all, and the journal never claims more than production holds. How many persons share a
commit is ``persons_per_commit``: 1 gives a commit per person; the default (200) is chosen because
each commit rewrites the pages it touched (table, index, persons, journal) and per-person commits ran
at a third of the speed, while a whole-wave transaction would hold the write lock for the wave and
make a crash redo all of it. Backout is one transaction per wave.

Verification reads production back: it compares production's pointers with the wave's staged rows
(missing, pointing elsewhere, extra), recomputes the digest of every body production points to and
compares it with the digest staged for it, so an edited body is caught even if its hash column is
not; and it recomputes the wave digest from the staged digest columns and compares it with the
journal's, so a body edited together with its hash column is caught as well.
"""

from __future__ import annotations

import contextlib
import hashlib
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import partial
from operator import itemgetter, methodcaller
from typing import Any

import orjson

from .._gc import gc_paused
from ..errors import InputError, OutputError
from .base import (
    DEFAULT_PERSONS_PER_COMMIT,
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
    person_check,
    stage_rows,
    wave_digest,
)

#: The tables, with the dialect's types: {blob} a digest, {body} a body, {sid} staging's key,
#: {without_rowid} for tables that need no rowid besides their key.
DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS staging (
        sid {sid}, person_id TEXT NOT NULL, resource_type TEXT NOT NULL, id TEXT NOT NULL,
        hash {blob} NOT NULL, body {body} NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS staging_persons (
        wave_id TEXT NOT NULL, person_id TEXT NOT NULL, ord INTEGER NOT NULL, first BIGINT NOT NULL,
        n INTEGER NOT NULL, types TEXT NOT NULL, PRIMARY KEY (wave_id, person_id))""",
    """CREATE TABLE IF NOT EXISTS resources (
        resource_type TEXT NOT NULL, id TEXT NOT NULL, person_id TEXT NOT NULL, wave_id TEXT NOT NULL,
        sid BIGINT NOT NULL, PRIMARY KEY (resource_type, id)){without_rowid}""",
    "CREATE INDEX IF NOT EXISTS resources_person ON resources (person_id, sid)",
    """CREATE TABLE IF NOT EXISTS persons (
        person_id TEXT PRIMARY KEY, wave_id TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS backout_resources (
        wave_id TEXT NOT NULL, person_id TEXT NOT NULL, resource_type TEXT NOT NULL, id TEXT NOT NULL,
        owner_id TEXT NOT NULL, owner_wave TEXT NOT NULL, sid BIGINT NOT NULL,
        PRIMARY KEY (wave_id, resource_type, id)){without_rowid}""",
    "CREATE INDEX IF NOT EXISTS backout_resources_person ON backout_resources (wave_id, person_id)",
    """CREATE TABLE IF NOT EXISTS backout_persons (
        wave_id TEXT NOT NULL, person_id TEXT NOT NULL, prev_wave TEXT,
        PRIMARY KEY (wave_id, person_id))""",
    """CREATE TABLE IF NOT EXISTS journal (
        wave_id TEXT NOT NULL, step TEXT NOT NULL, person_id TEXT NOT NULL, digest TEXT NOT NULL,
        PRIMARY KEY (wave_id, step, person_id))""",
)

_INSERT_STAGING_PERSON = """
INSERT INTO staging_persons (wave_id, person_id, ord, first, n, types) VALUES (?, ?, ?, ?, ?, ?)"""

# Rows of other persons that these staged rows will overwrite (same resource_type, id). CROSS JOIN
# keeps SQLite driving from the staged sid range (PostgreSQL plans it as any join).
_SNAP_DISPLACED = """
INSERT INTO backout_resources (wave_id, person_id, resource_type, id, owner_id, owner_wave, sid)
SELECT ?, s.person_id, r.resource_type, r.id, r.person_id, r.wave_id, r.sid
FROM staging s CROSS JOIN resources r
WHERE s.sid BETWEEN ? AND ? AND r.resource_type = s.resource_type AND r.id = s.id
  AND r.person_id <> s.person_id AND r.wave_id <> ?
ON CONFLICT DO NOTHING"""

_SNAP_OWN = """
INSERT INTO backout_resources (wave_id, person_id, resource_type, id, owner_id, owner_wave, sid)
SELECT ?, r.person_id, r.resource_type, r.id, r.person_id, r.wave_id, r.sid
FROM resources r WHERE r.person_id IN ({marks}) AND r.wave_id <> ?
ON CONFLICT DO NOTHING"""

_SNAP_PERSON = """
INSERT INTO backout_persons (wave_id, person_id, prev_wave) VALUES (?, ?, ?)
ON CONFLICT DO NOTHING"""

_COUNT_DROPPED = """
SELECT COUNT(*) FROM resources r WHERE r.person_id = ? AND NOT EXISTS (
  SELECT 1 FROM staging s WHERE s.sid BETWEEN ? AND ? AND s.resource_type = r.resource_type AND s.id = r.id)"""

_UPSERT_FROM_STAGING = """
INSERT INTO resources (resource_type, id, person_id, wave_id, sid)
SELECT resource_type, id, person_id, CAST(? AS TEXT), sid FROM staging WHERE sid BETWEEN ? AND ?
ON CONFLICT (resource_type, id) DO UPDATE SET
  person_id = excluded.person_id, wave_id = excluded.wave_id, sid = excluded.sid"""

# The common case, persons new to production: insert, and see from the row count whether any key
# was already there (then the group takes the snapshot-and-upsert path).
_INSERT_NEW = """
INSERT INTO resources (resource_type, id, person_id, wave_id, sid)
SELECT resource_type, id, person_id, CAST(? AS TEXT), sid FROM staging WHERE sid BETWEEN ? AND ?
ON CONFLICT DO NOTHING"""

_UPSERT_PERSON = """
INSERT INTO persons (person_id, wave_id) VALUES (?, ?)
ON CONFLICT (person_id) DO UPDATE SET wave_id = excluded.wave_id"""

_JOURNAL = """
INSERT INTO journal (wave_id, step, person_id, digest) VALUES (?, ?, ?, ?)
ON CONFLICT (wave_id, step, person_id) DO UPDATE SET digest = excluded.digest"""

# Put back what the wave replaced, unless a later wave has since written that key.
_RESTORE = """
INSERT INTO resources (resource_type, id, person_id, wave_id, sid)
SELECT resource_type, id, owner_id, owner_wave, sid FROM backout_resources WHERE wave_id = ? AND person_id = ?
ON CONFLICT (resource_type, id) DO UPDATE SET
  person_id = excluded.person_id, wave_id = excluded.wave_id, sid = excluded.sid
WHERE resources.wave_id = ?"""

# Verification, set-based: what was staged per (person, type) (recorded at staging), production's
# rows per person ...
_STAGED_COUNTS = "SELECT person_id, types FROM staging_persons WHERE wave_id = ?"
_PROD_TOTALS = """
SELECT sp.person_id, (SELECT COUNT(*) FROM resources r WHERE r.person_id = sp.person_id)
FROM staging_persons sp WHERE sp.wave_id = ?"""
# ... staged rows whose key production lacks under the person (r.sid NULL) or holds as another row,
# with that row's body (a restaged wave's earlier row can hold the same content) ...
_POINTERS = """
SELECT s.sid, s.hash, r.sid, p.{body} FROM staging s
LEFT JOIN resources r ON r.resource_type = s.resource_type AND r.id = s.id AND r.person_id = s.person_id
LEFT JOIN staging p ON p.sid = r.sid
WHERE s.sid BETWEEN ? AND ? AND (r.sid IS NULL OR r.sid <> s.sid)"""
# ... the staged rows themselves, which production points to: digest column and body ...
_BODIES = "SELECT hash, {body} FROM staging WHERE sid BETWEEN ? AND ? ORDER BY sid"
# ... and, for a person holding more rows than it matched, its rows that were not staged for it.
_EXTRA = """
SELECT r.resource_type, r.id FROM resources r WHERE r.person_id = ? AND NOT EXISTS (
  SELECT 1 FROM staging s WHERE s.sid BETWEEN ? AND ? AND s.resource_type = r.resource_type AND s.id = r.id)"""

_IN_LIST_MAX = 500  # persons per IN (...) list: far below SQLite's and PostgreSQL's parameter limits

_blake16 = partial(hashlib.blake2b, digest_size=16)
_hexdigest = methodcaller("hexdigest")


def text_digests(bodies: Iterable[str]) -> list[str]:
    """Hex BLAKE2b-128 digests of bodies stored as text, looped in C (map over C callables)."""
    return list(map(_hexdigest, map(_blake16, map(str.encode, bodies))))


def canonical_digest(body: bytes | str | None) -> str:
    """Hex digest of a stored body's content, whatever its key order and whitespace ('' if not JSON)."""
    if body is None:
        return ""
    try:
        return content_hash(canonical_json(orjson.loads(body)))
    except orjson.JSONDecodeError:
        return ""


def _spans(first_n: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge (first sid, count) spans into inclusive (lo, hi) sid ranges, adjacent spans joined."""
    out: list[list[int]] = []
    for first, n in sorted(first_n):
        if n <= 0:
            continue
        if out and out[-1][1] + 1 == first:
            out[-1][1] = first + n - 1
        else:
            out.append([first, first + n - 1])
    return [(lo, hi) for lo, hi in out]


def _covered(los: list[int], known: dict[int, list[str]], span: tuple[int, int]) -> bool:
    """Is the (first sid, n) span inside one of the known ranges?"""
    first, n = span
    i = bisect_right(los, first) - 1
    return i >= 0 and first + n <= los[i] + len(known[los[i]])


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SQLTarget:
    """Step logic over a DB-API connection; subclasses provide the dialect."""

    url: str
    #: How a body column is selected for hashing.
    _BODY_TEXT = "body"
    #: Column types for :data:`DDL`.
    _DDL_TYPES: dict[str, str] = {}

    def __init__(
        self, url: str, *, persons_per_commit: int = DEFAULT_PERSONS_PER_COMMIT, on_commit: CommitHook | None = None
    ) -> None:
        if not isinstance(persons_per_commit, int) or persons_per_commit < 1:
            raise InputError(f"persons_per_commit={persons_per_commit!r}: must be an integer >= 1")
        self.url = url
        self.persons_per_commit = persons_per_commit
        self.on_commit = on_commit
        # The last wave this object staged: (first sid, digests, bodies) as written. Verification in the
        # same process compares what it reads back with these (C-level list equality) instead of
        # hashing every body again; anything that differs takes the hashing path.
        self._staged_cache: tuple[int, list[str], list[str]] | None = None

    # ------------------------------------------------------------------ dialect hooks

    def _q(self, sql: str) -> str:
        return sql

    def _tx(self) -> contextlib.AbstractContextManager[Any]:  # pragma: no cover - abstract
        """A transaction yielding a cursor; commits on exit, rolls back on an exception."""
        raise NotImplementedError

    def _cursor(self) -> Any:  # pragma: no cover - abstract
        """A cursor for reads outside any explicit transaction."""
        raise NotImplementedError

    def _write_staging(self, cur: Any, wave: StagedWave, first_sid: int) -> None:  # pragma: no cover - abstract
        """Bodies (new ones only) and pointer rows with sids first_sid, first_sid + 1, ... in row order."""
        raise NotImplementedError

    def _digests(self, bodies: list[Any]) -> list[str]:  # pragma: no cover - abstract
        """Digests of bodies as selected by _BODY_TEXT (fast path; a mismatch is re-checked canonically)."""
        raise NotImplementedError

    def _load_body(self, body: Any) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __enter__(self) -> SQLTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers

    def _create_tables(self, execute: Any) -> None:
        """Create the tables (idempotent); refuse a file or schema holding an older layout."""
        tables = [stmt for stmt in DDL if not stmt.startswith("CREATE INDEX")]
        for stmt in tables:
            execute(stmt.format(**self._DDL_TYPES))
        cols = [d[0] for d in execute("SELECT * FROM resources WHERE 1 = 0").description]
        if "body" in cols:
            raise InputError(
                f"{self.url}: holds an earlier vistasim load layout (bodies in every row); load into a new target"
            )
        for stmt in DDL:
            if stmt not in tables:
                execute(stmt)

    @contextlib.contextmanager
    def _commit_point(self, label: str) -> Iterator[Any]:
        """A transaction whose commit is a named commit point (the hook sees before/after)."""
        with self._tx() as cur:
            yield cur
            if self.on_commit is not None:
                self.on_commit(f"before:{label}")
        if self.on_commit is not None:
            self.on_commit(f"after:{label}")

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cur = self._cursor()
        cur.execute(self._q(sql), params)
        return list(cur.fetchall())

    def _journal_rows(self, wave_id: str, step: str) -> dict[str, str]:
        rows = self._all("SELECT person_id, digest FROM journal WHERE wave_id = ? AND step = ?", (wave_id, step))
        return {r[0]: r[1] for r in rows}

    def _wave_spans(self, wave_id: str) -> dict[str, tuple[int, int]]:
        """The wave's persons in input order: person -> (first sid, resource count)."""
        rows = self._all("SELECT person_id, first, n FROM staging_persons WHERE wave_id = ? ORDER BY ord", (wave_id,))
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}

    # ------------------------------------------------------------------ steps

    def staging(
        self, wave_id: str, bundles: BundleInput, *, restage: bool = False, prepared: Prepared | None = None
    ) -> StagingResult:
        """Write a wave's bundles to staging in one transaction.

        Same input as the journal's staged digest: nothing is written (``skipped``), also after a
        backout (``restage=True`` reopens a backed-out wave). Different input: the wave's staging is
        replaced and its promote/verify/backout journal rows cleared, so production re-promotes it.
        """
        with gc_paused():  # tens of thousands of acyclic row tuples (see verification)
            wave = stage_rows(wave_id, bundles, prepared)
        staged = self._journal_rows(wave_id, STEP_STAGED)
        previous = staged.get("")
        if previous == wave.digest and not restage:
            return StagingResult(wave_id, len(wave.persons), len(wave.rows), wave.counts, wave.digest, skipped=True)
        q = self._q
        self._staged_cache = None
        with self._commit_point(f"{STEP_STAGED}:{wave_id}") as cur:
            if previous is not None:
                # The earlier rows stay: production and backout snapshots may still point to them.
                cur.execute(q("DELETE FROM staging_persons WHERE wave_id = ?"), (wave_id,))
                cur.execute(
                    q("DELETE FROM journal WHERE wave_id = ? AND step IN (?, ?, ?)"),
                    (wave_id, STEP_PROMOTED, STEP_VERIFIED, STEP_BACKED_OUT),
                )
            cur.execute("SELECT COALESCE(MAX(sid), 0) + 1 FROM staging")
            first = int(cur.fetchone()[0])
            self._write_staging(cur, wave, first)
            types = list(map(itemgetter(1), wave.rows))
            cur.executemany(
                q(_INSERT_STAGING_PERSON),
                [
                    (wave_id, pid, o, first + i, n, orjson.dumps(Counter(types[i : i + n])).decode())
                    for pid, o, i, n in wave.persons
                ],
            )
            cur.execute(q(_JOURNAL), (wave_id, STEP_STAGED, "", wave.digest))
        self._staged_cache = (first, list(map(itemgetter(3), wave.rows)), list(map(itemgetter(4), wave.rows)))
        return StagingResult(
            wave_id, len(wave.persons), len(wave.rows), wave.counts, wave.digest, restaged=previous is not None
        )

    def production(self, wave_id: str, person_ids: Iterable[str] | None = None) -> PromotionResult:
        """Promote persons of a staged wave (default: all, in input order), atomically per person."""
        spans = self._wave_spans(wave_id)
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
                    w, r = self._promote_group(cur, wave_id, chunk, spans, digest)
                    written += w
                    removed += r
        return PromotionResult(wave_id, tuple(todo), tuple(skipped), failed, written, removed)

    def _promote_group(
        self, cur: Any, wave_id: str, group: list[str], spans: dict[str, tuple[int, int]], digest: str
    ) -> tuple[int, int]:
        """Replace these persons' production rows by their staged rows; keep what is replaced for backout.

        Set-based: a few statements per group (per sid range of the group), whatever its size; only
        persons that already have a version in production cost one more statement each (a count).
        """
        q = self._q
        marks = ",".join("?" * len(group))
        cur.execute(q(f"SELECT person_id, wave_id FROM persons WHERE person_id IN ({marks})"), group)
        prev = dict(cur.fetchall())
        # The first promote of a person in this wave records the version before it; a re-promote
        # after a restage finds that row and must not replace it with the wave's own version.
        cur.executemany(
            q(_SNAP_PERSON), [(wave_id, p, prev[p] if prev.get(p, wave_id) != wave_id else None) for p in group]
        )
        ranges = _spans(spans[p] for p in group)
        written = 0
        if not prev:
            # No person of the group is in production yet: nothing of theirs to snapshot or delete, and
            # a key already in production (another person's) shows as a row the insert skipped.
            conflicts = []
            for lo, hi in ranges:
                cur.execute(q(_INSERT_NEW), (wave_id, lo, hi))
                if int(cur.rowcount) == hi - lo + 1:
                    written += hi - lo + 1
                else:
                    conflicts.append((lo, hi))
            ranges = conflicts
        for lo, hi in ranges:
            cur.execute(q(_SNAP_DISPLACED), (wave_id, lo, hi, wave_id))
        removed = 0
        if prev:
            older = [p for p, w in prev.items() if w != wave_id]
            if older:
                cur.execute(q(_SNAP_OWN.format(marks=",".join("?" * len(older)))), (wave_id, *older, wave_id))
            for pid in prev:
                first, n = spans[pid]
                cur.execute(q(_COUNT_DROPPED), (pid, first, first + n - 1))
                removed += int(cur.fetchone()[0])
            cur.execute(q(f"DELETE FROM resources WHERE person_id IN ({','.join('?' * len(prev))})"), list(prev))
        for lo, hi in ranges:
            cur.execute(q(_UPSERT_FROM_STAGING), (wave_id, lo, hi))
            written += int(cur.rowcount)
        cur.executemany(q(_UPSERT_PERSON), [(p, wave_id) for p in group])
        cur.executemany(q(_JOURNAL), [(wave_id, STEP_PROMOTED, p, digest) for p in group])
        return written, removed

    def verification(self, wave_id: str, person_ids: Iterable[str] | None = None) -> VerificationResult:
        """Read production back for the wave's persons and compare it with staging.

        Default persons: those the journal says this wave promoted. Always re-reads (a check must see
        the database as it is now, also after a resume); records a ``verified`` journal row.
        """
        spans = self._wave_spans(wave_id)
        if not spans:
            raise InputError(f"wave {wave_id}: nothing staged; run staging for this wave first")
        if person_ids is None:
            promoted = self._journal_rows(wave_id, STEP_PROMOTED)
            persons = [p for p in spans if p in promoted]
        else:
            persons = list(dict.fromkeys(person_ids))
        in_wave = [p for p in persons if p in spans]
        ranges = _spans(spans[p] for p in in_wave)
        # Production's pointers for every staged key, and the staged bodies they point to, come from
        # the database; Python compares what it reads with what this object staged (C-level list
        # equality) or, in another process, recomputes each body's digest (looped in C) and compares
        # it with the digest staged for it, so an edited body is caught even if its hash column is not;
        # a body that differs is re-hashed canonically, so equal content still passes. Cyclic GC is
        # paused meanwhile: the rows read are acyclic and freed by reference counting, and with a large
        # heap (a pipeline's live records) each collection they would trigger costs more than the reading.
        with gc_paused():
            bad, wave_hashes = self._check_rows(ranges)
        if not self._hashes_match_journal(wave_id, spans, wave_hashes):
            # A digest column was edited too: which row cannot be told, so every checked row is suspect.
            for lo, hi in ranges:
                for sid in range(lo, hi + 1):
                    bad.setdefault(sid, "changed")
        diffs: dict[str, list[tuple[tuple[str, str], str]]] = {}
        cur = self._cursor()
        key_sql = self._q("SELECT person_id, resource_type, id FROM staging WHERE sid = ?")
        for sid, kind in sorted(bad.items()):
            cur.execute(key_sql, (sid,))
            row = cur.fetchone()
            if row is not None:  # None: a staged row deleted behind our back (its wave digest disagrees)
                diffs.setdefault(row[0], []).append(((row[1], row[2]), kind))
        # Per (person, type): staged counts as recorded at staging; production's follow from them, as
        # production holds a person's staged keys less the missing ones, plus extras (looked up only
        # when the person's row count says there are some).
        want = set(persons)
        staged_n: dict[str, dict[str, int]] = {p: {} for p in persons}
        for pid, types in self._all(_STAGED_COUNTS, (wave_id,)):
            if pid in want:
                staged_n[pid] = orjson.loads(types)
        totals = {pid: int(cnt) for pid, cnt in self._all(_PROD_TOTALS, (wave_id,))}
        prod_n: dict[str, dict[str, int]] = {}
        extras: dict[str, list[tuple[str, str]]] = {}
        n = 0
        for pid in persons:
            counts = dict(staged_n[pid])
            for (rtype, _), kind in diffs.get(pid, ()):
                if kind == "missing":
                    counts[rtype] -= 1
            total = totals.get(pid, 0)
            if pid in spans and total > sum(counts.values()):
                first, cnt = spans[pid]
                extras[pid] = [(t, i) for t, i in self._all(_EXTRA, (pid, first, first + cnt - 1))]
                for rtype, _ in extras[pid]:
                    counts[rtype] = counts.get(rtype, 0) + 1
            prod_n[pid] = {t: c for t, c in counts.items() if c} if pid in spans else {}
            n += sum(prod_n[pid].values())
        current = dict(
            self._all(
                "SELECT p.person_id, p.wave_id FROM persons p "
                "JOIN staging_persons sp ON sp.person_id = p.person_id WHERE sp.wave_id = ?",
                (wave_id,),
            )
        )
        checks: list[PersonCheck] = [
            person_check(p, staged_n[p], prod_n[p], diffs.get(p, ()), extras.get(p, ()), current.get(p), wave_id)
            for p in persons
        ]
        result = VerificationResult(wave_id, tuple(checks), n)
        with self._commit_point(f"{STEP_VERIFIED}:{wave_id}") as cur:
            cur.execute(self._q(_JOURNAL), (wave_id, STEP_VERIFIED, "", f"{result.n_passed}/{len(checks)}"))
        return result

    def _check_rows(self, ranges: list[tuple[int, int]]) -> tuple[dict[int, str], dict[int, list[str]]]:
        """Staged rows production lacks or holds otherwise ({sid: "missing" | "changed"}), and the
        digest columns read ({first sid of a range: digests in sid order})."""
        bad: dict[int, str] = {}
        for lo, hi in ranges:
            for sid, sh, psid, body in self._all(_POINTERS.format(body=self._BODY_TEXT), (lo, hi)):
                if psid is None:
                    bad[sid] = "missing"
                elif canonical_digest(body) != sh:
                    bad[sid] = "changed"
        wave_hashes: dict[int, list[str]] = {}
        body_sql = _BODIES.format(body=self._BODY_TEXT)
        for lo, hi in ranges:
            rows = self._all(body_sql, (lo, hi))
            hashes = list(map(itemgetter(0), rows))
            bodies = list(map(itemgetter(1), rows))
            if len(rows) != hi - lo + 1:  # rows gone from staging: read them one by one
                found = dict(self._all("SELECT sid, hash FROM staging WHERE sid BETWEEN ? AND ?", (lo, hi)))
                wave_hashes[lo] = [found.get(sid, "") for sid in range(lo, hi + 1)]
                for sid in range(lo, hi + 1):
                    if sid not in found:
                        bad.setdefault(sid, "missing")
                continue
            wave_hashes[lo] = hashes
            try:
                if self._same_as_staged(lo, hashes, bodies) or self._digests(bodies) == hashes:
                    continue  # every staged body hashes to its digest
            except (TypeError, AttributeError):  # a body that is not text (edited behind our back)
                pass
            for sid, sh, body in zip(range(lo, hi + 1), hashes, bodies):
                if sid not in bad and canonical_digest(body) != sh:
                    bad[sid] = "changed"
        return bad, wave_hashes

    def _same_as_staged(self, lo: int, hashes: list[str], bodies: list[Any]) -> bool:
        """Are these rows (sids from lo) exactly what this object staged? Then they hash as staged."""
        if self._staged_cache is None:
            return False
        first, cached_h, cached_b = self._staged_cache
        i, n = lo - first, len(hashes)
        return 0 <= i and i + n <= len(cached_h) and hashes == cached_h[i : i + n] and bodies == cached_b[i : i + n]

    def _hashes_match_journal(
        self, wave_id: str, spans: dict[str, tuple[int, int]], known: dict[int, list[str]]
    ) -> bool:
        """Do the staged digest columns still give the wave digest the journal recorded at staging?

        ``known``: digests already read, {first sid of a range: digests of the range in sid order}.
        """
        los = sorted(known)
        missing = [sp for sp in spans.values() if sp[1] and not _covered(los, known, sp)]
        for lo, hi in _spans(missing):
            known[lo] = [
                h
                for _, h in self._all("SELECT sid, hash FROM staging WHERE sid BETWEEN ? AND ? ORDER BY sid", (lo, hi))
            ]
        los = sorted(known)

        def hexes(first: int, n: int) -> list[str]:
            if not n:
                return []
            lo = los[bisect_right(los, first) - 1]
            return known[lo][first - lo : first - lo + n]

        digest = wave_digest((pid, hexes(first, n)) for pid, (first, n) in spans.items())
        return digest == self._journal_rows(wave_id, STEP_STAGED).get("")

    def backout(self, wave_id: str) -> BackoutResult:
        """Remove the wave's persons from production in one transaction, restoring earlier versions.

        A person a later wave has re-promoted is left alone (``superseded``): back waves out newest first.
        """
        journal = self._journal_rows(wave_id, STEP_BACKED_OUT)
        if journal:
            return BackoutResult(wave_id, (), (), (), 0, 0, skipped=True)
        snaps = self._all(
            "SELECT bp.person_id, bp.prev_wave, p.wave_id FROM backout_persons bp "
            "LEFT JOIN persons p ON p.person_id = bp.person_id WHERE bp.wave_id = ? ORDER BY bp.person_id",
            (wave_id,),
        )
        removed, restored, superseded = [], [], []
        n_removed = n_restored = 0
        q = self._q
        with self._commit_point(f"{STEP_BACKED_OUT}:{wave_id}") as cur:
            for pid, prev_wave, current in snaps:
                if current != wave_id:
                    superseded.append(pid)
                    continue
                cur.execute(q("DELETE FROM resources WHERE person_id = ? AND wave_id = ?"), (pid, wave_id))
                n_removed += cur.rowcount
                cur.execute(q(_RESTORE), (wave_id, pid, wave_id))
                n_restored += cur.rowcount
                if prev_wave is None:
                    cur.execute(q("DELETE FROM persons WHERE person_id = ?"), (pid,))
                    removed.append(pid)
                else:
                    cur.execute(q("UPDATE persons SET wave_id = ? WHERE person_id = ?"), (prev_wave, pid))
                    restored.append(pid)
            cur.execute(q("DELETE FROM backout_resources WHERE wave_id = ?"), (wave_id,))
            cur.execute(q("DELETE FROM backout_persons WHERE wave_id = ?"), (wave_id,))
            cur.execute(
                q("DELETE FROM journal WHERE wave_id = ? AND step IN (?, ?)"), (wave_id, STEP_PROMOTED, STEP_VERIFIED)
            )
            cur.execute(q(_JOURNAL), (wave_id, STEP_BACKED_OUT, "", f"{len(removed) + len(restored)}"))
        return BackoutResult(wave_id, tuple(removed), tuple(restored), tuple(superseded), n_removed, n_restored)

    # ------------------------------------------------------------------ readers

    def read_person(self, person_id: str) -> list[dict[str, Any]]:
        """A person's production resources, ordered by (resource_type, id)."""
        rows = self._all(
            "SELECT s.body FROM resources r JOIN staging s ON s.sid = r.sid "
            "WHERE r.person_id = ? ORDER BY r.resource_type, r.id",
            (person_id,),
        )
        return [self._load_body(r[0]) for r in rows]

    def counts(self, person_id: str | None = None) -> dict[str, int]:
        """Production resources per resource type (of one person, or of everyone)."""
        if person_id is None:
            rows = self._all("SELECT resource_type, COUNT(*) FROM resources GROUP BY resource_type")
        else:
            rows = self._all(
                "SELECT resource_type, COUNT(*) FROM resources WHERE person_id = ? GROUP BY resource_type",
                (person_id,),
            )
        return {r[0]: int(r[1]) for r in sorted(rows)}

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

        The hash is of the body's canonical form ('' for a body that is missing or not JSON).
        """
        rows = self._all(
            f"SELECT r.person_id, r.resource_type, r.id, r.wave_id, s.{self._BODY_TEXT} "
            "FROM resources r LEFT JOIN staging s ON s.sid = r.sid"
        )
        return sorted((p, t, i, w, canonical_digest(b)) for p, t, i, w, b in rows)


def check_contiguous(url: str, first: int, n: int, last: int | None) -> None:
    """Staging's rows must have taken sids first .. first + n - 1 (OutputError otherwise)."""
    if n and last != first + n - 1:  # pragma: no cover - SQLite assigns max(rowid) + 1 to each new row
        raise OutputError(
            f"{url}: staging rows did not get consecutive ids ({first}..{last} for {n}); restage the wave"
        )
