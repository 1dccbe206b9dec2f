"""Benchmark: write N synthetic patients to one station with StationWriter, then read them back.

    python bench/vista_write.py [--patients 20000] [--workers 2] [--out /tmp/vista-bench]

Prints patients/s and ZWR lines/s for writing one station serially, for building + writing the
same number of patients over ``--workers`` stations with ``write_stations`` (1 process, then
``--workers`` processes), the read rate of ``read_source`` and of the streaming ``iter_source``,
and the peak RSS. Patients are built here (about 20 clinical entries each) so the serial figure
measures the VistA layer, not the generator.
"""

from __future__ import annotations

import argparse
import functools
import gc
import resource
import shutil
import sys
import time
from pathlib import Path

from vistasim.model import Address, Allergy, Order, PatientRecord, Prescription, Problem, RecordFlag, Visit, Vital
from vistasim.rng import KeyedRNG
from vistasim.vista import StationWriter, iter_source, read_source, write_stations

DRUGS = [("LISINOPRIL 10MG TAB", "314076"), ("METFORMIN HCL 500MG TAB", "860975"), ("ATORVASTATIN 40MG TAB", "617311"),
         ("LOCAL COMPOUND CREAM", None)]
VITALS = [("BLOOD PRESSURE", "{a}/{b}"), ("PULSE", "{a}"), ("WEIGHT", "{w}.5"), ("TEMPERATURE", "98.{d}"), ("PAIN", "{d}")]
CLINICS = ["PRIMARY CARE", "CARDIOLOGY", "MENTAL HEALTH", "TELEHEALTH"]
MARITAL = ["MARRIED", "DIVORCED", "NEVER MARRIED", "WIDOWED"]
PERIODS = ["VIETNAM ERA", "PERSIAN GULF WAR", "KOREAN", "POST-VIETNAM"]
BRANCHES = ["ARMY", "NAVY", "AIR FORCE", "MARINE CORPS"]
STATES = ["IL", "TX", "CA", "FL", "NY"]


def build(station: str, dfn: int, rng_seed: int) -> PatientRecord:
    g = KeyedRNG(rng_seed).generator("bench", dfn)
    r = g.integers(0, 1_000_000, size=64).tolist()
    b = dfn * 100
    day = lambda k: f"20{10 + r[k] % 14:02d}-{1 + r[k + 1] % 12:02d}-{1 + r[k + 2] % 28:02d}"  # noqa: E731
    dt = lambda k: f"{day(k)}T{r[k + 3] % 24:02d}:{r[k + 4] % 60:02d}:00"  # noqa: E731
    vitals = []
    for i in range(8):
        name, fmt = VITALS[i % 5]
        vitals.append(Vital(b + i + 1, dt(i), name, fmt.format(a=100 + r[i] % 60, b=60 + r[i] % 30, w=150 + r[i] % 80, d=r[i] % 10)))
    return PatientRecord(
        station=station, dfn=dfn, name=f"PATIENT{dfn},TEST {chr(65 + r[0] % 26)}", sex="MF"[r[1] % 2],
        dob=f"19{40 + r[2] % 50}-{1 + r[3] % 12:02d}-{1 + r[4] % 28:02d}", ssn=f"00000{dfn % 10000:04d}",
        icn=f"{1000000000 + dfn}", icn_checksum=f"{r[5]:06d}", marital_status=MARITAL[r[6] % 4], race="WHITE",
        ethnicity="NOT HISPANIC OR LATINO", address=Address(f"{r[7]} MAIN ST", "", "", "SPRINGFIELD", STATES[r[8] % 5], "62701"),
        phone_home="555-555-0100", service_connected=bool(r[9] % 2), sc_percent=(r[10] % 11) * 10,
        period_of_service=PERIODS[r[11] % 4], branch=BRANCHES[r[12] % 4], service_entry="1970-01-01", service_separation="1974-06",
        problems=[Problem(b + 1, "I10", "ICD-10-CM", "Essential hypertension", "38341003", "A", day(13), day(14)),
                  Problem(b + 2, "E11.9", "ICD-10-CM", "Type 2 diabetes", "44054006", "A", day(15), day(16)),
                  Problem(b + 3, "250.00", "ICD-9-CM", "Diabetes, legacy", None, "I", day(17), None, day(18))],
        allergies=[Allergy(b + 1, "PENICILLIN", "D", "A", True, dt(19), "7980", "RXNORM", "active", ["HIVES"]),
                   Allergy(b + 2, "STRAWBERRIES", "F", "U", False, None, None, None)],
        prescriptions=[Prescription(b + i + 1, f"{dfn * 10 + i}", *DRUGS[(r[20 + i]) % 4], 30, 30, 3, day(21 + i),
                                    ["active", "expired", "discontinued"][r[22 + i] % 3], "MW"[r[i] % 2], "TAKE ONE TABLET DAILY")
                       for i in range(3)],
        vitals=vitals,
        visits=[Visit(b + i + 1, dt(30 + i), CLINICS[r[30 + i] % 4]) for i in range(2)],
        orders=[Order(b + 1, "HEMOGLOBIN A1C", "lab", "pending", bool(r[40] % 2), dt(40), "4548-4", "LOINC"),
                Order(b + 2, "LISINOPRIL 10MG TAB", "medication", "active", True, dt(41), "314076", "RXNORM")],
        flags=[RecordFlag(b + 1, "HIGH RISK FOR SUICIDE", "I", "active", day(45), day(46))] if r[44] % 20 == 0 else [],
    )


def _station_patients(station: str, first_dfn: int, n: int, seed: int) -> list[PatientRecord]:
    return [build(station, dfn, seed) for dfn in range(first_dfn, first_dfn + n)]


def _peak_rss_mib() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=20_000)
    ap.add_argument("--out", type=Path, default=Path("/tmp/vista-bench"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2, help="processes for the parallel write (one station each)")
    args = ap.parse_args(argv)
    shutil.rmtree(args.out, ignore_errors=True)
    n = args.patients

    t0 = time.perf_counter()
    patients = [build("528", dfn, args.seed) for dfn in range(1, n + 1)]
    t_build = time.perf_counter() - t0
    # The patients are held only so the read-back can be compared; keep the collector from re-walking
    # them on every generation (a generator streaming into the writer holds none of them).
    gc.freeze()
    entries = sum(len(p.problems) + len(p.allergies) + len(p.prescriptions) + len(p.vitals) + len(p.visits)
                  + len(p.orders) + len(p.flags) for p in patients)
    print(f"built {n} patients ({entries / n:.1f} clinical entries each) in {t_build:.2f}s (not counted)")

    # 1. serial: one StationWriter, patients already built
    t0 = time.perf_counter()
    w = StationWriter(args.out, "528")
    for p in patients:
        w.add(p)
    t_add = time.perf_counter() - t0
    w.close()
    t_write = time.perf_counter() - t0
    print(f"write serial:    {n / t_write:,.0f} patients/s, {w.lines_written / t_write:,.0f} lines/s "
          f"({w.lines_written:,} lines, {w.lines_written / n:.0f}/patient; add {t_add:.2f}s + close {t_write - t_add:.2f}s)")

    # 2. parallel: the same number of patients split over `workers` stations, each worker building
    # and writing its own station (as generation + writing would run), so the rate includes building.
    k = max(1, args.workers)
    stations = [f"{600 + i}" for i in range(k)]
    share = [n // k + (1 if i < n % k else 0) for i in range(k)]
    par_out = args.out / "parallel"
    sources = {st: functools.partial(_station_patients, st, 1, share[i], args.seed) for i, st in enumerate(stations)}
    t0 = time.perf_counter()
    write_stations(sources, par_out, workers=1)
    t_one = time.perf_counter() - t0
    shutil.rmtree(par_out)
    t0 = time.perf_counter()
    written = write_stations(sources, par_out, workers=k)
    t_par = time.perf_counter() - t0
    lines = sum(x.lines for x in written.values())
    print(f"build+write, {k} stations: 1 worker {n / t_one:,.0f} patients/s; {k} workers {n / t_par:,.0f} patients/s, "
          f"{lines / t_par:,.0f} lines/s")

    # 3. read back: everything at once, then streamed
    gc.collect()
    t0 = time.perf_counter()
    res = read_source(args.out / "528")
    t_read = time.perf_counter() - t0
    print(f"read_source:     {n / t_read:,.0f} patients/s, {res.nodes_read / t_read:,.0f} nodes/s ({res.nodes_read:,} nodes)")
    ok = res.patients == patients
    del res
    gc.collect()
    t0 = time.perf_counter()
    same = 0
    for got, want in zip(iter_source(args.out / "528"), patients):
        same += got == want
    t_iter = time.perf_counter() - t0
    print(f"iter_source:     {n / t_iter:,.0f} patients/s, {w.lines_written / t_iter:,.0f} lines/s")
    ok = ok and same == n
    print(f"round trip equal: {ok}")
    own, kids = _peak_rss_mib()
    print(f"peak RSS: {own:,.0f} MiB in this process (includes the {n} patients held and read_source's list), "
          f"{kids:,.0f} MiB largest worker")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
