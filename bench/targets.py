"""Throughput of the load targets: stage + promote + verify N persons x ~R resources.

    python bench/targets.py                          # SQLite file in a temp folder, 2,000 persons x 30
    python bench/targets.py --persons 10000 --waves 5
    python bench/targets.py --pg postgresql://postgres@127.0.0.1:5432/postgres
    python bench/targets.py --start-pg               # also start a throwaway PostgreSQL cluster (tests/_pg.py)

Prints resources/s and persons/s per step. The staging figure includes canonical JSON + hashing
(the Python side of the step). Wall-clock only here, never in unit tests.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from vistasim.rng import KeyedRNG  # noqa: E402
from vistasim.targets import ICN_SYSTEM, open_target  # noqa: E402
from vistasim.targets.base import DEFAULT_PERSONS_PER_COMMIT, stage_rows  # noqa: E402


def person(k: int, n: int, rng: KeyedRNG) -> dict[str, Any]:
    """A person bundle shaped like the mapper's output: Patient, conditions, vitals, meds."""
    g = rng.generator("bench-targets", k)
    pid = f"pat-{k}"
    ref = {"reference": f"Patient/{pid}"}
    res: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": pid,
            "identifier": [
                {"system": ICN_SYSTEM, "value": f"{1_000_000_000 + k}V{100_000 + k % 900_000}"},
                {"system": "urn:va:station-dfn", "value": f"500:{k}"},
            ],
            "name": [{"family": "ZZBENCH", "given": ["ALPHA", "B"]}],
            "gender": "male",
            "birthDate": "1950-01-01",
            "address": [{"line": ["1 MAIN ST"], "city": "ANYTOWN", "state": "OH", "postalCode": "44101"}],
        }
    ]
    for i in range(n - 1):
        kind = i % 3
        if kind == 0:
            res.append(
                {
                    "resourceType": "Observation",
                    "id": f"obs-{k}-{i}",
                    "status": "final",
                    "subject": ref,
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "vital-signs",
                                }
                            ]
                        }
                    ],
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
                    "effectiveDateTime": "2024-03-01T08:30:00Z",
                    "valueQuantity": {
                        "value": round(float(g.uniform(50, 110)), 1),
                        "unit": "/min",
                        "system": "http://unitsofmeasure.org",
                        "code": "/min",
                    },
                }
            )
        elif kind == 1:
            res.append(
                {
                    "resourceType": "Condition",
                    "id": f"cond-{k}-{i}",
                    "subject": ref,
                    "clinicalStatus": {
                        "coding": [
                            {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
                        ]
                    },
                    "category": [{"coding": [{"code": "problem-list-item"}]}],
                    "code": {
                        "coding": [
                            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10"},
                            {"system": "http://snomed.info/sct", "code": "38341003"},
                        ]
                    },
                    "onsetDateTime": "2010-05-01",
                }
            )
        else:
            res.append(
                {
                    "resourceType": "MedicationRequest",
                    "id": f"med-{k}-{i}",
                    "status": "active",
                    "intent": "order",
                    "subject": ref,
                    "medicationCodeableConcept": {
                        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197361"}]
                    },
                    "dispenseRequest": {"quantity": {"value": int(g.integers(30, 90))}, "numberOfRepeatsAllowed": 3},
                }
            )
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in res]}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def bench(url: str, persons: int, per_person: int, waves: int, persons_per_commit: int) -> None:
    rng = KeyedRNG(1)
    size = persons // waves
    batches = [[person(w * size + k, per_person, rng) for k in range(size)] for w in range(waves)]
    n_res = sum(len(b["entry"]) for batch in batches for b in batch)
    (_, t_rows) = timed(lambda: [stage_rows(f"W{w}", batch) for w, batch in enumerate(batches)])
    target = open_target(url, persons_per_commit=persons_per_commit)
    totals = {"staging": 0.0, "production": 0.0, "verification": 0.0}
    for w, batch in enumerate(batches):
        wid = f"W{w}"
        _, dt = timed(lambda wid=wid, batch=batch: target.staging(wid, batch))
        totals["staging"] += dt
        _, dt = timed(lambda wid=wid: target.production(wid))
        totals["production"] += dt
        res, dt = timed(lambda wid=wid: target.verification(wid))
        totals["verification"] += dt
        assert res.passed is True
    _, t_rerun = timed(lambda: [target.production(f"W{w}") for w in range(waves)])
    target.close()
    n_persons = size * waves
    print(f"\n{url}  persons={n_persons} resources={n_res} waves={waves} persons_per_commit={persons_per_commit}")
    print(f"  {'(stage_rows: canonical JSON + hash, in staging)':48s} {n_res / t_rows:>12,.0f} resources/s")
    for step, dt in totals.items():
        print(f"  {step:48s} {n_res / dt:>12,.0f} resources/s {n_persons / dt:>10,.0f} persons/s  ({dt:.2f} s)")
    total = sum(totals.values())
    print(
        f"  {'all three steps':48s} {n_res / total:>12,.0f} resources/s {n_persons / total:>10,.0f} persons/s  ({total:.2f} s)"
    )
    print(f"  {'re-run of production (all skipped)':48s} {t_rerun:.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=2000)
    ap.add_argument("--resources", type=int, default=30, help="resources per person")
    ap.add_argument("--waves", type=int, default=1)
    ap.add_argument("--persons-per-commit", type=int, default=DEFAULT_PERSONS_PER_COMMIT)
    ap.add_argument("--sqlite", default=None, help="sqlite URL (default: a file in a temp folder)")
    ap.add_argument("--pg", default=None, help="PostgreSQL URL to bench as well (tables are created in it)")
    ap.add_argument("--start-pg", action="store_true", help="start a throwaway PostgreSQL cluster for --pg")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.sqlite or f"sqlite:///{os.path.join(tmp, 'bench.db')}"
        bench(url, args.persons, args.resources, args.waves, args.persons_per_commit)
    if args.start_pg:
        import _pg

        cluster = _pg.start_cluster()
        try:
            for ppc in sorted({args.persons_per_commit, 1}):
                bench(_pg.fresh_schema_url(cluster.url), args.persons, args.resources, args.waves, ppc)
        finally:
            cluster.stop()
    elif args.pg:
        bench(args.pg, args.persons, args.resources, args.waves, args.persons_per_commit)


if __name__ == "__main__":
    main()
