"""The engine's semantics, measured: rates, retries, backoff, rounds, durations, strategies, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from _sim_helpers import binomial_tolerance, expected_success, ids, perfect_config

from vistasim.config import MigrationConfig
from vistasim.engine import (
    MIGRATED,
    N_STEPS,
    STEPS,
    draw_outcomes,
    retry_delay,
    schedule,
    strategy_params,
    wave_keys_for,
    waves_for,
)
from vistasim.model import ERROR_TYPES
from vistasim.rng import string_keys


def test_sixteen_steps_in_order():
    assert N_STEPS == 16
    assert STEPS[0] == ("extract", "connect") and STEPS[3] == ("extract", None) and STEPS[-1] == ("load", None)


def test_perfect_config_every_patient_passes_every_step_once():
    keys = string_keys(ids(5000))
    out = draw_outcomes(keys, perfect_config(), seed=1)
    assert (out.fail_step == MIGRATED).all()
    assert (out.attempts == 1).all()
    assert out.f_patient.size == 0
    assert np.allclose(out.quality, 1 - 4 * 0.02)


@pytest.mark.parametrize("step", range(16))
def test_first_attempt_pass_rate_matches_configured_rate(step):
    """Only the step under test can fail (no network/overload), so its first-attempt pass rate is its rate."""
    stage, sub = STEPS[step]
    cfg = perfect_config()
    rate = 0.9
    if sub is None:
        cfg.stage_success_rates[stage] = rate
    else:
        cfg.substage_success_rates[stage][sub] = rate
    n = 20000
    out = draw_outcomes(string_keys(ids(n)), cfg, seed=11)
    first_fail = np.zeros(n, dtype=bool)
    rows = (out.f_step == step) & (out.f_attempt == 1)
    first_fail[out.f_patient[rows]] = True
    measured = 1 - first_fail.mean()
    assert abs(measured - rate) < binomial_tolerance(rate, n)
    # and no other step ever failed
    assert set(np.unique(out.f_step).tolist()) <= {step}


def test_network_rate_and_type():
    cfg = perfect_config(network_failure_rate=0.2, retry_attempts=0)
    n = 20000
    out = draw_outcomes(string_keys(ids(n)), cfg, seed=3)
    # with no retries, a patient survives 16 independent steps with prob 0.8^16
    p = 0.8**16
    assert abs(out.migrated.mean() - p) < binomial_tolerance(p, n)
    assert set(out.f_type.tolist()) == {ERROR_TYPES.index("network_timeout")}


def test_overload_type_depends_on_stage_and_big_bang_quadruples_it():
    cfg = perfect_config(system_overload_rate=0.05, retry_attempts=0)
    n = 20000
    keys = string_keys(ids(n))
    out = draw_outcomes(keys, cfg, seed=5)
    load_steps = out.f_step >= 12
    assert set(out.f_type[load_steps].tolist()) == {ERROR_TYPES.index("system_unavailable")}
    assert set(out.f_type[~load_steps].tolist()) == {ERROR_TYPES.index("resource_exhaustion")}
    bb = strategy_params("big_bang", cfg)
    assert bb.overload_rate == pytest.approx(0.2)
    out_bb = draw_outcomes(keys, cfg, seed=5, overload_rate=bb.overload_rate)
    for o, rate in ((out, 0.05), (out_bb, 0.2)):
        p = (1 - rate) ** 16
        assert abs(o.migrated.mean() - p) < binomial_tolerance(p, n)


def test_retries_recover_transient_failures_by_the_formula():
    n = 20000
    keys = string_keys(ids(n))
    measured = []
    for r in (0, 1, 3):
        cfg = perfect_config(network_failure_rate=0.3, retry_attempts=r)
        out = draw_outcomes(keys, cfg, seed=9)
        p = (1 - 0.3 ** (r + 1)) ** 16
        assert abs(out.migrated.mean() - p) < binomial_tolerance(p, n)
        assert out.attempts.max() <= r + 1
        measured.append(out.migrated.mean())
    assert measured[0] < measured[1] < measured[2]


def test_permanent_errors_are_not_retried():
    cfg = perfect_config()
    cfg.substage_success_rates["transform"]["map"] = 0.5
    cfg.error_type_weights["transform"] = {"mapping_error": 1.0}
    out = draw_outcomes(string_keys(ids(4000)), cfg, seed=2)
    assert out.attempts.max() == 1
    failed = ~out.migrated
    assert (out.fail_step[failed] == STEPS.index(("transform", "map"))).all()
    assert (out.fail_type[failed] == ERROR_TYPES.index("mapping_error")).all()


def test_error_type_weights_are_followed():
    cfg = perfect_config(retry_attempts=0)
    cfg.substage_success_rates["validate"]["business_rules"] = 0.0
    out = draw_outcomes(string_keys(ids(20000)), cfg, seed=4)
    types = out.fail_type[~out.migrated]
    weights = cfg.error_weights("validate")
    for etype, w in weights.items():
        share = (types == ERROR_TYPES.index(etype)).mean()
        assert abs(share - w) < binomial_tolerance(w, types.size)


def test_corruption_is_caught_in_validate_and_costs_quality_twice():
    cfg = perfect_config(data_corruption_rate=0.1)
    n = 20000
    out = draw_outcomes(string_keys(ids(n)), cfg, seed=6)
    assert abs(out.corrupted.mean() - 0.1) < binomial_tolerance(0.1, n)
    assert (~out.migrated == out.corrupted).all()
    steps = set(out.fail_step[out.corrupted].tolist())
    assert steps == {STEPS.index(("validate", "schema_check")), STEPS.index(("validate", "data_integrity"))}
    assert (out.fail_type[out.corrupted] == ERROR_TYPES.index("data_corruption")).all()
    # 1 - 0.15 (corruption) - 2 x 0.02 (extract, transform passed) - 0.15 (the permanent failure)
    assert np.allclose(out.quality[out.corrupted], 0.66)


def test_quality_improves_with_negative_degradation_and_stays_in_bounds():
    out = draw_outcomes(string_keys(ids(100)), perfect_config(quality_degradation_per_success=-0.05), seed=1)
    assert np.allclose(out.quality, 1.0)
    cfg = perfect_config(quality_degradation_per_success=0.3)
    assert np.allclose(draw_outcomes(string_keys(ids(100)), cfg, seed=1).quality, 0.0)
    cfg = perfect_config(
        data_corruption_rate=1.0, quality_degradation_per_failure=-0.5, quality_degradation_per_success=0.1
    )
    q = draw_outcomes(string_keys(ids(100)), cfg, seed=1).quality
    # corruption: min(1, 1+0.5)=1; two stages: 0.8; failure: min(1, 1.3) = 1.0
    assert np.allclose(q, 1.0)


def test_default_success_matches_the_analytic_probability():
    cfg = MigrationConfig()
    n = 50000
    out = draw_outcomes(string_keys(ids(n)), cfg, seed=0)
    p = expected_success(cfg)
    assert 0.50 < p < 0.53  # DESIGN.md: "about half of the patients migrate"
    assert abs(out.migrated.mean() - p) < binomial_tolerance(p, n)


def test_outcomes_depend_only_on_patient_key_not_on_batch_or_order():
    cfg = MigrationConfig()
    keys = string_keys(ids(3000))
    whole = draw_outcomes(keys, cfg, seed=42)
    perm = np.random.default_rng(0).permutation(keys.size)
    shuffled = draw_outcomes(keys[perm], cfg, seed=42)
    assert np.array_equal(whole.fail_step[perm], shuffled.fail_step)
    assert np.array_equal(whole.attempts[perm], shuffled.attempts)
    part = draw_outcomes(keys[1000:1500], cfg, seed=42)
    assert np.array_equal(whole.fail_step[1000:1500], part.fail_step)
    other_seed = draw_outcomes(keys, cfg, seed=43)
    assert not np.array_equal(whole.fail_step, other_seed.fail_step)


# --------------------------------------------------------------------------- timing


def _elapsed(cfg, n, batch, strategy="staged", seed=1):
    out = draw_outcomes(string_keys(ids(n)), cfg, seed=seed)
    params = strategy_params(strategy, cfg)
    wave_of = np.zeros(n, dtype=np.int64) if params.one_wave else waves_for(n, batch)
    wk = wave_keys_for([f"b{i}" for i in range(int(wave_of.max()) + 1)])
    return schedule(out, cfg, params, wave_of, wk, seed), out


def test_round_durations_follow_the_formula_exactly_without_variance():
    cfg = perfect_config(duration_variance=0.0)
    sched, _ = _elapsed(cfg, 100, 100)
    # 100 patients, c=10: 10 rounds of 10 per step, each lasting base/4 x (1 + log10(1)); 4 steps per stage
    assert sched.end == pytest.approx(10 * sum(cfg.stage_base_duration.values()))
    assert sched.peak_concurrency == 10
    cfg.max_concurrent_patients = 100
    sched, _ = _elapsed(cfg, 100, 100)
    # one round of 100 per step: base/4 x (1 + log10(10)) = base/2
    assert sched.end == pytest.approx(4 * sum(cfg.stage_base_duration.values()) / 2)


def test_stage_base_duration_moves_elapsed_by_exactly_its_share():
    cfg = perfect_config(duration_variance=0.0)
    base, _ = _elapsed(cfg, 100, 100)
    cfg.stage_base_duration["load"] *= 2
    doubled, _ = _elapsed(cfg, 100, 100)
    assert doubled.end - base.end == pytest.approx(10 * 2.5)


def test_variance_spreads_round_durations_within_bounds():
    cfg = perfect_config(duration_variance=0.3)
    sched, _ = _elapsed(cfg, 2000, 2000)
    nominal = 200 * sum(cfg.stage_base_duration.values())
    assert 0.7 * nominal < sched.end < 1.3 * nominal
    # 3,200 rounds with U(0.7, 1.3): the mean is within a few standard errors of nominal
    assert abs(sched.end / nominal - 1) < 4.5 * (0.6 / np.sqrt(12)) / np.sqrt(3200)


def test_concurrency_shortens_elapsed_with_diminishing_returns():
    ends = []
    for c in (5, 10, 20, 40, 80):
        cfg = perfect_config(duration_variance=0.0, max_concurrent_patients=c)
        ends.append(_elapsed(cfg, 400, 400)[0].end)
    gains = [a - b for a, b in zip(ends, ends[1:])]
    assert all(g > 0 for g in gains)
    assert all(g1 > g2 for g1, g2 in zip(gains, gains[1:]))


def test_one_forced_transient_failure_adds_exactly_the_backoff():
    """Find a patient hit by exactly one network fault; doubling the delay adds exactly one delay."""
    cfg = perfect_config(network_failure_rate=0.05, duration_variance=0.0)
    keys = string_keys(ids(200))
    out = draw_outcomes(keys, cfg, seed=8)
    one = np.flatnonzero((out.attempts.sum(axis=1) == 17) & out.migrated)
    assert one.size > 0
    pid = [ids(200)[int(one[0])]]
    ends = []
    for d in (1.0, 2.0, 4.0):
        c = perfect_config(network_failure_rate=0.05, duration_variance=0.0, retry_delay_seconds=d)
        o = draw_outcomes(string_keys(pid), c, seed=8)
        s = schedule(o, c, strategy_params("staged", c), np.zeros(1, dtype=np.int64), wave_keys_for(["w"]), 8)
        ends.append(s.end)
    assert ends[1] - ends[0] == pytest.approx(1.0)
    assert ends[2] - ends[1] == pytest.approx(2.0)


def test_backoff_is_exponential():
    assert retry_delay(np.array([1, 2, 3, 4]), 1.5).tolist() == [0.0, 1.5, 4.5, 10.5]


def test_staged_has_barriers_between_steps():
    cfg = MigrationConfig()
    sched, out = _elapsed(cfg, 300, 100)
    for w in range(3):
        members = slice(100 * w, 100 * (w + 1))
        for s in range(N_STEPS - 1):
            end_s = np.nanmax(sched.step_end[members, s])
            start_next = np.nanmin(sched.step_start[members, s + 1]) if np.any(out.attempts[members, s + 1]) else np.inf
            assert start_next >= end_s - 1e-9
    # waves do not overlap
    assert np.all(sched.wave_start[1:] >= sched.wave_end[:-1] - 1e-9)


def test_parallel_overlaps_steps_and_big_bang_is_one_wave():
    cfg = MigrationConfig()
    par, out = _elapsed(cfg, 300, 100, strategy="parallel")
    overlap = np.nanmin(par.step_start[:, 1]) < np.nanmax(par.step_end[:, 0])
    assert overlap
    assert par.reconcile_end is not None and np.all(np.isnan(par.reconcile_end) == ~out.migrated)
    assert par.peak_concurrency > strategy_params("parallel", cfg).concurrency  # several steps in flight
    bb, _ = _elapsed(cfg, 300, 100, strategy="big_bang")
    assert bb.wave_start.size == 1 and bb.peak_concurrency == 40


def test_patient_key_does_not_depend_on_the_other_ids_of_the_call():
    short = string_keys(["500:1234"])
    mixed = string_keys(["500:1234", "640A4:123456789012"])
    assert short[0] == mixed[0]
    keys = string_keys(ids(100000))
    assert np.unique(keys).size == 100000
