"""Benchmark the population generator (and ZWR writing when vistasim.vista is available).

    python bench/generate.py                         # 200,000 patients, 1 worker, generate only + ZWR
    python bench/generate.py --patients 1000000 --workers 2 --sites 20

Prints patients/s and records/s for generation alone and for generation + ZWR writing, records per
patient by domain, and peak RSS (of this process and, with workers, its children).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from vistasim.generate import DefectConfig, iter_blocks
from vistasim.generate.runner import generate_to_disk

DOMAINS = ("problems", "allergies", "prescriptions", "vitals", "visits", "orders", "flags")


def peak_rss_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=200_000)
    ap.add_argument("--sites", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--defects", type=float, default=0.02)
    ap.add_argument("--no-write", action="store_true", help="skip the ZWR writing run")
    ap.add_argument("--format", default="zwr")
    args = ap.parse_args()

    counts = dict.fromkeys(DOMAINS, 0)
    t0 = time.perf_counter()
    n = 0
    for recs, _ in iter_blocks(args.patients, args.seed, args.sites, args.defects, args.workers):
        n += len(recs)
        for r in recs:
            for d in DOMAINS:
                counts[d] += len(getattr(r, d))
    gen = time.perf_counter() - t0
    records = sum(counts.values()) + n
    print(f"generate: {n} patients in {gen:.1f} s = {n / gen:,.0f} patients/s, {records / gen:,.0f} records/s "
          f"(workers={args.workers}, sites={args.sites})")
    print("records per patient: " + ", ".join(f"{d} {counts[d] / n:.2f}" for d in DOMAINS)
          + f"; total {sum(counts.values()) / n:.1f}")
    own, kids = peak_rss_mb()
    print(f"peak RSS after generate: {own:.0f} MB (children {kids:.0f} MB)")

    if args.no_write:
        return
    try:
        import vistasim.vista  # noqa: F401
    except ImportError:
        print("vistasim.vista not available: ZWR write skipped")
        return
    out = Path(tempfile.mkdtemp(prefix="vistasim-bench-"))
    try:
        t0 = time.perf_counter()
        generate_to_disk(out, args.patients, args.seed, args.sites, DefectConfig.of(args.defects),
                         tuple(args.format.split(",")), args.workers)
        dt = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6
        print(f"generate+write {args.format}: {args.patients} patients in {dt:.1f} s = "
              f"{args.patients / dt:,.0f} patients/s ({size:,.0f} MB on disk)")
        own, kids = peak_rss_mb()
        print(f"peak RSS: {own:.0f} MB (largest child {kids:.0f} MB)")
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
