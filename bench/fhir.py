"""Throughput of vistasim.fhir: map, standardize, schema_check, business_rules, data_integrity, orjson dumps,
and fhirclient's R4 models as a comparison.

    python bench/fhir.py                       # 1,000 generated persons (vistasim.generate), single core
    python bench/fhir.py --persons 5000 --fixtures   # copies of the hand-built test fixtures instead

Prints resources/s per step (best of --repeat runs, wall clock; never in unit tests).
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=1000)
    ap.add_argument("--fixtures", action="store_true", help="use copies of tests/_fhir_fixtures people")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-fhirclient", action="store_true")
    args = ap.parse_args()

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
    for name, fn in steps.items():
        dt = best(fn, args.repeat)
        print(f"  {name:42s} {n / dt:>12,.0f} resources/s  ({dt:.3f} s)")


if __name__ == "__main__":
    main()
