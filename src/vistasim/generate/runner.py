"""Generate a population straight to disk with bounded memory, optionally over worker processes.

With several stations and workers, each worker owns whole stations (generates and writes them), so
files are byte-identical whatever the worker count; with one station, workers build blocks and the
parent writes them in order. Either way only a few blocks are in memory at once.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..model import PatientRecord
from .api import DEFAULT_CHUNK, Block, _validate, block_payloads, materialise, plan_blocks
from .defects import NO_DEFECTS, DefectConfig, DefectEntry
from .export import StationOutputs, write_answer_key, write_manifest
from .layout import Layout
from .population import build_block, gc_paused

Progress = Callable[[int], None]


@dataclass
class RunSummary:
    """What a generation run wrote."""

    patients: int
    stations: dict[str, int]
    defects: int
    records_by_domain: dict[str, int] = field(default_factory=dict)


_DOMAINS = ("problems", "allergies", "prescriptions", "vitals", "visits", "orders", "flags")


def _write(outs: StationOutputs, recs: list[PatientRecord], keys: list[list[DefectEntry]],
           key: list[DefectEntry], counts: dict[str, int]) -> None:
    outs.add_block(recs)
    for k in keys:
        if k:
            key.extend(k)
    for d in _DOMAINS:
        counts[d] += sum(map(len, map(attrgetter(d), recs)))


def _station_job(args: tuple[int, Layout, DefectConfig, int, str, tuple[str, ...], int]
                 ) -> tuple[int, list[DefectEntry], dict[str, int]]:
    seed, layout, cfg, si, out, formats, chunk = args
    station = layout.stations[si]
    outs = StationOutputs(Path(out), station, formats)
    key: list[DefectEntry] = []
    counts = dict.fromkeys(_DOMAINS, 0)
    for b in plan_blocks(layout, chunk):
        if b.station_index != si:
            continue
        # GC paused over build + write: the block's records are freed before any collection sees them
        with gc_paused():
            recs, keys = build_block(seed, layout, si, np.arange(b.start, b.stop, dtype=np.int64), cfg)
            _write(outs, recs, keys, key, counts)
            del recs, keys
    outs.close()
    return si, key, counts


def generate_to_disk(out_dir: Path, n: int, seed: int = 0, sites: int = 1,
                     defects: DefectConfig = NO_DEFECTS, formats: Sequence[str] = ("zwr",),
                     workers: int = 1, chunk: int = DEFAULT_CHUNK,
                     progress: Progress | None = None) -> RunSummary:
    """Generate ``n`` patients over ``sites`` stations into ``out_dir`` in the given formats."""
    _validate(n, seed, workers)
    if not formats:
        raise ConfigError("no output format: choose at least one of zwr, csv, json")
    out_dir = Path(out_dir)
    layout = Layout.build(int(n), int(sites))
    fmts = tuple(formats)
    keys_by_station: dict[int, list[DefectEntry]] = {}
    totals = dict.fromkeys(_DOMAINS, 0)
    if workers > 1 and len(layout.stations) > 1:
        jobs = [(int(seed), layout, defects, si, str(out_dir), fmts, chunk)
                for si in range(len(layout.stations)) if layout.counts[si] > 0]
        # biggest stations first so the pool stays busy to the end
        jobs.sort(key=lambda j: -layout.counts[j[3]])
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ctx.Pool(min(workers, len(jobs))) as pool:
            for si, key, counts in pool.imap_unordered(_station_job, jobs):
                keys_by_station[si] = key
                for d in _DOMAINS:
                    totals[d] += counts[d]
                if progress:
                    progress(layout.counts[si])
    else:
        current: StationOutputs | None = None
        current_si = -1
        blocks = plan_blocks(layout, chunk)
        for b, payload in zip(blocks, block_payloads(layout, int(seed), defects, workers, chunk)):
            if b.station_index != current_si:
                if current is not None:
                    current.close()
                current_si = b.station_index
                current = StationOutputs(out_dir, layout.stations[current_si], fmts)
                keys_by_station[current_si] = []
            assert current is not None
            # GC paused over build (or unpickle) + write: the records are freed before any collection sees them
            with gc_paused():
                recs, keys = materialise(payload)
                _write(current, recs, keys, keys_by_station[current_si], totals)
                count = len(recs)
                del recs, keys, payload
            if progress:
                progress(count)
        if current is not None:
            current.close()
    entries = [e for si in sorted(keys_by_station) for e in keys_by_station[si]]
    out_dir.mkdir(parents=True, exist_ok=True)
    count = write_answer_key(out_dir / "answer_key.csv", entries)
    stations = dict(zip(layout.stations, layout.counts))
    write_manifest(out_dir / "manifest.json", {
        "generator": "vistasim.generate", "seed": int(seed), "patients": int(n), "sites": int(sites),
        "defect_rate": defects.rate, "defect_kinds": list(defects.kinds), "formats": list(fmts),
        "stations": stations, "multi_site_share": layout.share, "answer_key_rows": count,
        "records_by_domain": totals,
    })
    return RunSummary(int(n), stations, count, totals)


__all__ = ["RunSummary", "generate_to_disk", "Block"]
