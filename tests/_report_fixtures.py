"""Fixtures for the report, gating and metrics tests: seeded model-mode documents and hand-made
sections in the shapes other commands write (data mode, risk, comparison)."""

from __future__ import annotations

import copy
import functools
import os
import shutil
from typing import Any

from vistasim.config import MigrationConfig
from vistasim.runner import population_ids, run_model


@functools.lru_cache(maxsize=8)
def _model_doc(n: int, seed: int, strategy: str, batch_size: int) -> dict[str, Any]:
    out = run_model(
        population_ids(n),
        config=MigrationConfig(),
        strategy=strategy,
        batch_size=batch_size,
        seed=seed,
        run_dir=None,
        keep_audit=False,
        argv=["test"],
    )
    return out.doc


def model_doc(n: int = 600, seed: int = 5, strategy: str = "staged", batch_size: int = 50) -> dict[str, Any]:
    """A real results document of a small model-mode run (a fresh copy each call)."""
    return copy.deepcopy(_model_doc(n, seed, strategy, batch_size))


DATA_MODE = {
    "patients_loaded": 590,
    "fidelity": 0.9987,
    "reconciliation": {
        "patients": {"source": 600, "target": 590, "missing": 10, "extra": 0, "match_rate": 0.9833},
        "allergies": {"source": 1200, "target": 1198, "missing": 2, "extra": 0, "match_rate": 0.9983},
        "medications": {"source": 2400, "target": 2390, "missing": 10, "extra": 0, "match_rate": 0.9958},
    },
    "safety_critical_gates": [
        {"name": "allergies_present", "value": 1.0, "threshold": 1.0, "passed": True},
        {"name": "suicide_risk_flags_transferred", "value": 0.98, "threshold": 1.0, "passed": False},
        {"name": "no_unknown_queue_orders", "passed": True},
    ],
    "faults_injected": {"allergy_status_flip": 4, "wrong_drug": 2},
}

RISK = {
    "replications": 200,
    "overall": {
        "success_rate": {"mean": 0.52, "ci95": [0.515, 0.525], "p5": 0.49, "p95": 0.55},
        "elapsed_seconds": {"mean": 3600.0, "ci95": {"low": 3550.0, "high": 3650.0}, "p5": 3300.0, "p95": 3900.0},
    },
    "waves": {
        "wave_1": {"success_rate": {"mean": 0.50, "ci_low": 0.49, "ci_high": 0.51, "p05": 0.45, "p95": 0.55}},
        "wave_2": {"success_rate": {"mean": 0.54, "ci_low": 0.53, "ci_high": 0.55, "p05": 0.47, "p95": 0.60}},
    },
    "targets": [{"target": "success>=0.99", "probability": 0.0, "ci95": [0.0, 0.018]}],
}

COMPARISON = {
    "strategies": {
        "staged": {
            "success_rate": {"mean": 0.52, "ci95": [0.51, 0.53], "p5": 0.49, "p95": 0.55},
            "downtime_hours": {"mean": 0.06, "ci95": [0.05, 0.07], "p5": 0.04, "p95": 0.08},
        },
        "big_bang": {
            "success_rate": {"mean": 0.48, "ci95": [0.47, 0.49], "p5": 0.45, "p95": 0.51},
            "downtime_hours": {"mean": 1.5, "ci95": [1.4, 1.6], "p5": 1.2, "p95": 1.8},
        },
        "parallel": {
            "success_rate": {"mean": 0.52, "ci95": [0.51, 0.53], "p5": 0.49, "p95": 0.55},
            "downtime_hours": {"mean": 0.0, "ci95": [0.0, 0.0], "p5": 0.0, "p95": 0.0},
        },
    },
    "replications": 50,
}

# band leaves in the fixtures above (what the band charts must draw, one datum per leaf)
RISK_BANDS = 4
COMPARISON_BANDS = 6


def rich_doc(**kw: Any) -> dict[str, Any]:
    """A model document with data-mode, risk and comparison sections added and the data-mode metrics set."""
    doc = model_doc(**kw)
    doc["data_mode"] = copy.deepcopy(DATA_MODE)
    doc["risk"] = copy.deepcopy(RISK)
    doc["comparison"] = copy.deepcopy(COMPARISON)
    doc["metrics"]["fidelity"] = 0.9987
    doc["metrics"]["safety"] = 2 / 3
    return doc


def chromium_paths() -> tuple | None:
    """(chromium, chromedriver) if both are installed, else None."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"
