"""harness.train.batching: every training row once per epoch, in at most ceil(n / size) + 1 batches (the
step count the learning-rate schedule is built for)."""

from __future__ import annotations

import math

import numpy as np

from harness.corpus.dialogs import DialogTurns
from harness.train.batching import dialog_batches, length_grouped_batches


def test_training_batches_cover_each_row_once_within_the_scheduled_steps(demo_manifest):
    turns = DialogTurns.from_manifest(demo_manifest)
    lengths = demo_manifest["duration"].to_numpy()
    for seed in range(20):
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(demo_manifest), size=int(rng.integers(20, len(demo_manifest))), replace=False))
        size = int(rng.integers(2, 9))
        for made in (
            length_grouped_batches(rows, lengths, size, rng, pool_batches=3),
            dialog_batches(rows, turns, size, rng),
        ):
            assert sorted(np.concatenate(made).tolist()) == rows.tolist()
            assert len(made) <= math.ceil(len(rows) / size) + 1
