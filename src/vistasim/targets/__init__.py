"""Where data mode loads: an SQLite file (default, embedded) or a PostgreSQL database.

    target = open_target("sqlite:///out.db")
    target.staging("wave-1", bundles)        # whole wave, one transaction
    target.production("wave-1")              # each person atomically; idempotent upserts
    result = target.verification("wave-1")   # per-person pass/fail, counts, mismatches
    target.backout("wave-1")                 # remove the wave, restore earlier versions

Every step is journalled with its data, so re-running after a crash resumes (see ``load_wave``).
"""

from __future__ import annotations

from .base import (
    ICN_SYSTEM,
    BackoutResult,
    BundleInput,
    CommitHook,
    JournalEntry,
    Mismatch,
    PersonCheck,
    PromotionResult,
    StagingResult,
    Target,
    VerificationResult,
    canonical_json,
    content_hash,
    person_id_of,
)
from .loader import WaveLoad, load_wave
from .sqlite import SQLiteTarget
from .url import open_target

__all__ = [
    "ICN_SYSTEM",
    "BackoutResult",
    "BundleInput",
    "CommitHook",
    "JournalEntry",
    "Mismatch",
    "PersonCheck",
    "PostgresTarget",
    "PromotionResult",
    "SQLiteTarget",
    "StagingResult",
    "Target",
    "VerificationResult",
    "WaveLoad",
    "canonical_json",
    "content_hash",
    "load_wave",
    "open_target",
    "person_id_of",
]


def __getattr__(name: str) -> object:
    # PostgresTarget is importable without psycopg; psycopg itself is only needed to connect.
    if name == "PostgresTarget":
        from .postgres import PostgresTarget

        return PostgresTarget
    raise AttributeError(name)
