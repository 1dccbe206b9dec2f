"""Data mode: the migration's stages doing real work on ZWR records, faults on the data, reconciliation.

    stages.py     the substages' real work (query, map, standardize, the three validations)
    faults.py     data faults as plug-ins (one class, one method each), written to an answer key
    datamode.py   the wave-by-wave run into a load target; outcomes in the engine's form
    reconcile.py  the expected target derived from the source alone, compared with the target
    run.py        a data-mode run end to end: source folder -> run folder (``vistasim migrate``)

Model mode lives in :mod:`vistasim.engine`; both feed :class:`vistasim.simulator.MigrationSimulator`.
"""

from .settings import DATA_FAULTS, FAULT_KINDS, DataModeSettings, settings_from_extra

__all__ = ["DATA_FAULTS", "FAULT_KINDS", "DataModeSettings", "settings_from_extra"]
