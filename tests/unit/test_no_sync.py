"""No training step waits for the device (issue 26): a fold-resident epoch copies its batch indices to the
device once, non-blocking (from pinned memory on a GPU), and never builds an index from host memory per
step. On CPU a patched copy counter checks it; on a GPU an epoch of steps runs under
``torch.cuda.set_sync_debug_mode("error")``, which raises at any synchronising call."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness.config import TrialConfig
from harness.corpus.folds import make_fold
from harness.features import FeatureCache
from harness.models.data import load_pair_data
from harness.models.fusion import build_pair_model
from harness.models.pairs import get_pair
from harness.train import batching
from harness.train.batching import ResidentBuckets
from harness.train.fit import autocast_for, make_optimizer, optimise

SMALL = {"epochs": 1, "batch_size": 8, "fusion_dim": 16, "audio.channels": 8, "audio.hidden": 8}
SMALL_TEXT = {"text.embed_dim": 8, "text.hidden": 8}


@pytest.fixture(scope="module")
def small_pair(tmp_path_factory, demo_manifest):
    pair = get_pair("cnnbilstm_bilstm")
    cfg = TrialConfig.from_flat(SMALL | SMALL_TEXT)
    data = load_pair_data(pair, cfg, demo_manifest, FeatureCache(tmp_path_factory.mktemp("features")), progress=False)
    return pair, cfg, data, make_fold(demo_manifest, 2)


def test_an_epoch_copies_its_indices_once_and_never_per_step(small_pair, monkeypatch):
    pair, cfg, data, fold = small_pair
    model = build_pair_model(pair, cfg, data, fold.train)
    store = ResidentBuckets(model, data, fold.train, 24, cfg.batch_size, torch.device("cpu"))
    copies: list[dict] = []
    host_indices: list[object] = []
    to = torch.Tensor.to

    def counted_to(self: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        copies.append(dict(kwargs))
        return to(self, *args, **kwargs)

    def counted_as_tensor(*args: object, **kwargs: object) -> torch.Tensor:
        host_indices.append(args[0])
        return torch.as_tensor(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch.Tensor, "to", counted_to)
    monkeypatch.setattr(batching.torch, "as_tensor", counted_as_tensor, raising=True)
    steps = 0
    for bucket, index in store.epoch_indices(np.random.default_rng(0)):
        store.take(bucket, index)
        steps += 1
    monkeypatch.undo()
    assert steps > 3
    assert host_indices == []  # no index built from host memory in a step
    assert len(copies) == 1 and copies[0].get("non_blocking") is True  # the epoch's one copy
    # the same batches as the host-side epoch with the same generator
    expected = store.epoch(np.random.default_rng(0))
    got = store.epoch_indices(np.random.default_rng(0))
    assert [(b, p.tolist()) for b, p in expected] == [(b, i.tolist()) for b, i in got]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: set_sync_debug_mode checks device waits")
def test_an_epoch_of_steps_never_synchronises_on_a_gpu(small_pair):
    pair, cfg, data, fold = small_pair
    device = torch.device("cuda")
    model = build_pair_model(pair, cfg, data, fold.train).to(device)
    store = ResidentBuckets(model, data, fold.train, 24, cfg.batch_size, device)
    optimizer, criterion = make_optimizer(model, cfg), nn.CrossEntropyLoss()
    autocast = autocast_for(cfg, device)
    optimise(model, *store.take(0, slice(0, cfg.batch_size)), optimizer, criterion, autocast, 1.0)  # warm-up
    torch.cuda.synchronize()
    rng = np.random.default_rng(0)
    losses = []
    torch.cuda.set_sync_debug_mode("error")
    try:
        for bucket, index in store.epoch_indices(rng):
            losses.append(optimise(model, *store.take(bucket, index), optimizer, criterion, autocast, 1.0))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(torch.stack(losses)).all()  # the epoch's one wait, after the steps
