"""vistasim: synthetic VistA veterans and a measured rehearsal of their migration to Oracle Health.

The public API (also re-exported by the spec's ``synthetic_patient_generator`` module)::

    from vistasim import MigrationSimulator, MigrationConfig, PatientRecord, generate_patient, generate_patients
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from .config import MigrationConfig, load_yaml
from .errors import ConfigError, InputError, OutputError, VistasimError, ZWRFormatError
from .model import (
    BatchMigrationStatus,
    MigrationRunResult,
    MigrationStageResult,
    PatientRecord,
)
from .simulator import MigrationSimulator

__all__ = [
    "__version__",
    "BatchMigrationStatus",
    "ConfigError",
    "InputError",
    "MigrationConfig",
    "MigrationRunResult",
    "MigrationSimulator",
    "MigrationStageResult",
    "OutputError",
    "PatientRecord",
    "VistasimError",
    "ZWRFormatError",
    "generate_patient",
    "generate_patients",
    "load_yaml",
]


def __getattr__(name: str) -> Any:
    # The generator pulls in its data tables: load it on first use only.
    if name in ("generate_patient", "generate_patients"):
        from . import generate

        return getattr(generate, name)
    raise AttributeError(f"module 'vistasim' has no attribute {name!r}")
