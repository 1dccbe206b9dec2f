"""``vistasim generate``: write a synthetic VistA population (ZWR, CSV, JSON) and its answer key."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError

EXAMPLES = """examples:
  vistasim generate --patients 1000 --out pop
  vistasim generate --patients 100000 --sites 12 --seed 7 --format zwr,csv,json --out pop --workers 2
  vistasim generate --patients 5000 --sites 3 --defects 0.05 --out dirty
  vistasim generate --patients 5000 --defects 0.1 --defect-kinds icd9_code,free_text_allergy --out icd9

output (see vistasim.generate.export):
  DIR/<station>/<file>+<NAME>.zwr   FileMan globals per station (--format zwr)
  DIR/csv/<station>/*.csv           flat tables, one row per entry, keyed by patient_id (--format csv)
  DIR/json/<station>.jsonl          one patient record per line (--format json)
  DIR/answer_key.csv                every injected defect: patient_id,file,field,defect,detail
  DIR/manifest.json                 parameters, stations and counts
"""


def register(subparsers: Any) -> None:
    from ..generate.defects import DEFECT_KINDS

    p = subparsers.add_parser(
        "generate",
        help="generate synthetic veterans as VistA stores them",
        description="Generate a seeded, realistic population of veterans over VA sites, with optional "
        "legacy-data defects recorded in an answer key. Output is identical for any --workers.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--patients", "-n", type=int, default=1000, metavar="N", help="number of patient records (default 1000)")
    p.add_argument("--sites", type=int, default=1, metavar="K", help="number of VA sites (stations) to spread them over (default 1)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="master seed (default 0)")
    p.add_argument("--format", default="zwr", metavar="LIST", help="comma-separated: zwr,csv,json (default zwr)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--defects", type=float, default=0.0, metavar="RATE",
                   help="share of records given one legacy-data defect, 0..1 (default 0)")
    p.add_argument("--defect-kinds", default=None, metavar="LIST",
                   help="comma-separated subset of: " + ",".join(DEFECT_KINDS) + " (default all)")
    p.add_argument("--workers", type=int, default=1, metavar="W", help="worker processes (default 1)")
    p.add_argument("--chunk", type=int, default=2048, metavar="C", help="patients per generated block (default 2048)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors (implies --no-progress)")
    p.add_argument("--json", action="store_true", help="print the written manifest.json on stdout instead of the summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..generate.defects import DefectConfig
    from ..generate.export import parse_formats
    from ..generate.runner import generate_to_disk

    if args.patients < 0:
        raise ConfigError(f"--patients {args.patients}: use a whole number >= 0")
    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: use 1 or more")
    if args.seed < 0:
        raise ConfigError(f"--seed {args.seed}: use an integer >= 0")
    formats = parse_formats(args.format)
    kinds = None
    if args.defect_kinds:
        kinds = [k.strip() for k in args.defect_kinds.split(",") if k.strip()]
    cfg = DefectConfig.of(args.defects, kinds)
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder; choose a folder path")
    if args.no_progress or args.quiet or args.json or args.patients == 0:
        summary = generate_to_disk(out, args.patients, args.seed, args.sites, cfg, formats, args.workers, args.chunk)
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("generate"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      transient=True) as bar:
            task = bar.add_task("generate", total=args.patients)
            summary = generate_to_disk(out, args.patients, args.seed, args.sites, cfg, formats, args.workers,
                                       args.chunk, progress=lambda k: bar.advance(task, k))
    if args.json:
        sys.stdout.write((out / "manifest.json").read_text(encoding="utf-8"))
        return 0
    if args.quiet:
        return 0
    per = sum(summary.records_by_domain.values())
    print(f"wrote {summary.patients} patients at {len(summary.stations)} site(s) to {out} "
          f"({per} clinical entries, {summary.defects} defects in answer_key.csv)")
    return 0
