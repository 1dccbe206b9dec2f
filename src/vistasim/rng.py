"""Keyed, counter-based random draws.

Every random number in vistasim is a pure function of a key: (seed, stream, entity key, step,
attempt, replication) -> uniform in [0, 1). Nothing depends on call order, batch grouping or
worker, so a patient's outcome is the same whichever batch it is in and however the work is split.
The mixer is SplitMix64's finaliser applied along the key (vectorised with NumPy, wrapping uint64
arithmetic); its output passes BigCrush as a counter-based generator.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_TWO53 = 1.0 / float(1 << 53)

KeyPart = int | np.ndarray


def _mix(x: np.ndarray) -> np.ndarray:
    z = x + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def name_key(name: str) -> int:
    """A stable 64-bit key for a name (stream names, batch ids): independent of PYTHONHASHSEED."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")


def string_keys(values: Sequence[str]) -> np.ndarray:
    """Stable 64-bit keys for many strings at once (vectorised; used for ``station:DFN`` ids).

    A string's key depends on its own bytes only, never on the other strings of the call: words past
    the end of a string are skipped, so padding to the longest id changes nothing.
    """
    if len(values) == 0:
        return np.zeros(0, dtype=np.uint64)
    raw = np.asarray(values, dtype=np.bytes_)
    width = -(-raw.dtype.itemsize // 8) * 8
    if raw.dtype.itemsize != width:
        raw = raw.astype(f"S{width}")
    lengths = np.char.str_len(raw).astype(np.uint64)
    n_words = (lengths + np.uint64(7)) // np.uint64(8)
    words = raw.view(np.uint64).reshape(len(values), width // 8)
    with np.errstate(over="ignore"):
        h = _mix(lengths ^ np.uint64(0x5851F42D4C957F2D))
        for j in range(words.shape[1]):
            h = np.where(n_words > np.uint64(j), _mix(h ^ words[:, j]), h)
    return h


def hash_keys(*parts: KeyPart) -> np.ndarray:
    """Fold key parts (ints or uint64 arrays, broadcast together) into 64-bit hashes."""
    with np.errstate(over="ignore"):
        h = np.asarray(np.uint64(0x243F6A8885A308D3))
        for p in parts:
            arr = np.asarray(p)
            if arr.dtype != np.uint64:
                arr = (
                    (np.asarray(p, dtype=np.int64) & 0x7FFFFFFFFFFFFFFF).astype(np.uint64)
                    if arr.dtype.kind in "iu"
                    else np.asarray(p, dtype=np.uint64)
                )
            h = _mix(h ^ arr)
        return np.asarray(h, dtype=np.uint64)


def uniform(*parts: KeyPart) -> np.ndarray:
    """Uniform draws in [0, 1) for the given key parts (53 bits of precision)."""
    return (hash_keys(*parts) >> np.uint64(11)).astype(np.float64) * _TWO53


class KeyedRNG:
    """Draws keyed by (seed, stream, ...). Holds no state but the seed: cheap to copy and to ship to workers."""

    def __init__(self, seed: int | None) -> None:
        self.seed = 0 if seed is None else int(seed)
        self._stream_cache: dict[str, int] = {}

    def _stream(self, stream: str) -> int:
        key = self._stream_cache.get(stream)
        if key is None:
            key = self._stream_cache[stream] = name_key(stream)
        return key

    def uniform(self, stream: str, *parts: KeyPart) -> np.ndarray:
        return uniform(self.seed, self._stream(stream), *parts)

    def choice(self, stream: str, weights: Sequence[float], *parts: KeyPart) -> np.ndarray:
        """Index draws from normalised ``weights`` (vectorised inverse-CDF)."""
        cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
        cdf /= cdf[-1]
        u = self.uniform(stream, *parts)
        return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)

    def generator(self, stream: str, *parts: int) -> np.random.Generator:
        """A NumPy Generator seeded from the key: for code that needs many draws for one entity."""
        h = int(hash_keys(self.seed, self._stream(stream), *parts))
        return np.random.Generator(np.random.PCG64(h))


def spawn_seeds(seed: int, stream: str, keys: Iterable[int]) -> list[int]:
    """Per-entity 64-bit seeds drawn from the master seed up front (Synthea's habit)."""
    k = np.fromiter(keys, dtype=np.int64)
    return [int(x) for x in hash_keys(seed, name_key(stream), k)]
