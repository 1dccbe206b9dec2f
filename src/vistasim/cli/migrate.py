"""``vistasim migrate``: a data-mode migration of a ZWR export into a database, reconciled and scored."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..results import dumps
from ._common import (
    add_run_outputs,
    check_run_outputs,
    finish_run_outputs,
    nonneg_int,
    pick,
    pick_strategy,
    positive_int,
    print_summary,
    progress_bar,
    resolve_settings,
)

EXAMPLES = """examples:
  vistasim generate --patients 1000 --sites 2 --format zwr --out src/
  vistasim migrate --source src/ --target sqlite:///out.db --strategy staged --seed 7 --out runs/m7
  vistasim migrate --source src/528 --target postgresql://me@localhost/rehearsal --config faults.yaml --json
  vistasim migrate --source src/ --out runs/gate --fail-under fidelity=0.999,safety=1.0 --report r.html
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "migrate",
        help="migrate a ZWR export into a database in data mode and reconcile it",
        description="Data mode: read VistA globals (ZWR), map to FHIR R4, validate, load into SQLite or PostgreSQL, "
        "read back, reconcile against the source, and write the run folder (results.json, report.txt, audit.jsonl, "
        "reconciliation.json, answer_key.jsonl).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--source", required=True, metavar="DIR", help="a .zwr file, a station folder, or a folder of station folders"
    )
    p.add_argument(
        "--target", default="sqlite:///out.db", metavar="URL", help="sqlite:///out.db (default) or postgresql://..."
    )
    p.add_argument(
        "--strategy",
        default=None,
        choices=("staged", "big_bang", "parallel"),
        help="migration strategy (default staged)",
    )
    p.add_argument("--seed", type=nonneg_int, default=None, help="random seed (default 0, or seed in the YAML)")
    p.add_argument(
        "--config", default=None, metavar="FILE", help="YAML configuration (migration_settings, data_mode, faults)"
    )
    p.add_argument("--batch-size", type=positive_int, default=None, help="records per wave (default 100)")
    p.add_argument("--station", default=None, help="station number when the folder name does not say it")
    p.add_argument("--out", default=None, metavar="RUN", help="run folder to write (default runs/latest)")
    add_run_outputs(p)
    p.add_argument("--json", action="store_true", help="print results.json on stdout instead of the summary")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..pipeline.run import run_data
    from ..pipeline.settings import settings_from_extra

    gates = check_run_outputs(args)
    settings = resolve_settings(args.config)
    dm = settings_from_extra(settings.extra)
    batch_size = pick(args.batch_size, settings.batch_size, 100)
    seed = pick(args.seed, settings.seed, 0)
    strategy = pick_strategy(args.strategy, settings)
    run_dir = Path(pick(args.out, None, "runs/latest"))
    if args.report is None and settings.migration_report:
        args.report = settings.migration_report
        gates = check_run_outputs(args)
    show = not (args.json or args.quiet) and sys.stderr.isatty()
    with progress_bar(_count_hint(Path(args.source)) if show else 0, "migrating", show,
                      min_total=1) as progress:
        out = run_data(
            Path(args.source),
            target_url=args.target,
            config=settings.config,
            settings=dm,
            strategy=strategy,
            batch_size=batch_size,
            seed=seed,
            run_dir=run_dir,
            station=args.station,
            report_path=None,
            argv=sys.argv,
            progress=progress,
        )
    if args.json:
        sys.stdout.write(dumps(out.doc).decode("utf-8"))
    elif not args.quiet:
        m = out.doc["metrics"]
        rec = out.doc["data_mode"]["reconciliation"]
        extra = {
            "fidelity (measured)": "n/a" if m["fidelity"] is None else f"{m['fidelity']:.4f}",
            "safety (measured)": "n/a" if m["safety"] is None else f"{m['safety']:.4f}",
            "quarantined / failed": f"{rec['conservation']['quarantined']:,} / {rec['conservation']['failed']:,}",
        }
        print_summary(out.doc, run_dir, extra)
    return finish_run_outputs(out.doc, args, gates)


def _count_hint(source: Path) -> int:
    """Records to expect, for the progress bar: the PATIENT file headers' counts (0 if unknown)."""
    total = 0
    files = [source] if source.is_file() else sorted(source.glob("**/2+*.zwr"))
    for f in files:
        try:
            with open(f, encoding="utf-8", errors="replace") as fh:
                for _, line in zip(range(4), fh):
                    if line.startswith("^DPT(0)="):
                        total += int(line.rstrip().strip('"').split("^")[-1] or 0)
        except (OSError, ValueError):
            return 0
    return total
