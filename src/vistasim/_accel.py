"""Which compiled accelerators are in use.

The accelerators (``vistasim._c``) are optional: an install without a C compiler runs the pure-Python
twins, with the same results. ``VISTASIM_PURE_PYTHON=1`` in the environment switches every accelerator
off (the tests use it to check both paths agree).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

PURE_ENV = "VISTASIM_PURE_PYTHON"


def pure_python() -> bool:
    """True when the environment asks for the pure-Python paths only."""
    return os.environ.get(PURE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def load(name: str) -> ModuleType | None:
    """The compiled module ``vistasim._c.<name>``, or None when it was not built, is switched off, or is
    a stale build (its ``PROTOCOL`` is not the one ``vistasim._c.PROTOCOLS`` expects)."""
    if pure_python():
        return None
    try:
        module = importlib.import_module(f"vistasim._c.{name}")
    except ImportError:
        return None
    from vistasim._c import PROTOCOLS

    want = PROTOCOLS.get(name)
    if want is not None and getattr(module, "PROTOCOL", None) != want:
        return None
    return module


def status() -> dict[str, bool]:
    """Accelerator name -> whether it is in use (for the benches and ``vistasim --version``)."""
    # The accelerators are loaded by their pure-Python twins, and some import those at their own
    # start: import the packages first, as any real use does.
    import vistasim.fhir  # noqa: F401
    import vistasim.vista  # noqa: F401
    from vistasim._c import NAMES

    return {n: load(n) is not None for n in NAMES}
