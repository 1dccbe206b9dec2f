"""``vistasim report``: render, gate or export metrics of an existing run from its results.json alone."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InputError
from ..gating import add_gating_arguments, apply_gating, targets_from_args
from ..metrics import add_metrics_arguments, apply_metrics, check_metrics_args
from ..report import FORMATS, render
from ..results import read_results, validate_results
from ..runio import atomic_write_text, check_writable_file

EXAMPLES = """examples:
  vistasim report runs/latest                                   # the text report on the terminal
  vistasim report runs/latest --format html --out report.html   # one self-contained HTML dashboard
  vistasim report runs/latest --out report.md                   # Markdown for a pull request (format from .md)
  vistasim report runs/latest --format json                     # results.json, re-serialised
  vistasim report runs/latest --fail-under success=0.98,quality=0.9      # CI gate on an existing run
  vistasim report runs/latest --metrics vistasim.prom --quiet    # Prometheus textfile only

exit codes: 0 ok; 1 a --fail-under target missed; 2 bad arguments, unreadable run, or a gated metric the
run did not measure (fidelity and safety are measured in data mode only).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="render a run's report (html, md, json, txt), gate it, or export its metrics",
        description="Read RUN/results.json (nothing else) and write its report: a self-contained HTML dashboard, "
        "Markdown for pull requests, JSON or the plain-text report. Optionally gate the run for CI "
        "(--fail-under) and write a Prometheus metrics file (--metrics).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN", help="a run folder written with --out, or a results.json file")
    p.add_argument(
        "--format", default=None, choices=FORMATS, help="report format (default from the --out extension, else txt)"
    )
    p.add_argument("--out", default=None, metavar="PATH", help="write the report here instead of stdout")
    p.add_argument(
        "--quiet",
        action="store_true",
        help="print no report on stdout (use with --fail-under or --metrics); errors still print",
    )
    p.add_argument(
        "--no-validate",
        action="store_true",
        help="skip checking results.json against the schema (for documents of a newer vistasim)",
    )
    add_gating_arguments(p)
    add_metrics_arguments(p)
    p.set_defaults(func=run)


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    if args.out:
        from ..runner import infer_format

        return infer_format(Path(args.out), None)
    return "txt"


def run(args: argparse.Namespace) -> int:
    targets = targets_from_args(args)
    check_metrics_args(args)
    fmt = _format(args)
    out_path = Path(args.out) if args.out else None
    if out_path is not None:
        check_writable_file(out_path, "report file (--out)")
    path = Path(args.run)
    doc = read_results(path)
    if not args.no_validate:
        _validate(doc, path)
    text = render(doc, fmt)
    if out_path is not None:
        atomic_write_text(out_path, text)
    elif not args.quiet:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    apply_metrics(doc, args)
    return apply_gating(doc, targets, quiet=args.quiet)


def _validate(doc: dict, path: Path) -> None:
    import jsonschema

    try:
        validate_results(doc)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        msg = " ".join(exc.message.split())
        reason = msg if len(msg) <= 160 else msg[:157] + "..."
        raise InputError(
            f"{str(path)!r} does not follow the results schema at {where}: {reason}; "
            "re-run the command that wrote it, or pass --no-validate"
        ) from None
