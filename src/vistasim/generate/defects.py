"""Legacy-data defects: what they are, how often, and the answer key that records each one.

A defect is applied to a whole record with probability ``rate`` (a record gets at most one defect,
its kind drawn uniformly among the enabled kinds), keyed by (seed, station, DFN) like everything
else, so the same records are defective whatever the worker count. Each defect applied adds one
:class:`DefectEntry` naming the FileMan file and field it touched: the answer key a migration
rehearsal is scored against.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import ConfigError

DEFECT_KINDS: tuple[str, ...] = (
    "missing_dob",  # ^DPT(DFN,0) piece 3 empty
    "imprecise_date",  # a date with unknown month/day (FileMan month or day 00)
    "free_text_allergy",  # allergy reactant typed as free text, no RxNorm/SNOMED code
    "icd9_code",  # problem still coded in ICD-9-CM
    "duplicate_patient",  # same person, second DFN at the same station
    "bad_name",  # NAME breaking FileMan's LAST,FIRST MIDDLE input transform
    "orphan_rx",  # prescription for a drug with no RxNorm / no National Drug File match
    "inconsistent_sex",  # SEX not M/F, or different from the person's other records
)

# (FileMan file number, field number) each defect touches
DEFECT_FIELDS: dict[str, tuple[str, str]] = {
    "missing_dob": ("2", ".03"),
    "imprecise_date": ("2", ".03"),
    "free_text_allergy": ("120.8", ".02"),
    "icd9_code": ("9000011", ".01"),
    "duplicate_patient": ("2", ".01"),
    "bad_name": ("2", ".01"),
    "orphan_rx": ("52", "6"),
    "inconsistent_sex": ("2", ".02"),
}


@dataclass(frozen=True, slots=True)
class DefectEntry:
    """One row of the answer key: which record, which FileMan file and field, which defect."""

    patient_id: str
    file: str
    field: str
    defect: str
    detail: str = ""

    def as_row(self) -> tuple[str, str, str, str, str]:
        return (self.patient_id, self.file, self.field, self.defect, self.detail)


ANSWER_KEY_HEADER: tuple[str, ...] = ("patient_id", "file", "field", "defect", "detail")


@dataclass(frozen=True)
class DefectConfig:
    """How often records are defective (``rate`` in [0, 1]) and which kinds are switched on."""

    rate: float = 0.0
    kinds: tuple[str, ...] = field(default=DEFECT_KINDS)

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.rate) <= 1.0:
            raise ConfigError(f"defect rate {self.rate} is out of range: use a fraction between 0 and 1 (e.g. 0.05)")
        unknown = [k for k in self.kinds if k not in DEFECT_KINDS]
        if unknown:
            raise ConfigError(f"unknown defect kind(s) {', '.join(unknown)}: choose from {', '.join(DEFECT_KINDS)}")
        if self.rate > 0 and not self.kinds:
            raise ConfigError("a defect rate > 0 needs at least one defect kind switched on")

    @staticmethod
    def of(rate: float = 0.0, kinds: Iterable[str] | None = None, disable: Iterable[str] = ()) -> DefectConfig:
        """Build from a rate, an optional list of kinds (default all) and kinds to switch off."""
        chosen = tuple(kinds) if kinds is not None else DEFECT_KINDS
        off = set(disable)
        return DefectConfig(float(rate), tuple(k for k in chosen if k not in off))


NO_DEFECTS = DefectConfig()
