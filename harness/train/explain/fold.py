"""A fold's explanation: permutation reliance on every test utterance, and attributions with their
faithfulness, completeness and sanity figures on the fold's explanation set (``explanation_set``).

Cost. ``ExplainBudget`` gives the fold a time budget (a share of the trial's train+score+measure time,
carried over its folds). The budget never changes *which* utterances are explained: the whole set always
is. It lowers the cost per utterance instead: when the utterances explained so far (or, before the first,
the slowest per-utterance time of the trial's earlier folds) project past the budget, Integrated Gradients
stops raising its steps for completeness (the ceiling falls to the starting steps) and then halves them,
down to ``MIN_STEPS``. A fold that still passes its budget says so (``Explanation.within_budget`` False).

Stored per utterance (``explanation_frame``): pair, seed, fold, utterance_id, modality, level, k, metric,
value. ``k`` is the percent of units of a removal metric, the unit index of an ``attribution`` row (a
100 ms bin or a word) and 0 otherwise.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from harness.config import TrialConfig
from harness.models.data import PairData
from harness.models.encoders.pretrained import PretrainedEncoder
from harness.models.fusion import EmotionModel
from harness.records import Explanation, FoldRecord
from harness.train.explain.attribute import MAX_STEPS, MIN_STEPS
from harness.train.explain.reliance import permutation_reliance
from harness.train.explain.sample import explanation_set
from harness.train.explain.units import END_TO_END, HEAD_LEVEL, branch_level, branch_units, training_layer_means
from harness.train.explain.utterance import explain_utterance
from harness.train.measure import ResourceMonitor

log = logging.getLogger(__name__)
COLUMNS = ["pair", "seed", "fold", "utterance_id", "modality", "level", "k", "metric", "value"]


@dataclass(frozen=True)
class ExplainBudget:
    """What one fold may spend explaining: a share of the trial's time, carried over its folds."""

    share: float  # cfg.explain_budget; 0: no bound
    carried_s: float = 0.0  # share x earlier folds' train+score+measure seconds, minus their explanations
    per_utterance_s: float = 0.0  # the slowest earlier explanation per utterance (a conservative estimate)

    @classmethod
    def after(cls, share: float, earlier: list[FoldRecord]) -> ExplainBudget:
        explained = [f.explanation for f in earlier if f.explanation is not None]
        work = sum(v for f in earlier for k, v in f.seconds.items() if k != "explain")
        return cls(
            share,
            share * work - sum(e.seconds for e in explained),
            max((e.seconds / e.n_samples for e in explained if e.n_samples), default=0.0),
        )

    def seconds(self, fold_work_s: float) -> float | None:
        """The budget of a fold whose train+score+measure took ``fold_work_s``; None when unbounded."""
        return None if self.share <= 0 else self.carried_s + self.share * fold_work_s


@dataclass
class FoldExplanation:
    record: Explanation
    frame: pd.DataFrame  # per utterance, COLUMNS


class _Steps:
    """Integrated-Gradients steps under a budget: start at ``steps``, may rise to ``ceiling`` for
    completeness; a projection past the budget first removes the rise, then halves the start."""

    def __init__(self, steps: int, budget_s: float | None):
        self.steps, self.ceiling, self.budget_s, self.lowered = steps, max(steps, MAX_STEPS), budget_s, False

    def update(self, elapsed: float, per_utterance: float, left: int) -> None:
        if self.budget_s is None:
            return
        while elapsed + per_utterance * left > self.budget_s and self.steps > MIN_STEPS:
            self.lowered = True
            if self.ceiling > self.steps:
                self.ceiling = self.steps  # no more rises (the estimate already holds none, or few)
                continue
            self.steps = self.ceiling = max(MIN_STEPS, self.steps // 2)
            per_utterance /= 2  # about half the cost per halving (IG dominates)


def explain_fold(
    model: EmotionModel,
    data: PairData,
    test_rows: np.ndarray,
    train_rows: np.ndarray,
    cfg: TrialConfig,
    device: torch.device,
    pair: str = "",
    fold: int = 0,
    budget_s: float | None = None,
    per_utterance_s: float = 0.0,
) -> FoldExplanation:
    """Explain a trained model on one fold (see the module docstring).

    Args:
        test_rows: the fold's test rows; the explanation set is drawn from them.
        train_rows: the fold's training rows (training-mean replacements of head-level branches).
        pair, fold: what the per-utterance rows are labelled with.
        budget_s: seconds for the whole explanation (None: unbounded).
        per_utterance_s: the expected cost of one utterance before any is timed here.
    """
    started = time.perf_counter()
    model.eval()
    ids = data.manifest.utterance_id.to_numpy()
    chosen = test_rows[explanation_set(list(ids[test_rows]), data.labels[test_rows], cfg.explain_samples)]
    steps = _Steps(cfg.explain_steps, budget_s)
    rows: list[tuple] = []
    levels = {m: branch_level(e, cfg) for m, e in model.branches.items()}
    with ResourceMonitor(device) as monitor:
        reliance = permutation_reliance(model, data, test_rows, device, cfg.batch_size)
        rows += [(ids[r], m, END_TO_END, 0, metric, v) for r, m, metric, v in reliance.per_utterance]
        head_baselines = {
            m: training_layer_means(data.features[m]["layers"], train_rows)
            for m, e in model.branches.items()
            if levels[m] == HEAD_LEVEL and isinstance(e, PretrainedEncoder)
        }
        steps.update(time.perf_counter() - started, per_utterance_s, len(chosen))
        explained_s: list[float] = []
        # cuDNN's RNN backward refuses eval mode; the native kernels give the same gradients.
        with torch.backends.cudnn.flags(enabled=False):
            for i, row in enumerate(chosen):
                one = time.perf_counter()
                units = {
                    m: branch_units(e, data, int(row), m, cfg, device, head_baselines.get(m))
                    for m, e in model.branches.items()
                }
                result = explain_utterance(
                    model, data, int(row), units, device, steps.steps, steps.ceiling, cfg.explain_batch, cfg.batch_size
                )
                rows += [(ids[row], m, result.levels[m], k, metric, v) for m, k, metric, v in result.rows]
                explained_s.append(time.perf_counter() - one)
                steps.update(time.perf_counter() - started, max(explained_s), len(chosen) - i - 1)
    seconds = time.perf_counter() - started
    frame = pd.DataFrame(rows, columns=["utterance_id", "modality", "level", "k", "metric", "value"])
    frame.insert(0, "fold", fold)
    frame.insert(0, "seed", cfg.seed)
    frame.insert(0, "pair", pair)
    frame = frame[COLUMNS].astype({"k": np.int64, "value": np.float64, "fold": np.int64, "seed": np.int64})
    within = budget_s is None or seconds <= budget_s
    if not within:  # the record (within_budget) and the report say so; not a console warning per fold
        log.info(
            "fold %d: explaining its %d utterances took %.1f s, over its budget of %.1f s",
            fold,
            len(chosen),
            seconds,
            budget_s,
        )
    peak = (monitor.peak_gpu_bytes if monitor.peak_gpu_bytes is not None else monitor.peak_rss_bytes) / 1024**3
    return FoldExplanation(_record(frame, reliance, levels, len(chosen), seconds, peak, budget_s, within, cfg), frame)


def _record(
    frame: pd.DataFrame,
    reliance,  # noqa: ANN001 - a Reliance
    levels: dict[str, str],
    n: int,
    seconds: float,
    peak_gb: float,
    budget_s: float | None,
    within: bool,
    cfg: TrialConfig,
) -> Explanation:
    """The fold's summary (means over its explanation set) for the trial record."""

    def mean(metric: str, modality: str) -> float:
        values = frame.value[(frame.metric == metric) & (frame.modality == modality)]
        return float(np.nanmean(values)) if values.notna().any() else float("nan")

    modalities = list(levels)
    comp = {m: mean("comprehensiveness", m) for m in modalities}
    gap = [mean("aopc_comprehensiveness", m) for m in modalities]
    return Explanation(
        reliance.f1_drop,
        reliance.emotion_f1_drop,
        comp,
        {m: mean("sufficiency", m) for m in modalities},
        {m: mean("comprehensiveness_random", m) for m in modalities},
        float(np.nanmean(gap)) if np.isfinite(gap).any() else float("nan"),
        int(frame.utterance_id[frame.metric == "completeness_error"].nunique()),
        round(seconds, 3),
        round(peak_gb, 3),
        0,
        None if budget_s is None else round(budget_s, 3),
        level=dict(levels),
        set_size=n,
        within_budget=within,
        completeness_error={m: mean("completeness_error", m) for m in modalities},
        sanity_rank_corr={m: mean("sanity_rank_corr", m) for m in modalities},
        ig_steps={
            m: int(frame.value[(frame.metric == "ig_steps") & (frame.modality == m)].fillna(0).max())
            if (frame.metric == "ig_steps").any()
            else 0
            for m in modalities
        },
        ablation="permutation",
        crop_s=cfg.explain_crop_s,
    )
