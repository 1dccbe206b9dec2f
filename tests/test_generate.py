"""Tests for vistasim.generate: identifiers, determinism, workers, distributions, defects, multi-site."""

from __future__ import annotations

import math
from collections import Counter
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vistasim.errors import ConfigError
from vistasim.generate import (
    DEFECT_KINDS,
    DefectConfig,
    Layout,
    all_sites,
    generate_patient,
    generate_patients,
    generate_population,
    icn_checksum,
    is_synthetic_ssn,
    iter_population,
    select_sites,
    verify_full_icn,
)
from vistasim.generate.identifiers import (
    ICN_PRIME,
    SSN_PRIME,
    icn_checksums,
    icn_numbers,
    ssn_numbers,
)
from vistasim.generate.population import model
from vistasim.generate.tables import load_json
from vistasim.model import PatientRecord


def _isprime(n: int) -> bool:
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True


@pytest.fixture(scope="module")
def pop20k():
    return generate_patients(20_000, seed=11, sites=1)


@pytest.fixture(scope="module")
def dirty():
    return generate_population(6000, seed=5, sites=4, defects=0.2)


# --------------------------------------------------------------------------- identifiers


@pytest.mark.parametrize("full", ["1012845331V153043", "1013062086V794840", "1012853550V207686", "1008679665V880686"])
def test_icn_checksum_matches_published_va_sandbox_icns(full):
    icn, _, chk = full.partition("V")
    assert icn_checksum(icn) == chk
    assert verify_full_icn(full)


def test_icn_checksum_vectorised_equals_scalar():
    icns = icn_numbers(np.arange(0, 5000, 7))
    vec = icn_checksums(icns)
    assert [f"{c:06d}" for c in vec.tolist()] == [icn_checksum(int(i)) for i in icns.tolist()]


@given(st.integers(min_value=1, max_value=10**10 - 1))
@settings(max_examples=60, deadline=None)
def test_icn_checksum_detects_any_single_digit_change(icn):
    chk = icn_checksum(icn)
    assert len(chk) == 6 and chk.isdigit()
    s = str(icn)
    pos = len(s) - 1
    changed = s[:pos] + str((int(s[pos]) + 1) % 10)
    assert icn_checksum(changed) != chk or changed.lstrip("0") == s.lstrip("0")


def test_primes_and_bijections():
    assert _isprime(ICN_PRIME) and _isprime(SSN_PRIME)
    g = np.arange(0, 200_000)
    assert len(np.unique(icn_numbers(g))) == len(g)
    assert len(set(ssn_numbers(g))) == len(g)
    assert all(is_synthetic_ssn(s) for s in ssn_numbers(g[:5000]))
    assert icn_numbers(g).min() >= 10**9 and icn_numbers(g).max() < 2 * 10**9


def test_identifier_spaces_hold_ten_million_persons():
    top = np.array([9_999_999, 10_000_000, 48_000_000])
    assert len(set(icn_numbers(top).tolist())) == 3
    assert all(is_synthetic_ssn(s) for s in ssn_numbers(top))
    with pytest.raises(ConfigError):
        ssn_numbers(np.array([SSN_PRIME]))


def _check_unique(patients):
    ids = [p.patient_id for p in patients]
    assert len(set(ids)) == len(ids)
    by_station: dict[str, list[int]] = {}
    for p in patients:
        by_station.setdefault(p.station, []).append(p.dfn)
    for dfns in by_station.values():
        assert dfns == list(range(1, len(dfns) + 1))
    # persons: one ICN = one SSN; different persons never share ICN or SSN
    icn_ssn = {}
    for p in patients:
        assert icn_ssn.setdefault(p.icn, p.ssn) == p.ssn
    assert len(set(icn_ssn.values())) == len(icn_ssn)
    for files in ("problems", "allergies", "prescriptions", "vitals", "visits", "orders", "flags"):
        for station in by_station:
            iens = [e.ien for p in patients if p.station == station for e in getattr(p, files)]
            assert len(iens) == len(set(iens)), files


def test_identifiers_unique_50k_multi_site():
    patients = [p for p in iter_population(50_000, seed=2, sites=6)]
    assert len(patients) == 50_000
    _check_unique(patients)
    assert all(verify_full_icn(p.full_icn) for p in patients[::97])
    assert all(is_synthetic_ssn(p.ssn) for p in patients)


@pytest.mark.slow
def test_identifiers_unique_1m():
    icns: set[str] = set()
    persons = 0
    seen_pid: set[str] = set()
    for p in iter_population(1_000_000, seed=3, sites=20):
        seen_pid.add(p.patient_id)
        if p.icn not in icns:
            icns.add(p.icn)
            persons += 1
    assert len(seen_pid) == 1_000_000
    assert persons == len(icns)


# --------------------------------------------------------------------------- determinism and API


def test_generate_patient_default_calls_are_distinct_and_reproducible():
    a, b = generate_patient(), generate_patient()
    assert a.dfn != b.dfn and a.icn != b.icn and a.ssn != b.ssn
    assert generate_patient(7, "640", 12) == generate_patient(7, "640", 12)
    assert generate_patient(7, "640", 12) != generate_patient(8, "640", 12)
    assert isinstance(a, PatientRecord) and a.patient_id == f"528:{a.dfn}"


def test_same_seed_same_patients_different_seed_differs():
    assert generate_patients(300, seed=4, sites=2) == generate_patients(300, seed=4, sites=2)
    other = generate_patients(300, seed=5, sites=2)
    assert sum(a == b for a, b in zip(generate_patients(300, seed=4, sites=2), other)) == 0


def test_records_do_not_depend_on_block_size():
    a = list(iter_population(1500, seed=9, sites=3, defects=0.1, chunk=2048, with_key=True))
    b = list(iter_population(1500, seed=9, sites=3, defects=0.1, chunk=77, with_key=True))
    assert a == b


def test_one_and_two_workers_identical():
    one = generate_population(4000, seed=6, sites=3, defects=0.1, workers=1)
    two = generate_population(4000, seed=6, sites=3, defects=0.1, workers=2)
    assert one.patients == two.patients
    assert one.answer_key == two.answer_key


@pytest.mark.parametrize("kwargs", [dict(n=-1), dict(n=5, seed=-1), dict(n=5, workers=0), dict(n=5, sites=0),
                                    dict(n=5, defects=1.5)])
def test_bad_arguments_raise_config_error(kwargs):
    n = kwargs.pop("n")
    with pytest.raises(ConfigError):
        generate_patients(n, **kwargs)


def test_unknown_station_and_defect_kind_rejected():
    with pytest.raises(ConfigError, match="station"):
        generate_patient(0, "999", 1)
    with pytest.raises(ConfigError, match="unknown defect"):
        DefectConfig.of(0.1, ["nonsense"])


# --------------------------------------------------------------------------- realism


def _tol(p: float, n: int, z: float = 5.0) -> float:
    """Tolerance for a proportion estimated from n draws: z standard errors (plus a small floor)."""
    return z * math.sqrt(max(p * (1 - p), 1e-4) / n) + 0.002


def _age(p: PatientRecord) -> int:
    y, m, d = map(int, p.dob.split("-"))
    as_of = date(2025, 12, 31)
    return as_of.year - y - ((as_of.month, as_of.day) < (m, d))


def test_sex_and_age_distribution_match_tables(pop20k):
    pop = load_json("population.json")
    n = len(pop20k)
    fshare = sum(p.sex == "F" for p in pop20k) / n
    assert abs(fshare - pop["sex"]["female_share"]) < _tol(pop["sex"]["female_share"], n)
    bands = pop["age_bands"]["bands"]
    for sex, key in (("M", "male"), ("F", "female")):
        group = [p for p in pop20k if p.sex == sex]
        counts = Counter(next(i for i, (lo, hi) in enumerate(bands) if lo <= _age(p) <= hi + 1) for p in group)
        for i, expected in enumerate(pop["age_bands"][key]):
            got = counts[i] / len(group)
            # +1 year slack at band edges: a birthday later in the year moves a few into the next band
            assert abs(got - expected) < _tol(expected, len(group)) + 0.02, (sex, i, got, expected)


def test_top_condition_prevalence_matches_tables(pop20k):
    m = model()
    for key in ("hypertension", "hyperlipidemia", "diabetes2", "ptsd", "tinnitus", "low_back_pain"):
        c = m.cond_index[key]
        expected = []
        for p in pop20k:
            age = _age(p)
            g = 0 if age < 45 else (1 if age < 65 else 2)
            prev = m.cond_prev[c, g] * (m.cond_fmult[c] if p.sex == "F" else 1.0)
            expected.append(min(prev, 0.95))
        exp = float(np.mean(expected))
        got = sum(any(pr.icd_code == m.cond_icd10[c] for pr in p.problems) for p in pop20k) / len(pop20k)
        # onset-age limits remove a few very young cases: allow 1.5 points on top of sampling error
        assert abs(got - exp) < _tol(exp, len(pop20k)) + 0.015, (key, got, exp)


def test_clinical_volume_codes_and_consistency(pop20k):
    sample = pop20k[:3000]
    per = [len(p.problems) + len(p.allergies) + len(p.prescriptions) + len(p.vitals) + len(p.visits)
           + len(p.orders) + len(p.flags) for p in sample]
    assert 20 <= np.mean(per) <= 40
    m = model()
    drug_for = {c: {m.drugs[d][0] for d in m.cond_drugs[i]} for i, c in enumerate(m.cond_icd10)}
    vt = {"BLOOD PRESSURE", "PULSE", "TEMPERATURE", "WEIGHT", "HEIGHT", "PAIN", "RESPIRATION", "PULSE OXIMETRY"}
    for p in sample:
        icds = {pr.icd_code for pr in p.problems}
        for rx in p.prescriptions:
            assert rx.rxnorm and rx.rxnorm.isdigit()
            assert any(rx.drug_name in drug_for[i] for i in icds), (rx.drug_name, icds)
            assert rx.fill_routing in ("M", "W")
        for pr in p.problems:
            assert pr.snomed and pr.status in ("A", "I") and (pr.status == "I") == (pr.resolved is not None)
            assert pr.onset <= pr.entered
        for v in p.vitals:
            assert v.vital_type in vt
        for a in p.allergies:
            assert a.code and a.code_system in ("RXNORM", "SNOMED") and a.mechanism in "APU"
        assert p.period_of_service and p.branch and p.marital_status
        if p.date_of_death:
            assert all(rx.status != "active" for rx in p.prescriptions)
    mail = [rx.fill_routing == "M" for p in sample for rx in p.prescriptions]
    exp = load_json("population.json")["mail_fill_share"]["share"]
    assert abs(np.mean(mail) - exp) < _tol(exp, len(mail))


def test_period_of_service_consistent_with_service_dates(pop20k):
    periods = {v[0]: (v[1], v[2]) for v in load_json("population.json")["periods"]["values"]}
    for p in pop20k[:5000]:
        start, end = periods[p.period_of_service]
        assert p.service_entry <= end and p.service_separation >= start or p.service_entry >= start
        assert p.dob < p.service_entry < p.service_separation


def test_names_follow_fileman_form(pop20k):
    import re

    pat = re.compile(r"^[A-Z][A-Z' ]*,[A-Z]+( [A-Z]+)?$")
    assert all(pat.match(p.name) for p in pop20k[:5000])


def test_vista_pointer_names_exist_in_reference_files():
    m = model()
    assert set(m.branch_vals) <= {"ARMY", "AIR FORCE", "NAVY", "MARINE CORPS", "COAST GUARD", "OTHER"}
    ref21 = {"KOREAN", "WORLD WAR II", "PRE-KOREAN", "POST-KOREAN", "VIETNAM ERA", "POST-VIETNAM", "PERSIAN GULF WAR"}
    assert set(m.period_names) <= ref21
    assert set(m.marital_vals) <= {"DIVORCED", "MARRIED", "WIDOWED", "SEPARATED", "NEVER MARRIED", "UNKNOWN"}


def test_hrs_flag_share_is_realistic(pop20k):
    share = sum(any(f.flag == "HIGH RISK FOR SUICIDE" for f in p.flags) for p in pop20k) / len(pop20k)
    assert 0.002 < share < 0.02


# --------------------------------------------------------------------------- sites and multi-site


def test_site_table_and_selection():
    sites = all_sites()
    assert len(sites) >= 100
    assert len({s.station for s in sites}) == len(sites)
    chosen = select_sites(18)
    assert len({s.visn for s in chosen}) == 18
    assert select_sites(1)[0].station == "528"


def test_multi_site_persons_share_identity_with_different_dfns():
    pats = generate_patients(30_000, seed=8, sites=5)
    by_icn: dict[str, list[PatientRecord]] = {}
    for p in pats:
        by_icn.setdefault(p.icn, []).append(p)
    multi = [v for v in by_icn.values() if len(v) > 1]
    for recs in multi:
        assert len({r.station for r in recs}) == len(recs)  # never twice at one station
        assert len({(r.name, r.ssn, r.dob, r.sex) for r in recs}) == 1
    share = sum(len(v) - 1 for v in multi) / len(pats)
    expected = Layout.build(30_000, 5).share
    # some candidates fall back to home records (target out of range or itself shared)
    assert 0.5 * expected < share <= expected + _tol(expected, len(pats))
    assert sum(a.dfn != b.dfn for v in multi for a, b in zip(v, v[1:])) > 0.9 * len(multi)


# --------------------------------------------------------------------------- defects


def test_defect_rate_and_key_match_data(dirty):
    pats = {p.patient_id: p for p in dirty.patients}
    key = dirty.answer_key
    n = len(dirty.patients)
    assert abs(len(key) / n - 0.2) < _tol(0.2, n)
    assert len({e.patient_id for e in key}) == len(key)  # one defect per record
    kinds = Counter(e.defect for e in key)
    assert set(kinds) == set(DEFECT_KINDS)
    clean_ids = set(pats) - {e.patient_id for e in key}
    import re

    name_ok = re.compile(r"^[A-Z][A-Z' ]*,[A-Z]+( [A-Z]+)?$")
    for e in key:
        p = pats[e.patient_id]
        if e.defect == "missing_dob":
            assert p.dob is None
        elif e.defect == "imprecise_date":
            assert p.dob is not None and len(p.dob) in (4, 7)
        elif e.defect == "free_text_allergy":
            ien = int(e.detail.split()[1])
            a = next(a for a in p.allergies if a.ien == ien)
            assert a.code is None and a.code_system is None
        elif e.defect == "icd9_code":
            ien = int(e.detail.split()[1])
            pr = next(x for x in p.problems if x.ien == ien)
            assert pr.icd_system == "ICD-9-CM" and "." in pr.icd_code or pr.icd_code.isdigit()
        elif e.defect == "duplicate_patient":
            other = pats[e.detail.split()[-1]]
            assert other.station == p.station and other.dfn != p.dfn
            assert other.ssn == p.ssn  # same person (the original may carry a defect of its own)
        elif e.defect == "bad_name":
            assert not name_ok.match(p.name)
        elif e.defect == "orphan_rx":
            ien = int(e.detail.split()[1])
            rx = next(x for x in p.prescriptions if x.ien == ien)
            assert rx.rxnorm is None
        elif e.defect == "inconsistent_sex":
            old, new = e.detail.split("->")
            assert p.sex != old
    for pid in list(clean_ids)[:2000]:
        p = pats[pid]
        assert p.dob and len(p.dob) == 10 and p.sex in ("M", "F") and name_ok.match(p.name)
        assert all(a.code for a in p.allergies) and all(r.rxnorm for r in p.prescriptions)
        assert all(pr.icd_system == "ICD-10-CM" for pr in p.problems)


def test_defect_toggles_limit_kinds():
    pop = generate_population(3000, seed=1, defects=DefectConfig.of(0.3, ["icd9_code", "orphan_rx"]))
    assert {e.defect for e in pop.answer_key} == {"icd9_code", "orphan_rx"}
    assert generate_population(2000, seed=1, defects=0.0).answer_key == []


def test_codec_round_trip_is_lossless(dirty):
    from vistasim.generate.codec import pack, unpack

    assert [unpack(pack(p)) for p in dirty.patients[:2000]] == dirty.patients[:2000]


def test_cli_generate_zwr_csv_json_identical_for_workers(tmp_path):
    from vistasim.cli import main
    from vistasim.generate.export import read_answer_key

    outs = []
    for w in (1, 2):
        out = tmp_path / f"w{w}"
        rc = main(["generate", "--patients", "600", "--sites", "3", "--defects", "0.1", "--format", "zwr,csv,json",
                   "--out", str(out), "--workers", str(w), "--no-progress"])
        assert rc == 0
        outs.append(out)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert any(str(f).endswith("2+PATIENT.zwr") for f in files)
    assert files == sorted(p.relative_to(outs[1]) for p in outs[1].rglob("*") if p.is_file())
    for f in files:
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f
    key = read_answer_key(outs[0] / "answer_key.csv")
    assert key == generate_population(600, seed=0, sites=3, defects=0.1).answer_key


def test_cli_bad_input_exits_2(tmp_path, capsys):
    from vistasim.cli import main

    assert main(["generate", "--patients", "5", "--format", "xml", "--out", str(tmp_path / "x")]) == 2
    assert main(["generate", "--patients", "5", "--defects", "2", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("vistasim: error:") for line in err)


def test_zwr_round_trip_through_vista_reader(tmp_path):
    vista = pytest.importorskip("vistasim.vista")
    pop = generate_population(400, seed=12, sites=1, defects=0.3)
    with vista.StationWriter(tmp_path, "528") as w:
        for p in pop.patients:
            w.add(p)
    back = vista.read_source(tmp_path / "528").patients
    assert back == pop.patients
