"""User-set targets such as ``success>=0.99`` or ``downtime_hours<=48``, checked per replication."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import ConfigError

# target name -> the overall metric it reads
TARGET_METRICS: dict[str, str] = {
    "success": "success_rate",
    "quality": "quality",
    "errors": "errors",
    "elapsed_hours": "elapsed_hours",
    "downtime_hours": "downtime_max_hours",
    "downtime_mean_hours": "downtime_mean_hours",
    "rollbacks": "rollbacks",
}
_RE = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Target:
    text: str
    name: str
    op: str
    value: float

    @property
    def metric(self) -> str:
        return TARGET_METRICS[self.name]

    def met(self, x: float) -> bool:
        return {">=": x >= self.value, "<=": x <= self.value, ">": x > self.value, "<": x < self.value}[self.op]


def parse_target(text: str) -> Target:
    """Parse ``NAME OP VALUE``; ConfigError naming the known metrics otherwise."""
    m = _RE.match(text or "")
    if not m:
        raise ConfigError(f"--target {text!r} is not METRIC OP VALUE, e.g. success>=0.99 or downtime_hours<=48")
    name, op, raw = m.groups()
    if name not in TARGET_METRICS:
        raise ConfigError(f"--target {text!r}: unknown metric {name!r} (use one of {', '.join(TARGET_METRICS)})")
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"--target {text!r}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"--target {text!r}: the value must be finite")
    return Target(f"{name}{op}{raw}", name, op, value)
