"""Benchmark the population generator: generation alone and generation + writing, 1 and 2 workers.

    python bench/generate.py                              # 100,000 patients over 4 sites
    python bench/generate.py --patients 1000000           # the issue-3 figure (1M patients, ZWR)
    python bench/generate.py --workers 2 --modes write    # one configuration only

Every configuration runs in a fresh subprocess, so each peak RSS is that run's own (the process and
its largest worker). Printed per run: patients/s (wall clock), records/s, CPU seconds of the run
(parent + workers; patients per CPU-second is the per-core figure), and peak RSS. ``gen`` streams
records through :func:`vistasim.generate.iter_blocks` and drops them; ``write`` is
:func:`vistasim.generate.runner.generate_to_disk` (ZWR by default, each worker owning whole stations).
Records per patient by domain are printed once. Wall-clock figures depend on what else the machine
runs: the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from operator import attrgetter
from pathlib import Path

DOMAINS = ("problems", "allergies", "prescriptions", "vitals", "visits", "orders", "flags")


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _peak_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


def run_one(mode: str, n: int, sites: int, workers: int, seed: int, defects: float, fmt: str) -> dict:
    """One configuration, in this process: returns its figures."""
    from vistasim.generate import DefectConfig, iter_blocks
    from vistasim.generate.runner import generate_to_disk

    counts = dict.fromkeys(DOMAINS, 0)
    cpu0, t0 = _cpu(), time.perf_counter()
    size_mb = 0.0
    if mode == "gen":
        for recs, _ in iter_blocks(n, seed, sites, defects, workers):
            for d in DOMAINS:
                counts[d] += sum(map(len, map(attrgetter(d), recs)))
            del recs
        wall = time.perf_counter() - t0
    else:
        out = Path(tempfile.mkdtemp(prefix="vistasim-bench-"))
        try:
            summary = generate_to_disk(out, n, seed, sites, DefectConfig.of(defects), tuple(fmt.split(",")), workers)
            wall = time.perf_counter() - t0
            counts.update(summary.records_by_domain)
            size_mb = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6
        finally:
            shutil.rmtree(out, ignore_errors=True)
    cpu = _cpu() - cpu0
    own, kids = _peak_mb()
    return {"mode": mode, "patients": n, "workers": workers, "wall": wall, "cpu": cpu, "counts": counts,
            "rss_mb": own, "child_rss_mb": kids, "disk_mb": size_mb, "load": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, nargs="+", default=[100_000], help="population sizes (default 100000)")
    ap.add_argument("--sites", type=int, default=4)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--modes", nargs="+", default=["gen", "write"], choices=["gen", "write"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--defects", type=float, default=0.02)
    ap.add_argument("--format", default="zwr", help="formats for the write runs (default zwr)")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # child: run one configuration
    args = ap.parse_args()

    if args.one:
        res = run_one(args.modes[0], args.patients[0], args.sites, args.workers[0], args.seed, args.defects,
                      args.format)
        print(json.dumps(res))
        return
    if "write" in args.modes:
        try:
            import vistasim.vista  # noqa: F401
        except ImportError:
            print("vistasim.vista not available: write runs skipped")
            args.modes = [m for m in args.modes if m != "write"]
    shown = False
    print(f"sites={args.sites} seed={args.seed} defects={args.defects} format={args.format} cpus={os.cpu_count()}")
    for n in args.patients:
        for mode in args.modes:
            for w in args.workers:
                cmd = [sys.executable, __file__, "--one", "--modes", mode, "--patients", str(n), "--workers",
                       str(w), "--sites", str(args.sites), "--seed", str(args.seed), "--defects",
                       str(args.defects), "--format", args.format]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    print(f"{mode} n={n} workers={w}: failed\n{proc.stderr.strip()}")
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                records = sum(r["counts"].values()) + n
                label = "generate" if mode == "gen" else f"generate+write {args.format}"
                disk = f", {r['disk_mb']:,.0f} MB on disk" if mode == "write" else ""
                print(f"{label:>20} n={n:>9,} workers={w}: {n / r['wall']:>8,.0f} patients/s "
                      f"({records / r['wall']:>10,.0f} records/s) in {r['wall']:6.1f} s; "
                      f"{n / r['cpu']:>7,.0f} patients per CPU-s; peak RSS {r['rss_mb']:.0f} MB "
                      f"(largest worker {r['child_rss_mb']:.0f} MB){disk}; load {r['load']:.1f}")
                if not shown:
                    c = r["counts"]
                    print("  records per patient: " + ", ".join(f"{d} {c[d] / n:.2f}" for d in DOMAINS)
                          + f"; total {sum(c.values()) / n:.1f}")
                    shown = True


if __name__ == "__main__":
    main()
