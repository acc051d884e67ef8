"""Batching and prediction helpers shared by training, explanation and benchmarks."""

from __future__ import annotations

import numpy as np
import torch

from harness.corpus import EMOTIONS
from harness.models.data import PairData
from harness.models.fusion import EmotionModel


def to_device(batch: dict, device: torch.device) -> dict:
    return {
        k: to_device(v, device) if isinstance(v, dict) else v.to(device, non_blocking=True) for k, v in batch.items()
    }


def batches(rows: np.ndarray, size: int) -> list[np.ndarray]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def length_grouped_batches(
    rows: np.ndarray, lengths: np.ndarray, size: int, rng: np.random.Generator, pool_batches: int = 20
) -> list[np.ndarray]:
    """Shuffled training batches of similar-length utterances (the bucketing of SpeechBrain and ESPnet).

    Rows are shuffled, cut into pools of ``pool_batches`` batches, sorted by length inside each pool and
    batched; the batches are then shuffled. Padding (and with it wasted conv/LSTM work) shrinks, while
    every epoch still sees a different random grouping.
    """
    rows = rng.permutation(rows)
    grouped = []
    for start in range(0, len(rows), size * pool_batches):
        pool = rows[start : start + size * pool_batches]
        grouped += batches(pool[np.argsort(lengths[pool], kind="stable")], size)
    return [grouped[i] for i in rng.permutation(len(grouped))]


@torch.no_grad()
def predict(
    model: EmotionModel,
    data: PairData,
    rows: np.ndarray,
    device: torch.device,
    batch_size: int,
    drop: str | None = None,
) -> np.ndarray:
    """Class probabilities [len(rows), 6], in the order of ``rows``; ``drop`` ablates one modality.

    Batches are formed in length order (less padding to compute); scores do not depend on batch-mates.
    """
    model.eval()
    order = np.argsort(model.input_lengths(data.features)[rows], kind="stable")
    probs = []
    for chunk in batches(rows[order], batch_size):
        logits = model(to_device(model.collate(data.features, chunk), device), drop=drop)
        probs.append(torch.softmax(logits.float(), -1).cpu().numpy())
    out = np.empty((len(rows), len(EMOTIONS)), dtype=np.float32)
    if probs:
        out[order] = np.concatenate(probs)
    return out
