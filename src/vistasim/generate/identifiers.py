"""Identifiers that stay unique at VA scale: ICN with the MPI checksum, never-issued SSNs, IENs.

**ICN checksum.** VistA's Master Patient Index computes the 6-digit checksum of an ICN in
``EXIN^MPIFSPC`` (called as ``$$CHECKDG^MPIFSPC``) from the six tables of FileMan file #984.5 MPI
CHECKDIGIT: the number is left-padded with zeros to 16 digits; for each table t = 1..6 a running
value starts at 0 and, for each position d = 1..16, becomes ``table[t][(digit_d + running) mod 10][d]``;
the last running value of table t is check digit t. The full ICN is ``ICN_"V"_checksum``
(e.g. 1012845331V153043, a public VA sandbox ICN, which this implementation reproduces). The tables
are in ``data/generate/icn_checkdigit.json`` with their source.

**ICN numbers.** A person's global index g (0, 1, 2, ... over the whole population) is scrambled by
an affine bijection modulo the prime ``ICN_PRIME`` (< 9e8) and added to 10^9, so ICNs are 10 digits,
look random and can never collide (up to ICN_PRIME persons).

**SSNs.** The Social Security Administration never assigns area numbers 900-999 (they are used for
ITINs, whose group numbers are 50-65, 70-88, 90-92 and 94-99). Synthetic SSNs here use area 900-999
with group 01-49, a range neither an SSN nor an ITIN can have: 100 x 49 x 9,999 = 48,995,100 numbers,
scrambled by an affine bijection modulo the prime ``SSN_PRIME``. (The "000" area holds only 1M numbers
and VistA's test prefix "00000" only 10,000: both too small for 10M patients.)

**IENs.** Entries of every clinical file get IEN = DFN x 100 + k (k = 1..99 within the patient),
unique per file per station and a pure function of (station, DFN) whatever the generation order.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import ConfigError
from .tables import tables

ICN_BASE = 1_000_000_000
ICN_PRIME = 899_999_963  # largest prime below 9e8: ICNs stay within 10 digits
SSN_PRIME = 48_995_087  # largest prime below 100*49*9999
SSN_SPACE = 100 * 49 * 9999
IEN_STRIDE = 100
STANDALONE_STRIDE = 350_000  # standalone record: global index = site ordinal x stride + DFN - 1 (129 sites fit the SSN space)
_ICN_MULT, _ICN_ADD = 387_420_489, 123_456_789  # 3^18: coprime with the prime, spreads neighbours
_SSN_MULT, _SSN_ADD = 16_807_001, 7_654_321


@lru_cache(maxsize=1)
def _tables() -> np.ndarray:
    return tables().checkdigit


def icn_checksum(icn: str | int) -> str:
    """The MPI checksum (6 digits) of an ICN, as ``$$CHECKDG^MPIFSPC`` computes it."""
    digits = str(icn).strip()
    if not digits.isdigit() or len(digits) > 16:
        raise ConfigError(f"ICN {icn!r} is not a number of at most 16 digits: pass the ICN without its V-checksum")
    padded = digits.rjust(16, "0")
    t = _tables()
    out = []
    for table in t:
        running = 0
        for pos, ch in enumerate(padded):
            running = int(table[(int(ch) + running) % 10][pos])
        out.append(str(running))
    return "".join(out)


def icn_checksums(icns: np.ndarray) -> np.ndarray:
    """Vectorised :func:`icn_checksum` for an int64 array: returns the checksums as int64 (6 digits each)."""
    t = _tables()
    icns = np.asarray(icns, dtype=np.int64)
    digits = np.empty((len(icns), 16), dtype=np.int64)
    rest = icns.copy()
    for pos in range(15, -1, -1):
        digits[:, pos] = rest % 10
        rest //= 10
    result = np.zeros(len(icns), dtype=np.int64)
    for ti in range(6):
        running = np.zeros(len(icns), dtype=np.int64)
        for pos in range(16):
            running = t[ti, (digits[:, pos] + running) % 10, pos]
        result = result * 10 + running
    return result


def verify_full_icn(full_icn: str) -> bool:
    """True when ``full_icn`` is ``ICN V checksum`` with a correct MPI checksum."""
    icn, sep, chk = full_icn.partition("V")
    return bool(sep) and icn.isdigit() and chk == icn_checksum(icn)


def icn_numbers(global_index: np.ndarray) -> np.ndarray:
    """10-digit ICNs (int64) for global person indices: a bijection, so distinct persons never share one."""
    g = np.asarray(global_index, dtype=np.int64)
    if len(g) and (g.min() < 0 or g.max() >= ICN_PRIME):
        raise ConfigError(f"population too large for unique ICNs: at most {ICN_PRIME} persons")
    return ICN_BASE + (g * _ICN_MULT + _ICN_ADD) % ICN_PRIME


def ssn_numbers(global_index: np.ndarray) -> list[str]:
    """Never-issued 9-digit SSNs (area 900-999, group 01-49) for global person indices, as strings."""
    g = np.asarray(global_index, dtype=np.int64)
    if len(g) and (g.min() < 0 or g.max() >= SSN_PRIME):
        raise ConfigError(f"population too large for unique synthetic SSNs: at most {SSN_PRIME} persons")
    x = (g * _SSN_MULT + _SSN_ADD) % SSN_PRIME
    area = 900 + x // (49 * 9999)
    rest = x % (49 * 9999)
    group = 1 + rest // 9999
    serial = 1 + rest % 9999
    num = area * 1_000_000 + group * 10_000 + serial
    return [str(v) for v in num.tolist()]


def is_synthetic_ssn(ssn: str) -> bool:
    """True for an SSN in the never-issued range this generator uses."""
    return len(ssn) == 9 and ssn.isdigit() and ssn[0] == "9" and 1 <= int(ssn[3:5]) <= 49 and ssn[5:] != "0000"


def ien(dfn: int, k: int) -> int:
    """IEN of a patient's k-th entry (1-based) in one clinical file."""
    return dfn * IEN_STRIDE + k
