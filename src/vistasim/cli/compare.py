"""``vistasim compare``: strategies side by side on common random numbers, differences with intervals."""

from __future__ import annotations

import argparse
import sys
import time

from ._common import add_run_outputs, check_run_outputs, finish_run_outputs, task_progress
from .risk import add_population_args, build_plan, execution_kwargs, write_run

EXAMPLES = """examples:
  vistasim compare --strategies staged,big_bang,parallel --patients 10000 --replications 200 --seed 7
  vistasim compare --strategies staged,parallel --plan plan.yaml --replications 50 --workers 2 --out runs/cmp
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare migration strategies on common random numbers",
        description="Run each strategy on the same population, seed and replications (common random numbers) and "
        "report each strategy's outcomes and the differences from the first one, with 95%% intervals.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--strategies", default="staged,big_bang,parallel", help="comma-separated, first is the baseline")
    p.add_argument("--independent", action="store_true", help="independent streams per strategy instead of common random numbers")
    add_population_args(p)
    add_run_outputs(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..results import dumps, provenance
    from ..risk.compare import compare_strategies, parse_strategies, with_strategy
    from ..risk.render import render_comparison
    from ..risk.sections import model_sections, replication_metrics, results_document

    gates = check_run_outputs(args)
    strategies = parse_strategies(args.strategies)
    plan, _ = build_plan(args, strategies[0])
    seed = args.seed if args.seed is not None else 0
    t0 = time.perf_counter()
    with task_progress("strategies x replications", not (args.json or args.quiet) and sys.stderr.isatty()) as bar:
        runs, section = compare_strategies(plan, strategies, args.replications, seed, progress=bar,
                                           common_random_numbers=not args.independent, **execution_kwargs(args))
    base = runs[strategies[0]]
    base_plan = with_strategy(plan, strategies[0])
    sections = model_sections(base_plan, base.rep0, base.wave_start[0].tolist())
    sections = replication_metrics(sections, base.overall)
    doc = results_document("compare", base_plan, seed, sections, {"comparison": section},
                           provenance(None, time.perf_counter() - t0), strategy=strategies[0])
    text = render_comparison(section)
    run_dir = write_run(args.out, "runs/compare", doc, text, "comparison.txt")
    if args.json:
        sys.stdout.write(dumps(doc).decode("utf-8"))
    elif not args.quiet:
        sys.stdout.write(text)
        print(f"run folder: {run_dir}")
    return finish_run_outputs(doc, args, gates)
