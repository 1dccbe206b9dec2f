"""Load one wave end to end, resumably: staging, production, verification.

Each step consults the target's journal, so calling ``load_wave`` again after a crash (same wave id,
same bundles) redoes only what had not committed and ends in the state an uninterrupted run leaves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .base import BundleInput, PromotionResult, StagingResult, Target, VerificationResult


@dataclass(frozen=True)
class WaveLoad:
    staging: StagingResult
    production: PromotionResult
    verification: VerificationResult


def load_wave(target: Target, wave_id: str, bundles: BundleInput, person_ids: Iterable[str] | None = None) -> WaveLoad:
    """Stage a wave, promote its persons (all, or ``person_ids``), verify what was promoted."""
    staged = target.staging(wave_id, bundles)
    promoted = target.production(wave_id, person_ids)
    checked = target.verification(wave_id, promoted.succeeded)
    return WaveLoad(staged, promoted, checked)
