"""Domain dataclasses shared by every layer: the patient as VistA holds it, and migration results.

No I/O and no randomness here, and nothing else of the package is imported: every other module
points inward to this one.

Dates in the patient model are ISO 8601 strings that keep their precision, exactly as FHIR does:
``"1947"`` (year only), ``"1947-06"`` (month), ``"1947-06-12"`` (day) and ``"1947-06-12T08:30:00"``
(date and time). FileMan's imprecise dates (month or day ``00``) map onto the shorter forms, so a
model -> globals -> model round trip is lossless. ``None`` means the field is empty in VistA.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

STAGES: tuple[str, ...] = ("extract", "transform", "validate", "load")
SUBSTAGES: dict[str, tuple[str, ...]] = {
    "extract": ("connect", "query", "export"),
    "transform": ("parse", "map", "standardize"),
    "validate": ("schema_check", "business_rules", "data_integrity"),
    "load": ("staging", "production", "verification"),
}
ERROR_TYPES: tuple[str, ...] = (
    "network_timeout",
    "system_unavailable",
    "resource_exhaustion",
    "data_corruption",
    "mapping_error",
    "validation_failure",
    "security_violation",
    "hipaa_compliance_error",
)
TRANSIENT_ERRORS: frozenset[str] = frozenset({"network_timeout", "system_unavailable", "resource_exhaustion"})
STRATEGIES: tuple[str, ...] = ("staged", "big_bang", "parallel")
STEP_STATUSES: tuple[str, ...] = ("pending", "running", "completed", "failed", "partial_failure")


def step_names() -> list[tuple[str, str | None]]:
    """The 16 steps of one patient in execution order: each stage's 3 substages, then its hand-off."""
    steps: list[tuple[str, str | None]] = []
    for stage in STAGES:
        steps.extend((stage, sub) for sub in SUBSTAGES[stage])
        steps.append((stage, None))
    return steps


# --------------------------------------------------------------------------- patient model


@dataclass(slots=True)
class Address:
    street1: str = ""
    street2: str = ""
    street3: str = ""
    city: str = ""
    state: str = ""  # USPS two-letter code; the FileMan pointer into STATE (#5) is built on export
    zip: str = ""


@dataclass(slots=True)
class Problem:
    """A problem-list entry (PROBLEM file #9000011, ``^AUPNPROB``)."""

    ien: int
    icd_code: str  # e.g. "I10"; an ICD-9 code (e.g. "401.9") when icd_system says so
    icd_system: str = "ICD-10-CM"  # or "ICD-9-CM" (legacy entries)
    description: str = ""
    snomed: str | None = None  # SNOMED CT concept id (node 800, piece 1)
    status: str = "A"  # A active, I inactive
    entered: str | None = None
    onset: str | None = None
    resolved: str | None = None


@dataclass(slots=True)
class Allergy:
    """An allergy or adverse reaction (PATIENT ALLERGIES file #120.8, ``^GMR(120.8``)."""

    ien: int
    reactant: str  # free text as entered in VistA
    allergy_type: str = "D"  # D drug, F food, O other (FileMan allows combinations such as "DF")
    mechanism: str = "A"  # A allergy, P pharmacologic (intolerance), U unknown
    verified: bool = True
    origination: str | None = None
    code: str | None = None  # RxNorm or SNOMED CT code; None = free text, uncoded
    code_system: str | None = None  # "RXNORM" or "SNOMED"
    status: str = "active"  # active or entered-in-error
    reactions: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Prescription:
    """An outpatient prescription (PRESCRIPTION file #52, ``^PSRX``)."""

    ien: int
    rx_number: str
    drug_name: str  # VA product name, as in DRUG file #50
    rxnorm: str | None = None  # None when the drug has no RxNorm mapping (orphan or local drug)
    quantity: float = 30
    days_supply: int = 30
    refills: int = 0
    issue_date: str | None = None
    status: str = "active"  # active, discontinued, expired, hold, suspended
    fill_routing: str = "W"  # M mail (CMOP), W window
    sig: str = ""


@dataclass(slots=True)
class Vital:
    """A vital-sign measurement (GMRV VITAL MEASUREMENT file #120.5, ``^GMR(120.5``)."""

    ien: int
    taken: str  # date and time
    vital_type: str  # name in GMRV VITAL TYPE #120.51, e.g. "BLOOD PRESSURE", "PULSE", "WEIGHT"
    value: str  # as VistA stores it: "120/80", "72", "180.5" (lb), "98.6" (F), "70" (in), "3" (pain 0-10)


@dataclass(slots=True)
class Visit:
    """An encounter (VISIT file #9000010, ``^AUPNVSIT``)."""

    ien: int
    when: str  # date and time
    location: str = ""  # name in HOSPITAL LOCATION #44
    visit_type: str = "V"  # V VA, O other
    service_category: str = "A"  # A ambulatory, H hospitalization, T telecommunications, E event


@dataclass(slots=True)
class Order:
    """An order (ORDER file #100, ``^OR(100``)."""

    ien: int
    text: str
    kind: str = "lab"  # lab, medication, consult, imaging, nursing
    status: str = "active"  # pending, active, complete, discontinued, expired, unreleased
    signed: bool = True
    entered: str | None = None
    code: str | None = None  # LOINC for labs, RxNorm for medications, SNOMED otherwise
    code_system: str | None = None


@dataclass(slots=True)
class RecordFlag:
    """A patient record flag assignment (PRF ASSIGNMENT file #26.13, ``^DGPF(26.13``)."""

    ien: int
    flag: str  # e.g. "HIGH RISK FOR SUICIDE"
    category: str = "I"  # I national, II local
    status: str = "active"  # active, inactive
    assigned: str | None = None
    review_due: str | None = None


@dataclass(slots=True)
class PatientRecord:
    """One patient record at one VistA site (PATIENT file #2, ``^DPT(DFN``), with its clinical lists.

    A person is an ICN; the same person may have records at several stations, each with its own DFN.
    """

    station: str
    dfn: int
    name: str  # FileMan form: "LAST,FIRST MIDDLE"
    sex: str = "M"  # M or F as VistA stores it
    dob: str | None = None
    ssn: str = ""
    icn: str = ""  # 10-digit integration control number, without its checksum
    icn_checksum: str = ""  # full ICN is icn + "V" + icn_checksum
    marital_status: str = ""  # name in MARITAL STATUS #11, e.g. "MARRIED"
    race: str = ""
    ethnicity: str = ""
    address: Address = field(default_factory=Address)
    phone_home: str = ""
    service_connected: bool = False
    sc_percent: int | None = None
    period_of_service: str = ""  # name in PERIOD OF SERVICE #21
    branch: str = ""  # name in BRANCH OF SERVICE #23
    service_entry: str | None = None
    service_separation: str | None = None
    date_of_death: str | None = None
    problems: list[Problem] = field(default_factory=list)
    allergies: list[Allergy] = field(default_factory=list)
    prescriptions: list[Prescription] = field(default_factory=list)
    vitals: list[Vital] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    flags: list[RecordFlag] = field(default_factory=list)

    @property
    def patient_id(self) -> str:
        """``station:DFN``, the key of a source record everywhere in vistasim."""
        return f"{self.station}:{self.dfn}"

    @property
    def full_icn(self) -> str:
        return f"{self.icn}V{self.icn_checksum}" if self.icn_checksum else self.icn


# --------------------------------------------------------------------------- migration results


@dataclass
class MigrationStageResult:
    """Result of one stage (``substage`` None: the stage's hand-off) or substage for one batch."""

    stage: str
    substage: str | None
    status: str
    start_time: datetime
    end_time: datetime
    duration_seconds: float
    error_type: str | None = None  # the most frequent error type of the step's failed attempts
    error_message: str | None = None
    records_processed: int = 0
    records_successful: int = 0
    records_failed: int = 0
    attempts: int = 0  # attempts made, retries included
    retries: int = 0
    errors_by_type: dict[str, int] = field(default_factory=dict)


@dataclass
class BatchMigrationStatus:
    """Overall status of one batch (wave) of patients."""

    batch_id: str
    batch_size: int
    source_system: str = "vista"
    target_system: str = "oracle_health"
    migration_strategy: str = "staged"
    started_at: datetime | None = None
    completed_at: datetime | None = None
    current_stage: str = "pending"
    stage_results: list[MigrationStageResult] = field(default_factory=list)
    patient_statuses: dict[str, str] = field(default_factory=dict)  # patient_id -> migrated / failed
    overall_success_rate: float = 0.0
    average_quality_score: float | None = None  # None when the batch had no patients: no evidence
    total_errors: int = 0
    patient_quality: dict[str, float] = field(default_factory=dict)
    failure_reasons: dict[str, str] = field(default_factory=dict)  # patient_id -> "stage/substage: type"
    downtime_seconds: float = 0.0
    peak_concurrency: int = 0

    @property
    def duration_seconds(self) -> float:
        if self.started_at is None or self.completed_at is None:
            return 0.0
        return (self.completed_at - self.started_at).total_seconds()

    @property
    def migrated(self) -> int:
        return sum(1 for s in self.patient_statuses.values() if s == "migrated")


@dataclass
class MigrationRunResult:
    """A whole migration (``simulate_migration``): its waves and the figures of the run as a whole."""

    strategy: str
    batches: list[BatchMigrationStatus]
    started_at: datetime
    completed_at: datetime
    patients: int
    migrated: int
    total_errors: int
    peak_concurrency: int
    downtime_max_seconds: float
    downtime_mean_seconds: float  # patient-weighted
    average_quality_score: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def elapsed_seconds(self) -> float:
        return (self.completed_at - self.started_at).total_seconds()

    @property
    def overall_success_rate(self) -> float:
        return self.migrated / self.patients if self.patients else 0.0
