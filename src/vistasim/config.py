"""MigrationConfig (the spec's fields and defaults, plus DESIGN.md's) and its YAML form.

The spec assigns fields after construction (``cfg.network_failure_rate = 0.15``), so a config is
validated twice: when built and again when a simulation starts (:meth:`MigrationConfig.validate`).
Dictionaries given partially (a YAML file that names two stages) are completed from the defaults.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import ConfigError, InputError
from .model import ERROR_TYPES, STAGES, STRATEGIES, SUBSTAGES

DEFAULT_START_TIME = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _default_stage_rates() -> dict[str, float]:
    return {"extract": 0.98, "transform": 0.95, "validate": 0.92, "load": 0.90}


def _default_substage_rates() -> dict[str, dict[str, float]]:
    return {
        "extract": {"connect": 0.99, "query": 0.98, "export": 0.97},
        "transform": {"parse": 0.98, "map": 0.95, "standardize": 0.93},
        "validate": {"schema_check": 0.96, "business_rules": 0.92, "data_integrity": 0.89},
        "load": {"staging": 0.95, "production": 0.88, "verification": 0.92},
    }


def _default_durations() -> dict[str, float]:
    # Seconds for a round of up to 10 patients to pass a whole stage (split over its 4 steps).
    return {"extract": 2.0, "transform": 3.0, "validate": 1.5, "load": 2.5}


def _default_error_weights() -> dict[str, dict[str, float]]:
    return {
        "extract": {
            "network_timeout": 0.6,
            "system_unavailable": 0.2,
            "security_violation": 0.1,
            "data_corruption": 0.1,
        },
        "transform": {"mapping_error": 0.7, "data_corruption": 0.3},
        "validate": {"validation_failure": 0.8, "hipaa_compliance_error": 0.1, "data_corruption": 0.1},
        "load": {
            "system_unavailable": 0.4,
            "resource_exhaustion": 0.3,
            "security_violation": 0.1,
            "validation_failure": 0.2,
        },
    }


@dataclass
class MigrationConfig:
    """Parameters of a simulated migration. Every field has a measured effect (see the README)."""

    # Stage-level success rates (0.0-1.0): one attempt of a stage's hand-off step succeeds with this rate.
    stage_success_rates: dict[str, float] = field(default_factory=_default_stage_rates)
    # Substage-level success rates: one attempt of a substage step succeeds with this rate.
    substage_success_rates: dict[str, dict[str, float]] = field(default_factory=_default_substage_rates)
    # Base processing duration per stage (seconds, for a round of up to 10 patients).
    stage_base_duration: dict[str, float] = field(default_factory=_default_durations)
    # Duration variance multiplier (+-30 % default): a round lasts base x U(1 - v, 1 + v).
    duration_variance: float = 0.3
    # Data quality degradation rates (negative values improve quality).
    quality_degradation_per_failure: float = 0.15
    quality_degradation_per_success: float = 0.02
    # Network and system failure simulation rates, per attempt (corruption: per patient).
    network_failure_rate: float = 0.05
    system_overload_rate: float = 0.03
    data_corruption_rate: float = 0.01
    # Batch processing parameters.
    max_concurrent_patients: int = 10
    retry_attempts: int = 3
    retry_delay_seconds: float = 1.0
    # DESIGN.md additions.
    error_type_weights: dict[str, dict[str, float]] = field(default_factory=_default_error_weights)
    start_time: datetime = DEFAULT_START_TIME
    source_system: str = "vista"
    target_system: str = "oracle_health"

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation

    def validate(self) -> MigrationConfig:
        """Check every field; raise ConfigError with one line naming the field and the fix."""
        _check_stage_map("stage_success_rates", self.stage_success_rates, _rate)
        if not isinstance(self.substage_success_rates, Mapping):
            raise ConfigError("substage_success_rates must map stage -> {substage: rate}")
        for stage, subs in self.substage_success_rates.items():
            if stage not in SUBSTAGES:
                raise ConfigError(f"substage_success_rates: unknown stage {stage!r} (use one of {', '.join(STAGES)})")
            if not isinstance(subs, Mapping):
                raise ConfigError(f"substage_success_rates.{stage} must map substage -> rate")
            for sub, value in subs.items():
                if sub not in SUBSTAGES[stage]:
                    raise ConfigError(
                        f"substage_success_rates.{stage}: unknown substage {sub!r} "
                        f"(use one of {', '.join(SUBSTAGES[stage])})"
                    )
                _rate(f"substage_success_rates.{stage}.{sub}", value)
        _check_stage_map("stage_base_duration", self.stage_base_duration, _positive)
        _bounded(
            "duration_variance",
            self.duration_variance,
            0.0,
            1.0,
            "between 0 and 1 (0.3 = +-30 %)",
            lo_open=False,
            hi_open=True,
        )
        _bounded(
            "quality_degradation_per_failure",
            self.quality_degradation_per_failure,
            -1.0,
            1.0,
            "between -1 and 1 (negative improves quality)",
        )
        _bounded(
            "quality_degradation_per_success",
            self.quality_degradation_per_success,
            -1.0,
            1.0,
            "between -1 and 1 (negative improves quality)",
        )
        for name in ("network_failure_rate", "system_overload_rate", "data_corruption_rate"):
            _rate(name, getattr(self, name))
        _positive_int("max_concurrent_patients", self.max_concurrent_patients)
        if not _is_int(self.retry_attempts) or not 0 <= self.retry_attempts <= 20:
            raise ConfigError(f"retry_attempts must be an integer from 0 to 20, got {self.retry_attempts!r}")
        _bounded("retry_delay_seconds", self.retry_delay_seconds, 0.0, 86400.0, "between 0 and 86400 seconds")
        if not isinstance(self.error_type_weights, Mapping):
            raise ConfigError("error_type_weights must map stage -> {error_type: weight}")
        for stage, weights in self.error_type_weights.items():
            if stage not in STAGES:
                raise ConfigError(f"error_type_weights: unknown stage {stage!r} (use one of {', '.join(STAGES)})")
            if not isinstance(weights, Mapping) or not weights:
                raise ConfigError(f"error_type_weights.{stage} must map error type -> weight, with at least one entry")
            for etype, w in weights.items():
                if etype not in ERROR_TYPES:
                    raise ConfigError(
                        f"error_type_weights.{stage}: unknown error type {etype!r} (use one of {', '.join(ERROR_TYPES)})"
                    )
                if not _is_number(w) or w < 0:
                    raise ConfigError(f"error_type_weights.{stage}.{etype} must be a number >= 0, got {w!r}")
            if sum(weights.values()) <= 0:
                raise ConfigError(f"error_type_weights.{stage}: weights must not all be 0")
        if not isinstance(self.start_time, datetime):
            raise ConfigError(f"start_time must be a date-time such as 2026-01-01T00:00:00Z, got {self.start_time!r}")
        if self.start_time.tzinfo is None:
            self.start_time = self.start_time.replace(tzinfo=timezone.utc)
        for name in ("source_system", "target_system"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"{name} must be a non-empty string")
        return self

    # ------------------------------------------------------------------ resolved views used by the engine

    def stage_rate(self, stage: str) -> float:
        return float(self.stage_success_rates.get(stage, _default_stage_rates()[stage]))

    def substage_rate(self, stage: str, sub: str) -> float:
        return float(self.substage_success_rates.get(stage, {}).get(sub, _default_substage_rates()[stage][sub]))

    def base_duration(self, stage: str) -> float:
        return float(self.stage_base_duration.get(stage, _default_durations()[stage]))

    def error_weights(self, stage: str) -> dict[str, float]:
        return dict(self.error_type_weights.get(stage) or _default_error_weights()[stage])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field, with the partial maps completed from the defaults."""
        return {
            "stage_success_rates": {s: self.stage_rate(s) for s in STAGES},
            "substage_success_rates": {s: {u: self.substage_rate(s, u) for u in SUBSTAGES[s]} for s in STAGES},
            "stage_base_duration": {s: self.base_duration(s) for s in STAGES},
            "duration_variance": float(self.duration_variance),
            "quality_degradation_per_failure": float(self.quality_degradation_per_failure),
            "quality_degradation_per_success": float(self.quality_degradation_per_success),
            "network_failure_rate": float(self.network_failure_rate),
            "system_overload_rate": float(self.system_overload_rate),
            "data_corruption_rate": float(self.data_corruption_rate),
            "max_concurrent_patients": int(self.max_concurrent_patients),
            "retry_attempts": int(self.retry_attempts),
            "retry_delay_seconds": float(self.retry_delay_seconds),
            "error_type_weights": {s: self.error_weights(s) for s in STAGES},
            "start_time": self.start_time.isoformat().replace("+00:00", "Z"),
            "source_system": self.source_system,
            "target_system": self.target_system,
        }

    def copy(self) -> MigrationConfig:
        return copy.deepcopy(self)


CONFIG_FIELDS = tuple(f.name for f in fields(MigrationConfig))


# --------------------------------------------------------------------------- field checks


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _rate(name: str, v: Any) -> None:
    if not _is_number(v) or not 0.0 <= v <= 1.0:
        raise ConfigError(f"{name} must be a rate between 0 and 1, got {v!r}")


def _positive(name: str, v: Any) -> None:
    if not _is_number(v) or v <= 0:
        raise ConfigError(f"{name} must be a number of seconds > 0, got {v!r}")


def _positive_int(name: str, v: Any) -> None:
    if not _is_int(v) or v <= 0:
        raise ConfigError(f"{name} must be a whole number > 0, got {v!r}")


def _bounded(name: str, v: Any, lo: float, hi: float, what: str, lo_open: bool = False, hi_open: bool = False) -> None:
    ok = _is_number(v) and (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)
    if not ok:
        raise ConfigError(f"{name} must be {what}, got {v!r}")


def _check_stage_map(name: str, mapping: Any, check: Any) -> None:
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{name} must map stage -> value ({', '.join(STAGES)})")
    for stage, value in mapping.items():
        if stage not in STAGES:
            raise ConfigError(f"{name}: unknown stage {stage!r} (use one of {', '.join(STAGES)})")
        check(f"{name}.{stage}", value)


# --------------------------------------------------------------------------- YAML


@dataclass
class RunSettings:
    """What a YAML file says besides MigrationConfig: the spec's top-level keys."""

    config: MigrationConfig
    batch_size: int | None = None
    migration_strategy: str | None = None
    migration_report: str | None = None
    simulate_migration: bool | None = None
    num_records: int | None = None
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # sections owned by other commands (e.g. data_mode)


TOP_LEVEL_KEYS = (
    "migration_settings",
    "batch_size",
    "migration_strategy",
    "migration_report",
    "simulate_migration",
    "num_records",
    "seed",
)
# Sections other commands read; accepted here and passed through untouched.
PASS_THROUGH_KEYS = ("data_mode", "faults", "plan", "targets", "report")
_ALIASES = {"success_rates": "stage_success_rates"}


def config_from_mapping(
    settings: Mapping[str, Any], where: str = "migration_settings"
) -> tuple[MigrationConfig, str | None]:
    """Build a MigrationConfig from a ``migration_settings`` mapping. Returns it and the strategy it names."""
    if not isinstance(settings, Mapping):
        raise ConfigError(f"{where} must be a mapping of settings")
    kwargs: dict[str, Any] = {}
    strategy: str | None = None
    for key, value in settings.items():
        name = _ALIASES.get(key, key)
        if key == "migration_strategy":
            strategy = check_strategy(value, f"{where}.migration_strategy")
            continue
        if name not in CONFIG_FIELDS:
            raise ConfigError(
                f"{where}: unknown key {key!r} (known: success_rates, {', '.join(CONFIG_FIELDS)}, migration_strategy)"
            )
        if name in kwargs:
            raise ConfigError(f"{where}: {key!r} given twice (success_rates is another name for stage_success_rates)")
        if name == "start_time":
            value = _parse_time(value, f"{where}.start_time")
        elif name == "substage_success_rates" and isinstance(value, Mapping):
            defaults = _default_substage_rates()
            value = {s: {**defaults.get(s, {}), **(v or {})} if isinstance(v, Mapping) else v for s, v in value.items()}
            value = {**defaults, **value}
        elif name in ("stage_success_rates", "stage_base_duration", "error_type_weights") and isinstance(
            value, Mapping
        ):
            factories: dict[str, Any] = {
                "stage_success_rates": _default_stage_rates,
                "stage_base_duration": _default_durations,
                "error_type_weights": _default_error_weights,
            }
            value = {**factories[name](), **dict(value)}
        kwargs[name] = value
    try:
        return MigrationConfig(**kwargs), strategy
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def check_strategy(value: Any, where: str = "migration_strategy") -> str:
    if value not in STRATEGIES:
        raise ConfigError(f"{where}: unknown strategy {value!r} (use one of {', '.join(STRATEGIES)})")
    return str(value)


def _parse_time(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not an ISO 8601 date-time such as 2026-01-01T00:00:00Z") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise ConfigError(f"{where}: {value!r} is not an ISO 8601 date-time such as 2026-01-01T00:00:00Z")


def load_yaml(path: str | Path) -> RunSettings:
    """Read a YAML configuration file (the spec's schema plus every MigrationConfig field by name)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError(f"config file {str(p)!r} not found (give the path of a YAML file)")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"config file {str(p)!r} cannot be read: {exc.__class__.__name__}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"config file {str(p)!r} is not valid YAML{where}: {problem} (fix the syntax)") from None
    return settings_from_document(doc if doc is not None else {}, str(p))


def settings_from_document(doc: Any, where: str = "config") -> RunSettings:
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{where}: the top level must be a mapping (e.g. migration_settings:, batch_size:)")
    for key in doc:
        if key not in TOP_LEVEL_KEYS and key not in PASS_THROUGH_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(TOP_LEVEL_KEYS + PASS_THROUGH_KEYS)})")
    cfg, strategy_in_settings = config_from_mapping(doc.get("migration_settings") or {}, f"{where}: migration_settings")
    top_strategy = doc.get("migration_strategy")
    if top_strategy is not None:
        top_strategy = check_strategy(top_strategy, f"{where}: migration_strategy")
    if strategy_in_settings and top_strategy and strategy_in_settings != top_strategy:
        raise ConfigError(
            f"{where}: migration_strategy is {top_strategy!r} at the top level but {strategy_in_settings!r} "
            "under migration_settings (give it once)"
        )
    settings = RunSettings(config=cfg, migration_strategy=top_strategy or strategy_in_settings)
    for key in ("batch_size", "num_records", "seed"):
        value = doc.get(key)
        if value is not None:
            if key == "seed":
                if not _is_int(value) or value < 0:
                    raise ConfigError(f"{where}: seed must be a whole number >= 0, got {value!r}")
            else:
                _positive_int(f"{where}: {key}", value)
            setattr(settings, key, value)
    if doc.get("migration_report") is not None:
        if not isinstance(doc["migration_report"], str) or not doc["migration_report"]:
            raise ConfigError(f"{where}: migration_report must be a file path")
        settings.migration_report = doc["migration_report"]
    if doc.get("simulate_migration") is not None:
        if not isinstance(doc["simulate_migration"], bool):
            raise ConfigError(f"{where}: simulate_migration must be true or false")
        settings.simulate_migration = doc["simulate_migration"]
    settings.extra = {k: doc[k] for k in PASS_THROUGH_KEYS if k in doc}
    return settings
