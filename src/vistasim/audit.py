"""The audit trail: one row per attempt of a step, held in columns (NumPy arrays), written as JSON Lines.

Rows carry ids, steps and outcomes only (simulated time, batch, patient id, stage, substage, attempt,
outcome, error type): never names, SSNs or birth dates. Ids that come from a real export can be
pseudonymised on write with a keyed hash (:func:`pseudonymise`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import numpy as np

from .model import ERROR_TYPES, step_names

OUTCOMES = ("success", "retry", "failed")  # retry: a failed attempt that was retried
_STEPS = step_names()


def pseudonymise(patient_id: str, key: bytes) -> str:
    """A stable keyed pseudonym for an id taken from a real export (HMAC-SHA256, 16 hex digits)."""
    return "p-" + hmac.new(key, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


@dataclass
class AuditTrail:
    """Columns of attempt rows. ``time`` is simulated seconds after ``origin``."""

    origin: datetime
    patient_ids: list[str] = field(default_factory=list)  # lookup for the patient column
    batch_ids: list[str] = field(default_factory=list)  # lookup for the batch column
    time: list[np.ndarray] = field(default_factory=list)
    batch: list[np.ndarray] = field(default_factory=list)
    patient: list[np.ndarray] = field(default_factory=list)
    step: list[np.ndarray] = field(default_factory=list)
    attempt: list[np.ndarray] = field(default_factory=list)
    outcome: list[np.ndarray] = field(default_factory=list)
    error: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return int(sum(a.size for a in self.time))

    def append(self, time, batch, patient, step, attempt, outcome, error) -> None:  # type: ignore[no-untyped-def]
        self.time.append(np.asarray(time, dtype=np.float64))
        self.batch.append(np.asarray(batch, dtype=np.int32))
        self.patient.append(np.asarray(patient, dtype=np.int64))
        self.step.append(np.asarray(step, dtype=np.int8))
        self.attempt.append(np.asarray(attempt, dtype=np.int8))
        self.outcome.append(np.asarray(outcome, dtype=np.int8))
        self.error.append(np.asarray(error, dtype=np.int8))

    def columns(self) -> dict[str, np.ndarray]:
        """All rows in chronological order (ties by patient, step, attempt)."""

        def cat(parts: list[np.ndarray], dtype) -> np.ndarray:  # type: ignore[no-untyped-def]
            return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

        cols = {
            "time": cat(self.time, np.float64),
            "batch": cat(self.batch, np.int32),
            "patient": cat(self.patient, np.int64),
            "step": cat(self.step, np.int8),
            "attempt": cat(self.attempt, np.int8),
            "outcome": cat(self.outcome, np.int8),
            "error": cat(self.error, np.int8),
        }
        order = np.lexsort((cols["attempt"], cols["step"], cols["patient"], cols["time"]))
        return {k: v[order] for k, v in cols.items()}

    def iter_records(self, pseudonym_key: bytes | None = None) -> Iterator[dict]:
        cols = self.columns()
        ids: Sequence[str] = self.patient_ids
        if pseudonym_key is not None:
            ids = [pseudonymise(p, pseudonym_key) for p in ids]
        for t, b, p, s, a, o, e in zip(
            *(cols[k].tolist() for k in ("time", "batch", "patient", "step", "attempt", "outcome", "error"))
        ):
            stage, sub = _STEPS[s]
            yield {
                "time": _iso(self.origin, t),
                "batch_id": self.batch_ids[b],
                "patient_id": ids[p],
                "stage": stage,
                "substage": sub,
                "attempt": a,
                "outcome": OUTCOMES[o],
                "error_type": ERROR_TYPES[e] if e >= 0 else None,
            }

    def write_jsonl(self, out: IO[str], pseudonym_key: bytes | None = None) -> int:
        """Write every row as one JSON object per line; returns the number of rows."""
        import orjson

        n = 0
        buf: list[bytes] = []
        for rec in self.iter_records(pseudonym_key):
            buf.append(orjson.dumps(rec))
            n += 1
            if len(buf) >= 8192:
                out.write(b"\n".join(buf).decode() + "\n")
                buf.clear()
        if buf:
            out.write(b"\n".join(buf).decode() + "\n")
        return n

    def save(self, path: str | Path, pseudonym_key: bytes | None = None) -> int:
        """Write the trail to ``path`` atomically (a temporary file renamed at the end)."""
        p = Path(path)
        tmp = p.with_name(p.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            n = self.write_jsonl(fh, pseudonym_key)
        os.replace(tmp, p)
        return n


def _iso(origin: datetime, seconds: float) -> str:
    return (origin + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
