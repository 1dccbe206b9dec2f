"""Fault plug-ins: keyed, so the same seed hits the same persons; hit rates follow the configured rate."""

from __future__ import annotations

import math

import pytest
from _pipeline_fixtures import clean_population, quiet_config, run

from vistasim.errors import ConfigError
from vistasim.pipeline.faults import FaultDraws
from vistasim.pipeline.settings import DATA_FAULTS, settings_from_extra


def test_hit_rate_follows_the_rate_within_sampling_error():
    draws = FaultDraws(seed=17)
    n, rate = 4000, 0.2
    hits = sum(draws.hit("corruption", f"{1000000000 + i}V123456", rate) is not None for i in range(n))
    sd = math.sqrt(n * rate * (1 - rate))
    assert abs(hits - n * rate) < 4 * sd
    assert FaultDraws(17).hit("corruption", "x", 0.0) is None


def test_same_seed_same_answer_key_and_faults_are_independent():
    recs = clean_population(80, seed=21)
    a = run(recs, quiet_config(), faults={"code_system_lost": 0.3, "allergy_status_flip": 0.3}, seed=9).data_runs[-1]
    b = run(recs, quiet_config(), faults={"code_system_lost": 0.3, "allergy_status_flip": 0.3}, seed=9).data_runs[-1]
    c = run(recs, quiet_config(), faults={"code_system_lost": 0.3}, seed=9).data_runs[-1]
    d = run(recs, quiet_config(), faults={"code_system_lost": 0.3}, seed=10).data_runs[-1]
    assert a.answer_key == b.answer_key
    persons = lambda r, k: {e.person_id for e in r.answer_key if e.kind == k}  # noqa: E731
    assert persons(a, "code_system_lost") == persons(c, "code_system_lost")  # switching a fault on changes no other
    assert persons(c, "code_system_lost") != persons(d, "code_system_lost")


def test_source_records_are_never_modified():
    import copy

    recs = clean_population(40, seed=5)
    before = copy.deepcopy(recs)
    run(recs, quiet_config(data_corruption_rate=1.0), faults={k: 1.0 for k in DATA_FAULTS})
    assert recs == before


@pytest.mark.parametrize(
    "extra, needle",
    [
        ({"faults": {"gremlins": 0.1}}, "unknown fault"),
        ({"faults": {"corruption": 2}}, "between 0 and 1"),
        ({"data_mode": {"timezone": "Mars/Olympus"}}, "IANA"),
        ({"data_mode": {"go_no_go": -1}}, "go_no_go"),
        ({"data_mode": {"colour": "red"}}, "unknown key"),
    ],
)
def test_bad_settings_name_the_key(extra, needle):
    with pytest.raises(ConfigError, match=needle):
        settings_from_extra(extra)


@pytest.mark.parametrize("strategy", ["big_bang", "parallel"])
def test_other_strategies_run_in_data_mode(strategy):
    recs = clean_population(60, seed=4)
    sim = run(recs, quiet_config(network_failure_rate=0.05), strategy=strategy, batch_size=25)
    dr = sim.data_runs[-1]
    assert len(dr.status) == len(recs)
    a = sim.get_migration_analytics()
    assert a["summary"]["total_patients"] == len(recs)
    assert a["summary"]["migrated_patients"] == dr.status.count("migrated")


def test_person_at_a_time_merges_equal_the_wave_at_a_time_fault():
    """Data mode merges as it meets each person (_PersonFlow); with many draws, persons that cannot
    take part (a check failed, a split-off bundle, no Patient entry) and drawn persons waiting for a
    partner, it must pair exactly the persons IdentityMerge.apply pairs over the whole wave, with the
    same answer-key rows in the same order."""
    import copy

    from vistasim.pipeline.datamode import _PersonFlow
    from vistasim.pipeline.faults import IdentityMerge
    from vistasim.pipeline.work import PersonWork

    def person(i: int) -> PersonWork:
        entry = [{"fullUrl": f"urn:uuid:p{i}", "resource": {"resourceType": "Patient", "id": f"p{i}"}}]
        if i % 11 == 3:
            entry = []  # no Patient entry: its merge attempt fails and the partner stays free
        entry.append({"fullUrl": f"urn:uuid:c{i}", "resource": {"resourceType": "Condition", "id": f"c{i}",
                                                                  "subject": {"reference": f"urn:uuid:p{i}"}}})
        p = PersonWork(f"{1000000000 + i}V123456", [i], [], bundle={"entry": entry})
        if i % 7 == 2:
            p.extra_bundles["L1"] = {"entry": []}  # split: may absorb, cannot be absorbed
        if i % 13 == 5:
            p.stop_step = 9  # a check failed: takes no part
        return p

    persons = [person(i) for i in range(400)]
    draws = FaultDraws(seed=4)
    wave = copy.deepcopy(persons)
    want = IdentityMerge(0.45).apply(wave, draws)
    flow_persons = copy.deepcopy(persons)
    pt = {p.person_id: 16 for p in flow_persons}
    flow = _PersonFlow({"identity_merge": IdentityMerge(0.45)}, draws,
                       lambda p, s: s == 7 and p.merged_into is None, pt, "UTC", "2026-01-01", {})
    order = []
    flow._finish = order.append  # type: ignore[method-assign]  # record the finishing order only
    for p in flow_persons:
        flow.add(p)
    flow.finish()
    assert len(want) >= 100  # the case is not trivial: dozens of merges
    assert flow.answer() == want
    assert [p.merged_into for p in flow_persons] == [p.merged_into for p in wave]
    assert [p.rows for p in flow_persons if p.merged_into is None and len(p.rows) > 1]  # owners took rows
    assert [p.person_id for p in order] == [p.person_id for p in flow_persons]  # finished in wave order
