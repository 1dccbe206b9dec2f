"""Cutover plans: VistA sites grouped into dated waves, each with its strategy, batch size and go/no-go rule.

A plan is YAML with a ``plan:`` section (and optionally ``migration_settings:``, read as in any vistasim
config)::

    plan:
      name: my-plan
      shared_person_fraction: 0.08      # share of a later site's records whose person was seen at an earlier wave
      defaults: {strategy: staged, batch_size: 5000, concurrency: 250,
                 go_no_go: {min_success: 0.97, rollback_hours: 24, max_reruns: 1}}
      sites:
        - {station: "506", name: ANN ARBOR, visn: 10, patients: 80000}
      waves:
        - {name: w01, date: 2026-04-01, sites: ["506"]}

Rules (the docs repeat them):

* **Persons at several sites are migrated once per plan.** A person is created in the target by the first of
  their records that migrates, which is normally the record at the site of their first wave. A record at a later
  wave's site whose person was seen earlier is a *merge record*: it passes the 16 steps like any record (its data
  must move), and load merges it into the existing target Patient instead of creating one. If the earlier record
  did not migrate (failed, or its wave was abandoned), the merge record creates the person. Which records are
  shared is a keyed draw (seed, station, DFN): the population is the same in every replication.
* **Go/no-go.** After a wave runs, if its success rate is below ``min_success`` the wave is rolled back: its
  patients stay frozen for ``rollback_hours`` of simulated time while the target is restored, then the wave is run
  again with fresh draws, at most ``max_reruns`` times. A wave still below the bar is abandoned: its patients stay
  on VistA (not migrated).
* **Dates.** A wave starts at 00:00 UTC on its date, or when the previous wave ends if that is later.

Every mistake raises :class:`vistasim.errors.ConfigError` with one line naming the field and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from ..config import MigrationConfig, settings_from_document
from ..errors import ConfigError, InputError
from ..model import STRATEGIES

BUILTIN_PLANS = ("va_ehrm",)
_PLAN_KEYS = ("name", "description", "shared_person_fraction", "defaults", "sites", "waves")
_WAVE_KEYS = ("name", "date", "sites", "strategy", "batch_size", "concurrency", "go_no_go")
_SITE_KEYS = ("station", "name", "visn", "patients")
_GNG_KEYS = ("min_success", "rollback_hours", "max_reruns")


@dataclass(frozen=True)
class Site:
    """One VistA instance: station number, name, VISN and the number of patient records it holds."""

    station: str
    name: str
    visn: int
    patients: int


@dataclass(frozen=True)
class GoNoGo:
    """A wave is rolled back when its success rate is below ``min_success`` (None: never rolled back)."""

    min_success: float | None = None
    rollback_hours: float = 24.0
    max_reruns: int = 1


@dataclass(frozen=True)
class Wave:
    name: str
    date: datetime
    sites: tuple[str, ...]
    strategy: str = "staged"
    batch_size: int = 100
    concurrency: int | None = None  # max_concurrent_patients for this wave (None: the config's)
    go_no_go: GoNoGo = field(default_factory=GoNoGo)


@dataclass
class Plan:
    """A validated cutover plan. ``config`` is the migration model every wave uses (its concurrency aside)."""

    name: str
    sites: dict[str, Site]
    waves: list[Wave]
    config: MigrationConfig
    shared_person_fraction: float = 0.0
    description: str = ""

    @property
    def total_patients(self) -> int:
        return sum(s.patients for s in self.sites.values())

    def wave_patients(self, k: int) -> int:
        return sum(self.sites[s].patients for s in self.waves[k].sites)

    def wave_config(self, k: int) -> MigrationConfig:
        w = self.waves[k]
        if w.concurrency is None or w.concurrency == self.config.max_concurrent_patients:
            return self.config
        cfg = self.config.copy()
        cfg.max_concurrent_patients = int(w.concurrency)
        return cfg

    def wave_offset_seconds(self, k: int) -> float:
        """The wave's date as simulated seconds after the config's start_time."""
        return (self.waves[k].date - self.config.start_time).total_seconds()

    def main_strategy(self) -> str:
        """The strategy covering the most patients (results.json names one)."""
        by: dict[str, int] = {}
        for k, w in enumerate(self.waves):
            by[w.strategy] = by.get(w.strategy, 0) + self.wave_patients(k)
        return max(STRATEGIES, key=lambda s: (by.get(s, 0), -STRATEGIES.index(s)))


# --------------------------------------------------------------------------- building


def single_site_plan(
    patients: int, *, config: MigrationConfig | None = None, strategy: str = "staged", batch_size: int = 100,
    station: str = "500",
) -> Plan:
    """A one-site, one-wave plan: what ``--patients N`` means (no go/no-go rule)."""
    if not isinstance(patients, int) or isinstance(patients, bool) or patients <= 0:
        raise ConfigError(f"--patients must be a whole number > 0, got {patients!r}")
    cfg = config if config is not None else MigrationConfig()
    _check_choice("strategy", strategy, STRATEGIES)
    _pos_int("batch_size", batch_size)
    site = Site(station, f"STATION {station}", 0, patients)
    wave = Wave("wave_01", cfg.start_time, (station,), strategy, batch_size)
    return Plan("single-site", {station: site}, [wave], cfg)


def load_plan(path: str | Path) -> Plan:
    """Read a plan YAML file (or a built-in plan by name, e.g. ``va_ehrm``)."""
    import yaml

    if str(path) in BUILTIN_PLANS:
        return builtin_plan(str(path))
    p = Path(path)
    if not p.is_file():
        raise InputError(f"plan file {str(p)!r} not found (give a YAML path, or a built-in plan: {', '.join(BUILTIN_PLANS)})")
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"plan file {str(p)!r} is not valid YAML{where} (fix the syntax)") from None
    return plan_from_document(doc, str(p))


def builtin_plan(name: str = "va_ehrm") -> Plan:
    """The shipped example: about 120 VistA instances, about 9 million patients, 20 waves (see the YAML's sources)."""
    import yaml

    if name not in BUILTIN_PLANS:
        raise ConfigError(f"unknown built-in plan {name!r} (use one of {', '.join(BUILTIN_PLANS)})")
    text = resources.files("vistasim").joinpath("data").joinpath("plans").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return plan_from_document(yaml.safe_load(text), f"built-in plan {name}")


def plan_from_document(doc: Any, where: str = "plan") -> Plan:
    """Validate a parsed plan document (``plan:`` plus optional ``migration_settings:``)."""
    if not isinstance(doc, Mapping) or "plan" not in doc:
        raise ConfigError(f"{where}: the top level must be a mapping with a 'plan:' section (see vistasim risk --help)")
    settings = settings_from_document(doc, where)
    return _plan_from_section(doc["plan"], settings.config, where)


def _plan_from_section(sec: Any, config: MigrationConfig, where: str) -> Plan:
    if not isinstance(sec, Mapping):
        raise ConfigError(f"{where}: plan must be a mapping with sites: and waves:")
    _unknown(sec, _PLAN_KEYS, f"{where}: plan")
    name = sec.get("name", "plan")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: plan.name must be a non-empty string")
    frac = sec.get("shared_person_fraction", 0.0)
    if not _is_num(frac) or not 0.0 <= frac < 1.0:
        raise ConfigError(f"{where}: plan.shared_person_fraction must be a number in [0, 1), got {frac!r}")
    defaults = sec.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise ConfigError(f"{where}: plan.defaults must be a mapping (strategy, batch_size, concurrency, go_no_go)")
    _unknown(defaults, ("strategy", "batch_size", "concurrency", "go_no_go"), f"{where}: plan.defaults")
    sites = _sites(sec.get("sites"), where)
    waves = _waves(sec.get("waves"), defaults, sites, config, where)
    return Plan(name, sites, waves, config, float(frac), str(sec.get("description", "")))


def _sites(raw: Any, where: str) -> dict[str, Site]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: plan.sites must be a non-empty list of {{station, name, visn, patients}}")
    out: dict[str, Site] = {}
    for i, s in enumerate(raw):
        at = f"{where}: plan.sites[{i}]"
        if not isinstance(s, Mapping):
            raise ConfigError(f"{at} must be a mapping with station, name, visn, patients")
        _unknown(s, _SITE_KEYS, at)
        station = s.get("station")
        if isinstance(station, int) and not isinstance(station, bool):
            station = str(station)
        if not isinstance(station, str) or not station.strip() or ":" in station:
            raise ConfigError(f"{at}.station must be a station number such as \"506\" (no colon), got {station!r}")
        if station in out:
            raise ConfigError(f"{at}: station {station!r} is listed twice (list each VistA instance once)")
        visn = s.get("visn", 0)
        if not isinstance(visn, int) or isinstance(visn, bool) or visn < 0:
            raise ConfigError(f"{at}.visn must be a whole number >= 0, got {visn!r}")
        patients = s.get("patients")
        if not isinstance(patients, int) or isinstance(patients, bool) or patients <= 0:
            raise ConfigError(f"{at}.patients must be a whole number > 0, got {patients!r}")
        out[station] = Site(station, str(s.get("name", station)), int(visn), patients)
    return out


def _gng(raw: Any, base: GoNoGo, at: str) -> GoNoGo:
    if raw is None:
        return base
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{at}.go_no_go must be a mapping (min_success, rollback_hours, max_reruns)")
    _unknown(raw, _GNG_KEYS, f"{at}.go_no_go")
    g = replace(base, **{k: raw[k] for k in _GNG_KEYS if k in raw})
    if g.min_success is not None and (not _is_num(g.min_success) or not 0.0 <= g.min_success <= 1.0):
        raise ConfigError(f"{at}.go_no_go.min_success must be a rate between 0 and 1, got {g.min_success!r}")
    if not _is_num(g.rollback_hours) or g.rollback_hours < 0:
        raise ConfigError(f"{at}.go_no_go.rollback_hours must be a number of hours >= 0, got {g.rollback_hours!r}")
    if not _is_int(g.max_reruns) or not 0 <= g.max_reruns <= 5:
        raise ConfigError(f"{at}.go_no_go.max_reruns must be a whole number from 0 to 5, got {g.max_reruns!r}")
    return g


def _waves(raw: Any, defaults: Mapping, sites: dict[str, Site], config: MigrationConfig, where: str) -> list[Wave]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: plan.waves must be a non-empty list of {{name, date, sites}}")
    base_gng = _gng(defaults.get("go_no_go"), GoNoGo(), f"{where}: plan.defaults")
    seen_site: dict[str, str] = {}
    names: set[str] = set()
    waves: list[Wave] = []
    for i, w in enumerate(raw):
        at = f"{where}: plan.waves[{i}]"
        if not isinstance(w, Mapping):
            raise ConfigError(f"{at} must be a mapping with name, date, sites")
        _unknown(w, _WAVE_KEYS, at)
        name = w.get("name", f"wave_{i + 1:02d}")
        if not isinstance(name, str) or not name or name in names:
            raise ConfigError(f"{at}.name must be a unique non-empty string, got {name!r}")
        names.add(name)
        when = _date(w.get("date"), f"{at}.date")
        if when < config.start_time:
            raise ConfigError(f"{at}.date {when.date()} is before start_time {config.start_time.date()} "
                              "(move the wave or set migration_settings.start_time earlier)")
        if waves and when < waves[-1].date:
            raise ConfigError(f"{at}.date {when.date()} is before the previous wave's date (list waves in date order)")
        wsites = w.get("sites")
        if not isinstance(wsites, list) or not wsites:
            raise ConfigError(f"{at}.sites must be a non-empty list of station numbers")
        wsites = [str(s) if _is_int(s) else s for s in wsites]
        for s in wsites:
            if s not in sites:
                raise ConfigError(f"{at}.sites: station {s!r} is not in plan.sites (add it there first)")
            if s in seen_site:
                raise ConfigError(f"{at}.sites: station {s!r} is already in wave {seen_site[s]!r} (a site cuts over once)")
            seen_site[s] = name
        strategy = w.get("strategy", defaults.get("strategy", "staged"))
        _check_choice(f"{at}.strategy", strategy, STRATEGIES)
        batch = w.get("batch_size", defaults.get("batch_size", 100))
        _pos_int(f"{at}.batch_size", batch)
        conc = w.get("concurrency", defaults.get("concurrency"))
        if conc is not None:
            _pos_int(f"{at}.concurrency", conc)
        gng = _gng(w.get("go_no_go"), base_gng, at)
        waves.append(Wave(name, when, tuple(wsites), str(strategy), int(batch), conc, gng))
    missing = [s for s in sites if s not in seen_site]
    if missing:
        raise ConfigError(f"{where}: station {missing[0]!r} is in plan.sites but in no wave "
                          f"({len(missing)} such sites; put each site in one wave)")
    return waves


# --------------------------------------------------------------------------- small checks


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pos_int(name: str, v: Any) -> None:
    if not _is_int(v) or v <= 0:
        raise ConfigError(f"{name} must be a whole number > 0, got {v!r}")


def _check_choice(name: str, v: Any, choices: tuple[str, ...]) -> None:
    if v not in choices:
        raise ConfigError(f"{name}: unknown value {v!r} (use one of {', '.join(choices)})")


def _unknown(m: Mapping, known: tuple[str, ...], at: str) -> None:
    for k in m:
        if k not in known:
            raise ConfigError(f"{at}: unknown key {k!r} (known: {', '.join(known)})")


def _date(v: Any, at: str) -> datetime:
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=timezone.utc)
    if isinstance(v, str):
        try:
            d = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{at}: {v!r} is not a date such as 2026-04-01") from None
        return d if d.tzinfo else d.replace(tzinfo=timezone.utc)
    raise ConfigError(f"{at}: {v!r} is not a date such as 2026-04-01")
