"""Data-mode settings: what the YAML's ``data_mode:`` and ``faults:`` sections say, validated.

``MigrationConfig`` keeps the spec's fields. Data mode reads from it only what still has a meaning
when the work is real: ``network_failure_rate`` and ``system_overload_rate`` (transient outages,
retried ``retry_attempts`` times with backoff), ``data_corruption_rate`` (the default rate of the
``corruption`` fault), durations, concurrency and quality degradation. Success rates and error-type
weights do not apply: a permanent failure comes from a real check (a validation error, a mapping
failure, a verification mismatch), never from a draw.

YAML (both sections optional)::

    data_mode:
      timezone: America/New_York   # zone given to FileMan times (which carry none)
      go_no_go: 0.99               # share of a wave's staged persons that must verify, or the wave is backed out
      as_of: "2026-01-01"          # "today" for date plausibility (default: the simulated start date)
      pseudonymise: auto           # ids in the run folder: auto (unless the source is generated), always, never
    faults:                        # per-person rates of each data fault (0 = off)
      corruption: 0.01             # default: data_corruption_rate
      code_system_lost: 0.02
      orders_unknown_queue: 0.05
      ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import MigrationConfig
from ..errors import ConfigError

# Every data fault kind, in the order they are applied, with the spec error type it counts under.
FAULT_KINDS: dict[str, str] = {
    "transient_outage": "network_timeout",  # drawn per attempt from the config's rates; not set here
    "corruption": "data_corruption",
    "code_system_lost": "mapping_error",
    "coded_to_free_text": "mapping_error",
    "allergy_status_flip": "mapping_error",
    "wrong_drug_code": "mapping_error",
    "flag_not_transferred": "mapping_error",
    "identity_merge": "validation_failure",
    "identity_split": "validation_failure",
    "orders_unknown_queue": "mapping_error",
}
DATA_FAULTS = tuple(k for k in FAULT_KINDS if k != "transient_outage")
DATA_MODE_KEYS = ("timezone", "go_no_go", "as_of", "backout_seconds_per_person", "pseudonymise")
PSEUDONYMISE_MODES = ("auto", "always", "never")


@dataclass
class DataModeSettings:
    """Everything data mode needs besides MigrationConfig, seed, strategy and batch size."""

    timezone: str = "UTC"
    go_no_go: float = 0.99
    as_of: str | None = None  # YYYY-MM-DD; None = the simulated start date
    backout_seconds_per_person: float = 0.05  # simulated cost of removing one person from production
    fault_rates: dict[str, float] = field(default_factory=dict)  # kind -> rate; missing = default
    pseudonymise: str = "auto"  # ids in the run folder (pipeline/privacy.py)

    def rate(self, kind: str, config: MigrationConfig) -> float:
        if kind in self.fault_rates:
            return float(self.fault_rates[kind])
        if kind == "corruption":
            return float(config.data_corruption_rate)
        return 0.0

    def validate(self) -> DataModeSettings:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ConfigError(
                f"data_mode.timezone {self.timezone!r} is not an IANA zone; use e.g. UTC or America/New_York"
            ) from None
        if not _is_rate(self.go_no_go):
            raise ConfigError(f"data_mode.go_no_go must be a share between 0 and 1 (e.g. 0.99), got {self.go_no_go!r}")
        if self.as_of is not None:
            import re

            if not isinstance(self.as_of, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", self.as_of):
                raise ConfigError(f"data_mode.as_of must be a date YYYY-MM-DD, got {self.as_of!r}")
        b = self.backout_seconds_per_person
        if not isinstance(b, (int, float)) or isinstance(b, bool) or b < 0:
            raise ConfigError(f"data_mode.backout_seconds_per_person must be a number >= 0, got {b!r}")
        if self.pseudonymise not in PSEUDONYMISE_MODES:
            raise ConfigError(
                f"data_mode.pseudonymise {self.pseudonymise!r} is not known; use one of {', '.join(PSEUDONYMISE_MODES)}"
            )
        for kind, rate in self.fault_rates.items():
            if kind not in DATA_FAULTS:
                raise ConfigError(f"faults: unknown fault {kind!r} (known: {', '.join(DATA_FAULTS)})")
            if not _is_rate(rate):
                raise ConfigError(f"faults.{kind} must be a rate between 0 and 1, got {rate!r}")
        return self

    def to_dict(self, config: MigrationConfig) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "go_no_go": self.go_no_go,
            "as_of": self.as_of,
            "backout_seconds_per_person": self.backout_seconds_per_person,
            "fault_rates": {k: self.rate(k, config) for k in DATA_FAULTS},
            "pseudonymise": self.pseudonymise,
        }


def _is_rate(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= float(v) <= 1.0


def settings_from_extra(extra: Mapping[str, Any] | None) -> DataModeSettings:
    """Build from ``RunSettings.extra`` (the YAML's pass-through sections)."""
    extra = extra or {}
    dm = extra.get("data_mode") or {}
    faults = extra.get("faults") or {}
    if not isinstance(dm, Mapping):
        raise ConfigError("data_mode must be a mapping (timezone:, go_no_go:, as_of:)")
    if not isinstance(faults, Mapping):
        raise ConfigError(f"faults must map a fault name to a rate (known: {', '.join(DATA_FAULTS)})")
    for key in dm:
        if key not in DATA_MODE_KEYS:
            raise ConfigError(f"data_mode: unknown key {key!r} (known: {', '.join(DATA_MODE_KEYS)})")
    s = DataModeSettings(fault_rates=dict(faults))
    for key in DATA_MODE_KEYS:
        if key in dm and dm[key] is not None:
            setattr(s, key, dm[key])
    return s.validate()
