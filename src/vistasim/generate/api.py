"""Public entry points: one patient, a list, a stream, an answer key; optional worker processes.

Every record is a pure function of (seed, layout, station, DFN), where the layout (which stations,
how many records each) follows from (n, sites). Blocks of DFNs are built independently, so a run
with any number of workers produces exactly the same records in the same (station, DFN) order.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import pickle
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..model import PatientRecord
from .codec import pack, unpack
from .defects import DefectConfig, DefectEntry
from .layout import Layout
from .population import build_block, gc_paused

DEFAULT_SEED = 0
DEFAULT_STATION = "528"
DEFAULT_CHUNK = 2048
_standalone_dfn = itertools.count(1)  # DFNs for successive generate_patient() calls (no random state)


def generate_patient(seed: int | None = None, station: str = DEFAULT_STATION, dfn: int | None = None) -> PatientRecord:
    """One synthetic patient record at ``station``.

    With no arguments, successive calls give distinct patients: the DFN comes from a module-level
    counter (1, 2, 3, ...) and the seed defaults to ``DEFAULT_SEED``; the record itself is always a
    pure function of (seed, station, dfn), so ``generate_patient(0, "528", 7)`` is reproducible.
    """
    seed = DEFAULT_SEED if seed is None else int(seed)
    if dfn is None:
        dfn = next(_standalone_dfn)
    if int(dfn) < 1:
        raise ConfigError(f"dfn={dfn} must be a positive integer (DFNs start at 1)")
    layout = Layout.standalone(str(station))
    records, _ = build_block(seed, layout, 0, np.array([int(dfn)], dtype=np.int64))
    return records[0]


@dataclass(frozen=True)
class Block:
    """A unit of work: DFNs ``start``..``stop``-1 of one station of a layout."""

    station_index: int
    start: int
    stop: int


def plan_blocks(layout: Layout, chunk: int = DEFAULT_CHUNK) -> list[Block]:
    """The blocks of a population in (station, DFN) order."""
    if chunk < 1:
        raise ConfigError(f"chunk={chunk} must be >= 1")
    out = []
    for si, count in enumerate(layout.counts):
        for start in range(1, count + 1, chunk):
            out.append(Block(si, start, min(start + chunk, count + 1)))
    return out


def _validate(n: int, seed: int, workers: int) -> None:
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"n={n!r} must be a whole number of patients >= 0")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed={seed!r} must be an integer >= 0")
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ConfigError(f"workers={workers!r} must be an integer >= 1")


_Job = tuple[int, Layout, DefectConfig, Block]


def _run_block(job: _Job) -> tuple[list[PatientRecord], list[list[DefectEntry]]]:
    seed, layout, cfg, b = job
    return build_block(seed, layout, b.station_index, np.arange(b.start, b.stop, dtype=np.int64), cfg)


def _run_block_packed(job: _Job) -> bytes:
    """Worker side: the block pickled as flat tuples (which pickle ~2x faster than dataclasses).

    The worker pickles it itself, so the pool ships opaque bytes: the parent's result thread then makes
    no objects, and the parent unpickles inside :func:`_unpack_block` with the cyclic GC paused.
    """
    with gc_paused():
        records, keys = _run_block(job)
        return pickle.dumps(([pack(r) for r in records], keys), protocol=pickle.HIGHEST_PROTOCOL)


def materialise(payload: _Job | bytes) -> tuple[list[PatientRecord], list[list[DefectEntry]]]:
    """The records of a payload from :func:`block_payloads`: built here (a job) or unpickled (a worker's bytes).

    Call it with the cyclic GC paused (:func:`vistasim.generate.population.gc_paused`) and drop the
    records before resuming it, and no collection ever walks them.
    """
    if isinstance(payload, bytes):
        packed, keys = pickle.loads(payload)
        return [unpack(t) for t in packed], keys
    return _run_block(payload)


def block_payloads(layout: Layout, seed: int, cfg: DefectConfig, workers: int = 1, chunk: int = DEFAULT_CHUNK,
                   ) -> Iterator[_Job | bytes]:
    """One payload per block of :func:`plan_blocks`, in order: a job to build (1 worker) or a worker's bytes."""
    jobs: Iterable[_Job] = ((int(seed), layout, cfg, b) for b in plan_blocks(layout, chunk))
    if workers == 1:
        yield from jobs
        return
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(workers) as pool:
        # imap keeps order; a small chunksize keeps at most a few blocks in flight per worker
        yield from pool.imap(_run_block_packed, jobs, chunksize=1)


def iter_blocks(n: int, seed: int = 0, sites: int = 1, defects: float | DefectConfig = 0.0,
                workers: int = 1, chunk: int = DEFAULT_CHUNK, multi_site: bool = True,
                ) -> Iterator[tuple[list[PatientRecord], list[list[DefectEntry]]]]:
    """Blocks of (records, answer-key entries per record), in (station, DFN) order; memory stays bounded.

    With ``workers`` > 1 the blocks are built in worker processes and rebuilt here from pickled tuples:
    making the objects again costs about what building them does, so for records consumed in this
    process one worker is usually fastest; workers pay off when they also write (see
    :func:`vistasim.generate.runner.generate_to_disk`, where each worker owns whole stations).
    """
    _validate(n, seed, workers)
    cfg = defects if isinstance(defects, DefectConfig) else DefectConfig.of(float(defects))
    layout = Layout.build(int(n), int(sites), multi_site=multi_site)
    for payload in block_payloads(layout, seed, cfg, workers, chunk):
        with gc_paused():
            block = materialise(payload)
        yield block


def iter_population(n: int, seed: int = 0, sites: int = 1, defects: float | DefectConfig = 0.0,
                    workers: int = 1, chunk: int = DEFAULT_CHUNK, with_key: bool = False,
                    ) -> Iterator[PatientRecord | tuple[PatientRecord, list[DefectEntry]]]:
    """Stream ``n`` patients over ``sites`` stations in (station, DFN) order.

    With ``with_key=True`` each item is ``(patient, answer-key entries of that patient)``.
    """
    for records, keys in iter_blocks(n, seed, sites, defects, workers, chunk):
        if with_key:
            yield from zip(records, keys)
        else:
            yield from records


def generate_patients(n: int, seed: int = 0, sites: int = 1, defects: float = 0.0, workers: int = 1) -> list[PatientRecord]:
    """``n`` patients as a list (see :func:`iter_population` for large n)."""
    out: list[PatientRecord] = []
    with gc_paused():  # the list is acyclic: no collection needs to walk it while it grows
        for records, _ in iter_blocks(n, seed, sites, defects, workers):
            out.extend(records)
    return out


@dataclass
class Population:
    """Patients and the answer key of the defects injected into them."""

    patients: list[PatientRecord]
    answer_key: list[DefectEntry]


def generate_population(n: int, seed: int = 0, sites: int = 1, defects: float | DefectConfig = 0.0,
                        workers: int = 1) -> Population:
    """Patients plus answer key, in (station, DFN) order."""
    patients: list[PatientRecord] = []
    key: list[DefectEntry] = []
    with gc_paused():  # acyclic records: see generate_patients
        for records, keys in iter_blocks(n, seed, sites, defects, workers):
            patients.extend(records)
            for k in keys:
                key.extend(k)
    return Population(patients, key)


def answer_key(n: int, seed: int = 0, sites: int = 1, defects: float | DefectConfig = 0.0,
               workers: int = 1) -> list[DefectEntry]:
    """Only the answer key of a population (the records are generated and dropped)."""
    return generate_population(n, seed, sites, defects, workers).answer_key
