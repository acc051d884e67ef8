"""Fold-resident length buckets (harness.train.batching.ResidentBuckets): every training row once per
epoch within the scheduled steps, less padding than per-step length grouping on IEMOCAP-like lengths, the
same predictions as per-step collation, and a fold trained through them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.config import ConfigError, TrialConfig
from harness.corpus.folds import make_fold
from harness.features import FeatureCache
from harness.models.data import load_pair_data
from harness.models.fusion import build_pair_model
from harness.models.pairs import get_pair
from harness.models.tiny import tiny_overrides
from harness.train.batching import (
    ResidentBuckets,
    batches,
    bucket_rows,
    length_buckets,
    length_grouped_batches,
    padding_share,
    predict,
)
from harness.train.fit import fit_fold

CPU = torch.device("cpu")


def iemocap_like_lengths(n: int, seed: int = 0) -> np.ndarray:
    """Frames at a 10 ms hop of log-normal durations with IEMOCAP's median 3.6 s, clipped to 0.6-15 s."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(math.log(360), 0.67, n), 60, 1500).astype(np.int64)


def test_bucket_rows_are_whole_batches():
    assert bucket_rows(128, 32) == 128
    assert bucket_rows(128, 48) == 144
    assert bucket_rows(16, 64) == 64  # never smaller than one batch
    assert bucket_rows(1, 1) == 1


def test_buckets_cover_each_row_once_per_epoch_within_the_scheduled_steps():
    lengths = iemocap_like_lengths(700)
    for seed in range(10):
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(700, size=int(rng.integers(50, 700)), replace=False))
        batch, bucket = int(rng.integers(2, 70)), int(rng.integers(1, 300))
        buckets = length_buckets(rows, lengths, bucket, batch)
        assert sorted(np.concatenate(buckets).tolist()) == rows.tolist()
        assert all(lengths[a].max() <= lengths[b].min() for a, b in zip(buckets, buckets[1:]))  # sorted
        steps = sum(len(batches(b, batch)) for b in buckets)
        assert steps == math.ceil(len(rows) / batch)  # the learning-rate schedule's count, exactly


def test_small_buckets_pad_less_than_per_step_length_grouping_and_large_ones_more():
    lengths = iemocap_like_lengths(4400)  # a training fold at IEMOCAP size
    rows = np.arange(4400)
    grouped = padding_share(length_grouped_batches(rows, lengths, 32, np.random.default_rng(1)), lengths)
    shuffled = padding_share(batches(np.random.default_rng(1).permutation(rows), 32), lengths)
    small = padding_share(length_buckets(rows, lengths, 128, 32), lengths)
    large = padding_share(length_buckets(rows, lengths, 1024, 32), lengths)
    assert small < grouped < shuffled
    assert small < 0.07 and shuffled > 0.5
    assert large > grouped  # the trade-off the option sets: one shape per bucket costs padding as buckets grow
    # a small fold (the demo's) still gets several buckets, so it pads no more than per-step grouping
    few = iemocap_like_lengths(200, seed=3)
    some = np.arange(200)
    buckets = length_buckets(some, few, 128, 16)
    assert len(buckets) == 13  # a sixteenth of 200 rows, 13, rounded up to one batch of 16
    assert padding_share(buckets, few) <= padding_share(
        length_grouped_batches(some, few, 16, np.random.default_rng(1)), few
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory, demo_manifest):
    folder, cache = tmp_path_factory.mktemp("tiny"), FeatureCache(tmp_path_factory.mktemp("features"))

    def make(name: str, **values):
        pair = get_pair(name)
        base = {"epochs": 1, "batch_size": 8, "fusion_dim": 16, "audio.channels": 8, "audio.hidden": 8}
        cfg = TrialConfig.from_flat(
            tiny_overrides(pair.variants, folder) | base | {"text.embed_dim": 8, "text.hidden": 8} | values
        )
        return pair, cfg, load_pair_data(pair, cfg, demo_manifest, cache, progress=False)

    return make


def same_inputs_up_to_padding(taken: dict, alone: dict) -> None:
    """Each tensor of a batch taken from a bucket holds the per-step collation of the same rows, plus
    trailing padding (the bucket's longest row sets its length): zeros, or False in a mask."""
    assert taken.keys() == alone.keys()
    for key, big in taken.items():
        small = alone[key]
        assert big.shape[0] == small.shape[0] and big.ndim == small.ndim, key
        torch.testing.assert_close(big[tuple(slice(0, n) for n in small.shape)], small, rtol=0, atol=0)
        if key == "mask" and big.shape[1] > small.shape[1]:
            assert not big[:, small.shape[1] :].any()


@pytest.mark.parametrize(
    ("name", "values", "padding_invariant"),
    [
        ("cnnbilstm_bilstm", {}, True),
        ("wav2vec_albert", {}, True),  # frozen: cached layer means, no time axis
        # raw waveform chunks with lengths; wav2vec2-base's group norm sees padding (the known exception of
        # tests/conformance/test_pairs.py), so only the inputs are compared
        ("wav2vec", {"audio.finetune_layers": 1}, False),
        ("roberta", {"text.finetune_layers": 1}, True),  # token ids padded with RoBERTa's pad id (1, not 0)
    ],
)
def test_resident_buckets_hold_the_per_step_inputs_and_predict_the_same(
    setup, demo_manifest, name, values, padding_invariant
):
    pair, cfg, data = setup(name, **values)
    fold = make_fold(demo_manifest, 3)
    torch.manual_seed(0)
    model = build_pair_model(pair, cfg, data, fold.train).eval()
    store = ResidentBuckets(model, data, fold.validation, 24, cfg.batch_size, CPU)
    assert len(store) == len(fold.validation)
    if padding_invariant:
        expected = predict(model, data, fold.validation, CPU, cfg.batch_size)
        np.testing.assert_allclose(store.predict(model, fold.validation), expected, rtol=1e-4, atol=1e-5)

    train = ResidentBuckets(model, data, fold.train, 24, cfg.batch_size, CPU)
    seen = []
    for bucket, positions in train.epoch(np.random.default_rng(0)):
        inputs, labels = train.take(bucket, positions)
        rows = train.rows_of(bucket, positions)
        assert labels.tolist() == data.labels[rows].tolist()
        seen += rows.tolist()
        alone = model.collate(data.features, rows)
        for modality in alone:
            same_inputs_up_to_padding(inputs[modality], alone[modality])
        if padding_invariant:  # a batch taken from its bucket scores as the same rows collated alone
            with torch.no_grad():
                torch.testing.assert_close(model(inputs), model(alone), rtol=1e-4, atol=1e-5)
        if len(seen) > 3 * cfg.batch_size:
            break


# two fold trainings with the latency step: the training-heavy lane
@pytest.mark.slow
def test_a_fold_trains_through_buckets_and_per_step_collation(setup, demo_manifest):
    fold = make_fold(demo_manifest, 2)
    for bucket_size in (0, 32):
        pair, cfg, data = setup("cnnbilstm_bilstm", epochs=2, bucket_size=bucket_size)
        reports: list[dict] = []
        record = fit_fold(cfg, pair, data, fold, reports.append).record
        assert [r["epoch"] for r in reports] == [1, 2]
        assert all(np.isfinite(r["train_loss"]) for r in reports)
        assert record.resources.train_utterances_per_s > 0
        assert record.epochs_run == 2
    assert not torch.backends.cudnn.benchmark  # only with buckets on a GPU


def test_bucket_size_is_checked():
    with pytest.raises(ConfigError, match="bucket_size = -1 is out of range"):
        TrialConfig(bucket_size=-1)
    with pytest.raises(ConfigError, match="group_by_length: false needs bucket_size: 0"):
        TrialConfig(group_by_length=False)
    assert TrialConfig(group_by_length=False, bucket_size=0).bucket_size == 0
