"""``vistasim calibrate``: fit model-mode rates and durations (with intervals) from run folders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXAMPLES = """examples:
  vistasim calibrate runs/mock1 runs/mock2 --out calibrated.yaml
  vistasim simulate --config calibrated.yaml --patients 100000
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit model-mode rates, error weights and durations from runs' audit trails",
        description="Read run folders (audit.jsonl and results.json, from simulate or migrate) and fit per-step "
        "pass rates, network/overload/corruption rates, error-type weights, durations and retry settings, with 95%% "
        "intervals; write a YAML config loadable by 'vistasim simulate --config'.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders written with --out")
    p.add_argument("--out", required=True, metavar="CONFIG", help="YAML file to write")
    p.add_argument("--json", action="store_true", help="print the estimates and intervals as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import orjson

    from ..risk.calibrate import calibrate_runs, config_yaml
    from ..runio import atomic_write_text, check_writable_file

    out = check_writable_file(Path(args.out), "calibrated config (--out)")
    cfg, cal = calibrate_runs(args.runs)
    atomic_write_text(out, config_yaml(cfg, cal))
    if args.json:
        sys.stdout.write(orjson.dumps(cal, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")
    else:
        print(f"calibrated config written to {out} (from {cal['runs']} run(s)); intervals are in its comments")
    return 0
