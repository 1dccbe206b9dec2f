"""Risk at VA scale: cutover plans in dated site waves, Monte Carlo with intervals, strategy comparison, calibration.

* :mod:`.plan` - plans (sites, waves, go/no-go) from YAML, and the built-in ~9-million-patient example.
* :mod:`.waves` - one wave in one replication, in bounded memory (integer keys, aggregates only).
* :mod:`.montecarlo` - replications combined on the calendar; the ``risk`` section of results.json.
* :mod:`.compare` - strategies on common random numbers; the ``comparison`` section.
* :mod:`.calibrate` - model-mode rates fitted from runs' audit trails.
* :mod:`.stats`, :mod:`.targets`, :mod:`.sections`, :mod:`.render` - intervals, targets, model sections, text.
"""

from .montecarlo import RiskRun, risk_section, simulate_risk
from .plan import GoNoGo, Plan, Site, Wave, builtin_plan, load_plan, single_site_plan
from .targets import Target, parse_target

__all__ = [
    "GoNoGo", "Plan", "RiskRun", "Site", "Target", "Wave", "builtin_plan", "load_plan", "parse_target",
    "risk_section", "simulate_risk", "single_site_plan",
]
