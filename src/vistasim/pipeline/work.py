"""The unit of data-mode work: one person (an ICN) moving through the stages, and answer-key rows.

A person's site records travel together: they are extracted, mapped into one Bundle, validated and
loaded as one (Oracle Health keeps one Patient per ICN). ``records`` is the export (intermediate)
form: it shares the source's objects until a fault changes one, which is then copied first, so the
source records handed to data mode are never modified.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..model import PatientRecord

MIGRATED_STEP = 16


@dataclass
class PersonWork:
    person_id: str  # full ICN, or station:DFN for a record without one
    rows: list[int]  # indices of the person's source records in the run's record order
    records: list[PatientRecord]
    bundle: dict[str, Any] | None = None
    extra_bundles: dict[str, dict[str, Any]] = field(default_factory=dict)  # person id -> bundle (identity split)
    stop_step: int = MIGRATED_STEP  # first step a real check failed at (16: none)
    stop_type: str = ""
    stop_reason: str = ""
    merged_into: str | None = None  # identity merge: the person this one's data went with
    corrupted_rows: list[int] = field(default_factory=list)
    gaps: list[Any] = field(default_factory=list)
    n_earlier: int = 0  # records of this person migrated by an earlier call, re-mapped with it (first in records)

    def stop(self, step: int, etype: str, reason: str) -> None:
        if step < self.stop_step:
            self.stop_step, self.stop_type, self.stop_reason = step, etype, reason

    def stopped_before(self, step: int) -> bool:
        return self.stop_step < step

    def all_bundles(self) -> dict[str, dict[str, Any]]:
        out = {} if self.bundle is None else {self.person_id: self.bundle}
        out.update(self.extra_bundles)
        return out


@dataclass(frozen=True)
class AnswerEntry:
    """One injected fault: who, where, what (codes and paths only, never patient values)."""

    kind: str
    spec_type: str
    person_id: str
    patient_id: str
    stage: str
    substage: str
    resource: str = ""  # "Type/id" the fault touched ("" = the person as a whole)
    field: str = ""
    detail: str = ""
    attempts: int = 0  # transient outages: failed attempts at that step

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
