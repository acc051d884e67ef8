"""Fused seeds (issue 26; harness.models.fused, harness.train.fused): K seeds trained as one model follow
exactly the separately trained models. Float64, dropout off: parameters equal to 1e-10 after several steps
of each member's own batches (different buckets, so padded to one shape) with class weights and clipping;
float32 end to end (``train_members`` against ``train_fold``): evaluation outputs equal to 1e-5; each
member starts from its own seed's weights and draws its own seed's batch order."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from transformers import get_cosine_schedule_with_warmup

from harness.config import TrialConfig
from harness.corpus.folds import make_fold
from harness.features import FeatureCache
from harness.models.data import load_pair_data
from harness.models.fused import FusedEmotionModel, why_not_fused
from harness.models.fusion import build_pair_model
from harness.models.pairs import get_pair
from harness.train.batching import ResidentBuckets, predict
from harness.train.fit import make_optimizer, optimise, seed_everything, train_fold
from harness.train.fused import build_members, class_weights, fused_step, stack_members, train_members

CPU = torch.device("cpu")
TINY = {
    "batch_size": 8,
    "fusion_dim": 16,
    "audio.channels": 8,
    "audio.hidden": 8,
    "text.embed_dim": 8,
    "text.hidden": 8,
    "dropout": 0.0,
    "grad_clip": 0.05,  # small enough that clipping acts in most steps, per member
}
SEEDS = (11, 12, 13)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, demo_manifest):
    cache = FeatureCache(tmp_path_factory.mktemp("features"))

    def load(name: str, **values):
        pair = get_pair(name)
        cfgs = [TrialConfig.from_flat(TINY | values | {"seed": s}) for s in SEEDS]
        return pair, cfgs, load_pair_data(pair, cfgs[0], demo_manifest, cache, progress=False)

    return load


def _double(batch: dict) -> dict:
    return {
        k: _double(v) if isinstance(v, dict) else (v.double() if v.is_floating_point() else v) for k, v in batch.items()
    }


@pytest.mark.parametrize(("name", "fusion"), [("cnnbilstm_bilstm", "gated"), ("bilstm", "concat")])
def test_fused_seeds_equal_separate_models_in_float64(loaded, demo_manifest, name, fusion):
    pair, cfgs, data = loaded(name, fusion=fusion, epochs=4)
    fold = make_fold(demo_manifest, 2)
    models = [m.double() for m in build_members(cfgs, pair, data, fold)]
    separate = [copy.deepcopy(m) for m in models]
    start = [{k: v.clone() for k, v in m.state_dict().items()} for m in models]
    fused = FusedEmotionModel(models)
    store = ResidentBuckets(models[0], data, fold.train, 24, cfgs[0].batch_size, CPU)
    for bucket in store.buckets:
        bucket.inputs = _double(bucket.inputs)
    weights = class_weights(cfgs[0], data, fold, CPU)
    assert weights is not None
    weights = weights.double()
    criterion = nn.CrossEntropyLoss(weight=weights)
    steps = 5
    optimizers = [make_optimizer(m, cfgs[0]) for m in separate]
    schedulers = [get_cosine_schedule_with_warmup(o, 2, 20) for o in optimizers]
    fused_optimizer = torch.optim.AdamW(fused.parameters(), lr=cfgs[0].lr, weight_decay=cfgs[0].weight_decay)
    fused_scheduler = get_cosine_schedule_with_warmup(fused_optimizer, 2, 20)
    picks = [store.epoch_indices(np.random.default_rng(c.seed))[:steps] for c in cfgs]
    autocast = torch.autocast("cpu", enabled=False)
    shapes = set()
    for step in zip(*picks, strict=True):
        taken = [store.take(b, index) for b, index in step]
        shapes.add(tuple(next(iter(next(iter(t[0].values())).values())).shape for t in taken))
        for model, optimizer, scheduler, (inputs, labels) in zip(separate, optimizers, schedulers, taken, strict=True):
            optimise(model, inputs, labels, optimizer, criterion, autocast, cfgs[0].grad_clip)
            scheduler.step()
        batch, labels, valid = stack_members([t[0] for t in taken], [t[1] for t in taken])
        fused_step(fused, batch, labels, valid, fused_optimizer, weights, autocast, cfgs[0].grad_clip)
        fused_scheduler.step()
    assert len(shapes) > 1  # members read batches of different shapes: padding is exercised
    for k, model in enumerate(separate):
        state, member = model.state_dict(), fused.member_state(k)
        assert member.keys() == state.keys()
        moved = max((state[n] - start[k][n]).abs().max().item() for n in state)
        assert moved > 1e-3  # the steps changed the weights
        worst = max((member[n] - state[n]).abs().max().item() for n in state)
        assert worst <= 1e-10, f"member {k}: {worst:.2e}"


def test_fused_seeds_start_from_their_own_seeds_weights(loaded, demo_manifest):
    pair, cfgs, data = loaded("cnnbilstm_bilstm")
    fold = make_fold(demo_manifest, 2)
    members = build_members(cfgs, pair, data, fold)
    fused = FusedEmotionModel(members)
    for k, cfg in enumerate(cfgs):
        seed_everything(cfg.seed)
        alone = build_pair_model(pair, cfg, data, fold.train).state_dict()
        assert all(torch.equal(fused.member_state(k)[n], alone[n]) for n in alone)
    first, second = fused.member_state(0), fused.member_state(1)
    assert not torch.equal(first["head.4.weight"], second["head.4.weight"])


@pytest.mark.slow
def test_fused_seeds_train_as_separate_train_fold_runs_in_float32(loaded, demo_manifest):
    pair, cfgs, data = loaded("cnnbilstm_bilstm", epochs=2, patience=1)
    cfgs = cfgs[:2]
    fold = make_fold(demo_manifest, 3)
    members = train_members(cfgs, pair, data, fold, lambda _: None, CPU, build_members(cfgs, pair, data, fold))
    for cfg, member in zip(cfgs, members, strict=True):
        alone = train_fold(cfg, pair, data, fold, lambda _: None, CPU)
        assert (member.best_epoch, member.epochs_run, member.stopped) == (
            alone.best_epoch,
            alone.epochs_run,
            alone.stopped,
        )
        assert [h.val_weighted_f1 for h in member.history] == [h.val_weighted_f1 for h in alone.history]
        ours = predict(member.model, data, fold.test, CPU, cfg.batch_size)
        theirs = predict(alone.model, data, fold.test, CPU, cfg.batch_size)
        assert np.abs(ours - theirs).max() <= 1e-5


def test_fused_seeds_refuse_what_does_not_fuse_with_a_reason(loaded, demo_manifest):
    pair, cfgs, data = loaded("cnnbilstm_bilstm", fusion="attention")
    fold = make_fold(demo_manifest, 2)
    reason = why_not_fused(build_members(cfgs, pair, data, fold))
    assert reason is not None and "attention" in reason
