"""Shared helpers for the model-mode tests: configs and expected values derived from the semantics."""

from __future__ import annotations

import math

from vistasim.config import MigrationConfig
from vistasim.model import STAGES, SUBSTAGES, TRANSIENT_ERRORS


def perfect_config(**overrides) -> MigrationConfig:
    """Every rate 1.0, no faults: nothing can fail."""
    cfg = MigrationConfig(
        stage_success_rates={s: 1.0 for s in STAGES},
        substage_success_rates={s: {u: 1.0 for u in SUBSTAGES[s]} for s in STAGES},
        network_failure_rate=0.0,
        system_overload_rate=0.0,
        data_corruption_rate=0.0,
    )
    for k, v in overrides.items():
        setattr(cfg, k, v)
    cfg.validate()
    return cfg


def ids(n: int, station: str = "500") -> list[str]:
    return [f"{station}:{i}" for i in range(1, n + 1)]


def binomial_tolerance(p: float, n: int, z: float = 4.5) -> float:
    """Half-width of a z-sigma interval for a proportion p estimated from n trials (z=4.5: ~1e-5 two-sided)."""
    return z * math.sqrt(max(p * (1 - p), 1e-12) / n) + 1e-12


def expected_success(cfg: MigrationConfig, overload_factor: float = 1.0) -> float:
    """Probability that a patient migrates, computed from the semantics in DESIGN.md."""
    n = cfg.network_failure_rate
    o = min(1.0, cfg.system_overload_rate * overload_factor)
    total = 1.0 - cfg.data_corruption_rate
    for stage in STAGES:
        weights = cfg.error_weights(stage)
        t_share = sum(w for e, w in weights.items() if e in TRANSIENT_ERRORS) / sum(weights.values())
        for rate in [cfg.substage_rate(stage, u) for u in SUBSTAGES[stage]] + [cfg.stage_rate(stage)]:
            q = rate * (1 - n) * (1 - o)
            transient = n + (1 - n) * o + (1 - n) * (1 - o) * (1 - rate) * t_share
            total *= q * sum(transient**k for k in range(cfg.retry_attempts + 1))
    return total


def per_attempt_rates(cfg: MigrationConfig) -> dict[str, float]:
    return {f"{s}/{u}": cfg.substage_rate(s, u) for s in STAGES for u in SUBSTAGES[s]}
