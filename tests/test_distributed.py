"""Same seed, same bytes: in-process, on local processes, and on Dask (a LocalCluster of 2 workers on 127.0.0.1)."""

from __future__ import annotations

import json

import pytest
from _risk_fixtures import two_wave_doc

from vistasim.cli import main
from vistasim.distributed import resolve_executor, run_tasks, split
from vistasim.errors import ConfigError
from vistasim.results import dumps, provenance
from vistasim.risk.montecarlo import risk_section, simulate_risk
from vistasim.risk.plan import plan_from_document
from vistasim.risk.sections import model_sections, results_document
from vistasim.risk.targets import parse_target

distributed = pytest.importorskip("distributed")

PLAN = plan_from_document(two_wave_doc({"network_failure_rate": 0.04}))


def _bytes(run) -> bytes:
    sec = risk_section(run, [parse_target("success>=0.5")], "plan")
    doc = results_document("risk", PLAN, run.seed, model_sections(PLAN, run.rep0, run.wave_start[0].tolist()),
                           {"risk": sec}, provenance([], 0.0))
    doc.pop("provenance")
    return dumps(doc)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="module")
def reference() -> bytes:
    return _bytes(simulate_risk(PLAN, 6, 21))


def test_split_and_resolve():
    assert split(list(range(7)), 3) == [(0, 1, 2), (3, 4), (5, 6)]
    assert split([1, 2], 5) == [(1,), (2,)]
    assert resolve_executor(None, None, None) == "inprocess"
    assert resolve_executor(None, 2, None) == "dask"
    assert resolve_executor("processes", 2, None) == "processes"
    assert resolve_executor(None, None, "tcp://127.0.0.1:1") == "dask"
    with pytest.raises(ConfigError):
        resolve_executor("processes", None, "tcp://x:1")
    with pytest.raises(ConfigError):
        resolve_executor(None, None, "localhost")


def test_task_split_does_not_change_results(reference):
    for tasks in (1, 3, 12):
        assert _bytes(simulate_risk(PLAN, 6, 21, tasks=tasks)) == reference


def test_local_processes_identical(reference):
    run = simulate_risk(PLAN, 6, 21, executor="processes", workers=2)
    assert _bytes(run) == reference
    assert run.execution.tasks >= 4 and run.execution.distinct_workers == 2


def test_dask_cluster_identical_and_split_over_both_workers(cluster, reference):
    run = simulate_risk(PLAN, 6, 21, scheduler=cluster.scheduler_address)
    assert _bytes(run) == reference
    assert run.execution.executor == "dask"
    assert run.execution.tasks >= 4
    assert set(run.execution.workers) == set(cluster.scheduler_info["workers"])  # both workers ran tasks


def test_cli_json_identical_in_process_and_on_dask(cluster, tmp_path, capsys):
    args = ["risk", "--plan", "PLAN", "--replications", "4", "--seed", "5", "--json", "--target", "success>=0.4"]
    import yaml

    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(two_wave_doc({"network_failure_rate": 0.04})))
    args[2] = str(plan_file)
    outs = []
    for extra in ([], ["--scheduler", cluster.scheduler_address], ["--workers", "2", "--executor", "processes"]):
        assert main([*args, "--out", str(tmp_path / f"r{len(outs)}"), *extra]) == 0
        doc = json.loads(capsys.readouterr().out)
        doc.pop("provenance")
        outs.append(json.dumps(doc, sort_keys=False))
    assert outs[0] == outs[1] == outs[2]


def test_dask_local_cluster_from_workers(reference):
    run = simulate_risk(PLAN, 6, 21, workers=2)
    assert run.execution.executor == "dask" and run.execution.distinct_workers == 2
    assert _bytes(run) == reference


def test_run_tasks_keeps_order():
    results, ex = run_tasks(pow, [(2, k) for k in range(5)])
    assert results == [1, 2, 4, 8, 16] and ex.tasks == 5 and ex.executor == "inprocess"
