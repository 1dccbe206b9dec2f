"""Test data and a small resumable loader for the load-target tests.

Bundles are FHIR-shaped person bundles with deterministic ids (as the mapper makes them) and
seeded content: ``person_bundle(k, version)`` is always the same dict for the same (k, version, seed).

Run as a script it is the child process of the kill-and-resume test:

    python tests/_targets_fixtures.py URL KILL_AT

It runs ``PLAN`` against the target at URL, printing every commit event (``before:...`` /
``after:...``) as it happens; with KILL_AT = k > 0 it SIGKILLs itself at the k-th event.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from vistasim.rng import KeyedRNG

ICN_SYSTEM = "urn:oid:2.16.840.1.113883.4.349"
SEED = 20260101


def icn(k: int) -> str:
    return f"{1_000_000_000 + k}V{100_000 + 7 * k}"


def person_bundle(k: int, version: int = 0, *, n_obs: int | None = None, seed: int = SEED) -> dict[str, Any]:
    """Person k's bundle as loaded by some wave: version changes values, and (by default) how many
    observations there are, so a re-promote both edits and drops resources."""
    rng = KeyedRNG(seed).generator("targets-test", k, version)
    person = icn(k)
    n = int(rng.integers(3, 9)) if n_obs is None else n_obs
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": f"pat-{k}",
            "identifier": [{"system": ICN_SYSTEM, "value": person}],
            "name": [{"family": "ZZTEST", "given": [f"P{k}"]}],
            "gender": "female" if k % 2 else "male",
        },
        {
            "resourceType": "Condition",
            "id": f"cond-{k}-1",
            "subject": {"reference": f"Patient/pat-{k}"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10"}]},
            "clinicalStatus": {"coding": [{"code": "active" if version % 2 == 0 else "inactive"}]},
        },
    ]
    for i in range(n):
        resources.append(
            {
                "resourceType": "Observation",
                "id": f"obs-{k}-{i}",
                "status": "final",
                "subject": {"reference": f"Patient/pat-{k}"},
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "valueQuantity": {"value": round(float(rng.uniform(50, 110)), 1), "unit": "/min"},
            }
        )
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def wave(spec: list[tuple[int, int]], seed: int = SEED) -> list[dict[str, Any]]:
    """Bundles for [(person k, version), ...]."""
    return [person_bundle(k, v, seed=seed) for k, v in spec]


def sorted_resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted((e["resource"] for e in bundle["entry"]), key=lambda r: (r["resourceType"], r["id"]))


# The kill-and-resume plan: loads, a re-promote of persons 4, 5 and 0, a backout that restores person 0.
PLAN: list[tuple[str, str, list[tuple[int, int]]]] = [
    ("load", "W1", [(k, 0) for k in range(6)]),
    ("load", "W2", [(k, 1 if k in (4, 5) else 0) for k in range(4, 10)]),
    ("load", "W3", [(0, 2), (10, 0), (11, 0), (12, 0)]),
    ("backout", "W3", []),
    ("load", "W4", [(13, 0), (14, 0)]),
]


def run_plan(url: str, kill_at: int = 0, persons_per_commit: int = 1) -> None:
    from vistasim.targets import load_wave, open_target

    seen = 0

    def hook(event: str) -> None:
        nonlocal seen
        seen += 1
        print(event, flush=True)
        if kill_at and seen == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    target = open_target(url, on_commit=hook, persons_per_commit=persons_per_commit)
    try:
        for op, wave_id, spec in PLAN:
            if op == "load":
                load_wave(target, wave_id, wave(spec))
            else:
                target.backout(wave_id)
    finally:
        target.close()


if __name__ == "__main__":
    run_plan(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1)
