"""CPU cost of the data-mode transform: map_person and standardize(copy=False), per produced resource.

    python bench/fhir_map.py [N] [--tz America/New_York] [--repeat 5] [--profile]

Generates N patients (seed 3, 3 sites, 5 % defects), groups them by person, then times (CPU time of this
process, best of --repeat) mapping every person and standardizing each fresh bundle in place, as
pipeline/datamode.py does (cyclic GC off, as there). Each repeat maps afresh, so standardize always sees unstandardized bundles.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import time

from vistasim.fhir import mapping
from vistasim.fhir.mapping import group_by_person, map_person
from vistasim.fhir.standardize import standardize
from vistasim.generate import generate_patients


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int, nargs="?", default=5000)
    ap.add_argument("--tz", default="America/New_York")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="cProfile one map + standardize pass instead")
    args = ap.parse_args()
    groups = list(group_by_person(generate_patients(args.n, seed=3, sites=3, defects=0.05)).values())
    tz = args.tz
    # as pipeline/datamode.py runs its waves: the long-lived population frozen, the cyclic collector off
    gc.collect()
    gc.freeze()
    gc.disable()
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for g in groups:
            standardize(map_person(g, tz=tz), copy=False)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    best_map = best_std = float("inf")
    n_res = 0
    for _ in range(args.repeat):
        # data mode maps each person once: no date conversion may be remembered from the last repeat
        for memo in (getattr(mapping, "_dt_memo", None),):
            if memo is not None:
                memo.clear()
        if hasattr(mapping.fhir_datetime, "cache_clear"):
            mapping.fhir_datetime.cache_clear()
        c0 = time.process_time()
        bundles = [map_person(g, tz=tz) for g in groups]
        c1 = time.process_time()
        for b in bundles:
            standardize(b, copy=False)
        c2 = time.process_time()
        best_map, best_std = min(best_map, c1 - c0), min(best_std, c2 - c1)
        n_res = sum(len(b["entry"]) for b in bundles)
        del bundles  # as a data-mode wave ends: the next repeat allocates into freed memory
    us = 1e6 / n_res
    print(f"{len(groups):,} persons, {n_res:,} resources, tz {tz}, best of {args.repeat} (CPU s)")
    print(f"  map_person            {best_map:7.3f} s  {best_map * us:6.2f} us/resource")
    print(f"  standardize(copy=F)   {best_std:7.3f} s  {best_std * us:6.2f} us/resource")
    print(f"  together              {best_map + best_std:7.3f} s  {(best_map + best_std) * us:6.2f} us/resource")


if __name__ == "__main__":
    main()
