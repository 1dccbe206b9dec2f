"""The population model: builds PatientRecords for a block of (station, DFN) keys at once.

Speed comes from drawing every random number of a block with NumPy first (keyed, counter-based
draws from :mod:`vistasim.rng`: each number is a hash of (seed, stream, station, DFN, slot), so a
record is a pure function of its key whatever the block it is built in), computing dates and values
as arrays, and only then looping in Python to assemble the dataclasses from plain lists.

Person-level facts (sex, birth, names, SSN, ICN, service history, chronic conditions) are keyed by
the person's home record, so a person's records at several stations agree; record-level facts
(IENs, visits, vitals, prescriptions, orders) are keyed by the record itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat
from typing import Any

import numpy as np

from .._gc import gc_paused  # noqa: F401  (re-exported: generate's callers and tests import it here)
from ..model import Address, Allergy, Order, PatientRecord, Prescription, Problem, RecordFlag, Visit, Vital
from ..rng import hash_keys, name_key
from .defects import DEFECT_FIELDS, NO_DEFECTS, DefectConfig, DefectEntry
from .identifiers import IEN_STRIDE, icn_checksums, icn_numbers, ssn_numbers
from .layout import Layout
from .tables import all_sites, cdf, pick, tables

_EPOCH_YEAR0 = np.datetime64("1880-01-01", "D")
_DAY0 = int(_EPOCH_YEAR0.astype(np.int64))
_N_DAYS = int((np.datetime64("2031-01-01", "D") - _EPOCH_YEAR0).astype(np.int64))
YEAR_DAYS = 365.2425

STREET_NAMES = (
    "MAIN ST", "OAK AVE", "MAPLE DR", "CEDAR LN", "PINE ST", "ELM ST", "WASHINGTON AVE", "LAKE RD",
    "HILL ST", "PARK AVE", "RIVER RD", "CHURCH ST", "MILL RD", "SUNSET BLVD", "LINCOLN WAY",
    "JEFFERSON ST", "HIGHLAND AVE", "FOREST DR", "MEADOW LN", "VETERANS MEMORIAL PKWY", "2ND ST",
    "3RD ST", "CENTER ST", "SPRING ST", "WALNUT ST", "COUNTY ROAD 12", "RIDGE RD", "VALLEY VIEW DR",
)


@lru_cache(maxsize=1)
def _day_strings() -> tuple[list[str], list[str], list[str]]:
    """ISO day, year-month and year strings for every day 1880..2030 (lookup beats formatting)."""
    days = np.arange(_N_DAYS).astype("timedelta64[D]") + _EPOCH_YEAR0
    full = np.datetime_as_string(days, unit="D").tolist()
    return full, [s[:7] for s in full], [s[:4] for s in full]


@lru_cache(maxsize=1)
def _minute_strings() -> list[str]:
    return [f"T{m // 60:02d}:{m % 60:02d}:00" for m in range(1440)]


def _zipf_cdf(n: int) -> np.ndarray:
    return cdf(1.0 / (np.arange(n) + 10.0))


@dataclass(frozen=True)
class _Model:
    """Tables turned into arrays, built once per process."""

    as_of: int  # day index (days since 1880-01-01)
    female_share: float
    band_lo: np.ndarray
    band_hi: np.ndarray
    band_cdf_m: np.ndarray
    band_cdf_f: np.ndarray
    race_vals: tuple[str, ...]
    race_cdf: np.ndarray  # (2, k) male, female
    eth_vals: tuple[str, ...]
    eth_cdf: np.ndarray
    branch_vals: tuple[str, ...]
    branch_cdf: np.ndarray
    period_names: tuple[str, ...]
    period_start: np.ndarray
    period_end: np.ndarray
    period_wartime: np.ndarray
    entry_lo: int
    entry_hi: int
    len_lo: np.ndarray
    len_hi: np.ndarray
    len_cdf: np.ndarray
    marital_vals: tuple[str, ...]
    marital_cdf: np.ndarray  # (4 age groups, k)
    sc_share: np.ndarray
    sc_pct_vals: np.ndarray
    sc_pct_cdf: np.ndarray
    dead_share: np.ndarray
    dead_years: float
    mail_share: float
    surnames: tuple[str, ...]
    male_names: tuple[str, ...]
    female_names: tuple[str, ...]
    surname_cdf: np.ndarray
    male_cdf: np.ndarray
    female_cdf: np.ndarray
    # conditions
    cond_keys: tuple[str, ...]
    cond_desc: tuple[str, ...]
    cond_icd10: tuple[str, ...]
    cond_icd9: tuple[str, ...]
    cond_snomed: tuple[str, ...]
    cond_prev: np.ndarray  # (C, 3) male prevalence by age group
    cond_fmult: np.ndarray  # (C,)
    cond_cluster: np.ndarray  # (C,) int, -1 none
    cond_inactive: np.ndarray
    cond_treated: np.ndarray
    cond_onset_min: np.ndarray
    cond_drugs: tuple[tuple[int, ...], ...]
    rho: float
    drugs: tuple[tuple[str, str, int, str], ...]  # (name, rxnorm, qty per 30 days, sig)
    orphan_drugs: tuple[str, ...]
    # allergies
    allergens: tuple[tuple[str, str, str, str, tuple[str, ...]], ...]
    allergen_cdf: np.ndarray
    allergen_mech_cdf: np.ndarray
    allergy_share: float
    allergy_verified: float
    free_text: dict[str, str]
    # encounters
    clinics: tuple[tuple[str, str, int], ...]  # (location, category, condition bitmask)
    clinic_cdf: np.ndarray
    visit_min: int
    visit_max: int
    visit_base: float
    visit_per_cond: float
    labs: tuple[tuple[str, str, str | None, str | None, int], ...]
    others: tuple[tuple[str, str, str | None, str | None, int], ...]
    order_status: tuple[str, ...]
    order_status_cdf: np.ndarray
    unsigned_share: float
    flags: tuple[tuple[str, str, float, float], ...]
    hrs_review: int
    default_review: int
    ptsd_dep_mask: int
    clinic_need: np.ndarray
    flag_share: np.ndarray
    flag_mult: np.ndarray
    cond_index: dict[str, int]


@lru_cache(maxsize=1)
def model() -> _Model:
    t = tables()
    pop, clin, enc, names = t.pop, t.clinical, t.enc, t.names
    as_of = int((np.datetime64(pop["as_of"], "D") - _EPOCH_YEAR0).astype(np.int64))
    bands = np.asarray(pop["age_bands"]["bands"], dtype=np.int64)
    periods = pop["periods"]["values"]
    day = lambda s: int((np.datetime64(s, "D") - _EPOCH_YEAR0).astype(np.int64))  # noqa: E731
    svc = pop["service"]
    lens = np.asarray(svc["length_years"]["values"], dtype=np.float64)
    mar = pop["marital"]
    sc = pop["service_connected"]
    conds = clin["conditions"]
    cond_index = {c[0]: i for i, c in enumerate(conds)}
    drug_index = {d[0]: i for i, d in enumerate(clin["drugs"])}
    clusters = {"metabolic": 0, "mental": 1, "pain": 2}

    def mask(keys: list[str]) -> int:
        m = 0
        for k in keys:
            m |= 1 << cond_index[k]
        return m

    al = enc["allergies"]["values"]
    clinics = enc["clinics"]["values"]
    orders = enc["orders"]
    statuses = list(orders["status_weights"].items())
    flags = pop["flags"]
    return _Model(
        as_of=as_of,
        female_share=float(pop["sex"]["female_share"]),
        band_lo=bands[:, 0],
        band_hi=bands[:, 1],
        band_cdf_m=cdf(pop["age_bands"]["male"]),
        band_cdf_f=cdf(pop["age_bands"]["female"]),
        race_vals=tuple(pop["race"]["values"]),
        race_cdf=cdf([pop["race"]["male"], pop["race"]["female"]]),
        eth_vals=tuple(pop["ethnicity"]["values"]),
        eth_cdf=cdf([pop["ethnicity"]["male"], pop["ethnicity"]["female"]]),
        branch_vals=tuple(pop["branch"]["values"]),
        branch_cdf=cdf(pop["branch"]["weights"]),
        period_names=tuple(p[0] for p in periods),
        period_start=np.array([day(p[1]) for p in periods], dtype=np.int64),
        period_end=np.array([day(p[2]) for p in periods], dtype=np.int64),
        period_wartime=np.array([p[0] in pop["periods"]["wartime"] for p in periods]),
        entry_lo=int(svc["entry_age"][0]),
        entry_hi=int(svc["entry_age"][1]),
        len_lo=lens[:, 0],
        len_hi=lens[:, 1],
        len_cdf=cdf(svc["length_years"]["weights"]),
        marital_vals=tuple(mar["values"]),
        marital_cdf=cdf([mar["by_age"][k] for k in ("18-34", "35-54", "55-74", "75-99")]),
        sc_share=np.asarray(sc["share_by_band"], dtype=np.float64),
        sc_pct_vals=np.asarray(sc["percent_values"], dtype=np.int64),
        sc_pct_cdf=cdf(sc["percent_weights"]),
        dead_share=np.asarray(pop["deceased"]["share_by_band"], dtype=np.float64),
        dead_years=float(pop["deceased"]["max_years_ago"]),
        mail_share=float(pop["mail_fill_share"]["share"]),
        surnames=tuple(names["surnames"]),
        male_names=tuple(names["male"]),
        female_names=tuple(names["female"]),
        surname_cdf=_zipf_cdf(len(names["surnames"])),
        male_cdf=_zipf_cdf(len(names["male"])),
        female_cdf=_zipf_cdf(len(names["female"])),
        cond_keys=tuple(c[0] for c in conds),
        cond_desc=tuple(c[1] for c in conds),
        cond_icd10=tuple(c[2] for c in conds),
        cond_icd9=tuple(c[3] for c in conds),
        cond_snomed=tuple(c[4] for c in conds),
        cond_prev=np.asarray([c[5] for c in conds], dtype=np.float64),
        cond_fmult=np.asarray([c[6] for c in conds], dtype=np.float64),
        cond_cluster=np.asarray([clusters.get(c[7], -1) for c in conds], dtype=np.int64),
        cond_inactive=np.asarray([c[8] for c in conds], dtype=np.float64),
        cond_treated=np.asarray([c[10] for c in conds], dtype=np.float64),
        cond_onset_min=np.asarray([c[11] for c in conds], dtype=np.float64),
        cond_drugs=tuple(tuple(drug_index[d] for d in c[9]) for c in conds),
        rho=float(clin["cluster_correlation"]),
        drugs=tuple((d[1], d[2], int(d[3]), d[4]) for d in clin["drugs"]),
        orphan_drugs=tuple(clin["orphan_drugs"]),
        allergens=tuple((a[0], a[1], a[2], a[3], tuple(a[6])) for a in al),
        allergen_cdf=cdf([a[4] for a in al]),
        allergen_mech_cdf=cdf([a[5] for a in al]),
        allergy_share=float(enc["allergies"]["any_allergy_share"]),
        allergy_verified=float(enc["allergies"]["verified_share"]),
        free_text=dict(enc["allergies"]["free_text_variants"]),
        clinics=tuple((c[0], c[1], mask(c[3])) for c in clinics),
        clinic_cdf=cdf([c[2] for c in clinics]),
        visit_min=int(enc["visits_per_patient"]["min"]),
        visit_max=int(enc["visits_per_patient"]["max"]),
        visit_base=float(enc["visits_per_patient"]["mean_base"]),
        visit_per_cond=float(enc["visits_per_patient"]["per_condition"]),
        labs=tuple((o[0], o[1], o[2], o[3], mask(o[4])) for o in orders["labs"]),
        others=tuple((o[0], o[1], o[2], o[3], mask(o[4])) for o in orders["other"]),
        order_status=tuple(s for s, _ in statuses),
        order_status_cdf=cdf([w for _, w in statuses]),
        unsigned_share=float(orders["unsigned_share"]),
        flags=tuple((f[0], f[1], float(f[2]), float(f[3])) for f in flags["values"]),
        hrs_review=int(flags["review_days"]["HIGH RISK FOR SUICIDE"]),
        default_review=int(flags["review_days"]["default"]),
        ptsd_dep_mask=mask(["ptsd", "depression"]),
        clinic_need=np.array([mask(c[3]) for c in clinics], dtype=np.int64),
        flag_share=np.array([f[2] for f in flags["values"]], dtype=np.float64),
        flag_mult=np.array([f[3] for f in flags["values"]], dtype=np.float64),
        cond_index=cond_index,
    )


# --------------------------------------------------------------------------- keyed draws


def _base(seed: int, stream: str, skeys: np.ndarray, dfn: np.ndarray) -> np.ndarray:
    return hash_keys(seed, name_key(stream), skeys, dfn)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)
_TWO32 = 1.0 / float(1 << 32)


def _draws(base: np.ndarray, k: int) -> np.ndarray:
    """(n, k) uniforms in [0, 1): slot j of entity i comes from SplitMix64(base_i + j * golden).

    Each 64-bit hash yields two 32-bit uniforms (resolution 2**-32, ample for every draw here), which
    halves the hashing work of a block; still a pure function of (base_i, j).
    """
    half = (k + 1) // 2
    with np.errstate(over="ignore"):
        z = base[:, None] + (np.arange(1, half + 1, dtype=np.uint64) * _GOLDEN)[None, :]
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
        z ^= z >> _S31
    out = np.empty((len(base), 2 * half), dtype=np.float64)
    out[:, 0::2] = (z >> _S32).astype(np.float64)
    out[:, 1::2] = (z & np.uint64(0xFFFFFFFF)).astype(np.float64)
    out *= _TWO32
    return out[:, :k]


def _normal(u1: np.ndarray, u2: np.ndarray, u3: np.ndarray) -> np.ndarray:
    """Approximately standard normal from three uniforms (Irwin-Hall): cheap and bounded (|z| <= 3)."""
    return (u1 + u2 + u3 - 1.5) * 2.0


# --------------------------------------------------------------------------- the block builder


_BAD_NAME_KINDS = ("lowercase", "no_comma", "double_comma", "digits", "too_long", "trailing_period")
_BAD_SEX = ("U", "m", "MALE", "", "flipped")


def _defect_kinds(seed: int, layout: Layout, si: np.ndarray, dfn: np.ndarray, cfg: DefectConfig) -> np.ndarray:
    """Index into cfg.kinds of each record's defect, or -1 (vectorised, keyed)."""
    out = np.full(len(dfn), -1, dtype=np.int64)
    if cfg.rate <= 0 or not cfg.kinds:
        return out
    u = _draws(_base(seed, "defect", layout.station_keys[si], dfn), 2)
    hit = u[:, 0] < cfg.rate
    out[hit] = np.minimum((u[hit, 1] * len(cfg.kinds)).astype(np.int64), len(cfg.kinds) - 1)
    return out


def _duplicate_targets(seed: int, layout: Layout, si: np.ndarray, dfn: np.ndarray, kinds: np.ndarray,
                       cfg: DefectConfig) -> np.ndarray:
    """DFN of the record each duplicate copies (a home record of the same station), or 0 where none fits."""
    target = np.zeros(len(dfn), dtype=np.int64)
    if "duplicate_patient" not in cfg.kinds:
        return target
    dup = kinds == cfg.kinds.index("duplicate_patient")
    if not dup.any():
        return target
    idx = np.nonzero(dup)[0]
    n_i = np.asarray(layout.counts, dtype=np.int64)[si[idx]]
    h = hash_keys(seed, name_key("duplicate-of"), layout.station_keys[si[idx]], dfn[idx])
    e = (h % np.maximum(n_i, 1).astype(np.uint64)).astype(np.int64) + 1
    e = np.where(e == dfn[idx], e % np.maximum(n_i, 1) + 1, e)
    ok = (n_i >= 2) & (e != dfn[idx])
    ok &= ~layout.is_shared(seed, si[idx], e)
    ek = _defect_kinds(seed, layout, si[idx], e, cfg)
    ok &= ek != cfg.kinds.index("duplicate_patient")
    target[idx[ok]] = e[ok]
    return target


def build_block(seed: int, layout: Layout, station_index: int, dfns: np.ndarray,
                defects: DefectConfig = NO_DEFECTS) -> tuple[list[PatientRecord], list[list[DefectEntry]]]:
    """PatientRecords (and their answer-key entries) for DFNs ``dfns`` of one station of ``layout``."""
    with gc_paused():
        return _build_block(seed, layout, station_index, dfns, defects)


def _build_block(seed: int, layout: Layout, station_index: int, dfns: np.ndarray,
                 defects: DefectConfig) -> tuple[list[PatientRecord], list[list[DefectEntry]]]:
    m = model()
    day_s, ym_s, y_s = _day_strings()
    dfn = np.asarray(dfns, dtype=np.int64)
    n = len(dfn)
    if n == 0:
        return [], []
    station = layout.stations[station_index]
    si = np.full(n, station_index, dtype=np.int64)
    skey = layout.station_keys[si]

    # ---- identity: which person each record belongs to (multi-site sharing, duplicates)
    kinds = _defect_kinds(seed, layout, si, dfn, defects)
    dup_target = _duplicate_targets(seed, layout, si, dfn, kinds, defects)
    if "duplicate_patient" in defects.kinds:
        dup_kind = defects.kinds.index("duplicate_patient")
        failed = (kinds == dup_kind) & (dup_target == 0)
        # a duplicate with no valid original falls back to a bad name (still one recorded defect)
        kinds = np.where(failed, -2, kinds)
    ps, pd = layout.persons(seed, si, dfn)
    has_dup = dup_target > 0
    if has_dup.any():
        ps[has_dup], pd[has_dup] = layout.persons(seed, si[has_dup], dup_target[has_dup])
    gidx = layout.global_index(ps, pd)
    icn = icn_numbers(gidx)
    icn_chk = icn_checksums(icn)
    ssn = ssn_numbers(gidx)
    pkey = layout.station_keys[ps]

    # ---- person-level draws
    P = _draws(_base(seed, "person", pkey, pd), 28)
    female = P[:, 0] < m.female_share
    band = np.where(female, pick(m.band_cdf_f, P[:, 1]), pick(m.band_cdf_m, P[:, 1]))
    age = m.band_lo[band] + np.floor(P[:, 2] * (m.band_hi[band] - m.band_lo[band] + 1)).astype(np.int64)
    dob = (m.as_of - (age * YEAR_DAYS + P[:, 3] * 365.0)).astype(np.int64)
    sexrow = female.astype(np.int64)
    race = (m.race_cdf[sexrow] <= P[:, 4:5]).sum(axis=1)
    eth = (m.eth_cdf[sexrow] <= P[:, 5:6]).sum(axis=1)
    branch = pick(m.branch_cdf, P[:, 6])
    # service: entry at 17-26 (skewed young), length by bucket, both fitted inside the veteran's age
    entry_age = m.entry_lo + (P[:, 7] ** 2) * (m.entry_hi - m.entry_lo)
    lb = pick(m.len_cdf, P[:, 8])
    length = m.len_lo[lb] + P[:, 9] * (m.len_hi[lb] - m.len_lo[lb])
    length = np.minimum(length, np.maximum(age - m.entry_lo - 0.5, 0.5))
    entry_age = np.clip(np.minimum(entry_age, age - length - 0.25), m.entry_lo - 0.99, None)
    entry = dob + (entry_age * YEAR_DAYS).astype(np.int64)
    sep = np.minimum(entry + (length * YEAR_DAYS).astype(np.int64), m.as_of - 30)
    overlap = (entry[:, None] <= m.period_end[None, :]) & (sep[:, None] >= m.period_start[None, :])
    war = overlap & m.period_wartime[None, :]
    k_p = len(m.period_names)
    last_war = np.where(war.any(axis=1), k_p - 1 - np.argmax(war[:, ::-1], axis=1), -1)
    contains = (entry[:, None] >= m.period_start[None, :]) & (entry[:, None] <= m.period_end[None, :])
    entry_period = np.where(contains.any(axis=1), np.argmax(contains, axis=1), 0)
    period = np.where(last_war >= 0, last_war, entry_period)
    agegrp4 = np.searchsorted(np.array([35, 55, 75]), age, side="right")
    marital = (m.marital_cdf[agegrp4] <= P[:, 11:12]).sum(axis=1)
    sc = P[:, 12] < m.sc_share[band]
    sc_pct = m.sc_pct_vals[pick(m.sc_pct_cdf, P[:, 13])]
    dead = P[:, 14] < m.dead_share[band]
    death = (m.as_of - P[:, 15] * m.dead_years * 365.0).astype(np.int64)
    death = np.maximum(death, dob + int(19 * YEAR_DAYS))
    end_day = np.where(dead, death, m.as_of)
    last = pick(m.surname_cdf, P[:, 16])
    first_m = pick(m.male_cdf, P[:, 17])
    first_f = pick(m.female_cdf, P[:, 17])
    mid_m = pick(m.male_cdf, P[:, 18])
    mid_f = pick(m.female_cdf, P[:, 18])
    street_no = (1 + P[:, 20] * 9998).astype(np.int64)
    street = (P[:, 21] * len(STREET_NAMES)).astype(np.int64)
    apt = np.where(P[:, 22] < 0.12, (1 + P[:, 22] * 200).astype(np.int64), 0)
    zip_suffix = (P[:, 23] * 100).astype(np.int64)
    phone = (P[:, 24] * 100).astype(np.int64)

    # ---- chronic conditions (person-level): Gaussian-free copula, each keeps its marginal rate
    C = len(m.cond_keys)
    own = _draws(_base(seed, "conditions", pkey, pd), C)
    mix = _draws(_base(seed, "condition-mix", pkey, pd), C)
    clus = _draws(_base(seed, "condition-cluster", pkey, pd), 3)
    cl = m.cond_cluster
    shared_u = np.where(cl[None, :] >= 0, clus[:, np.maximum(cl, 0)], own)
    u_eff = np.where((mix < m.rho) & (cl[None, :] >= 0), shared_u, own)
    agegrp3 = np.searchsorted(np.array([45, 65]), age, side="right")
    prev = m.cond_prev[:, agegrp3].T * np.where(female[:, None], m.cond_fmult[None, :], 1.0)
    present = u_eff < np.minimum(prev, 0.95)
    onset_lo = np.maximum(dob[:, None] + (m.cond_onset_min[None, :] * YEAR_DAYS).astype(np.int64),
                          end_day[:, None] - int(25 * YEAR_DAYS))
    present &= onset_lo < end_day[:, None] - 30
    cond_mask = (present.astype(np.int64) << np.arange(C, dtype=np.int64)[None, :]).sum(axis=1)

    # ---- record-level draws
    rbase = _base(seed, "record", skey, dfn)
    R = _draws(rbase, 16)
    on = _draws(rbase ^ np.uint64(1), C)
    st = _draws(rbase ^ np.uint64(2), C)
    rs = _draws(rbase ^ np.uint64(3), C)
    tr = _draws(rbase ^ np.uint64(4), C)
    dr = _draws(rbase ^ np.uint64(5), C)
    rx = _draws(rbase ^ np.uint64(6), C)
    rq = _draws(rbase ^ np.uint64(7), C)
    onset = onset_lo + (on * np.maximum(end_day[:, None] - 30 - onset_lo, 1)).astype(np.int64)
    entered = onset + (st * 0.3 * np.maximum(end_day[:, None] - onset, 1)).astype(np.int64)
    inactive = rs < m.cond_inactive[None, :]
    resolved = entered + (rs * 3.0 * np.maximum(end_day[:, None] - entered, 1)).astype(np.int64)
    resolved = np.minimum(resolved, end_day[:, None])
    treated = (tr < m.cond_treated[None, :]) & present
    rx_issue = end_day[:, None] - (rx * 365).astype(np.int64)
    prior_rx = (rq < 0.25) & treated
    mail = _draws(rbase ^ np.uint64(13), C) < m.mail_share

    # visits
    V = _draws(rbase ^ np.uint64(8), 3 * m.visit_max)
    ncond = present.sum(axis=1)
    nvis = np.clip(np.floor(m.visit_min + R[:, 0] * (m.visit_base + m.visit_per_cond * ncond)).astype(np.int64),
                   m.visit_min, m.visit_max)
    vday = end_day[:, None] - (V[:, 0::3] * 730).astype(np.int64)
    vmin = 450 + (V[:, 1::3] * 36).astype(np.int64) * 15  # 07:30 .. 16:15 on a 15-minute grid
    vclin = pick(m.clinic_cdf, V[:, 2::3])
    # vitals (up to 3 sets)
    W = _draws(rbase ^ np.uint64(9), 24)
    z = _normal(W[:, 0], W[:, 1], W[:, 2])
    htn = present[:, m.cond_index["hypertension"]]
    sys0 = 120 + 12 * htn + 0.25 * np.maximum(age - 40, 0) + 10 * z
    wt0 = np.where(female, 171.0, 199.0) + 38 * _normal(W[:, 3], W[:, 4], W[:, 5])
    wt0 += 40 * present[:, m.cond_index["obesity"]]
    ht = np.where(female, 64.0, 69.3) + 2.9 * _normal(W[:, 6], W[:, 7], W[:, 8])
    painful = (present[:, m.cond_index["low_back_pain"]] | present[:, m.cond_index["osteoarthritis"]]
               | present[:, m.cond_index["neuropathy"]])
    copd = present[:, m.cond_index["copd"]] | present[:, m.cond_index["heart_failure"]]
    nsets = np.minimum(1 + (W[:, 9] * 3).astype(np.int64), nvis)
    sysv = np.rint(sys0[:, None] + 16 * (W[:, 10:13] - 0.5)).astype(np.int64)
    diav = np.rint(0.5 * sysv + 14 + 10 * (W[:, 13:16] - 0.5)).astype(np.int64)
    pulse = np.rint(72 + 22 * (W[:, 16:19] - 0.5) + 4 * z[:, None]).astype(np.int64)
    temp10 = np.rint(981 + 10 * (W[:, 19:22] - 0.5)).astype(np.int64)
    wt10 = np.rint(10 * np.clip(wt0[:, None] + 6 * (W[:, 10:13] - 0.5), 95, 450)).astype(np.int64)
    pain = np.where(painful[:, None], (2 + W[:, 13:16] * 6).astype(np.int64), (W[:, 16:19] ** 4 * 4).astype(np.int64))
    resp = (14 + W[:, 22] * 6).astype(np.int64)
    spo2 = np.where(copd, 91 + (W[:, 23] * 5).astype(np.int64), 95 + (W[:, 23] * 5).astype(np.int64))
    htin = np.rint(np.clip(ht, 56, 82)).astype(np.int64)
    # allergies, orders, flags
    A = _draws(rbase ^ np.uint64(10), 16)
    Od = _draws(rbase ^ np.uint64(11), 24)
    F = _draws(_base(seed, "flags", pkey, pd), 2 * len(m.flags))
    D = _draws(rbase ^ np.uint64(12), 8)
    sysv, diav = np.clip(sysv, 70, 260), np.clip(diav, 40, 160)

    # ---- visits sorted by date/time per patient, clinic remapped when the patient has none of its conditions
    vkey = vday * 1440 + vmin
    vkey = np.where(np.arange(m.visit_max)[None, :] < nvis[:, None], vkey, np.iinfo(np.int64).max)
    vorder = np.argsort(vkey, axis=1, kind="stable")
    vday_s = np.take_along_axis(vday, vorder, axis=1)
    vmin_s = np.take_along_axis(vmin, vorder, axis=1)
    vclin_s = np.take_along_axis(vclin, vorder, axis=1)
    need = m.clinic_need[vclin_s]
    vclin_s = np.where((need != 0) & ((need & cond_mask[:, None]) == 0), 0, vclin_s)

    # ---- clinical entries, each kind built for the whole block (see "columnar assembly" below)
    base = dfn * IEN_STRIDE
    visits, v_start, vit_lists = _visits_and_vitals(m, base, nvis, vday_s, vmin_s, vclin_s, nsets, sysv, diav,
                                                    pulse, temp10, wt10, pain, htin, resp, spo2, copd)
    problems, p_start = _problems(m, base, present, onset, entered, inactive, resolved)
    rx_out = _prescriptions(m, base, present, entered, inactive, treated, dr, np.maximum(rx_issue, entered), prior_rx,
                        mail, rq, dead, end_day)
    allergies, a_start = _allergies(m, base, A, dob, end_day)
    orders, o_start = _orders(m, base, cond_mask, Od, visits, v_start, rx_out)

    # ---- the records themselves
    sites = _site_strings(layout.stations)
    n_first = len(m.male_names)
    first = np.where(female, n_first + first_f, first_m)
    mid = np.where(female, n_first + mid_f, mid_m)
    form = (P[:, 19] >= 0.55).astype(np.int64) + (P[:, 19] >= 0.85)  # middle initial, full middle name, none
    surnames, names_all, suffixes = _name_tables()
    sfx = np.where(form == 2, len(suffixes) - 1, form * (len(suffixes) // 2) + mid)
    names = [f"{a},{b}{c}" for a, b, c in zip(_take(surnames, last), _take(names_all, first), _take(suffixes, sfx))]
    street1 = [f"{a} {b}" for a, b in zip(street_no.tolist(), _take(STREET_NAMES, street))]
    addrs = list(map(Address, street1, _take(_apt_strings(), apt), repeat(""), _take(sites.city, ps),
                     _take(sites.state, ps), _take(sites.zip, ps * 100 + zip_suffix)))
    day_n = _day_array()
    none_day = len(day_n) - 1
    records = list(map(
        PatientRecord, repeat(station), dfn.tolist(), names, _take(("M", "F"), female.astype(np.int64)),
        _take(day_n, dob), ssn, list(map(str, icn.tolist())), [f"{c:06d}" for c in icn_chk.tolist()],
        _take(m.marital_vals, marital), _take(m.race_vals, race), _take(m.eth_vals, eth), addrs,
        _take(sites.phone, ps * 100 + phone), sc.tolist(), _take(_PERCENTS, np.where(sc, sc_pct, len(_PERCENTS) - 1)),
        _take(m.period_names, period), _take(m.branch_vals, branch), _take(day_n, entry), _take(day_n, sep),
        _take(day_n, np.where(dead, death, none_day)),
        _split(problems, p_start), _split(allergies, a_start), _split(rx_out.entries, rx_out.starts), vit_lists,
        _split(visits, v_start), _split(orders, o_start), [[] for _ in range(n)],
    ))

    # record flags (person-level draws, so a person's flag shows at each of his sites): rare, built one by one
    flag_hit = F[:, 0::2] < (m.flag_share[None, :] * np.where((cond_mask & m.ptsd_dep_mask) != 0, 1.0, 0.0)[:, None]
                              * (m.flag_mult[None, :] - 1.0) + m.flag_share[None, :])
    for i in np.nonzero(flag_hit.any(axis=1))[0].tolist():
        _add_flags(records[i], flag_hit[i].tolist(), F[i].tolist(), int(end_day[i]), bool(dead[i]), int(base[i]),
                   day_s, m)
    # defects
    keys: list[list[DefectEntry]] = [[] for _ in range(n)]
    for i in np.nonzero(kinds != -1)[0].tolist():
        kd = int(kinds[i])
        kind = "bad_name" if kd == -2 else defects.kinds[kd]
        keys[i] = _apply_defect(records[i], kind, D[i].tolist(), int(dup_target[i]), y_s, ym_s, int(dob[i]), m)
    return records, keys


def _add_flags(rec: PatientRecord, hits: list[bool], f: list[float], end: int, dead: bool, base_ien: int,
               day_s: list[str], m: _Model) -> None:
    kf = 0
    for j, (flag, cat, _share, _mult) in enumerate(m.flags):
        if not hits[j]:
            continue
        kf += 1
        assigned = end - int(f[2 * j + 1] * 700)
        review = m.hrs_review if flag == "HIGH RISK FOR SUICIDE" else m.default_review
        active = (not dead) and f[2 * j + 1] < 0.75
        rec.flags.append(RecordFlag(base_ien + kf, flag, cat, "active" if active else "inactive",
                                    day_s[assigned], day_s[assigned + review]))


# --------------------------------------------------------------------------- columnar assembly
# Entries of one kind are built for the whole block at once: their fields are computed as arrays,
# turned into strings by table lookup, and the dataclasses made by ``map`` (the constructor is called
# from C, no per-entry bytecode); each patient then takes a slice of the flat list. An entry's IEN is
# DFN x 100 + its rank within the patient, exactly as the per-patient loop numbered them.

_VITAL_TYPES = ("BLOOD PRESSURE", "PULSE", "TEMPERATURE", "WEIGHT", "PAIN", "HEIGHT", "RESPIRATION", "PULSE OXIMETRY")
_SYS_LO, _SYS_HI, _DIA_LO, _DIA_HI = 70, 260, 40, 160  # the clip range of systolic and diastolic values
_TENTH0 = 1000  # offset of tenths in the vital value table
_BP0 = _TENTH0 + 5001  # offset of "sys/dia" strings


def _objects(values: Sequence[Any]) -> np.ndarray:
    """A 1-d object array of ``values`` (never a 2-d array, whatever the values are)."""
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _take(table: Sequence[Any] | np.ndarray, idx: np.ndarray) -> list[Any]:
    """``[table[i] for i in idx]`` at C speed (object-array gather; big tables are kept as object arrays)."""
    arr = table if isinstance(table, np.ndarray) else _objects(table)
    return arr[idx].tolist()


def _starts(rows: np.ndarray, n: int) -> np.ndarray:
    """Where each of ``n`` patients starts in a flat, row-sorted entry list (length n + 1)."""
    return np.searchsorted(rows, np.arange(n + 1))


def _split(flat: list[Any], starts: np.ndarray) -> list[list[Any]]:
    """Per-patient lists (fresh list objects) cut from a flat list at ``starts``."""
    s = starts.tolist()
    return list(map(flat.__getitem__, map(slice, s[:-1], s[1:])))


@lru_cache(maxsize=1)
def _vital_values() -> np.ndarray:
    """Every vital value string by code: integers 0..999, tenths 0.0..500.0, then "sys/dia" pairs."""
    bp = [f"{a}/{b}" for a in range(_SYS_LO, _SYS_HI + 1) for b in range(_DIA_LO, _DIA_HI + 1)]
    return _objects(_int_strings() + _tenth_strings() + bp)


def _visits_and_vitals(m: _Model, base: np.ndarray, nvis: np.ndarray, vday: np.ndarray, vmin: np.ndarray,
                       vclin: np.ndarray, nsets: np.ndarray, sysv: np.ndarray, diav: np.ndarray, pulse: np.ndarray,
                       temp10: np.ndarray, wt10: np.ndarray, pain: np.ndarray, htin: np.ndarray, resp: np.ndarray,
                       spo2: np.ndarray, copd: np.ndarray) -> tuple[list[Visit], np.ndarray, list[list[Vital]]]:
    """The block's visits (flat, with each patient's start) and each patient's vitals.

    Visits come from the sorted ``vday``/``vmin``/``vclin``; up to three vital sets are taken at the latest ones.
    """
    day_s, min_s = _day_array(), _objects(_minute_strings())
    n = len(base)
    v_rows, v_k = np.nonzero(np.arange(vday.shape[1])[None, :] < nvis[:, None])
    vd, vm, vc = vday[v_rows, v_k], vmin[v_rows, v_k], vclin[v_rows, v_k]
    when = list(map(str.__add__, _take(day_s, vd), _take(min_s, vm)))
    locs = [c[0] for c in m.clinics]
    cats = [c[1] for c in m.clinics]
    visits = list(map(Visit, (base[v_rows] + v_k + 1).tolist(), when, _take(locs, vc), repeat("V"), _take(cats, vc)))
    # vital set s (0 = latest) is taken 5 minutes into visit nvis-1-s; set 0 adds height, respiration, SpO2 (COPD/HF)
    set_ok = np.arange(3)[None, :] < nsets[:, None]
    s_rows, s_s = np.nonzero(set_ok)
    j = nvis[s_rows] - 1 - s_s
    set_when = list(map(str.__add__, _take(day_s, vday[s_rows, j]), _take(min_s, vmin[s_rows, j] + 5)))
    set_id = np.zeros((n, 3), dtype=np.int64)
    set_id[s_rows, s_s] = np.arange(len(s_rows))
    codes = np.empty((n, 3, 8), dtype=np.int64)
    codes[:, :, 0] = _BP0 + (sysv - _SYS_LO) * (_DIA_HI - _DIA_LO + 1) + (diav - _DIA_LO)
    codes[:, :, 1] = pulse
    codes[:, :, 2] = _TENTH0 + temp10
    codes[:, :, 3] = _TENTH0 + wt10
    codes[:, :, 4] = pain
    codes[:, :, 5] = htin[:, None]
    codes[:, :, 6] = resp[:, None]
    codes[:, :, 7] = spo2[:, None]
    ok = np.zeros((n, 3, 8), dtype=bool)
    ok[:, :, :5] = set_ok[:, :, None]
    ok[:, 0, 5:7] = set_ok[:, 0:1]
    ok[:, 0, 7] = set_ok[:, 0] & copd
    r, s, k = np.nonzero(ok)  # row-major: a patient's sets in order, each set's types in order
    t_start = _starts(r, n)
    ien = base[r] + 1 + np.arange(len(r)) - t_start[r]
    vitals = list(map(Vital, ien.tolist(), _take(set_when, set_id[r, s]), _take(_VITAL_TYPES, k),
                      _take(_vital_values(), codes[r, s, k])))
    return visits, _starts(v_rows, n), _split(vitals, t_start)


_PERCENTS: tuple[int | None, ...] = (*range(101), None)  # service-connected percent by value; last = not SC


@lru_cache(maxsize=1)
def _day_array() -> np.ndarray:
    """ISO day strings (object array) with ``None`` appended: index ``len - 1`` stands for an empty date."""
    return _objects([*_day_strings()[0], None])


@lru_cache(maxsize=1)
def _apt_strings() -> np.ndarray:
    return _objects([""] + [f"APT {k}" for k in range(1, 202)])


@lru_cache(maxsize=1)
def _name_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Surnames, given names (male then female) and suffixes: " X" initials, " NAME" middle names, then ""."""
    m = model()
    given = [*m.male_names, *m.female_names]
    return (_objects(m.surnames), _objects(given),
            _objects([" " + g[0] for g in given] + [" " + g for g in given] + [""]))


@dataclass(frozen=True)
class _SiteStrings:
    city: np.ndarray
    state: np.ndarray
    zip: np.ndarray  # by station index x 100 + last two digits
    phone: np.ndarray  # by station index x 100 + last two digits


@lru_cache(maxsize=64)
def _site_strings(stations: tuple[str, ...]) -> _SiteStrings:
    by_station = {s.station: s for s in all_sites()}
    sites = [by_station[s] for s in stations]
    two = [f"{k:02d}" for k in range(100)]
    return _SiteStrings(_objects([s.city for s in sites]), _objects([s.state for s in sites]),
                        _objects([s.zip[:3] + t for s in sites for t in two]),
                        _objects([f"{s.area_code}-555-01{t}" for s in sites for t in two]))


def _problems(m: _Model, base: np.ndarray, present: np.ndarray, onset: np.ndarray, entered: np.ndarray,
              inactive: np.ndarray, resolved: np.ndarray) -> tuple[list[Problem], np.ndarray]:
    """The block's problems (a patient's conditions in table order) and each patient's start."""
    day_s = day_n = _day_array()
    rows, cols = np.nonzero(present)
    start = _starts(rows, len(base))
    ien = base[rows] + 1 + np.arange(len(rows)) - start[rows]
    ina = inactive[rows, cols]
    res = np.where(ina, resolved[rows, cols], len(day_n) - 1)
    out = list(map(Problem, ien.tolist(), _take(m.cond_icd10, cols), repeat("ICD-10-CM"), _take(m.cond_desc, cols),
                   _take(m.cond_snomed, cols), _take(("A", "I"), ina.astype(np.int64)),
                   _take(day_s, entered[rows, cols]), _take(day_s, onset[rows, cols]), _take(day_n, res)))
    return out, start


@dataclass(frozen=True)
class _Rx:
    entries: list[Prescription]
    starts: np.ndarray
    rows: np.ndarray  # patient of each entry
    drug: np.ndarray  # drug table index of each entry
    active: np.ndarray  # bool per entry
    dates: list[str]  # issue date string per entry


@lru_cache(maxsize=1)
def _drug_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per condition: its drug options padded to a rectangle, and how many; per drug: 30-day quantity."""
    m = model()
    nopts = np.array([len(o) for o in m.cond_drugs], dtype=np.int64)
    opts = np.zeros((len(m.cond_drugs), max(1, int(nopts.max()))), dtype=np.int64)
    for c, o in enumerate(m.cond_drugs):
        opts[c, : len(o)] = o
    return opts, nopts, np.array([d[2] for d in m.drugs], dtype=np.int64)


_RX_STATUS = ("discontinued", "expired", "active")


def _prescriptions(m: _Model, base: np.ndarray, present: np.ndarray, entered: np.ndarray, inactive: np.ndarray,
                   treated: np.ndarray, dr: np.ndarray, issue: np.ndarray, prior_rx: np.ndarray, mail: np.ndarray,
                   rq: np.ndarray, dead: np.ndarray, end_day: np.ndarray) -> _Rx:
    """Each treated condition's prescription, followed by a discontinued earlier drug for some (prior_rx).

    Mail fills are 90-day supplies with 3 refills, window fills 30 days with 0-5 refills.
    """
    day_s = _day_array()
    opts, nopts_c, q30_d = _drug_arrays()
    rows, cols = np.nonzero(present)
    tr = treated[rows, cols]
    nopts = nopts_c[cols]
    per_cell = tr.astype(np.int64) + (prior_rx[rows, cols] & (nopts > 1))
    cell = np.repeat(np.arange(len(rows)), per_cell)
    is_prior = np.arange(len(cell)) - (np.cumsum(per_cell) - per_cell)[cell] == 1
    r_rows, c = rows[cell], cols[cell]
    start = _starts(r_rows, len(base))
    ien = base[r_rows] + 1 + np.arange(len(cell)) - start[r_rows]
    j = (dr[rows, cols][cell] * nopts[cell]).astype(np.int64)
    drug = opts[c, np.where(is_prior, (j + 1) % np.maximum(nopts[cell], 1), j)]
    iss = issue[rows, cols][cell]
    status = np.where(is_prior | dead[r_rows] | inactive[rows, cols][cell], 0,
                      np.where(end_day[r_rows] - iss > 365, 1, 2))
    by_mail = mail[rows, cols][cell]
    main_mail = by_mail & ~is_prior
    q30 = q30_d[drug]
    qty = np.where(main_mail, q30 * 3, q30)
    days = np.where(main_mail, 90, 30)
    refills = np.where(is_prior, 0, np.where(by_mail, 3, (rq[rows, cols][cell] * 6).astype(np.int64)))
    dates = _take(day_s, np.where(is_prior, np.maximum(entered[rows, cols][cell], iss - 200), iss))
    ien_l = ien.tolist()
    names = [d[0] for d in m.drugs]
    rxn = [d[1] for d in m.drugs]
    sigs = [d[3] for d in m.drugs]
    entries = list(map(Prescription, ien_l, map(str, ien_l), _take(names, drug), _take(rxn, drug), qty.tolist(),
                       days.tolist(), refills.tolist(), dates, _take(_RX_STATUS, status),
                       _take(("W", "M"), by_mail.astype(np.int64)), _take(sigs, drug)))
    return _Rx(entries, start, r_rows, drug, status == 2, dates)


def _allergies(m: _Model, base: np.ndarray, A: np.ndarray, dob: np.ndarray, end_day: np.ndarray
               ) -> tuple[list[Allergy], np.ndarray]:
    """Up to three distinct allergens for the patients with any allergy, and each patient's start."""
    day_s = _day_array()
    n = len(base)
    count = 1 + (A[:, 1] < 0.3) + (A[:, 2] < 0.1)
    ai = pick(m.allergen_cdf, A[:, 3:6])
    keep = (A[:, 0] < m.allergy_share)[:, None] & (np.arange(3)[None, :] < count[:, None])
    keep[:, 1] &= ai[:, 1] != ai[:, 0]  # a repeated allergen is skipped
    keep[:, 2] &= (ai[:, 2] != ai[:, 0]) & (ai[:, 2] != ai[:, 1])
    r, j = np.nonzero(keep)
    start = _starts(r, n)
    ien = base[r] + 1 + np.arange(len(r)) - start[r]
    a = ai[r, j]
    mu = A[r, 6 + j]
    mc = m.allergen_mech_cdf[a]
    mech = (mu >= mc[:, 0]).astype(np.int64) + (mu >= mc[:, 1])
    orig = np.minimum(np.maximum(dob[r] + 6600, end_day[r] - (A[r, 9 + j] * 7300).astype(np.int64)), end_day[r])
    verified = A[r, 12 + j] < m.allergy_verified
    al = m.allergens
    n_reac = np.array([len(x[4]) for x in al], dtype=np.int64)
    reac = (A[r, 15] * n_reac[a]).astype(np.int64)
    out = [Allergy(i, al[k][0], al[k][1], mch, v, o, al[k][2], al[k][3], "active", [al[k][4][q]])
           for i, k, mch, v, o, q in zip(ien.tolist(), a.tolist(), _take(("A", "P", "U"), mech), verified.tolist(),
                                         _take(day_s, orig), reac.tolist())]
    return out, start


_ORDER_SLOTS = 13  # an order's IEN offset ko is 1..12


def _orders(m: _Model, base: np.ndarray, cond_mask: np.ndarray, od: np.ndarray, visits: list[Visit],
            v_start: np.ndarray, rx: _Rx) -> tuple[list[Order], np.ndarray]:
    """Labs for the patient's conditions (+ CBC), consults/imaging, medication orders for some active Rx.

    Each patient's orders take increasing offsets ko (IEN = DFN x 100 + ko); the rules run over the order
    tables one entry at a time, vectorised over the block's patients, and fill a (patient, ko) grid.
    """
    n = len(base)
    ar = np.arange(n)
    ostat = len(m.order_status)
    statuses = ("unreleased", *m.order_status, "complete", "pending", "active")
    st_complete, st_pending, st_active = ostat + 1, ostat + 2, ostat + 3
    n_lab, n_other = len(m.labs), len(m.others)
    tmpl = np.full((n, _ORDER_SLOTS), -1, dtype=np.int64)  # order template: lab t, other t, or a drug
    stat = np.zeros((n, _ORDER_SLOTS), dtype=np.int64)
    signed = np.ones((n, _ORDER_SLOTS), dtype=bool)
    when = np.zeros((n, _ORDER_SLOTS), dtype=np.int64)  # index into whens: visits, then Rx dates, then None
    n_vis = len(visits)
    none_when = n_vis + len(rx.dates)
    nv = v_start[1:] - v_start[:-1]
    lab_vis = np.where(nv > 0, v_start[:-1] + (od[:, 7] * nv).astype(np.int64), none_when)
    last_vis = np.where(nv > 0, v_start[1:] - 1, none_when)
    ko = np.zeros(n, dtype=np.int64)
    stopped = np.zeros(n, dtype=bool)
    for t, lab in enumerate(m.labs):
        need = lab[4]
        hit = (((cond_mask & need) != 0) if need else (od[:, 0] < 0.5)) & ~stopped
        ko = ko + hit
        stop = hit & (ko > 6)  # the 7th lab is not ordered, but its offset stays used
        stopped |= stop
        idx = np.nonzero(hit & ~stop)[0]
        k = ko[idx]
        unsigned = od[idx, k + 8] < m.unsigned_share
        drawn = 1 + np.minimum(np.searchsorted(m.order_status_cdf, od[idx, k], side="right"), ostat - 1)
        stat[idx, k] = np.where(unsigned, 0, drawn)
        signed[idx, k] = ~unsigned
        tmpl[idx, k] = t
        when[idx, k] = lab_vis[idx]
    for t, other in enumerate(m.others):
        need = other[4]
        if not need:
            continue
        hit = (ko < 8) & ((cond_mask & need) != 0) & (od[ar, 16 + ko % 8] < 0.4)
        ko = ko + hit
        idx = np.nonzero(hit)[0]
        k = ko[idx]
        stat[idx, k] = np.where(od[idx, 15] < 0.8, st_complete, st_pending)
        tmpl[idx, k] = n_lab + t
        when[idx, k] = last_vis[idx]
    act = np.nonzero(rx.active)[0]
    if len(act):
        a_rows = rx.rows[act]
        a_rank = np.arange(len(act)) - _starts(a_rows, n)[a_rows]
        grid = np.full((n, int(a_rank.max()) + 1), -1, dtype=np.int64)
        grid[a_rows, a_rank] = act
        for r in range(grid.shape[1]):
            p = grid[:, r]
            hit = (p >= 0) & (ko < 12) & (od[:, 16 + r % 8] > 0.7)
            ko = ko + hit
            idx = np.nonzero(hit)[0]
            k = ko[idx]
            stat[idx, k] = st_active
            tmpl[idx, k] = n_lab + n_other + rx.drug[p[idx]]
            when[idx, k] = n_vis + p[idx]
    rr, kk = np.nonzero(tmpl >= 0)
    tt = tmpl[rr, kk]
    texts, kinds, codes, systems = _order_templates()
    whens = [v.when for v in visits] + rx.dates + [None]
    out = list(map(Order, (base[rr] + kk).tolist(), _take(texts, tt), _take(kinds, tt),
                   _take(statuses, stat[rr, kk]), signed[rr, kk].tolist(), _take(whens, when[rr, kk]),
                   _take(codes, tt), _take(systems, tt)))
    return out, _starts(rr, n)


@lru_cache(maxsize=1)
def _order_templates() -> tuple[list[str], list[str], list[str | None], list[str | None]]:
    """Text, kind, code and code system of every order template: labs, other orders, then one per drug."""
    m = model()
    rows = [o[:4] for o in (*m.labs, *m.others)] + [(d[0], "medication", d[1], "RXNORM") for d in m.drugs]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]


@lru_cache(maxsize=1)
def _int_strings() -> list[str]:
    return [str(v) for v in range(1000)]


@lru_cache(maxsize=1)
def _tenth_strings() -> list[str]:
    """``"98.6"`` for 986: values kept in tenths (temperature F, weight lb) up to 500.0."""
    return [f"{v // 10}.{v % 10}" for v in range(5001)]


def _apply_defect(rec: PatientRecord, kind: str, u: list[float], dup_of: int, y_s: list[str], ym_s: list[str],
                  dob: int, m: _Model) -> list[DefectEntry]:
    """Damage one record as legacy VistA data often is; return the answer-key entries."""
    pid = rec.patient_id
    file, fld = DEFECT_FIELDS[kind]
    if kind == "missing_dob":
        rec.dob = None
        return [DefectEntry(pid, file, fld, kind, "DATE OF BIRTH empty")]
    if kind == "imprecise_date":
        if u[0] < 0.5:
            rec.dob = ym_s[dob]
            return [DefectEntry(pid, file, fld, kind, "DATE OF BIRTH day unknown")]
        rec.dob = y_s[dob]
        return [DefectEntry(pid, file, fld, kind, "DATE OF BIRTH month and day unknown")]
    if kind == "free_text_allergy":
        if not rec.allergies:
            a = m.allergens[0]
            rec.allergies.append(Allergy(rec.dfn * IEN_STRIDE + 9, a[0], a[1], "U", False, rec.visits[0].when[:10]
                                         if rec.visits else None, a[2], a[3], "active", []))
        al = rec.allergies[int(u[1] * len(rec.allergies))]
        al.reactant = m.free_text.get(al.reactant, al.reactant.lower())
        al.code = None
        al.code_system = None
        return [DefectEntry(pid, file, fld, kind, f"ien {al.ien}")]
    if kind == "icd9_code":
        if not rec.problems:
            c = m.cond_index["hypertension"]
            rec.problems.append(Problem(rec.dfn * IEN_STRIDE + 99, m.cond_icd10[c], "ICD-10-CM", m.cond_desc[c],
                                        m.cond_snomed[c], "A", rec.visits[0].when[:10] if rec.visits else None))
        p = rec.problems[int(u[1] * len(rec.problems))]
        c = m.cond_icd10.index(p.icd_code)
        p.icd_code = m.cond_icd9[c]
        p.icd_system = "ICD-9-CM"
        if u[2] < 0.5:
            p.snomed = None  # legacy entries often predate SNOMED mapping
        return [DefectEntry(pid, file, fld, kind, f"ien {p.ien}")]
    if kind == "duplicate_patient":
        if u[3] < 0.5:
            rec.icn, rec.icn_checksum = "", ""  # never linked to the MPI
        return [DefectEntry(pid, file, fld, kind, f"duplicate of {rec.station}:{dup_of}")]
    if kind == "bad_name":
        last, _, rest = rec.name.partition(",")
        variant = _BAD_NAME_KINDS[int(u[4] * len(_BAD_NAME_KINDS))]
        if variant == "lowercase":
            rec.name = rec.name.lower()
        elif variant == "no_comma":
            rec.name = f"{rest} {last}"
        elif variant == "double_comma":
            rec.name = f"{last},,{rest}"
        elif variant == "digits":
            rec.name = f"{last}{1 + int(u[5] * 9)},{rest}"
        elif variant == "too_long":
            rec.name = f"{last}-{last}-{last},{rest} {rest}"[:45]
        else:
            rec.name = f"{rec.name}."
        return [DefectEntry(pid, file, fld, kind, variant)]
    if kind == "orphan_rx":
        drug = m.orphan_drugs[int(u[6] * len(m.orphan_drugs))]
        k = rec.dfn * IEN_STRIDE + 99
        rec.prescriptions.append(Prescription(k, str(k), drug, None, 30, 30, 0,
                                              rec.visits[-1].when[:10] if rec.visits else None, "active", "W",
                                              "USE AS DIRECTED"))
        return [DefectEntry(pid, file, fld, kind, f"ien {k}")]
    if kind == "inconsistent_sex":
        variant = _BAD_SEX[int(u[7] * len(_BAD_SEX))]
        old = rec.sex
        rec.sex = ("F" if old == "M" else "M") if variant == "flipped" else variant
        return [DefectEntry(pid, file, fld, kind, f"{old}->{rec.sex or '(empty)'}")]
    raise AssertionError(kind)  # pragma: no cover
