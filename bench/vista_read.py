"""Read throughput of ``vista.station.read_source`` (what pipeline/run.py ``read_records`` calls).

    python bench/vista_read.py [N] [--sites K] [--repeats R] [--keep DIR]
    VISTASIM_PURE_PYTHON=1 python bench/vista_read.py ...     # the pure-Python path, for comparison

Generates N patients (``generate_patients(N, seed=1, sites=K)``), writes them with StationWriter into a
temporary folder as bench/datamode.py does, then times ``read_source`` with the cyclic collector paused
(as ``read_records`` does): CPU seconds (time.process_time, the one-core figure on a shared machine),
patients and resources per CPU-second, best of R. ``--keep DIR`` writes the source once into DIR and
reuses it on later runs (same N and sites), so repeated measurements skip generation. The first line
printed says whether the compiled reader (``vistasim._c.zwrc``) is in use.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from vistasim import _accel
from vistasim.generate import generate_patients
from vistasim.vista.station import StationWriter, read_source


def write_source(root: Path, n: int, sites: int) -> None:
    pats = generate_patients(n, seed=1, sites=sites)
    by = defaultdict(list)
    for p in pats:
        by[p.station].append(p)
    for st, ps in by.items():
        with StationWriter(root, st) as w:
            for p in ps:
                w.add(p)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=20000)
    ap.add_argument("--sites", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None)
    args = ap.parse_args()
    print(f"compiled reader vistasim._c.zwrc: {'in use' if _accel.load('zwrc') is not None else 'off (pure Python)'}")
    if args.keep is not None:
        root = args.keep / f"n{args.n}-s{args.sites}"
        tmp = None
        if not (root / "done").exists():
            shutil.rmtree(root, ignore_errors=True)
            write_source(root, args.n, args.sites)
            (root / "done").write_text("ok\n")
    else:
        tmp = Path(tempfile.mkdtemp(prefix="vistasim-readbench-"))
        root = tmp / "src"
        write_source(root, args.n, args.sites)
    try:
        best = float("inf")
        res = None
        for _ in range(args.repeats):
            res = None
            gc.collect()
            gc.disable()
            try:
                c0 = time.process_time()
                res = read_source(root)
                cpu = time.process_time() - c0
            finally:
                gc.enable()
            best = min(best, cpu)
        assert res is not None
        n = len(res.patients)
        resources = sum(
            1 + len(p.problems) + len(p.allergies) + len(p.vitals) + len(p.prescriptions) + len(p.visits)
            + len(p.orders) + len(p.flags)
            for p in res.patients
        )
        print(f"patients {n:,}, entries (patients + clinical) {resources:,}, nodes read {res.nodes_read:,}")
        print(
            f"read_source: best of {args.repeats} {best:.3f} CPU-s = {n / best:,.0f} patients per CPU-s, "
            f"{resources / best:,.0f} entries per CPU-s ({best / resources * 1e6:.2f} us/entry)"
        )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
