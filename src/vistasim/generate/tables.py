"""The generator's data tables, loaded once per process from ``vistasim/data/generate``.

Every number lives in a JSON/CSV file beside its source (see the ``source`` keys); this module only
reads them and turns them into NumPy arrays and tuples shaped for vectorised draws.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np


def _read_text(name: str) -> str:
    return resources.files("vistasim").joinpath("data").joinpath("generate").joinpath(name).read_text(encoding="utf-8")


def load_json(name: str) -> Any:
    """One data file (``population.json``, ``clinical.json`` ...) as parsed JSON."""
    return json.loads(_read_text(name))


@dataclass(frozen=True)
class Site:
    """A VA medical center with its own VistA instance."""

    station: str
    name: str
    city: str
    state: str
    visn: int
    zip: str
    area_code: str
    size: int
    ehr: str


@lru_cache(maxsize=1)
def all_sites() -> tuple[Site, ...]:
    """Every site of ``sites.csv``, in file order (grouped by VISN)."""
    text = "".join(line for line in io.StringIO(_read_text("sites.csv")) if not line.startswith("#"))
    rows = csv.DictReader(io.StringIO(text))
    return tuple(
        Site(r["station"], r["name"], r["city"], r["state"], int(r["visn"]), r["zip"], r["area_code"],
             int(r["size"]), r["ehr"])
        for r in rows
    )


def site_by_station() -> dict[str, Site]:
    return {s.station: s for s in all_sites()}


def cdf(weights: Any) -> np.ndarray:
    """Normalised cumulative weights along the last axis, for inverse-CDF draws with searchsorted."""
    w = np.asarray(weights, dtype=np.float64)
    c = np.cumsum(w, axis=-1)
    return c / c[..., -1:]


def pick(cdf_row: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Indices drawn from one CDF for uniforms ``u`` (any shape)."""
    return np.minimum(np.searchsorted(cdf_row, u, side="right"), len(cdf_row) - 1)


def pick_rows(cdfs: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per-element draws where each element uses CDF ``cdfs[rows[i]]`` (vectorised over i)."""
    c = cdfs[rows]
    return np.minimum((c <= u[:, None]).sum(axis=1), cdfs.shape[1] - 1)


@dataclass(frozen=True)
class Tables:
    """Everything the generator draws from, shaped for NumPy."""

    pop: dict[str, Any]
    clinical: dict[str, Any]
    enc: dict[str, Any]
    names: dict[str, Any]
    checkdigit: np.ndarray  # (6, 10, 16) MPI check-digit tables


@lru_cache(maxsize=1)
def tables() -> Tables:
    cd = np.asarray(load_json("icn_checkdigit.json")["tables"], dtype=np.int64)
    return Tables(
        pop=load_json("population.json"),
        clinical=load_json("clinical.json"),
        enc=load_json("encounters.json"),
        names=load_json("names.json"),
        checkdigit=cd,
    )
