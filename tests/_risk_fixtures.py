"""Small plans and configs for the risk tests."""

from __future__ import annotations

from typing import Any

from vistasim.config import MigrationConfig
from vistasim.model import STAGES, SUBSTAGES


def perfect_settings(**extra: Any) -> dict[str, Any]:
    s: dict[str, Any] = {
        "success_rates": {st: 1.0 for st in STAGES},
        "substage_success_rates": {st: {u: 1.0 for u in SUBSTAGES[st]} for st in STAGES},
        "network_failure_rate": 0.0,
        "system_overload_rate": 0.0,
        "data_corruption_rate": 0.0,
        "duration_variance": 0.0,
    }
    s.update(extra)
    return s


def perfect_config(**extra: Any) -> MigrationConfig:
    from vistasim.config import config_from_mapping

    return config_from_mapping(perfect_settings(**extra))[0]


def two_wave_doc(settings: dict[str, Any] | None = None, **plan_extra: Any) -> dict[str, Any]:
    plan = {
        "name": "tiny",
        "shared_person_fraction": 0.3,
        "defaults": {"strategy": "staged", "batch_size": 50, "concurrency": 10},
        "sites": [
            {"station": "506", "name": "ANN ARBOR", "visn": 10, "patients": 300},
            {"station": "515", "name": "BATTLE CREEK", "visn": 10, "patients": 200},
            {"station": "553", "name": "DETROIT", "visn": 10, "patients": 400},
        ],
        "waves": [
            {"name": "w1", "date": "2026-02-01", "sites": ["506", "515"]},
            {"name": "w2", "date": "2026-03-01", "sites": ["553"]},
        ],
    }
    plan.update(plan_extra)
    doc: dict[str, Any] = {"plan": plan}
    if settings is not None:
        doc["migration_settings"] = settings
    return doc
