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

import bisect
from dataclasses import dataclass
from functools import lru_cache
from typing import List, Optional, Tuple

import numpy as np

from ..model import Address, Allergy, Order, PatientRecord, Prescription, Problem, RecordFlag, Visit, Vital
from ..rng import hash_keys, name_key
from .defects import DEFECT_FIELDS, DefectConfig, DefectEntry
from .identifiers import IEN_STRIDE, icn_checksums, icn_numbers, ssn_numbers
from .layout import Layout
from .tables import all_sites, cdf, pick, tables

_TWO53 = 1.0 / float(1 << 53)
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
    labs: tuple[tuple[str, str, Optional[str], Optional[str], int], ...]
    others: tuple[tuple[str, str, Optional[str], Optional[str], int], ...]
    order_status: tuple[str, ...]
    order_status_cdf: np.ndarray
    unsigned_share: float
    flags: tuple[tuple[str, str, float, float], ...]
    hrs_review: int
    default_review: int
    ptsd_dep_mask: int
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
        cond_index=cond_index,
    )


# --------------------------------------------------------------------------- keyed draws


def _base(seed: int, stream: str, skeys: np.ndarray, dfn: np.ndarray) -> np.ndarray:
    return hash_keys(seed, name_key(stream), skeys, dfn)


def _draws(base: np.ndarray, k: int) -> np.ndarray:
    """(n, k) uniforms in [0, 1): slot j of entity i is a hash of (base_i, j)."""
    h = hash_keys(base[:, None], np.arange(k, dtype=np.uint64)[None, :])
    return (h >> np.uint64(11)).astype(np.float64) * _TWO53


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
                defects: DefectConfig = DefectConfig()) -> Tuple[List[PatientRecord], List[List[DefectEntry]]]:
    """PatientRecords (and their answer-key entries) for DFNs ``dfns`` of one station of ``layout``."""
    m = model()
    day_s, ym_s, y_s = _day_strings()
    min_s = _minute_strings()
    dfn = np.asarray(dfns, dtype=np.int64)
    n = len(dfn)
    if n == 0:
        return [], []
    station = layout.stations[station_index]
    si = np.full(n, station_index, dtype=np.int64)
    skey = layout.station_keys[si]
    all_site = {s.station: s for s in all_sites()}

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
    O = _draws(rbase ^ np.uint64(11), 24)
    F = _draws(_base(seed, "flags", pkey, pd), 2 * len(m.flags))
    D = _draws(rbase ^ np.uint64(12), 8)

    # ---- to plain Python for the assembly loop
    L = lambda a: a.tolist()  # noqa: E731
    dfn_l, female_l, dob_l, race_l, eth_l = L(dfn), L(female), L(dob), L(race), L(eth)
    branch_l, entry_l, sep_l, period_l, marital_l = L(branch), L(entry), L(sep), L(period), L(marital)
    sc_l, scp_l, dead_l, death_l, end_l = L(sc), L(sc_pct), L(dead), L(death), L(end_day)
    last_l, fm_l, ff_l, mm_l, mf_l, midk_l = L(last), L(first_m), L(first_f), L(mid_m), L(mid_f), L(P[:, 19])
    sno_l, str_l, apt_l, zs_l, ph_l = L(street_no), L(street), L(apt), L(zip_suffix), L(phone)
    icn_l, chk_l, ps_l = L(icn), L(icn_chk), L(ps)
    present_rows = [np.flatnonzero(r).tolist() for r in present]
    onset_l, entered_l, inactive_l, resolved_l = L(onset), L(entered), L(inactive), L(resolved)
    treated_l, dr_l, issue_l, prior_l, mail_l, rq_l = L(treated), L(dr), L(rx_issue), L(prior_rx), L(mail), L(rq)
    nvis_l, vday_l, vmin_l, vclin_l, cmask_l = L(nvis), L(vday), L(vmin), L(vclin), L(cond_mask)
    nsets_l, sys_l, dia_l, pulse_l, temp_l, wt_l = L(nsets), L(sysv), L(diav), L(pulse), L(temp10), L(wt10)
    pain_l, resp_l, spo2_l, htin_l, copd_l, R_l = L(pain), L(resp), L(spo2), L(htin), L(copd), L(R)
    A_l, O_l, F_l, D_l, kinds_l, dup_l = L(A), L(O), L(F), L(D), L(kinds), L(dup_target)
    stations = layout.stations

    drugs, cond_drugs = m.drugs, m.cond_drugs
    c_icd, c_desc, c_sno = m.cond_icd10, m.cond_desc, m.cond_snomed
    clinics, labs, others = m.clinics, m.labs, m.others
    allergens = m.allergens
    ac, amc = m.allergen_cdf.tolist(), m.allergen_mech_cdf.tolist()
    ostat, oscdf = m.order_status, m.order_status_cdf.tolist()

    records: List[PatientRecord] = []
    keys: List[List[DefectEntry]] = []
    for i in range(n):
        d = dfn_l[i]
        fem = female_l[i]
        base_ien = d * IEN_STRIDE
        end = end_l[i]
        home_site = all_site[stations[ps_l[i]]]
        first = ff_l[i] if fem else fm_l[i]
        names = m.female_names if fem else m.male_names
        midx = midk_l[i]
        if midx < 0.55:
            middle = " " + names[mf_l[i] if fem else mm_l[i]][0]
        elif midx < 0.85:
            middle = " " + names[mf_l[i] if fem else mm_l[i]]
        else:
            middle = ""
        name = f"{m.surnames[last_l[i]]},{names[first]}{middle}"
        apt_no = apt_l[i]
        addr = Address(f"{sno_l[i]} {STREET_NAMES[str_l[i]]}", f"APT {apt_no}" if apt_no else "", "",
                       home_site.city, home_site.state, f"{home_site.zip[:3]}{zs_l[i]:02d}")
        chk = chk_l[i]
        rec = PatientRecord(
            station, d, name, "F" if fem else "M", day_s[dob_l[i]], ssn[i], str(icn_l[i]), f"{chk:06d}",
            m.marital_vals[marital_l[i]], m.race_vals[race_l[i]], m.eth_vals[eth_l[i]], addr,
            f"{home_site.area_code}-555-01{ph_l[i]:02d}", sc_l[i], scp_l[i] if sc_l[i] else None,
            m.period_names[period_l[i]], m.branch_vals[branch_l[i]], day_s[entry_l[i]], day_s[sep_l[i]],
            day_s[death_l[i]] if dead_l[i] else None,
        )
        # problems and prescriptions
        problems = rec.problems
        rxs = rec.prescriptions
        k_rx = 0
        on_i, en_i, in_i, rs_i = onset_l[i], entered_l[i], inactive_l[i], resolved_l[i]
        tr_i, dr_i, is_i, pr_i, ml_i, rq_i = treated_l[i], dr_l[i], issue_l[i], prior_l[i], mail_l[i], rq_l[i]
        active_rx: list[Prescription] = []
        for k, c in enumerate(present_rows[i], 1):
            inact = in_i[c]
            problems.append(Problem(base_ien + k, c_icd[c], "ICD-10-CM", c_desc[c], c_sno[c], "I" if inact else "A",
                                    day_s[en_i[c]], day_s[on_i[c]], day_s[rs_i[c]] if inact else None))
            if tr_i[c]:
                opts = cond_drugs[c]
                j = int(dr_i[c] * len(opts))
                dname, rxn, q30, sig = drugs[opts[j]]
                issue = max(is_i[c], en_i[c])
                by_mail = ml_i[c]
                days = 90 if by_mail else 30
                if dead_l[i] or inact:
                    status = "discontinued"
                elif end - issue > 365:
                    status = "expired"
                else:
                    status = "active"
                k_rx += 1
                p = Prescription(base_ien + k_rx, str(base_ien + k_rx), dname, rxn, q30 * days // 30, days,
                                 3 if days == 90 else int(rq_i[c] * 6), day_s[issue], status,
                                 "M" if by_mail else "W", sig)
                rxs.append(p)
                if status == "active":
                    active_rx.append(p)
                if pr_i[c] and len(opts) > 1:
                    dname2, rxn2, q2, sig2 = drugs[opts[(j + 1) % len(opts)]]
                    k_rx += 1
                    rxs.append(Prescription(base_ien + k_rx, str(base_ien + k_rx), dname2, rxn2, q2, 30, 0,
                                            day_s[max(en_i[c], issue - 200)], "discontinued", "W", sig2))
        # allergies
        a = A_l[i]
        if a[0] < m.allergy_share:
            count = 1 + (a[1] < 0.3) + (a[2] < 0.1)
            seen = set()
            for j in range(count):
                ai = min(bisect.bisect_right(ac, a[3 + j]), len(ac) - 1)
                if ai in seen:
                    continue
                seen.add(ai)
                reac, typ, code, system, reactions = allergens[ai]
                mrow = amc[ai]
                mu = a[6 + j]
                mech = "A" if mu < mrow[0] else ("P" if mu < mrow[1] else "U")
                orig = max(dob_l[i] + 6600, end - int(a[9 + j] * 7300))
                rec.allergies.append(Allergy(base_ien + len(seen), reac, typ, mech, a[12 + j] < m.allergy_verified,
                                             day_s[min(orig, end)], code, system, "active",
                                             [reactions[int(a[15] * len(reactions))]]))
        # visits (ascending date/time) and vitals at the most recent ones
        nv = nvis_l[i]
        vd, vm, vc = vday_l[i], vmin_l[i], vclin_l[i]
        order_idx = sorted(range(nv), key=lambda j: (vd[j], vm[j]))
        cmask = cmask_l[i]
        when_list = []
        for k, j in enumerate(order_idx, 1):
            loc, cat, need = clinics[vc[j]]
            if need and not (need & cmask):
                loc, cat = clinics[0][0], clinics[0][1]
            when = day_s[vd[j]] + min_s[vm[j]]
            when_list.append(when)
            rec.visits.append(Visit(base_ien + k, when, loc, "V", cat))
        vit = rec.vitals
        kv = 0
        ns = nsets_l[i]
        for s in range(ns):
            j = order_idx[nv - 1 - s]
            when = day_s[vd[j]] + min_s[vm[j] + 5]
            vals = [
                ("BLOOD PRESSURE", f"{sys_l[i][s]}/{dia_l[i][s]}"),
                ("PULSE", str(pulse_l[i][s])),
                ("TEMPERATURE", f"{temp_l[i][s] // 10}.{temp_l[i][s] % 10}"),
                ("WEIGHT", f"{wt_l[i][s] // 10}.{wt_l[i][s] % 10}"),
                ("PAIN", str(pain_l[i][s])),
            ]
            if s == 0:
                vals.append(("HEIGHT", str(htin_l[i])))
                vals.append(("RESPIRATION", str(resp_l[i])))
                if copd_l[i]:
                    vals.append(("PULSE OXIMETRY", str(spo2_l[i])))
            for vt, vv in vals:
                kv += 1
                vit.append(Vital(base_ien + kv, when, vt, vv))
        # orders: labs for the patient's conditions (+ CBC), consults/imaging, some medication orders
        o = O_l[i]
        ko = 0
        orders = rec.orders
        for text, kind, code, system, need in labs:
            if (need & cmask) or (not need and o[0] < 0.5):
                ko += 1
                if ko > 6:
                    break
                su = o[ko]
                status = ostat[min(bisect.bisect_right(oscdf, su), len(ostat) - 1)]
                signed = o[ko + 8] >= m.unsigned_share
                if not signed:
                    status = "unreleased"
                orders.append(Order(base_ien + ko, text, kind, status, signed,
                                    when_list[int(o[7] * nv)] if nv else None, code, system))
        for text, kind, code, system, need in others:
            if ko >= 8:
                break
            if (need & cmask) and o[16 + (ko % 8)] < 0.4:
                ko += 1
                orders.append(Order(base_ien + ko, text, kind, "complete" if o[15] < 0.8 else "pending", True,
                                    when_list[-1] if nv else None, code, system))
        for r, p in enumerate(active_rx):
            if ko >= 12:
                break
            if o[16 + (r % 8)] > 0.7:
                ko += 1
                orders.append(Order(base_ien + ko, p.drug_name, "medication", "active", True, p.issue_date,
                                    p.rxnorm, "RXNORM"))
        # record flags (person-level draws, so a person's flag shows at each of his sites)
        f = F_l[i]
        kf = 0
        for j, (flag, cat, share, mult) in enumerate(m.flags):
            if share <= 0:
                continue
            if f[2 * j] < share * (mult if cmask & m.ptsd_dep_mask else 1.0):
                kf += 1
                assigned = end - int(f[2 * j + 1] * 700)
                review = m.hrs_review if flag == "HIGH RISK FOR SUICIDE" else m.default_review
                active = (not dead_l[i]) and f[2 * j + 1] < 0.75
                rec.flags.append(RecordFlag(base_ien + kf, flag, cat, "active" if active else "inactive",
                                            day_s[assigned], day_s[assigned + review]))
        # defects
        entries: List[DefectEntry] = []
        kd = kinds_l[i]
        if kd != -1:
            kind = "bad_name" if kd == -2 else defects.kinds[kd]
            entries = _apply_defect(rec, kind, D_l[i], dup_l[i], y_s, ym_s, dob_l[i], m)
        records.append(rec)
        keys.append(entries)
    return records, keys


def _apply_defect(rec: PatientRecord, kind: str, u: list[float], dup_of: int, y_s: list[str], ym_s: list[str],
                  dob: int, m: _Model) -> List[DefectEntry]:
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
