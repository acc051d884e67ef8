"""What a pair cost, from its stored runs, charged fairly between trained-from-scratch and pretrained pairs.

* **Extraction** (``extraction_*``): every feature spec a pair's search space can ask for, with the cost
  measured when the spec was built and stored in the feature cache (``harness.features.cache``; the run's
  ``search.json`` lists it). A spec shared by several pairs (wav2vec2's layer means, the log-mel frames) is
  charged in full to each of them, so a pair's figure does not depend on which pair ran first.
* **Device use** (``device_hours``): per trial fold, the training's device-seconds of use, measured: on a
  GPU, wall time x the process's own SM utilisation (NVML per-process samples); on a CPU machine, the
  process's CPU core-seconds. Summed over every trial of the pair's search (stopped and failed trials
  included: they were paid for) and of its final stage, plus the extraction's. Records written before this
  measure fall back to wall x allocated share (``device_hours_basis`` says "allocation").
* **Energy** (``energy_kj``): only energy attributed to the trial's own process (device energy split by its
  share of the device's utilisation), summed; device-wide NVML figures of trials that shared a device are
  never summed. NaN where the driver gives no per-process figures.
* **Latency and FLOPs**: the isolated latency step of each trial (``harness.train.costs``), averaged over
  the row's trials (its final-stage seeds).
* **Size, latency and FLOPs of the selected configs** (``selected_costs``, ``fold_costs``): nested
  selection picks a config per test session, so a row's cost is each session's own config, averaged over
  the sessions, with the smallest and largest beside it (``*_min``, ``*_max``); ``params_head_M`` is what
  is neither encoder branch (the fusion and dialogue-context head) and ``head_share`` its share of the
  total. A session whose latency step did not run (records written before each fold's config was
  measured) is left out of the latency and FLOPs figures, and ``cost_sessions`` says how many had it.

Imports neither torch nor Ray.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.records import FoldRecord, Resources, TrialRecord

# Keys of an extraction entry that describe the measurement, not the spec.
MEASURED = frozenset(
    {
        "extract_seconds",
        "cpu_seconds",
        "device",
        "device_seconds",
        "energy_j",
        "energy_basis",
        "audio_seconds",
        "audio_seconds_per_second",
    }
)
LATENCY_COLUMNS = (
    "latency_1s_ms",
    "latency_4s_ms",
    "latency_10s_ms",
    "latency_1s_iqr_ms",
    "latency_4s_iqr_ms",
    "latency_10s_iqr_ms",
    "rtf_4s",
    "gflops_4s",
    "train_gflops_per_epoch",
)


@dataclass(frozen=True)
class ExtractionCost:
    seconds: float  # wall seconds of building every spec the pair uses
    device_seconds: float  # GPU busy seconds, or CPU core-seconds on a CPU machine
    energy_kj: float  # NaN when no spec's energy was measured
    specs: int


def spec_key(entry: dict) -> str:
    """The spec an extraction entry describes, whatever its measured figures."""
    return json.dumps({k: v for k, v in entry.items() if k not in MEASURED}, sort_keys=True, default=str)


def extraction_cost(summaries: Iterable[dict]) -> ExtractionCost:
    """The full extraction cost of the specs listed in the runs' summaries (``search.json``), each spec once."""
    entries: dict[str, dict] = {}
    for summary in summaries:
        for entry in summary.get("extraction", []) or []:
            entries.setdefault(spec_key(entry), entry)
    seconds = sum(float(e.get("extract_seconds") or 0.0) for e in entries.values())
    # Entries from caches built before device-seconds were measured: their wall time (the device was held).
    device = sum(float(e.get("device_seconds", e.get("extract_seconds")) or 0.0) for e in entries.values())
    energies = [float(e["energy_j"]) for e in entries.values() if e.get("energy_j") is not None]
    return ExtractionCost(seconds, device, sum(energies) / 1000 if energies else math.nan, len(entries))


@dataclass(frozen=True)
class DeviceUse:
    seconds: float
    basis: str  # "measured", "allocation" or "" (nothing to charge)


def device_use(records: Iterable[TrialRecord], summary: dict) -> DeviceUse:
    """Device-seconds of use of every fold every trial trained (see the module docstring)."""
    share = float(summary.get("gpus_per_trial") or 0.0) or float(summary.get("cpus_per_trial") or 1.0)
    seconds, bases = 0.0, set()
    for record in records:
        for fold in record.folds:
            r = fold.resources
            if r.device_seconds is not None:
                seconds += r.device_seconds
                bases.add("measured")
            else:
                seconds += r.train_wall_s * share
                bases.add("allocation")
    return DeviceUse(seconds, "+".join(sorted(bases)))


def _mean(values: list[float | None]) -> float:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan


def latency_columns(resources: list[Resources]) -> dict[str, float]:
    """The latency step's figures, averaged over the trials that measured them (one fold each)."""
    measured = [r for r in resources if r.latency_4s_ms is not None]
    out = {c: round(_mean([getattr(r, c) for r in measured]), 4 if c == "rtf_4s" else 3) for c in LATENCY_COLUMNS}
    out["latency_repeats"] = min((r.latency_repeats for r in measured), default=0)
    return out


def cost_columns(
    row: list[Resources], runs: list[tuple[list[TrialRecord], dict]], complete: bool = True
) -> dict[str, float | str]:
    """A comparison row's cost columns. ``row``: the resources of the folds the row's scores rest on (its
    latency and FLOPs); ``runs``: (trial records, ``search.json`` summary) of every run that computed the
    row, its search and its final stage (device-hours, extraction, attributed energy). ``complete=False``
    (a final stage whose search run is gone): no total compute, which would leave the search out."""
    extraction = extraction_cost(summary for _, summary in runs)
    uses = [device_use(records, summary) for records, summary in runs]
    bases = sorted({b for u in uses for b in u.basis.split("+") if b})
    attributed = [f.resources.attributed_energy_j for records, _ in runs for r in records for f in r.folds]
    measured = [e for e in attributed if e is not None]
    return {
        "extraction_s": round(extraction.seconds, 1),
        "extraction_device_s": round(extraction.device_seconds, 1),
        "extraction_energy_kj": round(extraction.energy_kj, 3),
        **latency_columns(row),
        "device_hours": round((sum(u.seconds for u in uses) + extraction.device_seconds) / 3600, 5)
        if complete
        else math.nan,
        "device_hours_basis": "+".join(bases),
        "energy_kj": round(sum(measured) / 1000, 3) if measured else math.nan,
    }


NO_SPREAD = ("params_trainable_M", "head_share", "model_memory_gb")  # every other figure gets *_min, *_max


def fold_costs(folds: list[FoldRecord]) -> pd.DataFrame:
    """One row per test session: the size, memory, latency and FLOPs of the config that session's folds
    trained (its seeds share it; latency and FLOPs from those that measured them)."""
    rows = []
    for session in sorted({f.fold for f in folds}):
        mine = [f.resources for f in folds if f.fold == session]
        first = mine[0]
        branches = dict(first.params_by_modality)
        head = first.params_total - sum(branches.values()) if branches else math.nan
        measured = [r for r in mine if r.latency_4s_ms is not None]
        rows.append(
            {
                "test_session": session,
                "params_total_M": round(first.params_total / 1e6, 3),
                "params_trainable_M": round(first.params_trainable / 1e6, 3),
                **{f"params_{m}_M": round(n / 1e6, 3) for m, n in sorted(branches.items())},
                "params_head_M": round(head / 1e6, 3),
                "head_share": round(head / first.params_total, 3) if first.params_total else math.nan,
                "model_memory_gb": round(max(r.model_memory_gb for r in mine), 3),
                "latency_4s_ms": round(_mean([r.latency_4s_ms for r in measured]), 3),
                "gflops_4s": round(_mean([r.gflops_4s for r in measured]), 3),
                "latency_measured": bool(measured),
            }
        )
    return pd.DataFrame(rows)


def selected_costs(folds: list[FoldRecord]) -> dict[str, float]:
    """A row's size and per-utterance cost from every test session's selected config: the mean over
    sessions, and (but for ``NO_SPREAD``) the smallest and largest (``*_min``, ``*_max``)."""
    table = fold_costs(folds)
    if table.empty:
        return {"params_total_M": math.nan, "params_trainable_M": math.nan, "cost_sessions": 0}
    out: dict[str, float] = {}
    for column in table.columns.drop(["test_session", "latency_measured"]):
        values = table[column].dropna()
        out[column] = round(float(values.mean()), 3) if len(values) else math.nan
        if column not in NO_SPREAD:
            out[f"{column}_min"] = round(float(values.min()), 3) if len(values) else math.nan
            out[f"{column}_max"] = round(float(values.max()), 3) if len(values) else math.nan
    out["model_memory_gb"] = round(float(table.model_memory_gb.max()), 3)  # the largest a session needed
    out["cost_sessions"] = int(table.latency_measured.sum())
    return out


def selected_costs_table(rows: list[Any], folds_of: Callable[[Any], list[FoldRecord]]) -> pd.DataFrame:
    """``fold_costs`` of each row's run (``harness.report.tables.Run``), pair by pair."""
    frames = [fold_costs(folds_of(run)).assign(pair=run.meta.pair, stage=run.stage) for run in rows]
    frames = [f[["pair", "stage", *f.columns.drop(["pair", "stage"])]] for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
