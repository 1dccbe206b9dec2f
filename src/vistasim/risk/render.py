"""Plain-text tables of the ``risk`` and ``comparison`` sections (printed, and saved in the run folder)."""

from __future__ import annotations

from typing import Any

_ROWS = (
    ("success_rate", "success", lambda v: f"{v:.4%}"),
    ("quality", "quality", lambda v: f"{v:.4f}"),
    ("errors", "failed attempts", lambda v: f"{v:,.1f}"),
    ("elapsed_hours", "elapsed (h)", lambda v: f"{v:,.2f}"),
    ("downtime_max_hours", "downtime max (h)", lambda v: f"{v:,.2f}"),
    ("downtime_mean_hours", "downtime mean (h)", lambda v: f"{v:,.2f}"),
    ("rollbacks", "rollbacks", lambda v: f"{v:,.2f}"),
    ("persons_created", "persons created", lambda v: f"{v:,.0f}"),
    ("records_merged", "records merged", lambda v: f"{v:,.0f}"),
)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def _ci(stat: dict[str, Any], fmt) -> str:  # type: ignore[no-untyped-def]
    ci = stat.get("ci95")
    return "-" if ci is None else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def render_risk(risk: dict[str, Any], max_waves: int = 30) -> str:
    p = risk["plan"]
    out = [f"vistasim risk: plan {p['name']} ({p['sites']} sites, {p['waves']} waves, {p['patients']:,} records), "
           f"{risk['replications']} replications, seed {risk['seed']}", ""]
    rows = [[label, fmt(risk["overall"][m]["mean"]), _ci(risk["overall"][m], fmt), fmt(risk["overall"][m]["p05"]),
             fmt(risk["overall"][m]["p95"])] for m, label, fmt in _ROWS]
    out.append(_table(["overall", "mean", "95% CI of mean", "P5", "P95"], rows))
    out.append("")
    wrows = []
    for w in risk["waves"][:max_waves]:
        m = w["metrics"]
        wrows.append([w["name"], w["date"], w["strategy"], f"{w['patients']:,}", f"{m['success_rate']['mean']:.4%}",
                      f"{m['elapsed_hours']['mean']:,.1f}", f"{m['downtime_max_hours']['mean']:,.1f}",
                      f"{m['rollbacks']['mean']:.2f}"])
    out.append(_table(["wave", "date", "strategy", "patients", "success", "elapsed h", "downtime h", "rollbacks"], wrows))
    if len(risk["waves"]) > max_waves:
        out.append(f"... {len(risk['waves']) - max_waves} more waves in results.json")
    if risk["targets"]:
        out.append("")
        trows = [[t["target"], f"{t['probability']:.1%}", f"[{t['ci95'][0]:.1%}, {t['ci95'][1]:.1%}]",
                  f"{t['replications_met']}/{risk['replications']}"] for t in risk["targets"]]
        j = risk["all_targets"]
        trows.append(["all targets", f"{j['probability']:.1%}", f"[{j['ci95'][0]:.1%}, {j['ci95'][1]:.1%}]",
                      f"{j['replications_met']}/{risk['replications']}"])
        out.append(_table(["target", "P(met)", f"95% CI ({risk['interval_method']})", "replications"], trows))
    return "\n".join(out) + "\n"


def render_comparison(cmp: dict[str, Any]) -> str:
    out = [f"vistasim compare: {', '.join(cmp['strategies'])} on {cmp['plan']['patients']:,} records, "
           f"{cmp['replications']} replications, seed {cmp['seed']}, "
           f"{'common random numbers' if cmp['common_random_numbers'] else 'independent streams'}", ""]
    strategies = cmp["strategies"]
    rows = []
    for m, label, fmt in _ROWS[:6]:
        rows.append([label, *(fmt(cmp["per_strategy"][s][m]["mean"]) for s in strategies)])
    out.append(_table(["mean", *strategies], rows))
    for d in cmp["differences"]:
        out.append("")
        drows = [[label, fmt(d["metrics"][m]["mean"]), _ci(d["metrics"][m], fmt), fmt(d["metrics"][m]["p05"]),
                  fmt(d["metrics"][m]["p95"])] for m, label, fmt in _ROWS[:6]]
        out.append(_table([f"{d['strategy']} - {d['baseline']}", "mean", "95% CI", "P5", "P95"], drows))
    return "\n".join(out) + "\n"
