"""The run folder (DESIGN.md "Run output"): results.json, the text report, audit.jsonl.

``results.json`` is validated against the versioned JSON Schema shipped in ``vistasim/schemas/``.
Everything in it is a function of the inputs and the seed, except the ``provenance`` section
(wall-clock time, host, versions), so two runs with the same seed differ only there.
"""

from __future__ import annotations

import json
import platform
import socket
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import InputError
from .model import BatchMigrationStatus
from .runio import atomic_write_bytes, ensure_dir

SCHEMA_VERSION = "1.0"
SCHEMA_FILE = "results.schema.json"


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat().replace("+00:00", "Z")


def batch_rows(batches: Sequence[BatchMigrationStatus]) -> list[dict[str, Any]]:
    return [
        {
            "batch_id": b.batch_id,
            "patients": b.batch_size,
            "migrated": b.migrated,
            "started_at": _iso(b.started_at),
            "completed_at": _iso(b.completed_at),
            "duration_seconds": b.duration_seconds,
            "success_rate": b.overall_success_rate,
            "average_quality_score": b.average_quality_score,
            "total_errors": b.total_errors,
            "downtime_seconds": b.downtime_seconds,
        }
        for b in batches
    ]


def provenance(argv: Sequence[str] | None = None, wall_seconds: float | None = None) -> dict[str, Any]:
    from . import __version__

    return {
        "vistasim_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "argv": list(argv) if argv is not None else list(sys.argv),
        "wall_seconds": wall_seconds,
    }


def model_results(
    *,
    command: str,
    analytics: dict[str, Any],
    config_dict: dict[str, Any],
    strategy: str,
    seed: int,
    batch_size: int,
    batches: Sequence[BatchMigrationStatus],
    audit_rows: int | None,
    prov: dict[str, Any],
) -> dict[str, Any]:
    """The results document of a model-mode run."""
    s = analytics["summary"]
    return {
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "mode": "model",
        "strategy": strategy,
        "seed": seed,
        "batch_size": batch_size,
        "config": config_dict,
        "summary": s,
        "stage_performance": analytics["stage_performance"],
        "substage_performance": analytics["substage_performance"],
        "failure_analysis": analytics["failure_analysis"],
        "quality_trends": analytics["quality_trends"],
        "timeline": analytics["timeline"],
        "recommendations": analytics["recommendations"],
        "batches": batch_rows(batches),
        "metrics": {
            "success": s["overall_success_rate"],
            "quality": s["average_quality_score"] if s.get("quality_measured") else None,
            "fidelity": None,
            "safety": None,
        },
        "audit_rows": audit_rows,
        "provenance": prov,
    }


def load_schema() -> dict[str, Any]:
    text = resources.files("vistasim").joinpath("schemas").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def validate_results(doc: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError if ``doc`` does not follow the results schema."""
    import jsonschema

    jsonschema.validate(doc, load_schema(), cls=jsonschema.Draft202012Validator)


def dumps(doc: dict[str, Any]) -> bytes:
    """Deterministic JSON bytes (key order as built, two-space indent, trailing newline)."""
    import orjson

    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n"


def write_results(run_dir: Path, doc: dict[str, Any]) -> Path:
    validate_results(doc)
    ensure_dir(run_dir, "run folder")
    return atomic_write_bytes(run_dir / "results.json", dumps(doc))


def read_results(run: Path) -> dict[str, Any]:
    """Read a run folder's (or a file's) results.json; InputError if missing or not JSON."""
    path = run / "results.json" if run.is_dir() else run
    if not path.is_file():
        raise InputError(f"{str(path)!r} not found: give a run folder written with --out, or its results.json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{str(path)!r} is not valid JSON ({exc.__class__.__name__}); re-run the command that wrote it"
        ) from None
