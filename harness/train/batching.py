"""Batching and prediction helpers shared by training, explanation and benchmarks."""

from __future__ import annotations

import numpy as np
import torch

from harness.corpus.dialogs import DialogTurns
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


def dialog_batches(rows: np.ndarray, dialogs: DialogTurns, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled training batches of consecutive turns, for context models.

    A context model encodes the union of its targets' windows; for consecutive turns of a dialog that is
    little more than the targets themselves, where a batch of unrelated turns would encode every window
    in full ((past + 1 + future) times the work). Dialogs are shuffled, their turns kept in time order,
    cut at a random offset into batches, and the batches shuffled.
    """
    rank = np.empty(len(dialogs.order), dtype=np.int64)
    firsts = np.unique(dialogs.first[rows])
    rank[firsts] = rng.permutation(len(firsts))
    ordered = rows[np.lexsort((dialogs.position[rows], rank[dialogs.first[rows]]))]
    offset = int(rng.integers(size))
    cut = ([ordered[:offset]] if offset else []) + batches(ordered[offset:], size)
    return [cut[i] for i in rng.permutation(len(cut))]


@torch.no_grad()
def predict(
    model: EmotionModel,
    data: PairData,
    rows: np.ndarray,
    device: torch.device,
    batch_size: int,
    drop: str | None = None,
) -> np.ndarray:
    """Class probabilities [len(rows), classes], in the order of ``rows``; ``drop`` ablates one modality.

    Batches are formed in length order (less padding to compute), or for a context model in dialog and
    time order (overlapping windows, each turn encoded once per batch); scores do not depend on batch-mates.
    """
    model.eval()
    key = data.dialogs.position[rows] if model.context is not None else model.input_lengths(data.features)[rows]
    order = np.argsort(key, kind="stable")
    probs = []
    for chunk in batches(rows[order], batch_size):
        logits = model(to_device(model.collate(data.features, chunk), device), drop=drop)
        probs.append(torch.softmax(logits.float(), -1).cpu().numpy())
    out = np.empty((len(rows), model.n_classes), dtype=np.float32)
    if probs:
        out[order] = np.concatenate(probs)
    return out
