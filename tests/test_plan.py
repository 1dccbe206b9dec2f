"""Cutover plans: the built-in VA plan, YAML loading, and one-line validation errors."""

from __future__ import annotations

import copy

import pytest
from _risk_fixtures import two_wave_doc

from vistasim.errors import ConfigError, InputError
from vistasim.risk.plan import builtin_plan, load_plan, plan_from_document, single_site_plan


def test_builtin_plan_is_va_sized():
    p = builtin_plan("va_ehrm")
    assert 115 <= len(p.sites) <= 135  # about 130 VistA instances
    assert 8_500_000 <= p.total_patients <= 9_500_000  # about 9 million enrolled veterans
    assert len(p.waves) == 20
    in_waves = [s for w in p.waves for s in w.sites]
    assert sorted(in_waves) == sorted(p.sites)  # every site cuts over exactly once
    assert [w.date for w in p.waves] == sorted(w.date for w in p.waves)
    assert {w.strategy for w in p.waves} == {"staged", "big_bang", "parallel"}
    assert p.shared_person_fraction == pytest.approx(0.08)
    assert p.waves[0].go_no_go.min_success == pytest.approx(0.985)
    assert load_plan("va_ehrm").total_patients == p.total_patients


def test_load_plan_from_yaml(tmp_path):
    import yaml

    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(two_wave_doc({"network_failure_rate": 0.02})))
    p = load_plan(path)
    assert p.total_patients == 900
    assert p.wave_patients(0) == 500 and p.wave_patients(1) == 400
    assert p.config.network_failure_rate == 0.02
    assert p.wave_config(0).max_concurrent_patients == 10
    assert p.wave_offset_seconds(1) == pytest.approx(59 * 86400)


def _mutate(path, value):
    doc = copy.deepcopy(two_wave_doc())
    node = doc["plan"]
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


@pytest.mark.parametrize("path,value,fragment", [
    (("sites", 0, "patients"), 0, "patients"),
    (("sites", 1, "station"), "506", "listed twice"),
    (("waves", 0, "sites"), ["506", "999"], "999"),
    (("waves", 1, "sites"), ["506"], "already in wave"),
    (("waves", 1, "date"), "2026-01-15", "previous wave"),
    (("waves", 0, "date"), "2025-06-01", "before start_time"),
    (("waves", 0, "date"), "soon", "not a date"),
    (("waves", 0, "strategy"), "gradual", "unknown value"),
    (("waves", 0, "batch_size"), -5, "batch_size"),
    (("waves", 0, "go_no_go"), {"min_success": 1.5}, "min_success"),
    (("waves", 0, "go_no_go"), {"max_reruns": 9}, "max_reruns"),
    (("waves", 0, "colour"), "red", "unknown key"),
    (("shared_person_fraction",), 1.0, "shared_person_fraction"),
    (("waves",), [], "waves"),
])
def test_bad_plans_raise_one_line_config_errors(path, value, fragment):
    with pytest.raises(ConfigError) as err:
        plan_from_document(_mutate(path, value))
    msg = str(err.value)
    assert fragment in msg and "\n" not in msg


def test_site_in_no_wave_is_an_error():
    doc = two_wave_doc()
    doc["plan"]["waves"][1]["sites"] = []
    with pytest.raises(ConfigError, match="non-empty"):
        plan_from_document(doc)
    doc["plan"]["waves"].pop()
    with pytest.raises(ConfigError, match="in no wave"):
        plan_from_document(doc)


def test_missing_plan_file_and_section(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_plan(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="plan:"):
        plan_from_document({"migration_settings": {}})


def test_single_site_plan():
    p = single_site_plan(1234, strategy="parallel", batch_size=50)
    assert p.total_patients == 1234 and p.waves[0].strategy == "parallel" and p.waves[0].go_no_go.min_success is None
    with pytest.raises(ConfigError):
        single_site_plan(0)
