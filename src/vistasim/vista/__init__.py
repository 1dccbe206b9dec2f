"""The VistA side of vistasim: FileMan dates, ZWR files, and patients as FileMan globals.

- ``fileman``: FileMan internal dates <-> the model's ISO strings (``iso_to_fm``, ``fm_to_iso``).
- ``zwr``: the ZWR export format (``ZWRReader``, ``ZWRWriter``, M collation order).
- ``layout``: which global and piece holds each field; the pointer files written with the data.
- ``globals``: PatientRecord <-> global nodes (``PatientEncoder``, ``decode_patient``).
- ``station``: one station on disk, ``OUT/<station>/<number>+<NAME>.zwr``
  (``StationWriter``, ``write_stations`` for several stations in parallel processes,
  ``read_source``, ``iter_source`` to stream patients with bounded memory, ``read_globals``).
"""

from __future__ import annotations

from vistasim.vista.fileman import canonical_iso, date_to_fm, datetime_to_fm, fm_to_datetime, fm_to_iso, iso_to_fm
from vistasim.vista.station import (
    SourceReadResult,
    StationWriter,
    StationWritten,
    is_station,
    iter_source,
    read_globals,
    read_source,
    write_stations,
)
from vistasim.vista.zwr import ZWRReader, ZWRWriter, read_zwr, write_zwr

__all__ = [
    "iso_to_fm",
    "fm_to_iso",
    "canonical_iso",
    "date_to_fm",
    "datetime_to_fm",
    "fm_to_datetime",
    "ZWRReader",
    "ZWRWriter",
    "read_zwr",
    "write_zwr",
    "StationWriter",
    "read_source",
    "iter_source",
    "write_stations",
    "StationWritten",
    "read_globals",
    "SourceReadResult",
    "is_station",
]
