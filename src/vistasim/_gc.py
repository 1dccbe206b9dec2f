"""One way to pause Python's cyclic garbage collector around a block that makes many acyclic objects.

Records, bundles and row tuples never form reference cycles (reference counting frees them), but
every object made counts toward the collector's thresholds, and each collection it triggers walks
every live object: with hundreds of thousands of long-lived records that was a third of generation
time and 5-10 % of reading, mapping and reconciling. Paused, the block's objects are examined once,
at the first collection after it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (restored on exit, whatever its state was)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
