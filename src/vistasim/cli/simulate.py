"""``vistasim simulate``: the main job, a model-mode migration written to a run folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..gating import add_gating_arguments, apply_gating, targets_from_args
from ..metrics import add_metrics_arguments, apply_metrics, check_metrics_args
from ..report import FORMATS
from ..results import dumps
from ..runner import population_ids, run_model
from ._common import nonneg_int, pick, pick_strategy, positive_int, print_summary, progress_bar, resolve_settings

EXAMPLES = """examples:
  vistasim simulate                                   # 1,000 patients, defaults, run folder runs/latest
  vistasim simulate --patients 100000 --batch-size 50 --strategy parallel --seed 7 --out runs/p7
  vistasim simulate --config examples/production.yaml --report report.txt
  vistasim simulate --patients 2000 --json > results.json
  vistasim simulate --config examples/production.yaml --fail-under success=0.98,quality=0.9   # CI gate: exit 1 if missed
  vistasim simulate --patients 5000 --out runs/ci --report runs/ci/report.html --metrics runs/ci/vistasim.prom
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate a migration in model mode and write a run folder",
        description="Simulate a VistA -> Oracle Health migration in model mode (outcomes drawn from the config) "
        "and write the run folder: results.json, report.txt, audit.jsonl.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--patients",
        type=positive_int,
        default=None,
        help="number of source records (default 1000, or num_records in the YAML)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="patients per wave (default 100, or batch_size in the YAML)",
    )
    p.add_argument(
        "--strategy",
        default=None,
        choices=("staged", "big_bang", "parallel"),
        help="migration strategy (default staged)",
    )
    p.add_argument("--seed", type=nonneg_int, default=None, help="random seed (default 0, or seed in the YAML)")
    p.add_argument("--config", default=None, metavar="FILE", help="YAML configuration (the spec's schema)")
    p.add_argument("--out", default=None, metavar="RUN", help="run folder to write (default runs/latest)")
    p.add_argument("--report", default=None, metavar="PATH", help="also write a report here")
    p.add_argument(
        "--report-format", default=None, choices=FORMATS, help="report format (default from the extension, else txt)"
    )
    p.add_argument("--json", action="store_true", help="print results.json on stdout instead of the summary")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--no-audit", action="store_true", help="do not keep or write the per-attempt audit trail")
    add_gating_arguments(p)
    add_metrics_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = resolve_settings(args.config)
    n = pick(args.patients, settings.num_records, 1000)
    batch_size = pick(args.batch_size, settings.batch_size, 100)
    seed = pick(args.seed, settings.seed, 0)
    strategy = pick_strategy(args.strategy, settings)
    run_dir = Path(pick(args.out, None, "runs/latest"))
    report = args.report or settings.migration_report
    targets = targets_from_args(args)  # a malformed --fail-under or --metrics fails before any work
    check_metrics_args(args)
    interactive = not (args.json or args.quiet)
    with progress_bar(n, "simulating", interactive and sys.stderr.isatty()) as progress:
        out = run_model(
            population_ids(n),
            config=settings.config,
            strategy=strategy,
            batch_size=batch_size,
            seed=seed,
            run_dir=run_dir,
            report_path=Path(report) if report else None,
            report_format=args.report_format,
            keep_audit=not args.no_audit,
            progress=progress,
        )
    if args.json:
        sys.stdout.write(dumps(out.doc).decode("utf-8"))
    elif not args.quiet:
        print_summary(out.doc, run_dir, {"report": str(report)} if report else None)
    apply_metrics(out.doc, args)
    return apply_gating(out.doc, targets, quiet=args.quiet)
