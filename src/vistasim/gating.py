"""CI gating: fail a build when a run's measured quality is below the team's targets.

``--fail-under success=0.98,quality=0.9,fidelity=0.999,safety=1.0`` names a minimum for some of the
metrics in results.json ``metrics``. Exit codes, the same for every command that offers the option:

* 0 - every named metric was measured and meets its target;
* 1 - a measured metric is below its target (one line on stderr names the metric, value and target);
* 2 - the option is malformed (ConfigError, raised before any work), or the run did not measure a named
  metric (``null``: fidelity and safety exist in data mode only). Asking for a gate the run cannot
  check is a set-up mistake, so it wins over a miss.

Commands reuse this with :func:`add_gating_arguments` on their parser and :func:`apply_gating` on the
finished results document.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from .errors import ConfigError

GATE_METRICS: tuple[str, ...] = ("success", "quality", "fidelity", "safety")
EXIT_OK, EXIT_MISSED, EXIT_UNMEASURED = 0, 1, 2
# A value equal to its target passes; this absorbs float noise such as 0.98 stored as 0.97999999999999998.
_EPS = 1e-12

FAIL_UNDER_HELP = (
    "gate the run: comma-separated METRIC=MIN with METRIC in success, quality, fidelity, safety and MIN a "
    "fraction (0.98) or a percentage (98%%); exit 1 if a metric is below its minimum, 2 if the run did not "
    "measure it (fidelity and safety: data mode only)"
)


@dataclass(frozen=True)
class Target:
    metric: str
    minimum: float


@dataclass(frozen=True)
class GateResult:
    exit_code: int
    message: str  # one line
    missed: tuple[str, ...] = ()
    unmeasured: tuple[str, ...] = ()


def _parse_value(text: str, metric: str, spec: str) -> float:
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ConfigError(
            f"--fail-under {spec!r}: {metric} minimum {raw!r} is not a number; write e.g. {metric}=0.98"
        ) from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ConfigError(
            f"--fail-under {spec!r}: {metric} minimum {raw!r} is outside 0..1; write a fraction like 0.98 or 98%"
        )
    return value


def parse_fail_under(spec: str | Sequence[str]) -> tuple[Target, ...]:
    """Parse ``success=0.98,quality=0.9`` (or several such strings) into targets; ConfigError if malformed."""
    parts = [spec] if isinstance(spec, str) else list(spec)
    text = ",".join(parts)
    targets: dict[str, Target] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ConfigError(f"--fail-under {text!r}: {item!r} is not METRIC=MIN; write e.g. success=0.98,quality=0.9")
        name, value = (x.strip() for x in item.split("=", 1))
        name = name.lower().rstrip(">")  # tolerate success>=0.98
        if name not in GATE_METRICS:
            raise ConfigError(f"--fail-under {text!r}: unknown metric {name!r}; use {', '.join(GATE_METRICS)}")
        if name in targets:
            raise ConfigError(f"--fail-under {text!r}: {name} is given twice; keep one minimum per metric")
        targets[name] = Target(name, _parse_value(value, name, text))
    if not targets:
        raise ConfigError("--fail-under is empty; write e.g. success=0.98,quality=0.9")
    return tuple(targets.values())


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def check(metrics: Mapping[str, Any], targets: Sequence[Target]) -> GateResult:
    """Compare a results document's ``metrics`` with the targets (pure; no printing)."""
    missed: list[str] = []
    unmeasured: list[str] = []
    passed: list[str] = []
    for t in targets:
        value = metrics.get(t.metric)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            unmeasured.append(t.metric)
        elif value + _EPS < t.minimum:
            missed.append(f"{t.metric} {_fmt(value)} < target {_fmt(t.minimum)}")
        else:
            passed.append(f"{t.metric} {_fmt(value)} >= {_fmt(t.minimum)}")
    if unmeasured:
        msg = (
            f"fail-under: {', '.join(unmeasured)} not measured by this run (null in results.json metrics); "
            "gate only on metrics the run measures (fidelity and safety: vistasim migrate)"
        )
        if missed:
            msg += "; also missed: " + "; ".join(missed)
        return GateResult(EXIT_UNMEASURED, msg, tuple(m.split(" ")[0] for m in missed), tuple(unmeasured))
    if missed:
        return GateResult(
            EXIT_MISSED, "fail-under: target missed: " + "; ".join(missed), tuple(m.split(" ")[0] for m in missed)
        )
    return GateResult(EXIT_OK, "fail-under: passed: " + "; ".join(passed))


def add_gating_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--fail-under METRIC=MIN[,...]`` (repeatable) to a command's parser."""
    parser.add_argument("--fail-under", action="append", default=None, metavar="METRIC=MIN[,...]", help=FAIL_UNDER_HELP)


def targets_from_args(args: argparse.Namespace) -> tuple[Target, ...] | None:
    """Parse the option early (before any work) so a typo fails fast; None when not given."""
    spec = getattr(args, "fail_under", None)
    return parse_fail_under(spec) if spec else None


def apply_gating(
    doc: Mapping[str, Any],
    spec: None | str | Sequence[str] | Sequence[Target],
    stream: TextIO | None = None,
    quiet: bool = False,
) -> int:
    """Check ``doc['metrics']`` against ``spec`` and return the exit code (0 when no spec).

    The one-line verdict goes to ``stream`` (stderr by default, so ``--json`` on stdout stays clean);
    a pass is printed unless ``quiet``, a failure always.
    """
    if not spec:
        return EXIT_OK
    if isinstance(spec, str):
        targets = parse_fail_under(spec)
    elif all(isinstance(t, Target) for t in spec):
        targets = tuple(t for t in spec if isinstance(t, Target))
    else:
        targets = parse_fail_under([str(t) for t in spec])
    result = check(doc.get("metrics") or {}, targets)
    out = stream if stream is not None else sys.stderr
    if result.exit_code != EXIT_OK or not quiet:
        print(f"vistasim: {result.message}", file=out)
    return result.exit_code
