"""Interval statistics for Monte Carlo output: mean with its 95 % confidence interval, the 5th-95th percentile
band of single outcomes, and Wilson intervals for probabilities. Pure functions of the per-replication values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Z975 = 1.959963984540054
# Student t 0.975 quantiles for 1..30 degrees of freedom (standard tables); beyond, a Cornish-Fisher expansion.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (error < 1e-3)."""
    if df < 1:
        raise ValueError("t975 needs df >= 1")
    if df <= len(_T975):
        return _T975[df - 1]
    z = Z975
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def interval(values: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """Mean, its 95 % t-interval (None with one replication), and the 5th-95th percentile band."""
    v = np.asarray(values, dtype=np.float64)
    n = int(v.size)
    mean = float(v.mean()) if n else 0.0
    ci: list | None = None
    sd = 0.0
    if n >= 2:
        sd = float(v.std(ddof=1))
        half = t975(n - 1) * sd / math.sqrt(n)
        ci = [mean - half, mean + half]
        if sd == 0.0:
            ci = [mean, mean]
    p05, p95 = (float(x) for x in np.percentile(v, [5.0, 95.0])) if n else (0.0, 0.0)
    return {"mean": mean, "ci95": ci, "p05": p05, "p95": p95, "sd": sd}


def wilson(successes: int, n: int, point: bool = False) -> tuple[float, list | None]:
    """The proportion and its 95 % Wilson interval; ``point`` gives [p, p] (a deterministic model)."""
    if n <= 0:
        return 0.0, None
    p = successes / n
    if point:
        return p, [p, p]
    z2 = Z975 ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z975 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return p, [max(0.0, centre - half), min(1.0, centre + half)]
