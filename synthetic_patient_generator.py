#!/usr/bin/env python3
"""Compatibility module for the spec (``spec/migration_simulator.md``): its import path and its CLI.

    from synthetic_patient_generator import MigrationSimulator, MigrationConfig, PatientRecord, generate_patient

    python synthetic_patient_generator.py --num-records 500 --simulate-migration
    python synthetic_patient_generator.py --num-records 1000 --simulate-migration --batch-size 50 \\
        --migration-strategy staged --migration-report detailed_report.txt
    python synthetic_patient_generator.py --config migration_config.yaml

Everything here re-exports or drives the ``vistasim`` package; explicit flags override the YAML file,
which overrides the defaults.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

_SRC = Path(__file__).resolve().parent / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(_SRC))

from vistasim import (  # noqa: E402
    BatchMigrationStatus,
    MigrationConfig,
    MigrationRunResult,
    MigrationSimulator,
    MigrationStageResult,
    PatientRecord,
    generate_patient,
    generate_patients,
)

__all__ = [
    "BatchMigrationStatus",
    "MigrationConfig",
    "MigrationRunResult",
    "MigrationSimulator",
    "MigrationStageResult",
    "PatientRecord",
    "generate_patient",
    "generate_patients",
    "main",
]


def _parser() -> argparse.ArgumentParser:
    from vistasim.cli._common import nonneg_int, positive_int

    p = argparse.ArgumentParser(
        prog="synthetic_patient_generator.py",
        description="Generate synthetic VistA patients and, with --simulate-migration, rehearse their migration.",
        epilog="example: python synthetic_patient_generator.py --num-records 500 --simulate-migration",
    )
    p.add_argument("--num-records", type=positive_int, default=None, help="patients to generate (default 100)")
    p.add_argument("--simulate-migration", action="store_true", default=None, help="run the migration simulation")
    p.add_argument("--batch-size", type=positive_int, default=None, help="patients per batch (default 100)")
    p.add_argument("--migration-strategy", default=None, help="staged, big_bang or parallel (default staged)")
    p.add_argument("--migration-report", default=None, help="write the text report to this file")
    p.add_argument("--config", default=None, help="YAML configuration file (the spec's schema)")
    p.add_argument("--seed", type=nonneg_int, default=None, help="random seed (default 0)")
    p.add_argument("--output-dir", default=None, help="folder for patients.jsonl and the run folder (default output)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    import dataclasses

    import orjson

    from vistasim.cli._common import pick, pick_strategy, print_summary, resolve_settings
    from vistasim.errors import VistasimError
    from vistasim.runio import atomic_write_bytes, ensure_dir
    from vistasim.runner import run_model

    args = _parser().parse_args(argv)
    try:
        settings = resolve_settings(args.config)
        n = pick(args.num_records, settings.num_records, 100)
        batch_size = pick(args.batch_size, settings.batch_size, 100)
        seed = pick(args.seed, settings.seed, 0)
        strategy = pick_strategy(args.migration_strategy, settings)
        simulate = bool(pick(args.simulate_migration, settings.simulate_migration, False))
        report = pick(args.migration_report, settings.migration_report, None)
        out_dir = ensure_dir(Path(pick(args.output_dir, None, "output")), "--output-dir")
        patients = generate_patients(n, seed=seed)
        lines = b"".join(orjson.dumps(dataclasses.asdict(p)) + b"\n" for p in patients)
        atomic_write_bytes(out_dir / "patients.jsonl", lines)
        print(f"Generated {n} patients -> {out_dir / 'patients.jsonl'}")
        if simulate:
            run = run_model(
                patients,
                config=settings.config,
                strategy=strategy,
                batch_size=batch_size,
                seed=seed,
                run_dir=out_dir / "run",
                report_path=Path(report) if report else None,
                argv=["synthetic_patient_generator.py", *(argv if argv is not None else sys.argv[1:])],
            )
            print_summary(run.doc, out_dir / "run", {"report": str(report)} if report else None)
    except VistasimError as exc:
        print(f"synthetic_patient_generator.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
