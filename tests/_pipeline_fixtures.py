"""Small seeded populations and runs for the data-mode tests."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from vistasim.config import MigrationConfig
from vistasim.generate import generate_patients
from vistasim.model import PatientRecord
from vistasim.pipeline.settings import DataModeSettings
from vistasim.simulator import MigrationSimulator

# The generator leaves consult and nursing orders uncoded (their orderables have no standard code), so
# a pending one is quarantined (business rule order-uncoded). A clean population codes them.
ORDER_CODE = ("306206005", "SNOMED")  # SNOMED CT: referral to service


def clean_population(n: int = 120, seed: int = 11, sites: int = 2) -> list[PatientRecord]:
    pats = generate_patients(n, seed=seed, sites=sites, defects=0.0)
    for p in pats:
        for o in p.orders:
            if o.code is None:
                o.code, o.code_system = ORDER_CODE
    return pats


def quiet_config(**kw: Any) -> MigrationConfig:
    """No transient outages and no corruption unless asked."""
    base = dict(network_failure_rate=0.0, system_overload_rate=0.0, data_corruption_rate=0.0)
    base.update(kw)
    return MigrationConfig(**base)


def run(
    records: list[PatientRecord],
    config: MigrationConfig,
    faults: dict[str, float] | None = None,
    target: Any = "sqlite:///:memory:",
    seed: int = 3,
    batch_size: int = 40,
    strategy: str = "staged",
    go_no_go: float = 0.99,
) -> MigrationSimulator:
    settings = DataModeSettings(fault_rates=dict(faults or {}), go_no_go=go_no_go)
    sim = MigrationSimulator(config, seed=seed, mode="data", target=target, data_settings=settings)
    sim.simulate_migration(records, batch_size=batch_size, migration_strategy=strategy)
    return sim


def write_zwr(records: list[PatientRecord], out: Path) -> Path:
    from vistasim.vista.station import StationWriter

    by: dict[str, list[PatientRecord]] = defaultdict(list)
    for p in records:
        by[p.station].append(p)
    for st, ps in by.items():
        with StationWriter(out, st) as w:
            for p in sorted(ps, key=lambda r: r.dfn):
                w.add(p)
    return out
