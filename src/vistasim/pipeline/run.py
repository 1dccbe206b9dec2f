"""A data-mode run end to end: a ZWR source -> a load target -> a run folder.

Used by ``vistasim migrate``. Writes (every file atomically): ``results.json`` (mode "data", with the
``data_mode`` section and ``metrics.fidelity``/``metrics.safety``), ``report.txt``, ``audit.jsonl``,
``reconciliation.json`` and ``answer_key.jsonl`` (the injected faults). Re-running into the same
target is idempotent, and a run killed at any commit point and started again ends with the target in
the state an uninterrupted run leaves (the target's journal skips what already committed).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .._gc import gc_paused
from ..config import MigrationConfig
from ..errors import InputError
from ..results import model_results, provenance, write_results
from ..runio import atomic_write_bytes, atomic_write_text, check_dir_creatable, check_writable_file, ensure_dir
from ..simulator import MigrationSimulator
from .privacy import Pseudonymiser, pseudonym_key, should_pseudonymise
from .reconcile import Reconciliation, attribute_losses, reconcile, score_faults
from .settings import DataModeSettings


def read_records(source: Path, station: str | None = None, bad_entries: str = "raise") -> Any:
    """``read_source`` with the cyclic collector paused: records are acyclic, and a collector pass over
    hundreds of thousands of fresh objects every few thousand allocations is most of a large read.

    The records then go to the collector's permanent generation (``gc.freeze``): they live for the run,
    and otherwise the first allocation after the read would scan all of them (0.34 s for 20,000 patients,
    751,000 objects) and later full passes again. The data-mode run unfreezes them when it ends."""
    import gc

    from ..vista.station import read_source

    with gc_paused():
        result = read_source(source, station=station, bad_entries=bad_entries)
        gc.freeze()
    return result


@dataclass
class DataRunOutput:
    doc: dict[str, Any]
    simulator: MigrationSimulator
    reconciliation: Reconciliation
    run_dir: Path | None


def read_defect_key(source: Path) -> list[dict[str, str]]:
    """The generator's answer key beside the source (answer_key.csv or .jsonl), if there is one."""
    folder = source if source.is_dir() else source.parent
    for base in (folder, folder.parent):
        for name in ("answer_key.csv", "answer_key.jsonl"):
            p = base / name
            if not p.is_file():
                continue
            try:
                if name.endswith(".csv"):
                    with open(p, newline="", encoding="utf-8") as fh:
                        return [dict(r) for r in csv.DictReader(fh)]
                return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
            except (OSError, ValueError) as exc:
                raise InputError(
                    f"{p}: the generator's answer key cannot be read ({exc.__class__.__name__}); fix or remove it"
                ) from None
    return []


def run_data(
    source: Path,
    *,
    target_url: str,
    config: MigrationConfig,
    settings: DataModeSettings,
    strategy: str,
    batch_size: int,
    seed: int,
    run_dir: Path | None,
    station: str | None = None,
    report_path: Path | None = None,
    argv: Sequence[str] | None = None,
    on_commit: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DataRunOutput:
    from ..report import render
    from ..targets import open_target

    if run_dir is not None:
        check_dir_creatable(run_dir, "run folder (--out)")
    if report_path is not None:
        check_writable_file(report_path, "report file")
    settings.validate()
    t0 = time.perf_counter()
    source = Path(source)
    if not source.exists():
        raise InputError(
            f"source {str(source)!r} not found: give a .zwr file or a folder of station exports (--source)"
        )
    # An entry that does not decode quarantines its patient (transform/parse) instead of ending the run;
    # a line that is not ZWR at all still stops it (exit 2): the export itself is broken.
    src = read_records(source, station, bad_entries="quarantine")
    if not src.patients:
        raise InputError(f"source {str(source)!r} holds no PATIENT (#2) entries; export ^DPT with the data")
    defects = read_defect_key(source)
    target = open_target(target_url, on_commit=on_commit)
    try:
        sim = MigrationSimulator(config, seed=seed, mode="data", target=target, data_settings=settings, source=src)
        sim.simulate_migration(src.patients, batch_size=batch_size, migration_strategy=strategy, progress=progress)
        dr = sim.data_runs[-1]
        status = dict(zip(dr.ids, dr.status))
        rec = reconcile(src.patients, target, status=status, tz=settings.timezone)
    finally:
        target.close()
    person_records: dict[str, list[str]] = {}
    for pid, person in zip(dr.ids, dr.person_of):
        person_records.setdefault(person, []).append(pid)
    rec.detection = score_faults(dr.answer_key, rec, status, dr.reasons, person_records)
    rec.attribution = attribute_losses(rec, dr.answer_key, defects, status, dr.reasons, person_records)
    analytics = sim.get_migration_analytics()
    wall = time.perf_counter() - t0
    doc = model_results(
        command="migrate",
        analytics=analytics,
        config_dict=config.to_dict(),
        strategy=strategy,
        seed=seed,
        batch_size=batch_size,
        batches=sim.batch_results,
        audit_rows=len(sim.audit),
        prov=provenance(argv, wall),
    )
    doc["mode"] = "data"
    doc["metrics"]["fidelity"] = rec.fidelity
    doc["metrics"]["safety"] = rec.safety
    detection = {k: v for k, v in rec.detection.items() if k != "entries"}
    doc["data_mode"] = {
        "source": {
            "stations": src.stations,
            "records": len(src.patients),
            "nodes_read": src.nodes_read,
            "bad_lines": src.bad_lines,
            "unknown_globals": src.unknown_globals,
            "unparsed_records": len(src.parse_failures),
            "defect_key_rows": len(defects),
        },
        "target": _redact(target_url),
        "settings": settings.to_dict(config),
        "resources_mapped": dr.resources_mapped,
        "resources_validated": dr.resources_validated,
        "standardize_gaps": dr.gap_counts,
        "waves": [w.to_dict() for w in dr.waves],
        "unknown_queue": len(dr.unknown_queue),
        "faults_injected": _fault_counts(dr.answer_key),
        "reconciliation": {k: v for k, v in rec.summary().items() if k not in ("fault_detection",)},
        "fault_detection": detection,
    }
    # ids of a real export (ICNs, station:DFN) leave the target only as keyed pseudonyms
    key: bytes | None = None
    key_source = None
    if should_pseudonymise(settings.pseudonymise, source):
        key, key_source = pseudonym_key(src.patients, seed)
    doc["data_mode"]["privacy"] = {"pseudonymised": key is not None, "key": key_source}
    if run_dir is not None:
        ensure_dir(run_dir, "run folder (--out)")
        scrub = Pseudonymiser(key, [*dr.ids, *dr.person_of]).scrub if key is not None else (lambda o: o)
        sim.audit.save(run_dir / "audit.jsonl", pseudonym_key=key)
        atomic_write_bytes(
            run_dir / "answer_key.jsonl", b"".join(orjson.dumps(scrub(e.to_dict())) + b"\n" for e in dr.answer_key)
        )
        full = rec.to_dict()
        full["fault_detection"] = rec.detection
        full["dispositions"] = [
            {"patient_id": p, "person_id": per, "status": s, "reason": dr.reasons.get(p, "")}
            for p, per, s in zip(dr.ids, dr.person_of, dr.status)
        ]
        atomic_write_bytes(
            run_dir / "reconciliation.json", orjson.dumps(scrub(full), option=orjson.OPT_INDENT_2) + b"\n"
        )
        atomic_write_text(run_dir / "report.txt", render(doc, "txt") + render_data_section(doc))
        write_results(run_dir, doc)
    if report_path is not None:
        atomic_write_text(report_path, render(doc, "txt") + render_data_section(doc))
    return DataRunOutput(doc, sim, rec, run_dir)


def _redact(url: str) -> str:
    """A target URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':')[0]}@{host}"
    return url


def _fault_counts(answer: Sequence[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in answer:
        out[e.kind] = out.get(e.kind, 0) + 1
    return dict(sorted(out.items()))


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2%}"


def render_data_section(doc: dict[str, Any]) -> str:
    """The data-mode part of the text report: what was measured, beside the modelled figures."""
    dm = doc.get("data_mode") or {}
    r = dm.get("reconciliation") or {}
    lines = [
        "DATA MODE (measured)",
        "--------------------",
        "Failures here come from real checks and keyed outages; the config's success rates and error-type",
        "weights (above) do not apply in data mode.",
        "",
    ]
    c = r.get("conservation") or {}
    lines.append(
        f"Source records:         {c.get('records', 0):,} ({c.get('persons', 0):,} persons) -> migrated "
        f"{c.get('migrated', 0):,}, failed {c.get('failed', 0):,}, quarantined {c.get('quarantined', 0):,}"
        f" ({'adds up' if c.get('adds_up') else 'DOES NOT ADD UP'})"
    )
    lines.append(
        f"Fidelity (measured):    {_pct(r.get('fidelity'))} of fields in scope arrived as the map rules say "
        f"(quality, modelled: {doc['metrics'].get('quality') or 0:.4f})"
    )
    lines.append(
        "Fidelity by domain:     " + ", ".join(f"{d} {_pct(v)}" for d, v in (r.get("fidelity_by_domain") or {}).items())
    )
    lines.append(f"Safety (measured):      {_pct(r.get('safety'))}")
    for g, v in (r.get("safety_gates") or {}).items():
        lines.append(f"  gate {g:<20} {'PASS' if v['passed'] else 'FAIL'}  {v['intact']:,}/{v['expected']:,} intact")
    lines.append(
        f"Differences:            {r.get('differences', 0):,} in {r.get('persons_with_differences', 0):,} persons; "
        f"duplicates {r.get('duplicate_persons', 0)}, unconfirmed in target {r.get('unconfirmed_in_target', 0)}"
    )
    unparsed = (dm.get("source") or {}).get("unparsed_records", 0)
    if unparsed:
        lines.append(f"Unparsed source records: {unparsed:,} (FileMan entries that did not decode; stopped at parse)")
    fd = dm.get("fault_detection") or {}
    if fd.get("by_fault"):
        lines.append(
            f"Injected faults:        {fd.get('injected', 0):,}, detected or reported {_pct(fd.get('detection_rate'))}"
        )
        for k, v in fd["by_fault"].items():
            if k == "transient_outage":
                lines.append(
                    f"  {k:<22} {v['injected']:,} steps hit, {v['failed_attempts']:,} failed attempts, "
                    f"{v['stopped_records']:,} records stopped ("
                    + ", ".join(f"{t} {c:,}" for t, c in sorted(v.get("by_type", {}).items()))
                    + ")"
                )
            else:
                lines.append(
                    f"  {k:<22} {v['injected']:,} injected: detected {v['detected']}, reported {v['reported']}, "
                    f"missed {v['missed']} (counts as {v['spec_type']})"
                )
    la = r.get("loss_attribution") or {}
    if la.get("records_not_migrated"):
        lines.append(
            "Records not migrated by cause: " + ", ".join(f"{k} {v:,}" for k, v in la["records_not_migrated"].items())
        )
    for w in dm.get("waves") or ():
        if w.get("backed_out"):
            lines.append(
                f"Wave {w['wave_id']} backed out: {w['verified_persons']}/{w['staged_persons']} verified; "
                f"{w['backout_removed'] + w['backout_restored']} persons removed in {w['backout_seconds']:.1f} s "
                f"(simulated), {w['backout_result']}"
            )
    gaps = r.get("terminology_gaps") or {}
    for kind, rows in gaps.items():
        if rows:
            top = ", ".join(f"{x['code']} ({x['patients']})" for x in rows[:5])
            lines.append(f"Worklist {kind}: {len(rows)} codes; top: {top}")
    lines.append("")
    return "\n".join(lines) + "\n"
