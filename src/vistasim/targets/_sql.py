"""The load steps as SQL shared by the SQLite and PostgreSQL targets.

Both databases speak the same upsert (``INSERT ... ON CONFLICT``), so the step logic lives here once;
a subclass supplies the connection, its transaction handling, the DDL, the bulk staging write and
how a stored body turns back into canonical bytes. SQL is written with ``?`` placeholders; the
PostgreSQL target rewrites them to ``%s``.

Tables (every one keyed so a re-run upserts instead of duplicating):

- ``staging``           (wave_id, person_id, resource_type, id) -> hash, body: what a wave brought
- ``staging_persons``   (wave_id, person_id) -> ord, n: the wave's persons in input order
- ``resources``         (resource_type, id) -> person_id, wave_id, hash, body: production
- ``persons``           person_id -> wave_id: who is in production, and which wave's version
- ``backout_resources`` (wave_id, resource_type, id) -> the production row a wave's promote replaced
- ``backout_persons``   (wave_id, person_id) -> prev_wave: the person's version before the wave (NULL: none)
- ``journal``           (wave_id, step, person_id) -> digest: the commit points reached

Atomicity: staging writes a whole wave in one transaction. Production's unit is the person: a
transaction always holds whole persons (their rows, their backout snapshot and their journal row),
so a person is in production completely or not at all, and the journal never claims more than
production holds. How many persons share a commit is ``persons_per_commit``: 1 gives a commit per
person; the default (50) is chosen because each commit rewrites ~10 pages (table, indexes,
persons, journal) and per-person commits ran at a third of the speed, while a whole-wave transaction
would hold the write lock for the wave and make a crash redo all of it. Backout is one transaction
per wave.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from ..errors import InputError
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
    PromotionResult,
    StagedWave,
    StagingResult,
    VerificationResult,
    canonical_json,
    content_hash,
    person_check,
    stage_rows,
)

_SNAP_OWN = """
INSERT INTO backout_resources (wave_id, person_id, resource_type, id, owner_id, owner_wave, hash, body)
SELECT ?, ?, r.resource_type, r.id, r.person_id, r.wave_id, r.hash, r.body
FROM resources r WHERE r.person_id = ? AND r.wave_id <> ?
ON CONFLICT DO NOTHING"""

# Rows of other persons that these persons' resources will overwrite (same resource_type, id).
_SNAP_DISPLACED = """
INSERT INTO backout_resources (wave_id, person_id, resource_type, id, owner_id, owner_wave, hash, body)
SELECT s.wave_id, s.person_id, r.resource_type, r.id, r.person_id, r.wave_id, r.hash, r.body
FROM staging s JOIN resources r ON r.resource_type = s.resource_type AND r.id = s.id
WHERE s.wave_id = ? AND s.person_id IN ({marks}) AND r.person_id <> s.person_id AND r.wave_id <> s.wave_id
ON CONFLICT DO NOTHING"""

_SNAP_PERSON = """
INSERT INTO backout_persons (wave_id, person_id, prev_wave) VALUES (?, ?, ?)
ON CONFLICT DO NOTHING"""

_COUNT_DROPPED = """
SELECT COUNT(*) FROM resources r WHERE r.person_id = ? AND NOT EXISTS (
  SELECT 1 FROM staging s WHERE s.wave_id = ? AND s.person_id = ? AND s.resource_type = r.resource_type AND s.id = r.id)"""

_UPSERT_FROM_STAGING = """
INSERT INTO resources (resource_type, id, person_id, wave_id, hash, body)
SELECT resource_type, id, person_id, wave_id, hash, body FROM staging WHERE wave_id = ? AND person_id IN ({marks})
ON CONFLICT (resource_type, id) DO UPDATE SET
  person_id = excluded.person_id, wave_id = excluded.wave_id, hash = excluded.hash, body = excluded.body"""

_UPSERT_PERSON = """
INSERT INTO persons (person_id, wave_id) VALUES (?, ?)
ON CONFLICT (person_id) DO UPDATE SET wave_id = excluded.wave_id"""

_JOURNAL = """
INSERT INTO journal (wave_id, step, person_id, digest) VALUES (?, ?, ?, ?)
ON CONFLICT (wave_id, step, person_id) DO UPDATE SET digest = excluded.digest"""

# Put back what the wave replaced, unless a later wave has since written that key.
_RESTORE = """
INSERT INTO resources (resource_type, id, person_id, wave_id, hash, body)
SELECT resource_type, id, owner_id, owner_wave, hash, body FROM backout_resources WHERE wave_id = ? AND person_id = ?
ON CONFLICT (resource_type, id) DO UPDATE SET
  person_id = excluded.person_id, wave_id = excluded.wave_id, hash = excluded.hash, body = excluded.body
WHERE resources.wave_id = ?"""


# Verification, set-based: what was staged and what production holds, per (person, type) ...
_STAGED_COUNTS = """
SELECT person_id, resource_type, COUNT(*) FROM staging WHERE wave_id = ? GROUP BY person_id, resource_type"""
_PROD_COUNTS = """
SELECT r.person_id, r.resource_type, COUNT(*) FROM resources r
JOIN staging_persons sp ON sp.person_id = r.person_id WHERE sp.wave_id = ? GROUP BY r.person_id, r.resource_type"""
# ... staged rows production lacks (body NULL) or holds with other bytes ...
_MISSING_OR_CHANGED = """
SELECT s.person_id, s.resource_type, s.id, s.hash, r.{body} FROM staging s
LEFT JOIN resources r ON r.resource_type = s.resource_type AND r.id = s.id AND r.person_id = s.person_id
WHERE s.wave_id = ? AND (r.id IS NULL OR r.body <> s.body)"""
# ... and production rows of the wave's persons that were not staged for them.
_EXTRA = """
SELECT r.person_id, r.resource_type, r.id FROM resources r
JOIN staging_persons sp ON sp.person_id = r.person_id WHERE sp.wave_id = ? AND NOT EXISTS (
  SELECT 1 FROM staging s WHERE s.wave_id = sp.wave_id AND s.person_id = r.person_id
  AND s.resource_type = r.resource_type AND s.id = r.id)"""

_IN_LIST_MAX = 500  # persons per IN (...) list: far below SQLite's and PostgreSQL's parameter limits


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SQLTarget:
    """Step logic over a DB-API connection; subclasses provide the dialect."""

    url: str
    #: How verification and dump select a body: as text, hashed row by row, so that no parsed
    #: resources pile up (tens of thousands of live dicts make the cyclic GC dominate a read-back).
    _BODY_TEXT = "body"

    def __init__(
        self, url: str, *, persons_per_commit: int = DEFAULT_PERSONS_PER_COMMIT, on_commit: CommitHook | None = None
    ) -> None:
        if not isinstance(persons_per_commit, int) or persons_per_commit < 1:
            raise InputError(f"persons_per_commit={persons_per_commit!r}: must be an integer >= 1")
        self.url = url
        self.persons_per_commit = persons_per_commit
        self.on_commit = on_commit

    # ------------------------------------------------------------------ dialect hooks

    def _q(self, sql: str) -> str:
        return sql

    def _tx(self) -> contextlib.AbstractContextManager[Any]:  # pragma: no cover - abstract
        """A transaction yielding a cursor; commits on exit, rolls back on an exception."""
        raise NotImplementedError

    def _cursor(self) -> Any:  # pragma: no cover - abstract
        """A cursor for reads outside any explicit transaction."""
        raise NotImplementedError

    def _write_staging(self, cur: Any, wave: StagedWave) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _stored_hash(self, body: Any, staged_hash: str | None) -> str:  # pragma: no cover - abstract
        """Content hash of a body as production holds it."""
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

    def _wave_persons(self, wave_id: str) -> list[str]:
        rows = self._all("SELECT person_id FROM staging_persons WHERE wave_id = ? ORDER BY ord", (wave_id,))
        return [r[0] for r in rows]

    # ------------------------------------------------------------------ steps

    def staging(self, wave_id: str, bundles: BundleInput, *, restage: bool = False) -> StagingResult:
        """Write a wave's bundles to staging in one transaction.

        Same input as the journal's staged digest: nothing is written (``skipped``), also after a
        backout (``restage=True`` reopens a backed-out wave). Different input: the wave's staging is
        replaced and its promote/verify/backout journal rows cleared, so production re-promotes it.
        """
        wave = stage_rows(wave_id, bundles)
        staged = self._journal_rows(wave_id, STEP_STAGED)
        previous = staged.get("")
        if previous == wave.digest and not restage:
            return StagingResult(wave_id, len(wave.persons), len(wave.rows), wave.counts, wave.digest, skipped=True)
        with self._commit_point(f"{STEP_STAGED}:{wave_id}") as cur:
            if previous is not None:
                q = self._q
                cur.execute(q("DELETE FROM staging WHERE wave_id = ?"), (wave_id,))
                cur.execute(q("DELETE FROM staging_persons WHERE wave_id = ?"), (wave_id,))
                cur.execute(
                    q("DELETE FROM journal WHERE wave_id = ? AND step IN (?, ?, ?)"),
                    (wave_id, STEP_PROMOTED, STEP_VERIFIED, STEP_BACKED_OUT),
                )
            self._write_staging(cur, wave)
            cur.execute(self._q(_JOURNAL), (wave_id, STEP_STAGED, "", wave.digest))
        return StagingResult(
            wave_id, len(wave.persons), len(wave.rows), wave.counts, wave.digest, restaged=previous is not None
        )

    def production(self, wave_id: str, person_ids: Iterable[str] | None = None) -> PromotionResult:
        """Promote persons of a staged wave (default: all, in input order), atomically per person."""
        in_wave = self._wave_persons(wave_id)
        if not in_wave:
            raise InputError(f"wave {wave_id}: nothing staged; run staging for this wave first")
        wanted = in_wave if person_ids is None else list(dict.fromkeys(person_ids))
        staged_set = set(in_wave)
        done = self._journal_rows(wave_id, STEP_PROMOTED)
        digest = self._journal_rows(wave_id, STEP_STAGED).get("", "")
        failed: dict[str, str] = {}
        backed_out = bool(self._journal_rows(wave_id, STEP_BACKED_OUT))
        skipped, todo = [], []
        for pid in wanted:
            if pid not in staged_set:
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
                    w, r = self._promote_group(cur, wave_id, chunk, digest)
                    written += w
                    removed += r
        return PromotionResult(wave_id, tuple(todo), tuple(skipped), failed, written, removed)

    def _promote_group(self, cur: Any, wave_id: str, group: list[str], digest: str) -> tuple[int, int]:
        """Replace these persons' production rows by their staged rows; keep what is replaced for backout.

        Set-based (a few statements per group, not per person); persons that already have a
        version in production take the per-person path that snapshots and removes it.
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
        cur.execute(q(_SNAP_DISPLACED.format(marks=marks)), (wave_id, *group))
        removed = 0
        for pid, prev_wave in prev.items():
            if prev_wave != wave_id:
                cur.execute(q(_SNAP_OWN), (wave_id, pid, pid, wave_id))
            cur.execute(q(_COUNT_DROPPED), (pid, wave_id, pid))
            removed += int(cur.fetchone()[0])
            cur.execute(q("DELETE FROM resources WHERE person_id = ?"), (pid,))
        cur.execute(q(_UPSERT_FROM_STAGING.format(marks=marks)), (wave_id, *group))
        written = int(cur.rowcount)
        cur.executemany(q(_UPSERT_PERSON), [(p, wave_id) for p in group])
        cur.executemany(q(_JOURNAL), [(wave_id, STEP_PROMOTED, p, digest) for p in group])
        return written, removed

    def verification(self, wave_id: str, person_ids: Iterable[str] | None = None) -> VerificationResult:
        """Read production back for the wave's persons and compare it with staging.

        Default persons: those the journal says this wave promoted. Always re-reads (a check must see
        the database as it is now, also after a resume); records a ``verified`` journal row.
        """
        order = self._wave_persons(wave_id)
        if not order:
            raise InputError(f"wave {wave_id}: nothing staged; run staging for this wave first")
        if person_ids is None:
            promoted = self._journal_rows(wave_id, STEP_PROMOTED)
            persons = [p for p in order if p in promoted]
        else:
            persons = list(dict.fromkeys(person_ids))
        want = set(persons)
        # Counts per (person, type) and only the differing rows come back from the database: bodies are
        # compared there, byte for byte against staging (whose hash was computed from those bytes at
        # staging time), so an edited body is caught even if its hash column is not. A body that differs
        # is re-hashed here as before, so a byte-different but canonically equal body still passes.
        # This replaced reading and hashing every production body in Python (the step's whole cost).
        staged_n: dict[str, dict[str, int]] = {p: {} for p in persons}
        prod_n: dict[str, dict[str, int]] = {p: {} for p in persons}
        for pid, rtype, cnt in self._all(_STAGED_COUNTS, (wave_id,)):
            if pid in want:
                staged_n[pid][rtype] = int(cnt)
        n = 0
        for pid, rtype, cnt in self._all(_PROD_COUNTS, (wave_id,)):
            if pid in want:
                prod_n[pid][rtype] = int(cnt)
                n += int(cnt)
        diffs: dict[str, list[tuple[tuple[str, str], str]]] = {}
        for pid, rtype, rid, h, body in self._all(_MISSING_OR_CHANGED.format(body=self._BODY_TEXT), (wave_id,)):
            if pid not in want:
                continue
            if body is None:
                diffs.setdefault(pid, []).append(((rtype, rid), "missing"))
            elif self._stored_hash(body, h) != h:
                diffs.setdefault(pid, []).append(((rtype, rid), "changed"))
        extras: dict[str, list[tuple[str, str]]] = {}
        for pid, rtype, rid in self._all(_EXTRA, (wave_id,)):
            if pid in want:
                extras.setdefault(pid, []).append((rtype, rid))
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
        rows = self._all("SELECT body FROM resources WHERE person_id = ? ORDER BY resource_type, id", (person_id,))
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
        """Canonical production state: (person_id, resource_type, id, wave_id, content hash), sorted."""
        rows = self._all(f"SELECT person_id, resource_type, id, wave_id, {self._BODY_TEXT} FROM resources")
        return sorted((p, t, i, w, self._stored_hash(b, None)) for p, t, i, w, b in rows)


def _canonical_hash_of_text(text: str) -> str:
    """Hash of a JSON text's content, whatever its key order and whitespace ('' if not JSON)."""
    try:
        return content_hash(canonical_json(orjson.loads(text)))
    except orjson.JSONDecodeError:
        return ""


def text_body_hash(text: str, staged_hash: str | None) -> str:
    """Hash of a body stored as text: the bytes as stored first (fast path), canonicalised if different."""
    h = content_hash(text.encode())
    if h == staged_hash:
        return h
    return _canonical_hash_of_text(text)


def canonical_text_hash(text: str, staged_hash: str | None = None) -> str:
    """Hash of a body whose stored text is never canonical (PostgreSQL's jsonb output)."""
    return _canonical_hash_of_text(text)
