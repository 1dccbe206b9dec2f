"""Synthetic veteran population generator: realistic, seeded, multi-site, with recorded legacy defects.

Entry points::

    generate_patient(seed=None, station="528", dfn=None) -> PatientRecord
    generate_patients(n, seed=0, sites=1, defects=0.0, workers=1) -> list[PatientRecord]
    iter_population(n, seed=0, sites=1, defects=0.0, workers=1, with_key=False)  # streaming
    generate_population(...) -> Population(patients, answer_key)

Every record is a pure function of (seed, layout, station, DFN) (see :mod:`.population`), so output
is identical whatever the worker count. Data tables and their sources are in
``vistasim/data/generate/``; identifiers (ICN with MPI checksum, never-issued SSNs, IENs) are
documented in :mod:`.identifiers`, multi-site persons in :mod:`.layout`, defects in :mod:`.defects`.
"""

from .api import (
    DEFAULT_SEED,
    Population,
    answer_key,
    generate_patient,
    generate_patients,
    generate_population,
    iter_blocks,
    iter_population,
)
from .defects import ANSWER_KEY_HEADER, DEFECT_KINDS, DefectConfig, DefectEntry
from .identifiers import icn_checksum, is_synthetic_ssn, verify_full_icn
from .layout import Layout, select_sites
from .tables import Site, all_sites

__all__ = [
    "ANSWER_KEY_HEADER",
    "DEFAULT_SEED",
    "DEFECT_KINDS",
    "DefectConfig",
    "DefectEntry",
    "Layout",
    "Population",
    "Site",
    "all_sites",
    "answer_key",
    "generate_patient",
    "generate_patients",
    "generate_population",
    "icn_checksum",
    "is_synthetic_ssn",
    "iter_blocks",
    "iter_population",
    "select_sites",
    "verify_full_icn",
]
