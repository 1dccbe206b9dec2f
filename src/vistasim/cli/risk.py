"""``vistasim risk``: Monte Carlo over a cutover plan (or N patients), with intervals and target probabilities."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ..distributed import EXECUTORS, resolve_executor
from ..errors import ConfigError
from ._common import (
    add_run_outputs,
    check_run_outputs,
    finish_run_outputs,
    nonneg_int,
    pick,
    positive_int,
    resolve_settings,
    task_progress,
)

EXAMPLES = """examples:
  vistasim risk --patients 10000 --replications 1000 --seed 7 --out runs/r7 --target success>=0.5
  vistasim risk --plan va_ehrm --replications 1 --seed 1 --out runs/va          # built-in ~9M-patient plan
  vistasim risk --plan plan.yaml --replications 200 --workers 2 --target downtime_hours<=48
  vistasim risk --plan plan.yaml --replications 200 --scheduler tcp://127.0.0.1:8786 --json > results.json
"""


def add_population_args(p: argparse.ArgumentParser) -> None:
    """Options shared by risk and compare: population, replications, seed, output, execution."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--plan", default=None, metavar="PLAN", help="cutover plan YAML, or a built-in plan name (va_ehrm)")
    src.add_argument("--patients", type=positive_int, default=None, help="one site of N records, one wave (default 1000)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="with --patients: patients per batch (default 100)")
    p.add_argument("--config", default=None, metavar="FILE", help="YAML configuration for --patients (a plan carries its own)")
    p.add_argument("--replications", type=positive_int, default=100, help="number of replications R (default 100)")
    p.add_argument("--seed", type=nonneg_int, default=None, help="random seed (default 0)")
    p.add_argument("--out", default=None, metavar="RUN", help="run folder to write")
    p.add_argument("--json", action="store_true", help="print results.json on stdout instead of the table")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--workers", type=positive_int, default=None, help="run on N workers (a local Dask cluster unless --executor processes)")
    p.add_argument("--scheduler", default=None, metavar="URL", help="run on a Dask cluster, e.g. tcp://127.0.0.1:8786")
    p.add_argument("--executor", default=None, choices=EXECUTORS, help="inprocess (default), processes or dask")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "risk",
        help="Monte Carlo over a cutover plan: intervals, bands and target probabilities",
        description="Run R replications of a cutover plan (site waves with dates, go/no-go and rollback) or of N "
        "patients, and report per wave and overall the mean with its 95%% confidence interval and the 5th-95th "
        "percentile band of single cutovers, and the probability of meeting each --target.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_population_args(p)
    p.add_argument("--strategy", default=None, choices=("staged", "big_bang", "parallel"), help="with --patients: strategy")
    p.add_argument("--target", action="append", default=[], metavar="METRIC<=X",
                   help="a target, e.g. success>=0.99, downtime_hours<=48 (repeatable)")
    add_run_outputs(p)
    p.set_defaults(func=run)


def build_plan(args: argparse.Namespace, strategy: str | None = None):  # type: ignore[no-untyped-def]
    from ..risk.plan import load_plan, single_site_plan

    if args.plan is not None:
        if args.config or args.batch_size:
            raise ConfigError("--config and --batch-size apply to --patients; a plan carries its own settings")
        return load_plan(args.plan), "plan"
    settings = resolve_settings(args.config)
    n = pick(args.patients, settings.num_records, 1000)
    batch = pick(args.batch_size, settings.batch_size, 100)
    strat = strategy or settings.migration_strategy or "staged"
    return single_site_plan(n, config=settings.config, strategy=strat, batch_size=batch), "patients"


def execution_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    executor = resolve_executor(args.executor, args.workers, args.scheduler)
    return {"executor": executor, "workers": args.workers, "scheduler": args.scheduler}


def write_run(out: str | None, default: str, doc: dict[str, Any], text: str, text_name: str) -> Path:
    from ..results import write_results
    from ..runio import atomic_write_text, ensure_dir

    run_dir = Path(out or default)
    ensure_dir(run_dir, "run folder (--out)")
    write_results(run_dir, doc)
    atomic_write_text(run_dir / text_name, text)
    return run_dir


def run(args: argparse.Namespace) -> int:
    from ..results import dumps, provenance
    from ..risk.montecarlo import risk_section, simulate_risk
    from ..risk.render import render_risk
    from ..risk.sections import model_sections, replication_metrics, results_document
    from ..risk.targets import parse_target

    targets = [parse_target(t) for t in args.target]
    gates = check_run_outputs(args)
    plan, source = build_plan(args, args.strategy)
    if args.plan is not None and args.strategy:
        raise ConfigError("--strategy applies to --patients; a plan names each wave's strategy")
    seed = args.seed if args.seed is not None else 0
    t0 = time.perf_counter()
    with task_progress("replications", not (args.json or args.quiet) and sys.stderr.isatty()) as progress:
        run_ = simulate_risk(plan, args.replications, seed, progress=progress, **execution_kwargs(args))
    section = risk_section(run_, targets, source)
    sections = model_sections(plan, run_.rep0, run_.wave_start[0].tolist())
    sections = replication_metrics(sections, run_.overall)
    doc = results_document("risk", plan, seed, sections, {"risk": section}, provenance(None, time.perf_counter() - t0))
    text = render_risk(section)
    run_dir = write_run(args.out, "runs/risk", doc, text, "risk.txt")
    if args.json:
        sys.stdout.write(dumps(doc).decode("utf-8"))
    elif not args.quiet:
        sys.stdout.write(text)
        print(f"run folder: {run_dir}  ({run_.execution.tasks} tasks on {run_.execution.distinct_workers} "
              f"worker(s), {run_.execution.executor})")
    return finish_run_outputs(doc, args, gates)
