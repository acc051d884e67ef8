"""Modality reliance by permutation: each test utterance's branch input is replaced by the same branch's
input from another utterance of the fold (``permutation_partners``), every other input as scored.

Unlike zeroing a branch, the replaced input is one the model could have been given, so the figure means
the same under concat, gated and attention fusion: how much the prediction depends on *this* utterance's
audio (or text) rather than on some utterance's. A context model's window turns get their partners' inputs
too (the modality is replaced throughout the window). Per utterance: the drop in the probability of the
class predicted with the true inputs (``permutation_prob_drop``) and in correctness
(``permutation_correct_drop``, 1, 0 or -1); per fold, the weighted-F1 drop (overall and per emotion).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from harness.features import Features
from harness.models.data import PairData
from harness.models.fusion import EmotionModel
from harness.train.batching import predict
from harness.train.explain.sample import permutation_partners
from harness.train.metrics import compute_metrics


class PermutedFeatures:
    """A modality's features with rows read from their partners (other rows unchanged)."""

    def __init__(self, features: Features, partner: np.ndarray):
        self.features, self.partner = features, partner
        self.spec = features.spec

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, row: int) -> Any:
        return self.features[int(self.partner[row])]

    def lengths(self) -> np.ndarray:
        return self.features.lengths()[self.partner]


@dataclass
class Reliance:
    f1_drop: dict[str, float]
    emotion_f1_drop: dict[str, float]
    per_utterance: list[tuple[int, str, str, float]]  # (row, modality, metric, value)


def permutation_reliance(
    model: EmotionModel, data: PairData, rows: np.ndarray, device: torch.device, batch_size: int
) -> Reliance:
    """Per-utterance and per-fold reliance on each modality of a fused model (nothing for a unimodal one)."""
    out = Reliance({}, {}, [])
    if len(model.modalities) < 2 or len(rows) < 2:
        return out
    ids = data.manifest.utterance_id.to_numpy()[rows]
    partner = np.arange(len(data.manifest))
    partner[rows] = rows[permutation_partners(list(ids))]
    labels = data.labels[rows]
    full = predict(model, data, rows, device, batch_size)
    predicted = full.argmax(1)
    full_metrics = compute_metrics(labels, predicted, data.classes)
    for m in model.modalities:
        features = dict(data.features) | {m: {r: PermutedFeatures(f, partner) for r, f in data.features[m].items()}}
        permuted = predict(model, replace(data, features=features), rows, device, batch_size)  # type: ignore[arg-type]
        metrics = compute_metrics(labels, permuted.argmax(1), data.classes)
        out.f1_drop[m] = full_metrics.weighted_f1 - metrics.weighted_f1
        for e in data.classes:
            out.emotion_f1_drop[f"{m}.{e}"] = full_metrics.per_emotion_f1[e] - metrics.per_emotion_f1[e]
        at = np.arange(len(rows))
        prob_drop = full[at, predicted] - permuted[at, predicted]
        correct_drop = (predicted == labels).astype(float) - (permuted.argmax(1) == labels).astype(float)
        for i, row in enumerate(rows):
            out.per_utterance.append((int(row), m, "permutation_prob_drop", float(prob_drop[i])))
            out.per_utterance.append((int(row), m, "permutation_correct_drop", float(correct_drop[i])))
    return out
