"""SQLite load target: the embedded default (``sqlite:///out.db``, ``sqlite:///:memory:``).

A person's resources are one canonical JSON array, stored once, in staging (see ``_sql``), LZ4-compressed
(:func:`encode_body`): a fifth of the bytes (about 3.7 of 18 KB per generated person), and writing them is
most of staging's cost. bench/targets.py --mapped 20000 --waves 20 --prepared, CPU seconds: staging
1.15 -> 0.71, verification 0.63 -> 0.49, all three steps 3.81 -> 3.08; the file shrinks as much. A
body stored as JSON text (by hand, or an edit) is read as such. The file runs
in WAL mode with ``synchronous=NORMAL``: a commit survives the process being killed (what resume
needs); only a power loss can drop the last commits, never corrupt the file, which is the right
trade for a rehearsal target. Transactions are explicit (``BEGIN IMMEDIATE`` ... ``COMMIT``) so the
write lock is taken up front and a wave is never half-written.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lz4.block
import orjson

from ..errors import InputError, OutputError
from ._sql import SQLTarget, check_contiguous
from .base import DEFAULT_PERSONS_PER_COMMIT, CommitHook, StagedWave

# sid NULL: SQLite gives each new row max(sid) + 1, so a wave's rows get consecutive sids in row order.
_INSERT_STAGING = "INSERT INTO staging (wave_id, person_id, n, types, keys, hashes, body) VALUES (?, ?, ?, ?, ?, ?, ?)"


_LZ4_MAX_RATIO = 256  # LZ4 never expands more than ~255:1: a larger size header is damage


def encode_body(doc: bytes) -> bytes:
    """A staged document as the SQLite target stores it: LZ4 block format, its length in front."""
    return lz4.block.compress(doc)  # type: ignore[no-any-return]


def decode_body(body: bytes | str) -> bytes:
    """The document's bytes back from :func:`encode_body` (text is taken as the JSON itself). Raises
    ValueError for a blob that does not decode (damaged), also when its size header is implausible
    (so damage never makes it allocate gigabytes)."""
    if isinstance(body, str):
        return body.encode()
    if not isinstance(body, bytes) or len(body) < 4:
        raise ValueError("not a stored document")
    if int.from_bytes(body[:4], "little") > _LZ4_MAX_RATIO * len(body) + 64:
        raise ValueError("damaged document (size header)")
    try:
        return lz4.block.decompress(body)  # type: ignore[no-any-return]
    except lz4.block.LZ4BlockError as exc:
        raise ValueError(f"damaged document ({exc})") from None


class SQLiteTarget(SQLTarget):
    """Load target in an SQLite file (or in memory). See :class:`vistasim.targets.base.Target`."""

    _LAYOUT = {"body": "lz4-block JSON"}
    _LAYOUT_BEFORE = {**SQLTarget._LAYOUT_BEFORE, "body": "JSON text"}

    _DDL_TYPES = {
        "json": "TEXT",
        "doc": "BLOB",
        "sid": "INTEGER PRIMARY KEY",  # the rowid itself
        "without_rowid": " WITHOUT ROWID",
    }
    _EACH = "json_each(s.keys) j"
    _KEY_TYPE = "substr(rkey, 1, instr(rkey, '/') - 1)"

    def __init__(
        self,
        path: str,
        *,
        url: str | None = None,
        persons_per_commit: int = DEFAULT_PERSONS_PER_COMMIT,
        on_commit: CommitHook | None = None,
    ) -> None:
        super().__init__(url or f"sqlite:///{path}", persons_per_commit=persons_per_commit, on_commit=on_commit)
        self.path = path
        if path != ":memory:":
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise InputError(f"{self.url}: folder {parent} does not exist; create it or choose another path")
        try:
            # isolation_level=None: no implicit transactions; we issue BEGIN/COMMIT ourselves.
            self._conn = sqlite3.connect(path, isolation_level=None)
            self._conn.execute("PRAGMA busy_timeout = 10000")
            # 16 KiB pages for a new file (before WAL, which fixes the size; an existing file keeps its own):
            # bodies are ~700 bytes of JSON. bench/datamode.py, load steps (staging + production +
            # verification): 100,000 patients 74 s vs 89 s with 4 KiB pages; 20,000 patients 14.2 s vs
            # 13.6 s (production pays for whole 16 KiB pages in the WAL, staging gains more at scale).
            # Re-measured with the write-once layout, whole data mode at 100,000 patients: 794 patients
            # per CPU-s with 16 KiB pages, 710 with 4 KiB, 682 with 32 KiB (one run each). With a row
            # per person (bodies of ~20 KB), production of 20,000 mapped persons, best of 3: 0.59-0.63
            # CPU-s with 16 KiB, 0.68-0.70 with 8 KiB, 0.81 with 4 KiB, 1.0 with 64 KiB; staging varies
            # more between runs (kernel time) than between sizes. WAL vs a rollback journal (TRUNCATE)
            # and mmap measured no clear difference either.
            self._conn.execute("PRAGMA page_size = 16384")
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            # Checkpoint every 1,000 pages (SQLite's default): a smaller WAL keeps its index and the
            # pages production re-reads hot. Staging + production + verification of 20,000 mapped
            # persons in 1,000-person waves, 3 runs each: 12.4 vs 13.3 CPU-s with 16,384 pages
            # (production 4.3 vs 5.0 s).
            self._conn.execute("PRAGMA wal_autocheckpoint = 1000")
            self._conn.execute("PRAGMA temp_store = MEMORY")
            self._conn.execute("PRAGMA cache_size = -65536")
            self._create_tables(self._conn.execute)
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.url}: cannot open as an SQLite database ({exc}); check the path") from exc

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Any]:
        cur = self._conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise OutputError(f"{self.url}: cannot start a write ({exc}); is another process holding it?") from exc
        try:
            yield cur
        except BaseException:
            self._conn.rollback()
            raise
        try:
            cur.execute("COMMIT")
        except sqlite3.DatabaseError as exc:  # pragma: no cover - disk full, I/O error
            self._conn.rollback()
            raise OutputError(f"{self.url}: commit failed ({exc}); check disk space and permissions") from exc

    def _cursor(self) -> Any:
        return self._conn.cursor()

    def _write_staging(self, cur: Any, wave: StagedWave, first_sid: int) -> list[Any] | None:
        wid = wave.wave_id
        stored = list(map(encode_body, [p[7] for p in wave.persons]))
        rows = [(wid, p[0], len(p[3]), p[4], p[5], p[6], b) for p, b in zip(wave.persons, stored)]
        try:
            cur.executemany(_INSERT_STAGING, rows)
        except sqlite3.IntegrityError as exc:
            raise InputError(f"wave {wave.wave_id}: staging rejected a row ({exc}); nothing was staged") from exc
        cur.execute("SELECT MAX(sid) FROM staging")
        check_contiguous(self.url, first_sid, len(rows), cur.fetchone()[0])
        return stored

    def _table_names(self, execute: Any) -> set[str]:
        return {r[0] for r in execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}

    def _load_doc(self, body: Any) -> list[Any]:
        doc = orjson.loads(decode_body(body))
        if not isinstance(doc, list):
            raise ValueError("not a JSON array")
        return doc

    def _load_json(self, value: Any) -> Any:
        return orjson.loads(value)

    def _doc_bytes(self, body: Any) -> bytes:
        return decode_body(body)

    def close(self) -> None:
        self._conn.close()
