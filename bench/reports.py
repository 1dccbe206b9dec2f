"""Benchmark: how long the reports, the gate and the metrics file take for runs of growing size.

Run: ``python bench/reports.py`` (prints one line per case). Rendering reads only the results
document, so its cost grows with the number of batches, not patients; charts are capped (60 timeline
rows, 200 quality points), so the HTML stays small however long the run.
"""

from __future__ import annotations

import time

from vistasim.config import MigrationConfig
from vistasim.gating import apply_gating
from vistasim.metrics import render_metrics
from vistasim.report import render
from vistasim.runner import population_ids, run_model

CASES = ((2_000, 100), (100_000, 100), (100_000, 25), (1_000_000, 250))


def _best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    print(
        f"{'patients':>10} {'batches':>8} {'html ms':>9} {'html KB':>8} {'md ms':>7} {'txt ms':>7} {'prom ms':>8} {'gate ms':>8}"
    )
    for n, batch in CASES:
        doc = run_model(
            population_ids(n),
            config=MigrationConfig(),
            strategy="staged",
            batch_size=batch,
            seed=1,
            run_dir=None,
            keep_audit=False,
            argv=["bench"],
        ).doc
        html = render(doc, "html")
        times = [_best_of(lambda f=f, d=doc: render(d, f)) for f in ("html", "md", "txt")]
        prom = _best_of(lambda d=doc: render_metrics(d))
        gate = _best_of(lambda d=doc: apply_gating(d, "success=0.5,quality=0.5", quiet=True))
        print(
            f"{n:>10,} {len(doc['batches']):>8,} {times[0] * 1e3:>9.1f} {len(html.encode()) / 1024:>8.0f} "
            f"{times[1] * 1e3:>7.1f} {times[2] * 1e3:>7.1f} {prom * 1e3:>8.2f} {gate * 1e3:>8.3f}"
        )


if __name__ == "__main__":
    main()
