"""A run's counters and gauges as a Prometheus / OpenMetrics text file.

Written with the official ``prometheus_client`` (optional extra ``metrics``) from a results document,
so it can be dropped where node_exporter's textfile collector or a Pushgateway job picks it up and
dashboards can track rehearsals over time. A private :class:`CollectorRegistry` is used (never the
process-global one), and counters carry no ``_created`` timestamp: the file is a pure function of
results.json, so the same run gives the same bytes.

Names (all prefixed ``vistasim_``): counters ``patients_total``, ``patients_migrated_total``,
``patients_failed_total``, ``batches_total``, ``failed_attempts_total{error_type}``,
``stage_failed_attempts_total{stage}``, ``step_failed_attempts_total{stage,step}``,
``stage_records_total{stage,outcome}``, ``stage_attempts_total{stage}``,
``patients_stopped_total{stage}``; gauges ``run_info{command,mode,strategy,seed}`` (=1),
``success_ratio``, ``quality_score``, ``fidelity_ratio``, ``safety_ratio`` (only when measured),
``stage_success_ratio{stage}``, ``stage_duration_seconds{stage}`` (mean per batch execution),
``elapsed_seconds``, ``downtime_max_seconds``, ``downtime_mean_seconds``,
``peak_concurrency_patients``, ``throughput_patients_per_hour``, ``remediation_queue_patients``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, require
from .model import STAGES
from .runio import atomic_write_text, check_writable_file

FORMATS = ("prometheus", "openmetrics")
PREFIX = "vistasim_"


def _pc() -> Any:
    return require("prometheus_client", "metrics", "the metrics file (--metrics)")


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _stage_order(keys: Sequence[str]) -> list[str]:
    return [s for s in STAGES if s in keys] + sorted(k for k in keys if k not in STAGES)


def families(doc: Mapping[str, Any], const_labels: Mapping[str, str] | None = None) -> list[Any]:
    """The metric families of one results document (prometheus_client Metric objects)."""
    core = require("prometheus_client.core", "metrics", "the metrics file (--metrics)")
    extra = dict(const_labels or {})
    names, values = list(extra), list(extra.values())
    out: list[Any] = []

    def counter(
        name: str, doc_: str, samples: Sequence[tuple[Sequence[str], float]], labels: Sequence[str] = ()
    ) -> None:
        fam = core.CounterMetricFamily(PREFIX + name, doc_, labels=[*names, *labels])
        for lv, v in samples:
            fam.add_metric([*values, *lv], float(v))
        out.append(fam)

    def gauge(name: str, doc_: str, samples: Sequence[tuple[Sequence[str], float]], labels: Sequence[str] = ()) -> None:
        fam = core.GaugeMetricFamily(PREFIX + name, doc_, labels=[*names, *labels])
        for lv, v in samples:
            fam.add_metric([*values, *lv], float(v))
        out.append(fam)

    s = doc.get("summary") or {}
    gauge(
        "run_info",
        "The run this file describes (value always 1).",
        [
            (
                [
                    str(doc.get("command", "")),
                    str(doc.get("mode", "")),
                    str(doc.get("strategy", "")),
                    str(doc.get("seed", "")),
                ],
                1,
            )
        ],
        ["command", "mode", "strategy", "seed"],
    )
    counter("patients", "Source patient records in the run.", [([], s.get("total_patients", 0))])
    counter("patients_migrated", "Patients fully migrated.", [([], s.get("migrated_patients", 0))])
    counter("patients_failed", "Patients not migrated (stopped at some stage).", [([], s.get("failed_patients", 0))])
    counter("batches", "Batches (waves) run.", [([], s.get("total_batches", 0))])

    fa = doc.get("failure_analysis") or {}
    ft = fa.get("failure_types") or {}
    counter(
        "failed_attempts",
        "Failed attempts by error type, retried ones included.",
        [([k], v) for k, v in ft.items()],
        ["error_type"],
    )
    fbs = fa.get("failure_by_stage") or {}
    counter(
        "stage_failed_attempts",
        "Failed attempts by stage.",
        [([k], fbs[k]) for k in _stage_order(list(fbs))],
        ["stage"],
    )
    fsub = fa.get("failure_by_substage") or {}
    counter(
        "step_failed_attempts",
        "Failed attempts by stage and step (handoff = the stage-level step).",
        [(k.split("/", 1) if "/" in k else [k, ""], v) for k, v in sorted(fsub.items())],
        ["stage", "step"],
    )
    stopped = fa.get("patients_stopped_by_stage") or {}
    counter(
        "patients_stopped",
        "Patients whose migration stopped in each stage.",
        [([k], stopped[k]) for k in _stage_order(list(stopped))],
        ["stage"],
    )

    sp = doc.get("stage_performance") or {}
    order = _stage_order(list(sp))
    counter(
        "stage_records",
        "Records processed by each stage, by outcome.",
        [([st, o], sp[st].get(f"records_{o}", 0)) for st in order for o in ("successful", "failed")],
        ["stage", "outcome"],
    )
    counter(
        "stage_attempts",
        "Attempts made by each stage (retries included).",
        [([st], sp[st].get("attempts", 0)) for st in order],
        ["stage"],
    )
    gauge(
        "stage_success_ratio",
        "Successful records / processed records, per stage.",
        [([st], sp[st].get("success_rate", 0.0)) for st in order if sp[st].get("records_processed")],
        ["stage"],
    )
    gauge(
        "stage_duration_seconds",
        "Mean simulated duration of one stage execution over a batch.",
        [([st], sp[st].get("average_duration", 0.0)) for st in order],
        ["stage"],
    )

    m = doc.get("metrics") or {}
    for key, name, help_ in (
        ("success", "success_ratio", "Patients migrated / patients."),
        ("quality", "quality_score", "Average modelled quality score (0-1)."),
        ("fidelity", "fidelity_ratio", "Measured field fidelity (data mode)."),
        ("safety", "safety_ratio", "Safety-critical gates passed (data mode)."),
    ):
        if _num(m.get(key)):  # unmeasured metrics are absent, never reported as 0 or 1
            gauge(name, help_, [([], m[key])])

    t = doc.get("timeline") or {}
    for key, name, help_ in (
        ("elapsed_seconds", "elapsed_seconds", "Simulated elapsed time of the run."),
        ("downtime_max_seconds", "downtime_max_seconds", "Longest legacy downtime of a patient."),
        ("downtime_mean_seconds", "downtime_mean_seconds", "Patient-weighted mean legacy downtime."),
        ("peak_concurrency", "peak_concurrency_patients", "Most patients in flight at once."),
        ("throughput_patients_per_hour", "throughput_patients_per_hour", "Migrated patients per simulated hour."),
    ):
        if _num(t.get(key)):
            gauge(name, help_, [([], t[key])])
    queue = fa.get("remediation_queue") or {}
    gauge("remediation_queue_patients", "Patients waiting in the remediation queue.", [([], sum(queue.values()))])
    return out


class _DocCollector:
    """A prometheus_client collector that reports one finished run."""

    def __init__(self, fams: list[Any]) -> None:
        self._fams = fams

    def collect(self) -> Iterator[Any]:
        return iter(self._fams)


def build_registry(doc: Mapping[str, Any], const_labels: Mapping[str, str] | None = None) -> Any:
    """A fresh CollectorRegistry holding the run's metrics (never the global REGISTRY)."""
    pc = _pc()
    registry = pc.CollectorRegistry(auto_describe=False)
    registry.register(_DocCollector(families(doc, const_labels)))
    return registry


def render_metrics(
    doc: Mapping[str, Any], fmt: str = "prometheus", const_labels: Mapping[str, str] | None = None
) -> str:
    """The metrics file text: Prometheus text format 0.0.4, or OpenMetrics 1.0 (ends with # EOF)."""
    if fmt not in FORMATS:
        raise ConfigError(f"metrics format {fmt!r} is unknown; use one of {', '.join(FORMATS)}")
    registry = build_registry(doc, const_labels)
    if fmt == "openmetrics":
        om = require("prometheus_client.openmetrics.exposition", "metrics", "the metrics file (--metrics)")
        return om.generate_latest(registry).decode("utf-8")
    return _pc().generate_latest(registry).decode("utf-8")


def infer_format(path: Path, fmt: str | None = None) -> str:
    if fmt:
        return fmt
    return "openmetrics" if path.suffix.lower() in (".om", ".openmetrics") else "prometheus"


def write_metrics(
    doc: Mapping[str, Any], path: Path, fmt: str | None = None, const_labels: Mapping[str, str] | None = None
) -> Path:
    """Write the metrics file atomically (a scraper never sees half a file)."""
    path = Path(path)
    return atomic_write_text(path, render_metrics(doc, infer_format(path, fmt), const_labels))


def parse_labels(items: Sequence[str] | None) -> dict[str, str]:
    """``["env=ci", "run=nightly"]`` -> dict; ConfigError on a malformed item or a bad label name."""
    import re

    out: dict[str, str] = {}
    for item in items or ():
        if "=" not in item:
            raise ConfigError(f"--metrics-label {item!r} is not KEY=VALUE; write e.g. --metrics-label env=ci")
        k, v = item.split("=", 1)
        k = k.strip()
        if (
            not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", k)
            or k.startswith("__")
            or k in ("command", "mode", "strategy", "seed", "stage", "step", "outcome", "error_type")
        ):
            raise ConfigError(f"--metrics-label {item!r}: {k!r} is not a usable label name; use letters, digits and _")
        out[k] = v
    return out


def add_metrics_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--metrics PATH``, ``--metrics-format`` and ``--metrics-label KEY=VALUE`` to a command."""
    parser.add_argument(
        "--metrics",
        default=None,
        metavar="PATH",
        help="also write the run's counters and gauges as a Prometheus text file "
        "(OpenMetrics if PATH ends in .om); needs pip install 'vistasim[metrics]'",
    )
    parser.add_argument(
        "--metrics-format",
        default=None,
        choices=FORMATS,
        help="metrics file format (default from the extension, else prometheus)",
    )
    parser.add_argument(
        "--metrics-label",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="a constant label on every metric, e.g. env=ci (repeatable)",
    )


def check_metrics_args(args: argparse.Namespace) -> None:
    """Fail before any work when the metrics options cannot work (bad label, unwritable path, no library)."""
    if getattr(args, "metrics", None):
        parse_labels(getattr(args, "metrics_label", None))
        check_writable_file(Path(args.metrics), "metrics file (--metrics)")
        _pc()


def apply_metrics(doc: Mapping[str, Any], args: argparse.Namespace) -> Path | None:
    """Write the metrics file if ``--metrics`` was given; returns its path."""
    if not getattr(args, "metrics", None):
        return None
    return write_metrics(
        doc,
        Path(args.metrics),
        getattr(args, "metrics_format", None),
        parse_labels(getattr(args, "metrics_label", None)),
    )
