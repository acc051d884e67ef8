"""Which config each test fold gets: the ranking of a search's complete trials (no Ray, no torch, so the
CLI and the report share it).

Nested LOSO: for test session k, the complete trials searched for outer fold k (``TrialRecord.outer_fold``),
ranked by their mean validation weighted F1 over k's inner folds, which validate on the other sessions
only. Non-nested protocols: one ranking of every complete trial, used for every test fold.
"""

from __future__ import annotations

import re

from harness.corpus.protocols import selects_per_fold
from harness.records import RunMeta, TrialRecord
from harness.tune.objectives import cheapest_within_margin

PER_FOLD = "per_fold"  # a final-stage trial's config per test session (keys are str(session))
MEASURE_COSTS = "measure_costs"  # a final-stage trial that runs the latency/FLOPs step (for some of its folds)
MEASURE_FOLDS = "measure_folds"  # ... for these test sessions (harness.books.FinalTrial)
_SESSION = re.compile(r"^Ses0*(\d+)$")


def ranked(records: list[TrialRecord]) -> list[TrialRecord]:
    """Complete trials, best mean validation weighted F1 first (ties: lowest trial id)."""
    complete = [r for r in records if r.complete]
    return sorted(complete, key=lambda r: (-(r.mean_val_weighted_f1 or 0.0), r.trial_id))


SELECTIONS = ("best", "cheapest-within-margin")
DEFAULT_MARGIN = 0.02  # weighted F1: the equivalence margin of the report's TOST verdicts


def select_configs(
    records: list[TrialRecord],
    meta: RunMeta,
    k: int,
    rule: str = "best",
    margin: float = DEFAULT_MARGIN,
    cost: str = "latency_4s_ms",
) -> dict[int, list[TrialRecord]]:
    """Per test session, its top-``k`` search trials (fewer where fewer completed). ``rule`` ``best``: by
    mean validation weighted F1; ``cheapest-within-margin``: the cheapest by ``cost`` among those within
    ``margin`` of the best weighted F1 (``harness.tune.objectives.cheapest_within_margin``)."""

    def rank(candidates: list[TrialRecord]) -> list[TrialRecord]:
        return ranked(candidates) if rule == "best" else cheapest_within_margin(candidates, cost, margin)

    if selects_per_fold(meta.protocol):  # nested LOSO and the presets: each test fold's own candidates
        return {fold: rank([r for r in records if r.outer_fold == fold])[:k] for fold in meta.test_sessions}
    best = rank(records)[:k]
    return dict.fromkeys(meta.test_sessions, best)


def validation_sessions(record: TrialRecord) -> list[int]:
    """The sessions whose labels ranked this trial: the validation sessions of its folds (session5: the
    training sessions whose held-out dialogs it validated on)."""
    found = sorted({int(m[1]) for f in record.folds if (m := _SESSION.match(f.validation_speaker))})
    if found or record.meta.protocol != "session5":
        return found
    return sorted({s for s in range(1, 6) if s not in record.meta.test_sessions})
