"""Running a model-mode migration end to end: simulate, then write the run folder and the report.

Shared by ``vistasim simulate`` and the spec's ``synthetic_patient_generator.py`` script, so that
both write the same run folder. Output paths are checked before any work starts, and every file is
written atomically: a failed run loses nothing already written and leaves nothing half-written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import MigrationConfig
from .errors import ConfigError
from .model import PatientRecord
from .report import FORMATS, render
from .results import model_results, provenance, write_results
from .runio import atomic_write_text, check_dir_creatable, check_writable_file, ensure_dir
from .simulator import MigrationSimulator

PatientLike = PatientRecord | str


@dataclass
class RunOutput:
    doc: dict[str, Any]
    simulator: MigrationSimulator
    run_dir: Path | None
    report_path: Path | None


def population_ids(n: int, station: str = "500") -> list[str]:
    """Ids ``station:DFN`` for n source records: all model mode needs (outcomes are keyed by id)."""
    return [f"{station}:{dfn}" for dfn in range(1, n + 1)]


def infer_format(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise ConfigError(f"--report-format {fmt!r} is unknown (use one of {', '.join(FORMATS)})")
        return fmt
    suffix = path.suffix.lower().lstrip(".")
    return {"htm": "html", "markdown": "md", "text": "txt"}.get(suffix, suffix if suffix in FORMATS else "txt")


def run_model(
    patients: Sequence[PatientLike],
    *,
    config: MigrationConfig,
    strategy: str,
    batch_size: int,
    seed: int,
    run_dir: Path | None,
    report_path: Path | None = None,
    report_format: str | None = None,
    keep_audit: bool = True,
    progress: Callable[[int, int], None] | None = None,
    argv: Sequence[str] | None = None,
) -> RunOutput:
    # fail on unwritable outputs before doing any work
    if run_dir is not None:
        check_dir_creatable(run_dir, "run folder (--out)")
    fmt = None
    if report_path is not None:
        check_writable_file(report_path, "report file")
        fmt = infer_format(report_path, report_format)
    t0 = time.perf_counter()
    sim = MigrationSimulator(config, seed=seed, keep_audit=keep_audit)
    sim.simulate_migration(list(patients), batch_size=batch_size, migration_strategy=strategy, progress=progress)
    analytics = sim.get_migration_analytics()
    wall = time.perf_counter() - t0
    doc = model_results(
        command="simulate",
        analytics=analytics,
        config_dict=config.to_dict(),
        strategy=strategy,
        seed=seed,
        batch_size=batch_size,
        batches=sim.batch_results,
        audit_rows=len(sim.audit) if keep_audit else None,
        prov=provenance(argv, wall),
    )
    if run_dir is not None:
        ensure_dir(run_dir, "run folder (--out)")
        if keep_audit:
            sim.audit.save(run_dir / "audit.jsonl")
        atomic_write_text(run_dir / "report.txt", render(doc, "txt"))
        write_results(run_dir, doc)
    if report_path is not None:
        atomic_write_text(report_path, render(doc, fmt or "txt"))
    return RunOutput(doc, sim, run_dir, report_path)
