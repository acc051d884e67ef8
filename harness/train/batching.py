"""Batching and prediction helpers shared by training, explanation and benchmarks.

Two ways to feed a model:

* per step: ``model.collate`` pads the batch's rows on the CPU and ``to_device`` copies them, at every
  training step and every validation batch (context models, and ``bucket_size: 0``);
* ``ResidentBuckets``: a fold's rows are sorted by length, cut into buckets of about ``bucket_size``
  utterances, and each bucket is collated once and moved to the trial's device when the fold starts. A
  training batch is then a few rows of one bucket, taken by indexing tensors already on the device: no
  padding loop, no host-to-device copy per step, and one tensor shape per bucket (what lets
  ``torch.backends.cudnn.benchmark`` tune each convolution once instead of at every new length).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def bucket_rows(bucket_size: int, batch_size: int) -> int:
    """Utterances per bucket: ``bucket_size`` rounded up to whole batches, so that every bucket but the
    last yields only full batches (the step count stays ceil(n / batch_size), as the schedule expects)."""
    return max(1, math.ceil(bucket_size / batch_size)) * batch_size


MIN_BUCKETS = 16  # a small fold (the demo's) still gets several buckets: one bucket pads to its longest row


def length_buckets(rows: np.ndarray, lengths: np.ndarray, bucket_size: int, batch_size: int) -> list[np.ndarray]:
    """``rows`` sorted by ``lengths`` (stable) and cut into buckets of consecutive rows: ``bucket_size``, but
    at most 1/``MIN_BUCKETS`` of the rows, rounded up to whole batches (``bucket_rows``)."""
    order = np.asarray(rows)[np.argsort(lengths[rows], kind="stable")]
    size = min(bucket_size, math.ceil(len(order) / MIN_BUCKETS))
    return batches(order, bucket_rows(max(size, 1), batch_size))


def padding_share(groups: list[np.ndarray], lengths: np.ndarray) -> float:
    """Padded steps per real step when each group is padded to its longest row."""
    real = sum(int(lengths[g].sum()) for g in groups)
    padded = sum(int(lengths[g].max()) * len(g) for g in groups if len(g))
    return padded / real - 1.0 if real else 0.0


@dataclass
class Bucket:
    rows: np.ndarray  # manifest rows, shortest first
    inputs: dict  # model.collate(features, rows) on the device; every tensor's first dimension follows rows
    labels: torch.Tensor  # [len(rows)] class indices on the device


class ResidentBuckets:
    """A fold's rows collated once, in length-sorted buckets, on the trial's device.

    Rows are sorted by ``model.input_lengths`` (all the inputs the model reads) and cut into buckets of
    ``bucket_rows(bucket_size, batch_size)`` consecutive rows, each padded to its longest row. The
    buckets stay fixed for the fold; every epoch shuffles the rows inside each bucket, cuts them into
    batches and shuffles the batches (the sorted-bucket sampling of ESPnet and Lhotse). Smaller buckets
    pad less and regroup less; the padding of a bucket is computed on its longest row, so every batch of
    a bucket has one shape. The models never read padding (masked BiLSTMs, masked pooling), so a batch
    scores the same as when collated alone (tested).

    Memory: the fold's features (training or validation rows) sit on the device, padded: about the cache
    folder's size for those rows plus the padding (``padding_share``).
    """

    def __init__(
        self,
        model: EmotionModel,
        data: PairData,
        rows: np.ndarray,
        bucket_size: int,
        batch_size: int,
        device: torch.device,
    ):
        if model.context is not None:
            raise ValueError("context models collate whole dialogue windows per batch; use dialog_batches")
        self.batch_size = batch_size
        lengths = model.input_lengths(data.features)
        self.buckets = [
            Bucket(
                chunk,
                to_device(model.collate(data.features, chunk), device),
                torch.as_tensor(data.labels[chunk], device=device),
            )
            for chunk in length_buckets(rows, lengths, bucket_size, batch_size)
        ]
        self.padding_share = padding_share([b.rows for b in self.buckets], lengths)

    def __len__(self) -> int:
        return sum(len(b.rows) for b in self.buckets)

    def epoch(self, rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
        """This epoch's batches as (bucket index, positions in the bucket), shuffled; each row once."""
        out = [
            (i, chunk)
            for i, bucket in enumerate(self.buckets)
            for chunk in batches(rng.permutation(len(bucket.rows)), self.batch_size)
        ]
        return [out[i] for i in rng.permutation(len(out))]

    def epoch_indices(self, rng: np.random.Generator) -> list[tuple[int, torch.Tensor]]:
        """``epoch`` with each batch's positions already on the device: one host-to-device copy per epoch,
        from pinned memory and non-blocking on a GPU, so that no training step waits for the device (a
        copy from pageable memory, as ``torch.as_tensor(positions, device=...)`` makes, synchronises)."""
        picks = self.epoch(rng)
        if not picks:
            return []
        flat = torch.from_numpy(np.concatenate([positions for _, positions in picks]).astype(np.int64))
        device = self.buckets[0].labels.device
        if device.type == "cuda":
            flat = flat.pin_memory()
        flat = flat.to(device, non_blocking=True)
        return [(b, index) for (b, _), index in zip(picks, flat.split([len(p) for _, p in picks]), strict=True)]

    def take(self, bucket: int, positions: np.ndarray | torch.Tensor | slice) -> tuple[dict, torch.Tensor]:
        """The inputs and labels of ``positions`` of one bucket: device indices (``epoch_indices``), a
        slice (no copy at all), or host positions (copied now: for tests and tools, not a training step)."""
        b = self.buckets[bucket]
        index = torch.as_tensor(positions, device=b.labels.device) if isinstance(positions, np.ndarray) else positions
        return _index(b.inputs, index), b.labels[index]

    def rows_of(self, bucket: int, positions: np.ndarray) -> np.ndarray:
        return self.buckets[bucket].rows[positions]

    @torch.no_grad()
    def predict(self, model: EmotionModel, rows: np.ndarray) -> np.ndarray:
        """Class probabilities [len(rows), classes] in the order of ``rows`` (which must be this store's
        rows), batches of ``batch_size`` in length order as ``predict`` forms them."""
        model.eval()
        probs, held = [], []
        for i, bucket in enumerate(self.buckets):
            for chunk in batches(np.arange(len(bucket.rows)), self.batch_size):
                inputs, _ = self.take(i, slice(int(chunk[0]), int(chunk[-1]) + 1))  # consecutive rows: a view
                probs.append(torch.softmax(model(inputs).float(), -1))
                held.append(bucket.rows[chunk])
        out = np.empty((len(rows), model.n_classes), dtype=np.float32)
        if probs:
            where = {int(r): i for i, r in enumerate(rows)}
            out[[where[int(r)] for r in np.concatenate(held)]] = torch.cat(probs).cpu().numpy()
        return out


def _index(batch: dict, index: torch.Tensor | slice) -> dict:
    return {k: _index(v, index) if isinstance(v, dict) else v[index] for k, v in batch.items()}


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
