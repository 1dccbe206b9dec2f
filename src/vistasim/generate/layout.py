"""Where patients live: which VA sites a population uses, how many records each holds, and who is who.

A *record* is one VistA patient entry, keyed ``(station, DFN)``; a *person* is an ICN. Most records
are a person's only record (their *home* record). A share of records (``multi_site.share`` in
``population.json``, about 7%) are a second record of a person whose home record is at another
station, mostly in the same VISN: same ICN, SSN, name and history, a different DFN.

Which person a record belongs to is a pure function of (seed, layout, station, DFN): for a record at
station i chosen to be shared with station j, the home DFN is an affine bijection of its DFN modulo
max(n_i, n_j), keyed by (seed, i, j). Being a bijection, two records of one station never map to the
same person, so multi-site sharing never creates a duplicate inside a station (duplicates are a
separate, recorded defect).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import ConfigError
from ..rng import hash_keys, name_key, uniform
from .tables import Site, all_sites, cdf, load_json


def select_sites(k: int) -> tuple[Site, ...]:
    """``k`` sites spread over the VISNs: VISNs taken round-robin, each VISN's largest sites first.

    ``k`` = 1 gives the largest VistA site of VISN 1's round; any ``k`` up to the table size works.
    Sites already on Oracle Health are used last (they are what the migration has already moved).
    """
    sites = all_sites()
    if not 1 <= k <= len(sites):
        raise ConfigError(f"sites={k} is out of range: choose 1..{len(sites)} (the VA site table has {len(sites)})")
    if k == 1:
        return (next(s for s in sites if s.station == "528"),)
    by_visn: dict[int, list[Site]] = {}
    for s in sorted(sites, key=lambda s: (s.ehr != "vista", -s.size, s.station)):
        by_visn.setdefault(s.visn, []).append(s)
    order: list[Site] = []
    queues = [by_visn[v] for v in sorted(by_visn)]
    while len(order) < k:
        for q in queues:
            if q and len(order) < k:
                order.append(q.pop(0))
    return tuple(order)


def apportion(n: int, weights: list[float]) -> list[int]:
    """Split ``n`` into integer counts proportional to ``weights`` (largest remainder; deterministic)."""
    total = float(sum(weights))
    raw = [n * w / total for w in weights]
    counts = [int(math.floor(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


@dataclass(frozen=True)
class Layout:
    """The stations of a population, their record counts, and the multi-site sharing rule."""

    stations: tuple[str, ...]
    counts: tuple[int, ...]
    visns: tuple[int, ...]
    sizes: tuple[int, ...]
    share: float = 0.0
    same_visn_share: float = 0.7
    standalone_ordinals: tuple[int, ...] | None = None  # set for generate_patient's open-ended layout

    @staticmethod
    def build(n: int, sites: int = 1, multi_site: bool = True) -> Layout:
        if n < 0:
            raise ConfigError(f"patients={n} must be >= 0")
        chosen = select_sites(sites)
        counts = apportion(n, [s.size for s in chosen])
        ms = load_json("population.json")["multi_site"]
        share = float(ms["share"]) if (multi_site and len(chosen) > 1) else 0.0
        return Layout(tuple(s.station for s in chosen), tuple(counts), tuple(s.visn for s in chosen),
                      tuple(s.size for s in chosen), share, float(ms["same_visn_share"]))

    @staticmethod
    def standalone(station: str) -> Layout:
        """A one-station layout of unbounded size (for :func:`generate_patient`)."""
        sites = all_sites()
        ordinal = next((i for i, s in enumerate(sites) if s.station == station), None)
        if ordinal is None:
            known = ", ".join(s.station for s in sites[:6])
            raise ConfigError(f"station {station!r} is not in the VA site table: use one of {known}, ... (see sites.csv)")
        s = sites[ordinal]
        return Layout((station,), (0,), (s.visn,), (s.size,), 0.0, 0.7, (ordinal,))

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        out, acc = [], 0
        for c in self.counts:
            out.append(acc)
            acc += c
        return tuple(out)

    @cached_property
    def station_keys(self) -> np.ndarray:
        return np.array([name_key(s) for s in self.stations], dtype=np.uint64)

    @cached_property
    def partner_cdfs(self) -> np.ndarray:
        """Row i: CDF over stations j != i for the home site of a shared record at i."""
        k = len(self.stations)
        w = np.zeros((k, k))
        for i in range(k):
            same = [j for j in range(k) if j != i and self.visns[j] == self.visns[i]]
            other = [j for j in range(k) if j != i and self.visns[j] != self.visns[i]]
            for group, mass in ((same, self.same_visn_share), (other, 1.0 - self.same_visn_share)):
                tot = sum(self.sizes[j] for j in group)
                for j in group:
                    w[i, j] = mass * self.sizes[j] / tot if tot else 0.0
            if w[i].sum() == 0 and k > 1:
                w[i] = [0.0 if j == i else 1.0 for j in range(k)]
        if k == 1:
            w[0, 0] = 1.0
        return cdf(w)

    def global_index(self, station_index: np.ndarray, dfn: np.ndarray) -> np.ndarray:
        """Global person index of home records (unique over the population)."""
        if self.standalone_ordinals is not None:
            from .identifiers import STANDALONE_STRIDE

            if len(dfn) and int(np.max(dfn)) > STANDALONE_STRIDE:
                raise ConfigError(f"dfn must be <= {STANDALONE_STRIDE} for a standalone patient")
            ords = np.asarray(self.standalone_ordinals, dtype=np.int64)[station_index]
            return ords * STANDALONE_STRIDE + dfn - 1
        offs = np.asarray(self.offsets, dtype=np.int64)[station_index]
        return offs + dfn - 1

    def is_shared(self, seed: int, station_index: np.ndarray, dfn: np.ndarray) -> np.ndarray:
        """Whether each record is (a candidate for) a second-site record of another station's person."""
        if self.share <= 0.0:
            return np.zeros(len(dfn), dtype=bool)
        return uniform(seed, name_key("multi-site"), self.station_keys[station_index], dfn) < self.share

    def _affine(self, seed: int, i: np.ndarray, j: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = hash_keys(seed, name_key("multi-site-map"), i, j)
        a = (h % np.maximum(m, 1).astype(np.uint64)).astype(np.int64)
        b = ((h >> np.uint64(32)) % np.maximum(m, 1).astype(np.uint64)).astype(np.int64)
        # make a coprime with m: step a up until gcd(a, m) == 1 (vectorised, a few rounds suffice)
        a = np.where(a == 0, 1, a)
        for _ in range(64):
            bad = np.gcd(a, m) != 1
            if not bad.any():
                break
            a = np.where(bad, a % m + 1, a)
        return a, b

    def persons(self, seed: int, station_index: np.ndarray, dfn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(home station index, home DFN) of the person behind each record."""
        si = np.asarray(station_index, dtype=np.int64)
        d = np.asarray(dfn, dtype=np.int64)
        home_s, home_d = si.copy(), d.copy()
        shared = self.is_shared(seed, si, d)
        if not shared.any():
            return home_s, home_d
        idx = np.nonzero(shared)[0]
        u = uniform(seed, name_key("multi-site-partner"), self.station_keys[si[idx]], d[idx])
        j = np.minimum((self.partner_cdfs[si[idx]] <= u[:, None]).sum(axis=1), len(self.stations) - 1)
        counts = np.asarray(self.counts, dtype=np.int64)
        m = np.maximum(counts[si[idx]], counts[j])
        a, b = self._affine(seed, si[idx], j, m)
        h = (a * (d[idx] - 1) % m + b) % m + 1
        ok = (j != si[idx]) & (h <= counts[j])
        # the target must itself be a home record, else this record stays a home record
        ok &= ~self.is_shared(seed, j, h)
        home_s[idx[ok]] = j[ok]
        home_d[idx[ok]] = h[ok]
        return home_s, home_d
