"""Data-mode throughput: generate N patients, write ZWR, then read -> map -> standardize -> validate (every
resource) -> load into SQLite -> verify, and reconcile. Prints patients/s, resources/s (wall, and per CPU-second
of this process, the one-core figure on a loaded machine) and each stage's share.

    python bench/datamode.py [N] [--sites K]     (default N = 5000)
    VISTASIM_PURE_PYTHON=1 python bench/datamode.py N     # without the compiled accelerators
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from vistasim import _accel
from vistasim.config import MigrationConfig
from vistasim.generate import generate_patients
from vistasim.pipeline.reconcile import reconcile
from vistasim.pipeline.run import read_records
from vistasim.pipeline.settings import DataModeSettings
from vistasim.simulator import MigrationSimulator
from vistasim.vista.station import StationWriter


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=5000)
    ap.add_argument("--sites", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=1000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vistasim-bench-"))
    try:
        pats = generate_patients(args.n, seed=1, sites=args.sites)
        by = defaultdict(list)
        for p in pats:
            by[p.station].append(p)
        for st, ps in by.items():
            with StationWriter(tmp / "src", st) as w:
                for p in ps:
                    w.add(p)
        del pats
        t0 = time.perf_counter()
        c0 = time.process_time()
        src = read_records(tmp / "src")
        t_read = time.perf_counter() - t0
        sim = MigrationSimulator(
            MigrationConfig(),
            seed=1,
            mode="data",
            target=f"sqlite:///{tmp / 'out.db'}",
            data_settings=DataModeSettings(),
            keep_audit=False,
        )
        t1 = time.perf_counter()
        sim.simulate_migration(src.patients, batch_size=args.batch_size)
        t_run = time.perf_counter() - t1
        cpu = time.process_time() - c0
        dr = sim.data_runs[-1]
        t2 = time.perf_counter()
        rec = reconcile(src.patients, sim.target, status=dict(zip(dr.ids, dr.status)))
        t_rec = time.perf_counter() - t2
        n = len(src.patients)
        stages = {"read (extract/connect)": t_read, **dr.stage_wall}
        total = t_read + t_run
        used = _accel.status()
        print("compiled accelerators: " + (", ".join(k for k, v in used.items() if v) or "none (pure Python)"))
        print(f"patients {n:,}, resources mapped {dr.resources_mapped:,}, validated {dr.resources_validated:,}")
        print(
            f"data mode (read + run): {total:.2f} s = {n / total:,.0f} patients/s, {dr.resources_validated / total:,.0f} resources/s"
        )
        # on a shared machine wall time includes waiting for a core; CPU time is the one-core figure
        print(
            f"CPU (read + run, this process): {cpu:.2f} s = {n / cpu:,.0f} patients per CPU-s, "
            f"{dr.resources_validated / cpu:,.0f} resources per CPU-s"
        )
        print(f"simulator bookkeeping (schedule, batches): {t_run - sum(dr.stage_wall.values()):.2f} s")
        for k, v in sorted(stages.items(), key=lambda kv: -kv[1]):
            print(f"  {k:<30}{v:8.2f} s  {v / total:6.1%}")
        print(f"reconcile: {t_rec:.2f} s = {n / t_rec:,.0f} patients/s (fidelity {rec.fidelity})")
        sim.target.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
