"""Pseudonyms for the identifiers a data-mode run writes about a real export.

The run folder (audit trail, answer key, reconciliation) names persons by ICN and records by
``station:DFN``. For the generator's synthetic veterans these are fake; for a real VistA export an
ICN is a unique patient identifier, so it must not leave the target in clear text. The target itself
holds the migrated records, as Oracle Health would.

``data_mode.pseudonymise`` decides: ``auto`` (the default) pseudonymises unless the source carries
the generator's ``manifest.json``; ``always`` and ``never`` force it. A pseudonym is an HMAC-SHA256 of
the id (:func:`vistasim.audit.pseudonymise`), so the same id always gets the same pseudonym within a
run and the reports still join person by person. The key comes from ``VISTASIM_PSEUDONYM_KEY`` (set it
to link runs over different extracts), else it is derived from the seed and the source's own SSNs and
names: deterministic for the same source and seed, and not computable from the run folder alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..audit import pseudonymise
from ..model import PatientRecord

KEY_ENV = "VISTASIM_PSEUDONYM_KEY"
MODES = ("auto", "always", "never")
GENERATOR = "vistasim.generate"
# An ICN (10 digits, V, 6-digit checksum) or a station:DFN record id, inside any longer string
# ("Patient/<ICN>-split", "person-split-...").
_ID_RE = re.compile(r"(?<![0-9A-Za-z])(?:\d{10}V\d{6}|\d{3}[A-Z0-9]{0,2}:\d+)(?![0-9])")


def is_generated_source(source: Path) -> bool:
    """True when the source sits beside the generator's manifest.json (the population is synthetic)."""
    folder = source if source.is_dir() else source.parent
    for base in (folder, folder.parent):
        p = base / "manifest.json"
        if p.is_file():
            try:
                return json.loads(p.read_text(encoding="utf-8")).get("generator") == GENERATOR
            except (OSError, ValueError, AttributeError):
                return False
    return False


def should_pseudonymise(mode: str, source: Path) -> bool:
    if mode == "always":
        return True
    if mode == "never":
        return False
    return not is_generated_source(source)


def pseudonym_key(records: Sequence[PatientRecord], seed: int) -> tuple[bytes, str]:
    """(key, where it came from): the environment variable, else derived from seed + source secrets."""
    env = os.environ.get(KEY_ENV)
    if env:
        return env.encode("utf-8"), "env"
    h = hashlib.blake2b(key=b"vistasim-pseudonym", digest_size=32)
    h.update(str(int(seed)).encode())
    h.update("\x1e".join(f"{r.patient_id}\x1f{r.ssn}\x1f{r.name}\x1f{r.dob}" for r in records).encode("utf-8"))
    return h.digest(), "derived"


class Pseudonymiser:
    """Rewrites ids wherever they appear: a whole string, a dict key, or inside a longer string such
    as ``Patient/<ICN>`` (anything shaped like an ICN or a station:DFN id, known or not)."""

    def __init__(self, key: bytes, ids: Iterable[str] = ()) -> None:
        self.key = key
        self.map = {i: pseudonymise(i, key) for i in ids if i}

    def id(self, value: str) -> str:
        m = self.map.get(value)
        if m is None:
            m = self.map[value] = pseudonymise(value, self.key)
        return m

    def _str(self, s: str) -> str:
        m = self.map.get(s)
        if m is not None:
            return m
        return _ID_RE.sub(lambda mo: self.id(mo.group()), s)

    def scrub(self, obj: Any) -> Any:
        """A copy of a JSON-like object with every id replaced."""
        if isinstance(obj, str):
            return self._str(obj)
        if isinstance(obj, dict):
            return {self._str(k) if isinstance(k, str) else k: self.scrub(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.scrub(v) for v in obj]
        return obj
