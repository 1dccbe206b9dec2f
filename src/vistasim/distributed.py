"""Where the work of ``vistasim risk`` / ``compare`` runs: in-process, on local processes, or on Dask.

The work is a list of tasks; each task is a pure function of its arguments (keyed draws: see DESIGN.md
"Randomness"), and results come back in task order whatever ran them, so the output is byte-identical
however the tasks were spread. Nothing here knows what a task computes.

* ``inprocess`` (default): a plain loop.
* ``processes``: a local process pool (``--executor processes --workers N``), standard library only.
* ``dask``: a Dask cluster, either one already running (``--scheduler tcp://host:port``) or a local one
  started for the run on 127.0.0.1 (``--workers N``). Dask is the optional extra ``vistasim[dask]``.

:func:`run_tasks` also reports which worker ran each task (kept out of the results: it is not a function
of the seed), so tests and benchmarks can check the work was really split.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError, require

EXECUTORS = ("inprocess", "processes", "dask")


@dataclass
class Execution:
    """How a list of tasks was run: the executor and the worker that ran each task (in task order)."""

    executor: str
    workers: list[str] = field(default_factory=list)

    @property
    def tasks(self) -> int:
        return len(self.workers)

    @property
    def distinct_workers(self) -> int:
        return len(set(self.workers))


def _worker_id() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError, AttributeError):
        return f"pid:{os.getpid()}"


def _traced(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, Any]:
    return _worker_id(), fn(*args)


def resolve_executor(executor: str | None, workers: int | None, scheduler: str | None) -> str:
    """The executor a command line asks for: an explicit choice, else Dask when --workers/--scheduler is given."""
    if executor is not None and executor not in EXECUTORS:
        raise ConfigError(f"--executor {executor!r} is unknown (use one of {', '.join(EXECUTORS)})")
    if scheduler is not None:
        if executor not in (None, "dask"):
            raise ConfigError(f"--scheduler needs the dask executor, not {executor!r} (drop --executor or use dask)")
        if not isinstance(scheduler, str) or "://" not in scheduler:
            raise ConfigError(f"--scheduler {scheduler!r} is not an address such as tcp://127.0.0.1:8786")
        return "dask"
    if workers is not None and (not isinstance(workers, int) or workers <= 0):
        raise ConfigError(f"--workers must be a whole number > 0, got {workers!r}")
    if executor is not None:
        return executor
    return "dask" if workers is not None else "inprocess"


def run_tasks(
    fn: Callable[..., Any],
    task_args: Sequence[tuple[Any, ...]],
    *,
    executor: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Any], Execution]:
    """Run ``fn(*args)`` for every args tuple; results in the order given, and how they were run.

    ``progress(done, total)`` is called as tasks finish (in whatever order they finish); it never
    changes the results, which are always returned in the order of ``task_args``.
    """
    executor = resolve_executor(executor, workers, scheduler)
    total = len(task_args)
    tick = progress or (lambda done, total: None)
    if executor == "inprocess" or not task_args:
        traced = []
        for i, a in enumerate(task_args):
            traced.append(_traced(fn, a))
            tick(i + 1, total)
    elif executor == "processes":
        import concurrent.futures as cf
        import multiprocessing as mp

        n = workers or os.cpu_count() or 1
        # spawn, not fork: a fork of a process holding threads (rich, Dask) can deadlock
        with cf.ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_traced, fn, a) for a in task_args]
            for done, _ in enumerate(cf.as_completed(futures), 1):
                tick(done, total)
            traced = [f.result() for f in futures]
    else:
        traced = _run_dask(fn, task_args, workers, scheduler, tick)
    return [r for _, r in traced], Execution(executor, [w for w, _ in traced])


def _run_dask(fn: Callable[..., Any], task_args: Sequence[tuple[Any, ...]], workers: int | None,
              scheduler: str | None, tick: Callable[[int, int], None]) -> list[tuple[str, Any]]:
    dd = require("distributed", "dask", "running replications on Dask (--scheduler / --workers)")
    if scheduler is not None:
        with dd.Client(scheduler, timeout="30s") as client:
            return _gather(dd, client, fn, task_args, tick)
    with dd.LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address=None) as cluster, dd.Client(cluster) as client:
        return _gather(dd, client, fn, task_args, tick)


def _gather(dd: Any, client: Any, fn: Callable[..., Any], task_args: Sequence[tuple[Any, ...]],
            tick: Callable[[int, int], None]) -> list[tuple[str, Any]]:
    futures = client.map(_traced, [fn] * len(task_args), list(task_args), pure=False)
    for done, _ in enumerate(dd.as_completed(futures), 1):
        tick(done, len(futures))
    return list(client.gather(futures))


def split(items: Sequence[Any], parts: int) -> list[tuple[Any, ...]]:
    """Contiguous, near-equal blocks of ``items`` (at most ``parts``, none empty)."""
    parts = max(1, min(int(parts), len(items)))
    q, r = divmod(len(items), parts)
    out, lo = [], 0
    for i in range(parts):
        hi = lo + q + (1 if i < r else 0)
        out.append(tuple(items[lo:hi]))
        lo = hi
    return out
