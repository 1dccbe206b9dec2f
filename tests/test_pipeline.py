"""Data mode end to end: clean data arrives whole; faults are caught or reported; nothing is lost."""

from __future__ import annotations

from collections import Counter

import pytest
from _pg import pg_server, pg_url  # noqa: F401  (fixtures)
from _pipeline_fixtures import clean_population, quiet_config, run

from vistasim.errors import ConfigError
from vistasim.fhir import business_rules, schema_check
from vistasim.pipeline.reconcile import reconcile, score_faults
from vistasim.pipeline.settings import DATA_FAULTS


@pytest.fixture(scope="module")
def clean():
    return clean_population(120, seed=11)


def _status(sim):
    dr = sim.data_runs[-1]
    return dr, dict(zip(dr.ids, dr.status))


def test_clean_data_arrives_whole_with_fidelity_one(clean):
    sim = run(clean, quiet_config())
    dr, status = _status(sim)
    assert Counter(dr.status) == {"migrated": len(clean)}
    assert dr.resources_validated == dr.resources_mapped > 20 * len({r.full_icn for r in clean})
    rec = reconcile(clean, sim.target, status=status)
    assert rec.fidelity == 1.0 and rec.safety == 1.0
    assert rec.diffs == [] and rec.duplicates == {} and rec.unconfirmed_in_target == []
    for d, c in rec.by_domain.items():
        assert c.get("missing", 0) == c.get("changed", 0) == c.get("extra", 0) == 0, d
    # every resource in the target validates, and the target holds one Patient per ICN
    persons = sim.target.persons()
    assert len(persons) == len({r.full_icn for r in clean})
    for pid in persons[:40]:
        resources = sim.target.read_person(pid)
        assert sum(r["resourceType"] == "Patient" for r in resources) == 1
        for res in resources:
            assert [i for i in schema_check(res) if i.is_error] == []
            assert [i for i in business_rules(res) if i.is_error] == []
    a = sim.get_migration_analytics()
    assert a["summary"]["overall_success_rate"] == 1.0 and a["summary"]["total_errors"] == 0


@pytest.mark.parametrize("fault", DATA_FAULTS)
def test_each_fault_alone_is_caught_or_reported_person_by_person(clean, fault):
    sim = run(clean, quiet_config(), faults={fault: 0.35})
    dr, status = _status(sim)
    injected = [e for e in dr.answer_key if e.kind == fault]
    assert injected, f"{fault} hit nobody at rate 0.35"
    assert all(e.kind == fault for e in dr.answer_key)  # nothing else was injected
    rec = reconcile(clean, sim.target, status=status)
    person_records = {}
    for pid, person in zip(dr.ids, dr.person_of):
        person_records.setdefault(person, []).append(pid)
    score = score_faults(dr.answer_key, rec, status, dr.reasons, person_records)
    assert score["by_fault"][fault]["missed"] == 0, score["by_fault"][fault]
    assert score["detection_rate"] == 1.0
    # the answer key and the reconciliation (or the checks that stopped a person) agree person by person
    flagged = {d.person_id for d in rec.diffs} | {
        person for pid, person in zip(dr.ids, dr.person_of) if status[pid] != "migrated"
    }
    assert {e.person_id for e in injected} == flagged
    assert rec.fidelity < 1.0 or any(status[p] != "migrated" for p in status)


def test_safety_faults_fail_their_gates(clean):
    sim = run(
        clean,
        quiet_config(),
        faults={
            "flag_not_transferred": 1.0,
            "allergy_status_flip": 1.0,
            "orders_unknown_queue": 1.0,
            "wrong_drug_code": 1.0,
        },
    )
    dr, status = _status(sim)
    rec = reconcile(clean, sim.target, status=status)
    for gate in ("flags", "allergies", "pending_orders", "active_medications"):
        assert rec.gates[gate]["passed"] is False, gate
    assert rec.safety is not None and rec.safety < 1.0
    assert len(dr.unknown_queue) == sum(1 for e in dr.answer_key if e.kind == "orders_unknown_queue")


def test_conservation_with_outages_defects_and_faults():
    from vistasim.generate import generate_patients

    recs = generate_patients(150, seed=4, sites=2, defects=0.2)
    cfg = quiet_config(network_failure_rate=0.1, system_overload_rate=0.05, retry_attempts=1, data_corruption_rate=0.05)
    sim = run(recs, cfg, faults={"code_system_lost": 0.1, "identity_merge": 0.05, "identity_split": 0.05})
    dr, status = _status(sim)
    counts = Counter(dr.status)
    assert set(counts) <= {"migrated", "failed", "quarantined"}
    assert sum(counts.values()) == len(recs) == len(set(dr.ids))
    assert counts["failed"] > 0 and counts["quarantined"] > 0 and counts["migrated"] > 0
    assert all(dr.reasons[p] for p, s in status.items() if s != "migrated")
    batches = sim.batch_results
    assert sum(b.batch_size for b in batches) == len(recs)
    assert sum(b.migrated for b in batches) == counts["migrated"]
    # engine-shaped outcomes: a record stopped at step s made attempts up to s and none after
    out = dr.outcomes
    for i in range(out.n):
        s = int(out.fail_step[i])
        assert (out.attempts[i, :s] > 0).all() and (out.attempts[i, s + 1 :] == 0).all()
    assert out.f_patient.size == sim.get_migration_analytics()["summary"]["total_errors"]


def test_rerun_into_the_same_target_is_idempotent(clean, tmp_path):
    url = f"sqlite:///{tmp_path / 'out.db'}"
    cfg = quiet_config(network_failure_rate=0.05, data_corruption_rate=0.05)
    sim1 = run(clean, cfg, faults={"identity_split": 0.1}, target=url)
    state1 = sim1.target.dump()
    sim1.target.close()
    sim2 = run(clean, cfg, faults={"identity_split": 0.1}, target=url)
    assert sim2.target.dump() == state1
    dr, status = _status(sim2)
    assert dr.status == sim1.data_runs[-1].status
    rec = reconcile(clean, sim2.target, status=status)
    assert all(n == 2 for n in rec.duplicates.values())  # only the injected splits, not a second copy
    sim2.target.close()


def test_a_wave_missing_go_no_go_is_backed_out():
    recs = clean_population(300, seed=2)
    cfg = quiet_config(network_failure_rate=0.1, retry_attempts=0)
    sim = run(recs, cfg, batch_size=100)
    dr, status = _status(sim)
    backed = [w for w in dr.waves if w.backed_out]
    assert backed, [w.to_dict() for w in dr.waves]
    for w in backed:
        assert w.verified_share < 0.99 and w.backout_seconds > 0 and w.backout_result == "completed"
        assert w.backout_removed == w.promoted_persons
    in_target = set(sim.target.persons())
    for b in sim.batch_results:
        if b.batch_id in {w.wave_id for w in backed}:
            assert b.migrated == 0
    migrated_persons = {p for pid, p in zip(dr.ids, dr.person_of) if status[pid] == "migrated"}
    rec = reconcile(recs, sim.target, status=status)
    assert rec.fidelity in (None, 1.0) and rec.unconfirmed_in_target == []  # None: nobody migrated, no evidence
    assert in_target == migrated_persons
    assert migrated_persons <= in_target
    # the backout's simulated time is on the clock: the next batch starts after it
    ends = {b.batch_id: b for b in sim.batch_results}
    first = backed[0].wave_id
    later = [b for b in sim.batch_results if b.batch_id > first]
    if later:
        assert later[0].started_at >= ends[first].completed_at


def test_model_mode_unchanged_by_the_data_switch():
    from vistasim.simulator import MigrationSimulator

    ids = [f"500:{i}" for i in range(1, 201)]
    a = MigrationSimulator(seed=5).simulate_migration(ids, batch_size=50)
    b = MigrationSimulator(seed=5, mode="model").simulate_migration(ids, batch_size=50)
    assert [x.patient_statuses for x in a.batches] == [x.patient_statuses for x in b.batches]
    with pytest.raises(ConfigError):
        MigrationSimulator(mode="dream")
    with pytest.raises(ConfigError):
        MigrationSimulator(mode="data").simulate_migration(ids)  # data mode needs PatientRecords


def test_in_place_standardize_equals_the_public_function():
    import orjson

    from vistasim.fhir import group_by_person, map_person, standardize
    from vistasim.generate import generate_patients
    from vistasim.pipeline.stages import standardize_stage

    for recs in group_by_person(generate_patients(80, seed=2, sites=2, defects=0.4)).values():
        want = standardize(map_person(recs))
        got, gaps = standardize_stage(map_person(recs))
        assert orjson.dumps(got) == orjson.dumps(want.bundle) and gaps == want.gaps


def test_postgresql_target_ends_in_the_same_state_as_sqlite(clean, pg_url):  # noqa: F811
    cfg = quiet_config(network_failure_rate=0.05, data_corruption_rate=0.05)
    lite = run(clean, cfg, faults={"identity_split": 0.1, "orders_unknown_queue": 0.2})
    pg = run(clean, cfg, faults={"identity_split": 0.1, "orders_unknown_queue": 0.2}, target=pg_url)
    assert pg.target.dump() == lite.target.dump()
    assert pg.data_runs[-1].status == lite.data_runs[-1].status
    dr = pg.data_runs[-1]
    rec = reconcile(clean, pg.target, status=dict(zip(dr.ids, dr.status)))
    assert rec.conservation["adds_up"]
    pg.target.close()


def test_a_person_split_over_two_calls_is_migrated_whole():
    recs = clean_population(200, seed=13, sites=3)
    by_icn = Counter(r.full_icn for r in recs)
    multi = [icn for icn, n in by_icn.items() if n > 1]
    assert multi
    first = [r for r in recs if r.full_icn not in multi] + [next(r for r in recs if r.full_icn == icn) for icn in multi]
    second = [r for r in recs if r not in first]
    from vistasim.pipeline.settings import DataModeSettings
    from vistasim.simulator import MigrationSimulator

    sim = MigrationSimulator(quiet_config(), seed=2, mode="data", data_settings=DataModeSettings())
    sim.simulate_staged_migration(first, batch_id="call_1")
    sim.simulate_staged_migration(second, batch_id="call_2")
    status = {}
    for dr in sim.data_runs:
        status.update(zip(dr.ids, dr.status))
    rec = reconcile(recs, sim.target, status=status)
    assert rec.fidelity == 1.0 and rec.diffs == []
    assert len(sim.target.persons()) == len(by_icn)


def _run_with_source(records, source):
    from vistasim.pipeline.settings import DataModeSettings
    from vistasim.simulator import MigrationSimulator

    sim = MigrationSimulator(quiet_config(), seed=3, mode="data", data_settings=DataModeSettings(), source=source)
    sim.simulate_migration(records, batch_size=40)
    dr = sim.data_runs[-1]
    return dict(zip(dr.ids, dr.status)), dr.reasons


def test_query_selects_through_the_b_index_as_read(clean):
    """Without an ICN a record is found only by name; a B node missing from the source loses it at query."""
    from types import SimpleNamespace

    from vistasim.pipeline.stages import SourceIndex

    records = [r for r in clean[:30]]
    no_icn = records[4]
    index = {}
    for r in records:
        index.setdefault(r.station, {}).setdefault(r.name[:30], []).append(r.dfn)
    full = SourceIndex(records, index)
    assert full.from_source and all(full.select(r.full_icn or r.patient_id, [i], records) is None for i, r in enumerate(records))
    index[no_icn.station][no_icn.name[:30]].remove(no_icn.dfn)
    import dataclasses

    records[4] = dataclasses.replace(no_icn, icn="", icn_checksum="")
    stop = SourceIndex(records, index).select(records[4].patient_id, [4], records)
    assert stop == ("data_corruption", "query: record not found through the MPI or B cross-reference")
    # a record with an ICN and no B node is still found through the MPI
    with_icn = records[5]
    index[with_icn.station][with_icn.name[:30]].remove(with_icn.dfn)
    assert SourceIndex(records, index).select(with_icn.full_icn, [5], records) is None
    status, reasons = _run_with_source(records, SimpleNamespace(name_index=index, parse_failures={}))
    assert status[records[4].patient_id] != "migrated" and "extract/query" in reasons[records[4].patient_id]
    assert status[with_icn.patient_id] == "migrated"
    assert sum(s == "migrated" for s in status.values()) == len(records) - 1


def test_records_whose_nodes_did_not_parse_stop_at_parse(clean):
    from types import SimpleNamespace

    records = clean[:30]
    bad = records[7].patient_id
    failures = {bad: ["file #120.5 entry 12: .01 DATE/TIME VITALS TAKEN is not a FileMan date"]}
    status, reasons = _run_with_source(records, SimpleNamespace(name_index=None, parse_failures=failures))
    assert status[bad] != "migrated"
    assert reasons[bad].startswith("transform/parse: data_corruption (parse: file #120.5 entry 12")
    assert sum(s == "migrated" for s in status.values()) == len(records) - 1
