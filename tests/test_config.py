"""MigrationConfig and its YAML form: defaults, validation, precedence, one-line errors."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vistasim.config import MigrationConfig, load_yaml, settings_from_document
from vistasim.errors import ConfigError, InputError


def test_spec_defaults():
    c = MigrationConfig()
    assert c.stage_success_rates == {"extract": 0.98, "transform": 0.95, "validate": 0.92, "load": 0.90}
    assert (c.duration_variance, c.quality_degradation_per_failure, c.quality_degradation_per_success) == (
        0.3,
        0.15,
        0.02,
    )
    assert (c.network_failure_rate, c.system_overload_rate, c.data_corruption_rate) == (0.05, 0.03, 0.01)
    assert (c.max_concurrent_patients, c.retry_attempts, c.retry_delay_seconds) == (10, 3, 1.0)
    assert c.substage_success_rates["load"] == {"staging": 0.95, "production": 0.88, "verification": 0.92}
    assert c.error_type_weights["extract"]["network_timeout"] == 0.6
    assert c.start_time == datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("network_failure_rate", 1.2, "between 0 and 1"),
        ("system_overload_rate", -0.1, "between 0 and 1"),
        ("data_corruption_rate", float("nan"), "between 0 and 1"),
        ("quality_degradation_per_failure", 1.5, "between -1 and 1"),
        ("quality_degradation_per_success", -2, "between -1 and 1"),
        ("max_concurrent_patients", 0, "> 0"),
        ("max_concurrent_patients", 2.5, "whole number"),
        ("retry_attempts", -1, "0 to 20"),
        ("retry_delay_seconds", -1.0, "between 0"),
        ("duration_variance", 1.0, "between 0 and 1"),
        ("stage_success_rates", {"extract": 1.1}, "extract"),
        ("stage_success_rates", {"loading": 0.9}, "unknown stage 'loading'"),
        ("substage_success_rates", {"load": {"promote": 0.9}}, "unknown substage 'promote'"),
        ("stage_base_duration", {"load": 0}, "> 0"),
        ("error_type_weights", {"load": {"gremlins": 1.0}}, "unknown error type"),
        ("error_type_weights", {"load": {"mapping_error": 0.0}}, "must not all be 0"),
    ],
)
def test_bad_values_give_one_line_errors(field, value, match):
    with pytest.raises(ConfigError, match=match) as err:
        MigrationConfig(**{field: value})
    assert "\n" not in str(err.value) and field.split("_")[0] in str(err.value)


@given(st.floats(min_value=0, max_value=1), st.floats(min_value=-1, max_value=1))
@settings(max_examples=50, deadline=None)
def test_any_in_range_value_is_accepted(rate, degradation):
    c = MigrationConfig(network_failure_rate=rate, quality_degradation_per_success=degradation)
    assert c.to_dict()["network_failure_rate"] == rate


@given(st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1 + 1e-9), st.text(), st.none()))
@settings(max_examples=50, deadline=None)
def test_any_out_of_range_rate_is_rejected(rate):
    with pytest.raises(ConfigError):
        MigrationConfig(system_overload_rate=rate)


SPEC_YAML = """
migration_settings:
  source_system: "vista"
  target_system: "oracle_health"
  migration_strategy: "staged"
  success_rates:
    extract: 0.98
    transform: 0.95
    validate: 0.92
    load: 0.90
  network_failure_rate: 0.05
  system_overload_rate: 0.03
  data_corruption_rate: 0.01

simulate_migration: true
batch_size: 100
migration_strategy: "staged"
migration_report: "migration_report.txt"
"""


def test_spec_yaml_loads(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(SPEC_YAML)
    s = load_yaml(p)
    assert s.batch_size == 100 and s.migration_strategy == "staged" and s.simulate_migration is True
    assert s.migration_report == "migration_report.txt"
    assert s.config.stage_success_rates["validate"] == 0.92


def test_every_config_field_by_name_and_partial_maps():
    doc = {
        "migration_settings": {
            "stage_success_rates": {"load": 0.5},
            "substage_success_rates": {"load": {"production": 0.7}},
            "max_concurrent_patients": 25,
            "retry_attempts": 5,
            "retry_delay_seconds": 2.5,
            "duration_variance": 0.1,
            "quality_degradation_per_failure": 0.2,
            "quality_degradation_per_success": -0.01,
            "stage_base_duration": {"extract": 4.0},
            "error_type_weights": {"transform": {"mapping_error": 1.0}},
            "start_time": "2027-03-01T06:00:00Z",
        }
    }
    c = settings_from_document(doc).config
    assert c.stage_success_rates == {"extract": 0.98, "transform": 0.95, "validate": 0.92, "load": 0.5}
    assert c.substage_success_rates["load"] == {"staging": 0.95, "production": 0.7, "verification": 0.92}
    assert c.substage_success_rates["extract"]["connect"] == 0.99
    assert c.stage_base_duration["extract"] == 4.0 and c.stage_base_duration["load"] == 2.5
    assert c.error_type_weights["transform"] == {"mapping_error": 1.0}
    assert c.start_time == datetime(2027, 3, 1, 6, tzinfo=timezone.utc)
    assert (c.max_concurrent_patients, c.retry_attempts, c.retry_delay_seconds) == (25, 5, 2.5)


@pytest.mark.parametrize(
    "text,match",
    [
        ("migration_settings: [1, 2", "not valid YAML at line"),
        ("batch_size: -5", "batch_size"),
        ("migration_strategy: yolo", "unknown strategy 'yolo'"),
        ("migration_settings:\n  network_failure_rate: 3", "network_failure_rate"),
        ("migration_settings:\n  colour: blue", "unknown key 'colour'"),
        ("batchsize: 10", "unknown key 'batchsize'"),
        ("migration_strategy: staged\nmigration_settings:\n  migration_strategy: big_bang", "give it once"),
        ("- a\n- b", "top level must be a mapping"),
        ("migration_settings:\n  success_rates: {extract: 0.9}\n  stage_success_rates: {load: 0.9}", "given twice"),
    ],
)
def test_bad_yaml_names_the_problem(tmp_path, text, match):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match) as err:
        load_yaml(p)
    assert "\n" not in str(err.value) and "bad.yaml" in str(err.value)


def test_missing_config_file():
    with pytest.raises(InputError, match="not found"):
        load_yaml("/nonexistent/c.yaml")
