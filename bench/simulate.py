"""Benchmark: model-mode simulate_migration on a large population (issue: >= 100,000 patients/s, < 2 GB).

    python bench/simulate.py                 # 1,000,000 patients, batches of 100, default config, audit kept
    python bench/simulate.py --patients 200000 --strategy parallel --no-audit

Patient-id generation and export are not timed (as the target says); the audit trail is kept in arrays.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

from vistasim import MigrationSimulator


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--strategy", default="staged")
    ap.add_argument("--no-audit", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ids = [f"500:{i}" for i in range(1, args.patients + 1)]
    sim = MigrationSimulator(seed=args.seed, keep_audit=not args.no_audit)
    t0 = time.perf_counter()
    run = sim.simulate_migration(ids, batch_size=args.batch_size, migration_strategy=args.strategy)
    t1 = time.perf_counter()
    analytics = sim.get_migration_analytics()
    t2 = time.perf_counter()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"patients: {args.patients:,}  batches: {len(run.batches):,}  strategy: {args.strategy}  audit rows: {len(sim.audit):,}"
    )
    print(f"simulate_migration: {t1 - t0:.2f} s  -> {args.patients / (t1 - t0):,.0f} patients/s")
    print(f"get_migration_analytics: {t2 - t1:.2f} s")
    print(
        f"success {run.overall_success_rate:.4f}  quality {run.average_quality_score:.4f}  "
        f"simulated elapsed {run.elapsed_seconds / 3600:,.1f} h"
    )
    print(f"peak RSS: {rss_mb:,.0f} MB")
    print(f"summary total_patients: {analytics['summary']['total_patients']:,}")


if __name__ == "__main__":
    main()
