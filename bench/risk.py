"""Benchmarks of vistasim risk (model mode at VA scale). Prints the figures; run: python bench/risk.py [--quick]

1. the built-in ~9-million-patient, ~120-site plan, one replication, in-process (goal < 60 s, peak RSS < 4 GB);
2. 1,000 replications of a 10,000-patient migration (goal < 60 s on 2 cores), in-process and on 2 processes;
3. patients/s of one replication at 1e4, 1e5, 1e6, 9e6 patients (one site, staged, batches of 5,000);
4. 1 vs 2 Dask workers (LocalCluster on 127.0.0.1) on the 1,000 x 10,000 job.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

from vistasim.risk.montecarlo import simulate_risk
from vistasim.risk.plan import builtin_plan, single_site_plan


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024  # Linux: KiB


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    print(f"{label}: {dt:,.1f} s", flush=True)
    return out, dt


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the 9e6 single-site and Dask figures")
    ap.add_argument("--replications", type=int, default=1000)
    args = ap.parse_args()

    plan = builtin_plan()
    print(f"built-in plan: {len(plan.sites)} sites, {len(plan.waves)} waves, {plan.total_patients:,} patients")
    run, dt = timed("1. built-in plan, 1 replication, in-process", lambda: simulate_risk(plan, 1, 1))
    print(f"   {plan.total_patients / dt:,.0f} patients/s; peak RSS {rss_gb():.2f} GB; "
          f"success {run.overall['success_rate'][0]:.4%}, elapsed {run.overall['elapsed_hours'][0] / 24:,.0f} days, "
          f"rollbacks {run.overall['rollbacks'][0]:.0f}, merges {run.overall['records_merged'][0]:,.0f}")

    small = single_site_plan(10_000, config=plan.config, batch_size=1000)
    R = args.replications
    _, dt1 = timed(f"2. {R} replications x 10,000 patients, in-process", lambda: simulate_risk(small, R, 2))
    print(f"   {R * 10_000 / dt1:,.0f} patient-replications/s")
    _, dt2 = timed(f"2. {R} replications x 10,000 patients, 2 local processes",
                   lambda: simulate_risk(small, R, 2, executor="processes", workers=2))
    print(f"   {R * 10_000 / dt2:,.0f} patient-replications/s")

    sizes = [10_000, 100_000, 1_000_000] + ([] if args.quick else [9_000_000])
    for n in sizes:
        p = single_site_plan(n, config=plan.config, batch_size=5000)
        _, dt = timed(f"3. {n:,} patients, 1 replication", lambda p=p: simulate_risk(p, 1, 3))
        print(f"   {n / dt:,.0f} patients/s; peak RSS so far {rss_gb():.2f} GB")

    if not args.quick:
        try:
            import distributed  # noqa: F401
        except ImportError:
            print("4. Dask not installed (pip install 'vistasim[dask]'): skipped")
            return 0
        for w in (1, 2):
            _, dt = timed(f"4. Dask LocalCluster, {w} worker(s): {R} x 10,000",
                          lambda w=w: simulate_risk(small, R, 2, workers=w))
            print(f"   {R * 10_000 / dt:,.0f} patient-replications/s (cluster start-up included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
