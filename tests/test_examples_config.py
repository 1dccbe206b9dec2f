"""The shipped example configs load, and the production one reaches about 99 % as the README says."""

from __future__ import annotations

from pathlib import Path

import pytest
from _sim_helpers import binomial_tolerance, expected_success, ids

from vistasim import MigrationSimulator
from vistasim.config import load_yaml

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("name", ["production.yaml", "high_risk.yaml", "migration_config.yaml"])
def test_examples_load(name):
    s = load_yaml(EXAMPLES / name)
    assert s.config.validate()


def test_production_example_reaches_99_percent():
    s = load_yaml(EXAMPLES / "production.yaml")
    run = MigrationSimulator(s.config, seed=0).simulate_migration(ids(10000), batch_size=s.batch_size)
    p = expected_success(s.config)
    assert 0.99 < p < 0.995
    assert abs(run.overall_success_rate - p) < binomial_tolerance(p, 10000)
    assert run.overall_success_rate == pytest.approx(0.9934)
