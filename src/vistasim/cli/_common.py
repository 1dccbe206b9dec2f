"""Pieces every subcommand shares: the terminal (progress, summary table), config resolution."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..config import MigrationConfig, RunSettings, check_strategy, load_yaml
from ..errors import ConfigError

PROGRESS_MIN = 20000  # show a progress bar for runs of at least this many patients


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def resolve_settings(config_path: str | None) -> RunSettings:
    if config_path:
        return load_yaml(config_path)
    return RunSettings(config=MigrationConfig())


def pick(cli_value: Any, yaml_value: Any, default: Any) -> Any:
    """Explicit CLI flag > YAML > default."""
    if cli_value is not None:
        return cli_value
    if yaml_value is not None:
        return yaml_value
    return default


def pick_strategy(cli_value: str | None, settings: RunSettings, default: str = "staged") -> str:
    if cli_value is not None:
        return check_strategy(cli_value, "--strategy")
    return settings.migration_strategy or default


@contextmanager
def progress_bar(
    total: int, label: str, enabled: bool, min_total: int = PROGRESS_MIN, unit: str = "patients"
) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar with rate and ETA on stderr, or None when disabled or the run is small.

    The callback takes ``(done, total)``; a total given there replaces the one given here, so a bar can
    start before the amount of work is known (``total=0, min_total=0``).
    """
    if not enabled or total < min_total:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total or None)

        def update(done: int, new_total: int) -> None:
            bar.update(task, completed=done, total=new_total or total or None)

        yield update


def print_summary(doc: dict[str, Any], run_dir: Path | None, extra: dict[str, str] | None = None) -> None:
    """The end-of-run summary table (stdout)."""
    from rich.console import Console
    from rich.table import Table

    s = doc["summary"]
    t = doc.get("timeline", {})
    table = Table(title=f"vistasim {doc['command']}: {doc['strategy']} strategy, seed {doc['seed']}", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("patients", f"{s['total_patients']:,}")
    table.add_row("batches", f"{s['total_batches']:,}")
    table.add_row("migrated", f"{s['migrated_patients']:,} ({s['overall_success_rate']:.1%})")
    table.add_row("average quality", f"{s['average_quality_score']:.4f}" if s.get("quality_measured") else "n/a")
    table.add_row("failed attempts", f"{s['total_errors']:,}")
    fa = doc.get("failure_analysis", {})
    if fa.get("most_common_failure"):
        table.add_row("most common failure", f"{fa['most_common_failure']} ({fa['most_common_failure_stage']})")
    if t:
        table.add_row("simulated elapsed", f"{t['elapsed_seconds'] / 3600:,.2f} h")
        table.add_row(
            "downtime max / mean",
            f"{t['downtime_max_seconds'] / 3600:,.2f} h / {t['downtime_mean_seconds'] / 3600:,.2f} h",
        )
        table.add_row("peak concurrency", str(t["peak_concurrency"]))
    for k, v in (extra or {}).items():
        table.add_row(k, v)
    if run_dir is not None:
        table.add_row("run folder", str(run_dir))
    Console().print(table)
    recs = doc.get("recommendations") or []
    if recs:
        print("Recommendations:")
        for i, r in enumerate(recs, 1):
            print(f"  {i}. {r}")


def fail(message: str) -> ConfigError:
    return ConfigError(message)


def add_run_outputs(p: argparse.ArgumentParser) -> None:
    """--report/--report-format, --fail-under and --metrics: the outputs every migration command offers."""
    from ..gating import add_gating_arguments
    from ..metrics import add_metrics_arguments
    from ..report import FORMATS

    p.add_argument("--report", default=None, metavar="PATH", help="also write a report here")
    p.add_argument("--report-format", default=None, choices=FORMATS, help="report format (default from the extension, else txt)")
    add_gating_arguments(p)
    add_metrics_arguments(p)


def check_run_outputs(args: argparse.Namespace) -> Any:
    """Validate the output options before any work; returns the parsed --fail-under targets."""
    from ..gating import targets_from_args
    from ..metrics import check_metrics_args
    from ..runio import check_writable_file

    targets = targets_from_args(args)
    check_metrics_args(args)
    if getattr(args, "report", None):
        check_writable_file(Path(args.report), "report file")
    return targets


def finish_run_outputs(doc: dict[str, Any], args: argparse.Namespace, targets: Any) -> int:
    """Write the report and the metrics file, then gate: the command's exit code."""
    from ..gating import apply_gating
    from ..metrics import apply_metrics
    from ..report import render
    from ..runio import atomic_write_text
    from ..runner import infer_format

    if getattr(args, "report", None):
        path = Path(args.report)
        atomic_write_text(path, render(doc, infer_format(path, args.report_format)))
    apply_metrics(doc, args)
    return apply_gating(doc, targets, quiet=getattr(args, "quiet", False))


@contextmanager
def task_progress(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar over tasks whose count is learned from the first update; None if disabled."""
    with progress_bar(0, label, enabled, min_total=0, unit="tasks") as update:
        yield update
