"""What a search optimises: weighted F1 alone (the default) or a trade-off of accuracy and cost, and the
Pareto front of a run's configs (no Ray here; the CLI, the trainable and the report share it).

``--objectives weighted_f1,latency_4s_ms`` runs Optuna's multi-objective TPE over the pair's space. The
first objective is the accuracy one (``weighted_f1`` or ``ua``, mean over the unit's folds' validation
sessions); ASHA still prunes on it. Costs are measured on a trial's first fold: latency of a 4-s utterance
(front end included), forward GFLOPs of a 4-s utterance, parameters (millions) and the model's own
training memory (GB). Only configs that ran every fold are told to Optuna as COMPLETE, so only they enter
the front.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import UserError
from harness.records import TrialRecord

ACCURACY = ("weighted_f1", "ua")
COSTS = ("latency_4s_ms", "gflops_4s", "params_m", "model_memory_gb")
OBJECTIVES = ACCURACY + COSTS
MEASURED = {"latency_4s_ms", "gflops_4s"}  # need the latency/FLOPs step after training (the others come free)


@dataclass(frozen=True)
class Objective:
    name: str

    @property
    def mode(self) -> str:
        return "max" if self.name in ACCURACY else "min"


def parse_objectives(text: str) -> tuple[str, ...]:
    """``weighted_f1,latency_4s_ms`` -> the names, checked: known, no repeats, accuracy first."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown or not names:
        raise UserError(f"--objectives {text!r}: unknown {', '.join(unknown) or '(none)'}; choose from {OBJECTIVES}")
    if len(set(names)) < len(names):
        raise UserError(f"--objectives {text!r} names an objective twice")
    if names[0] not in ACCURACY:
        raise UserError(f"--objectives {text!r}: the first objective must be an accuracy one ({', '.join(ACCURACY)})")
    return names


def value(record: TrialRecord, name: str) -> float:
    """Objective ``name`` of a trial: validation accuracy over its folds, or a cost of its first fold."""
    folds = record.folds
    if not folds:
        return float("nan")
    if name == "weighted_f1":
        return float(np.mean([f.validation.weighted_f1 for f in folds]))
    if name == "ua":
        return float(np.mean([f.validation.unweighted_accuracy for f in folds]))
    resources = folds[0].resources
    if name == "params_m":
        return resources.params_total / 1e6
    found = getattr(resources, name, None)
    return float(found) if found is not None else float("nan")


def pareto_mask(values: np.ndarray, modes: tuple[str, ...]) -> np.ndarray:
    """Rows not dominated by another row (``values``: [n, k]; a NaN row is never on the front)."""
    signed = np.where(np.array(modes) == "max", -1.0, 1.0) * values  # everything minimised
    ok = ~np.isnan(signed).any(axis=1)
    front = np.zeros(len(values), dtype=bool)
    for i in np.flatnonzero(ok):
        others = signed[ok]
        dominated = ((others <= signed[i]).all(axis=1) & (others < signed[i]).any(axis=1)).any()
        front[i] = not dominated
    return front


def cheapest_within_margin(records: list[TrialRecord], cost: str, margin: float) -> list[TrialRecord]:
    """Complete trials ranked for ``--select cheapest-within-margin``: those whose validation weighted F1 is
    within ``margin`` of the best, cheapest first (ties: higher F1, then trial id), then the rest by F1."""
    complete = [r for r in records if r.complete]
    if not complete:
        return []
    best = max(value(r, "weighted_f1") for r in complete)
    close = [r for r in complete if value(r, "weighted_f1") >= best - margin]
    rest = [r for r in complete if r not in close]
    close.sort(key=lambda r: (np.nan_to_num(value(r, cost), nan=np.inf), -value(r, "weighted_f1"), r.trial_id))
    rest.sort(key=lambda r: (-value(r, "weighted_f1"), r.trial_id))
    return close + rest
