"""Throughput of the load targets: stage + promote + verify N persons x ~R resources.

    python bench/targets.py                          # SQLite file in a temp folder, 2,000 persons x 30
    python bench/targets.py --persons 10000 --waves 5
    python bench/targets.py --pg postgresql://postgres@127.0.0.1:5432/postgres
    python bench/targets.py --start-pg               # also start a throwaway PostgreSQL cluster (tests/_pg.py)
    python bench/targets.py --realistic              # 20,000 persons x 27 resources of ~700 bytes, 20 waves
    python bench/targets.py --mapped 20000 --waves 20 --repeat 3   # generated + mapped persons (the real shape)
    python bench/targets.py --mapped 20000 --waves 20 --prepared   # rows prepared per person first, as data mode does

Prints resources/s and persons/s per step, and CPU time (time.process_time, the one-core figure on a shared
machine) per step and per resource; with --repeat the best of the runs, each on a fresh database. The staging
figure includes canonical JSON + hashing (the Python side of the step), unless --prepared: then
``prepare_person`` runs per person beforehand (timed on its own line, as data mode does it in its validation
loop) and staging gets the prepared rows. Never used in unit tests.
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
from vistasim.targets.base import DEFAULT_PERSONS_PER_COMMIT, person_bundles, prepare_person, stage_rows  # noqa: E402


def person(k: int, n: int, rng: KeyedRNG, pad: int = 0) -> dict[str, Any]:
    """A person bundle shaped like the mapper's output: Patient, conditions, vitals, meds.

    ``pad`` > 0 adds a VistA-style identifier and a note of that many characters to each non-Patient
    resource, so bodies reach the ~700 bytes the mapper's resources average."""
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
    if pad:
        for i, r in enumerate(res[1:]):
            r["identifier"] = [{"system": "urn:va:vista:500", "value": f"{k}-{i}-{r['resourceType']}"}]
            r["note"] = [{"text": (f"REMARK {k} {i} " * 40)[:pad]}]
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in res]}


def mapped_batches(persons: int, waves: int) -> list[list[dict[str, Any]]]:
    """Generated, mapped person bundles (vistasim.generate + fhir.mapping), split into ``waves`` waves."""
    from vistasim.fhir.mapping import map_people
    from vistasim.generate import generate_patients

    bundles = list(map_people(generate_patients(persons, seed=1, sites=2)))
    size = -(-len(bundles) // waves)
    return [bundles[i : i + size] for i in range(0, len(bundles), size)]


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def run_once(
    url: str, batches: list[list[dict[str, Any]]], persons_per_commit: int, prepared: bool = False
) -> dict[str, tuple[float, float]]:
    """Stage, promote and verify every wave into a fresh target: {step: (wall s, CPU s)}."""
    target = open_target(url, persons_per_commit=persons_per_commit)
    totals = {"staging": [0.0, 0.0], "production": [0.0, 0.0], "verification": [0.0, 0.0]}
    if prepared:
        totals = {"prepare_person (per person, before staging)": [0.0, 0.0], **totals}
    for w, batch in enumerate(batches):
        wid = f"W{w}"
        ready: dict[str, Any] = {}
        if prepared:
            pairs = list(person_bundles(batch))
            ready, dt, dc = timed(lambda pairs=pairs: {pid: prepare_person(pid, b) for pid, b in pairs})
            totals["prepare_person (per person, before staging)"][0] += dt
            totals["prepare_person (per person, before staging)"][1] += dc
        for step, fn in (
            ("staging", lambda wid=wid, batch=batch, ready=ready: target.staging(wid, batch, prepared=ready or None)),
            ("production", lambda wid=wid: target.production(wid)),
            ("verification", lambda wid=wid: target.verification(wid)),
        ):
            res, dt, dc = timed(fn)
            totals[step][0] += dt
            totals[step][1] += dc
        assert res.passed is True
    _, t_rerun, c_rerun = timed(lambda: [target.production(f"W{w}") for w in range(len(batches))])
    target.close()
    out = {k: (v[0], v[1]) for k, v in totals.items()}
    out["re-run of production (all skipped)"] = (t_rerun, c_rerun)
    return out


def bench(
    url: str | Callable[[], str],
    batches: list[list[dict[str, Any]]],
    persons_per_commit: int,
    repeat: int = 1,
    prepared: bool = False,
) -> None:
    new_url = url if callable(url) else (lambda: url)
    n_res = sum(len(b["entry"]) for batch in batches for b in batch)
    n_persons = sum(len(batch) for batch in batches)
    (_, t_rows, c_rows) = timed(lambda: [stage_rows(f"W{w}", batch) for w, batch in enumerate(batches)])
    runs = [run_once(new_url(), batches, persons_per_commit, prepared) for _ in range(repeat)]
    best = {k: (min(r[k][0] for r in runs), min(r[k][1] for r in runs)) for k in runs[0]}
    first = new_url()
    print(
        f"\n{first.split('/')[0]}  persons={n_persons} resources={n_res} waves={len(batches)} "
        f"persons_per_commit={persons_per_commit}  (best of {repeat}){'  prepared rows' if prepared else ''}"
    )
    print(
        f"  {'(stage_rows: canonical JSON + hash, in staging)':40s} {n_res / t_rows:>10,.0f} res/s  cpu {c_rows:6.2f} s {c_rows / n_res * 1e6:6.2f} us/res"
    )
    total_w = total_c = 0.0
    label = "all steps" if prepared else "all three steps"
    for step, (dt, dc) in best.items():
        print(
            f"  {step:40s} {n_res / dt:>10,.0f} res/s {n_persons / dt:>8,.0f} persons/s  "
            f"wall {dt:6.2f} s  cpu {dc:6.2f} s {dc / n_res * 1e6:6.2f} us/res"
        )
        if not step.startswith("re-run"):
            total_w += dt
            total_c += dc
    print(
        f"  {label:40s} {n_res / total_w:>10,.0f} res/s {n_persons / total_w:>8,.0f} persons/s  "
        f"wall {total_w:6.2f} s  cpu {total_c:6.2f} s {total_c / n_res * 1e6:6.2f} us/res"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=2000)
    ap.add_argument("--resources", type=int, default=30, help="resources per person")
    ap.add_argument("--waves", type=int, default=1)
    ap.add_argument("--persons-per-commit", type=int, default=DEFAULT_PERSONS_PER_COMMIT)
    ap.add_argument("--sqlite", default=None, help="sqlite URL (default: a file in a temp folder)")
    ap.add_argument("--pad", type=int, default=0, help="note characters per resource (see person())")
    ap.add_argument("--realistic", action="store_true", help="20,000 persons x 27 resources of ~700 bytes, 20 waves")
    ap.add_argument("--mapped", type=int, default=0, help="load N generated + mapped persons instead")
    ap.add_argument("--repeat", type=int, default=1, help="runs on fresh databases; the best is printed")
    ap.add_argument("--prepared", action="store_true", help="prepare_person per person first (as data mode)")
    ap.add_argument("--pg", default=None, help="PostgreSQL URL to bench as well (tables are created in it)")
    ap.add_argument("--start-pg", action="store_true", help="start a throwaway PostgreSQL cluster for --pg")
    args = ap.parse_args()
    if args.realistic:
        args.persons, args.resources, args.waves, args.pad = 20000, 27, 20, 240
    if args.mapped:
        batches = mapped_batches(args.mapped, args.waves)
    else:
        rng = KeyedRNG(1)
        size = args.persons // args.waves
        batches = [
            [person(w * size + k, args.resources, rng, args.pad) for k in range(size)] for w in range(args.waves)
        ]
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1_000_000))
        if args.sqlite:
            bench(args.sqlite, batches, args.persons_per_commit, 1, args.prepared)
        else:
            bench(
                lambda: f"sqlite:///{os.path.join(tmp, f'bench{next(counter)}.db')}",
                batches,
                args.persons_per_commit,
                args.repeat,
                args.prepared,
            )
    if args.start_pg:
        import _pg

        cluster = _pg.start_cluster()
        try:
            for ppc in sorted({args.persons_per_commit, 1}):
                bench(lambda: _pg.fresh_schema_url(cluster.url), batches, ppc, args.repeat, args.prepared)
        finally:
            cluster.stop()
    elif args.pg:
        bench(args.pg, batches, args.persons_per_commit, 1, args.prepared)


if __name__ == "__main__":
    main()
