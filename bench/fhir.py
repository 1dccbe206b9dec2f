"""Throughput of vistasim.fhir: map, standardize, schema_check, business_rules, data_integrity, orjson dumps,
and fhirclient's R4 models as a comparison.

    python bench/fhir.py                       # 1,000 generated persons (vistasim.generate), single core
    python bench/fhir.py --persons 5000 --fixtures   # copies of the hand-built test fixtures instead
    python bench/fhir.py --persons 2000 --stages     # the data-mode validate stages, CPU us per resource
    python bench/fhir.py --steps schema,data_integrity   # only the steps whose names contain these

Prints resources/s per step (best of --repeat runs, wall clock; never in unit tests). ``--stages`` times
pipeline.stages.schema_stage, business_stage and integrity_stage per person as data mode calls them, in CPU
seconds (time.process_time), each repeat starting from empty validator caches after a warm-up on
--warm other persons (seed 8), so the figure is the steady state of a long run rather than of a first wave.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import orjson  # noqa: E402

from vistasim.fhir import business_rules, data_integrity, map_person, schema_check, standardize  # noqa: E402
from vistasim.fhir.mapping import group_by_person  # noqa: E402


def people(n: int, fixtures: bool) -> list[list]:
    if not fixtures:
        try:
            from vistasim.generate import generate_patients
        except ImportError:
            fixtures = True
        else:
            groups = list(group_by_person(generate_patients(n, seed=7, sites=3)).values())
            return groups[:n]
    import _fhir_fixtures

    return _fhir_fixtures.scaled_people(n)


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def fhirclient_check(resources: list[dict[str, Any]]) -> None:
    models = {}
    for r in resources:
        rt = r["resourceType"]
        m = models.get(rt)
        if m is None:
            m = models[rt] = getattr(importlib.import_module("fhirclient.models." + rt.lower()), rt)
        m(r, strict=True)


def _cold_caches() -> None:
    """Empty every validator cache (seen primitives, split date caches, JSON memos)."""
    from vistasim.fhir import _fastcheck
    from vistasim.fhir import validate as V

    for group in (V._SEEN.values(), getattr(V, "_SPLIT_CACHES", ()), getattr(_fastcheck, "MEMO_SETS", ())):
        for cache in group:
            cache.clear()


def stages_bench(args: argparse.Namespace) -> None:
    from vistasim.pipeline import stages as S

    def bundles_of(groups: list[list]) -> list[dict[str, dict[str, Any]]]:
        return [{str(i): standardize(map_person(g)).bundle} for i, g in enumerate(groups)]

    persons = bundles_of(people(args.persons, args.fixtures))
    warm: list = []
    if args.warm:
        from vistasim.generate import generate_patients

        warm = bundles_of(list(group_by_person(generate_patients(args.warm, seed=8, sites=3)).values()))
    n = sum(len(b["entry"]) for p in persons for b in p.values())
    as_of = "2026-01-01"
    print(f"{len(persons)} persons, {n} resources; warm-up {len(warm)} other persons; best of {args.repeat}, CPU time")
    total = 0.0
    for name, fn in (("schema_stage", lambda p: S.schema_stage(p)), ("business_stage", lambda p: S.business_stage(p)),
                     ("integrity_stage", lambda p: S.integrity_stage(p, as_of))):
        times = []
        for _ in range(args.repeat):
            _cold_caches()
            for p in warm:  # what a long run has seen before these persons
                S.schema_stage(p)
            for p in persons:  # each stage sees what the stages before it left (as in data mode)
                if name != "schema_stage":
                    S.schema_stage(p)
                if name == "integrity_stage":
                    S.business_stage(p)
            t0 = time.process_time()
            for p in persons:
                fn(p)
            times.append(time.process_time() - t0)
        dt = min(times)
        total += dt
        print(f"  {name:18s} {dt:7.3f} CPU-s  {dt / n * 1e6:6.2f} us/resource")
    print(f"  {'together':18s} {total:7.3f} CPU-s  {total / n * 1e6:6.2f} us/resource")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=1000)
    ap.add_argument("--fixtures", action="store_true", help="use copies of tests/_fhir_fixtures people")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-fhirclient", action="store_true")
    ap.add_argument("--steps", default="", help="comma-separated substrings: run only the matching steps")
    ap.add_argument("--stages", action="store_true", help="CPU time of the data-mode validate stages")
    ap.add_argument("--warm", type=int, default=1000, help="with --stages: warm-up persons (0: none)")
    args = ap.parse_args()
    if args.stages:
        stages_bench(args)
        return

    groups = people(args.persons, args.fixtures)
    mapped = [map_person(g) for g in groups]
    bundles = [standardize(b).bundle for b in mapped]
    resources = [e["resource"] for b in bundles for e in b["entry"]]
    n = len(resources)
    counts: dict[str, int] = {}
    for r in resources:
        counts[r["resourceType"]] = counts.get(r["resourceType"], 0) + 1
    print(f"{len(groups)} persons, {n} resources "
          f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}); source: "
          f"{'fixtures' if args.fixtures else 'vistasim.generate'}; best of {args.repeat}")

    steps: dict[str, Callable[[], Any]] = {
        "map_person": lambda: [map_person(g) for g in groups],
        "standardize": lambda: [standardize(b) for b in mapped],
        "schema_check (per resource)": lambda: [schema_check(r) for r in resources],
        "schema_check (whole bundles)": lambda: [schema_check(b) for b in bundles],
        "business_rules": lambda: [business_rules(b) for b in bundles],
        "data_integrity": lambda: [data_integrity(b, as_of="2026-01-01") for b in bundles],
        "orjson.dumps (bundles)": lambda: [orjson.dumps(b) for b in bundles],
    }
    if not args.no_fhirclient:
        try:
            importlib.import_module("fhirclient.models.patient")
            steps["fhirclient R4 strict parse (comparison)"] = lambda: fhirclient_check(resources)
        except ImportError:
            print("  (fhirclient not installed: comparison skipped)")
    wanted = [w for w in args.steps.split(",") if w]
    for name, fn in steps.items():
        if wanted and not any(w in name for w in wanted):
            continue
        dt = best(fn, args.repeat)
        print(f"  {name:42s} {n / dt:>12,.0f} resources/s  ({dt:.3f} s)")


if __name__ == "__main__":
    main()
