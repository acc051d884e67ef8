"""Every registered pretrained encoder variant, on its tiny random-init checkpoint (built offline): fine-tuning
the top k layers trains those and only those, and batched layer-mean extraction is exact where it batches.

Tiny checkpoints keep every behaviour-changing value of the real config (LayerDrop 0.1, SpecAugment masking,
dropouts, norm type; ``tests/unit/test_registry.py`` checks it), so what passes here does not crash on the
real checkpoints (issue 11: a layer skipped by LayerDrop left the layer-weighted sum one hidden state short).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness.config import TrialConfig
from harness.features import FeatureCache
from harness.models.data import PairData, load_pair_data
from harness.models.encoders.pretrained import EXTRACTION_BATCH, LayerMeanExtractor, PretrainedEncoder
from harness.models.encoders.registry import ENCODERS
from harness.models.fusion import EmotionModel
from harness.models.pairs import PAIRS, PairSpec
from harness.models.tiny import ensure_checkpoint
from harness.train.explain import explain_fold, explained_input
from harness.train.fit import autocast_for, make_optimizer, train_step

PRETRAINED = [name for name, v in ENCODERS.items() if v.pretrained]
CPU = torch.device("cpu")
# Variants whose cached-equals-live check is not already run by tests/conformance/test_pairs.py (which
# checks the unimodal registered pairs).
UNCOVERED = [n for n in PRETRAINED if not any(not p.is_fused and n in p.encoders.values() for p in PAIRS.values())]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_encoders")
    return lambda name: str(ensure_checkpoint(ENCODERS[name], "tiny", folder))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return FeatureCache(tmp_path_factory.mktemp("encoder_features"))


def unimodal(name: str) -> PairSpec:
    """An unregistered single-encoder pair over variant ``name`` (no search space needed here)."""
    modality = ENCODERS[name].modality
    return PairSpec(
        f"only_{name}",
        audio=name if modality == "audio" else None,
        text=name if modality == "text" else None,
        space="unused.yaml",
    )


def config(name: str, models, **values) -> TrialConfig:
    modality = ENCODERS[name].modality
    return TrialConfig.from_flat(
        {f"{modality}.model": models(name), "batch_size": 4, "fusion_dim": 16, "lr": 1e-2, "encoder_lr": 1e-2} | values
    )


def build(name: str, cfg: TrialConfig, data: PairData) -> tuple[EmotionModel, PretrainedEncoder]:
    variant = ENCODERS[name]
    encoder = variant.build(cfg, data.features[variant.modality], np.arange(len(data.manifest)))
    return EmotionModel({variant.modality: encoder}, cfg), encoder


def layer_list(encoder: PretrainedEncoder) -> nn.ModuleList | None:
    return getattr(encoder.backbone.encoder, "layers", getattr(encoder.backbone.encoder, "layer", None))


@pytest.mark.parametrize(
    "name, k", [(n, 1) for n in PRETRAINED] + [pytest.param(n, 2, marks=pytest.mark.slow) for n in PRETRAINED]
)
def test_finetuning_trains_the_top_layers_only(name, k, models, cache, demo_manifest):
    cfg = config(name, models, **{f"{ENCODERS[name].modality}.finetune_layers": k})
    data = load_pair_data(unimodal(name), cfg, demo_manifest, cache, progress=False)
    model, encoder = build(name, cfg, data)
    n_layers = encoder.backbone.config.num_hidden_layers
    assert n_layers >= k
    before = {n: p.detach().clone() for n, p in encoder.backbone.named_parameters()}
    tuned = {id(p) for module in encoder.tuned for p in module.parameters()}

    model.train()
    assert not encoder.backbone.training and all(m.training for m in encoder.tuned)
    optimizer = make_optimizer(model, cfg)
    criterion = nn.CrossEntropyLoss()
    rows = np.arange(12)
    for step in range(3):  # a few optimiser steps in training mode: LayerDrop/masking would crash or skip here
        train_step(model, data, rows[4 * step : 4 * step + 4], optimizer, criterion, CPU, autocast_for(cfg, CPU), 1.0)

    # every hidden state is there, pass after pass (LayerDrop 0.1 of the real config never skips a layer)
    batch = model.collate(data.features, np.array([0, 5, 9]))[encoder.modality]
    with torch.no_grad():
        passes = [encoder.hidden_states(encoder.embed(batch))[0] for _ in range(8)]
    assert all(len(states) == n_layers + 1 for states in passes)
    # the frozen part runs in eval mode even in training mode: no dropout, no SpecAugment masking, so two
    # passes give the same states up to the input of the first fine-tuned layer
    layers = layer_list(encoder)
    frozen_states = n_layers - k + 1 if layers is not None else 0  # ALBERT: its one shared layer is all or none
    for i in range(frozen_states):
        torch.testing.assert_close(passes[0][i], passes[1][i], rtol=0, atol=0)
    if layers is None:
        assert not encoder.backbone.embeddings.training
    dropout = max(getattr(encoder.backbone.config, key, 0.0) for key in ("hidden_dropout", "hidden_dropout_prob"))
    if dropout > 0:  # while the fine-tuned layers do run their dropout
        assert not torch.equal(passes[0][-1], passes[1][-1])

    changed = {n for n, p in encoder.backbone.named_parameters() if not torch.equal(p.detach(), before[n])}
    expected = {n for n, p in encoder.backbone.named_parameters() if id(p) in tuned}
    assert changed == expected, (
        f"{name}: changed but frozen {sorted(changed - expected)[:5]}; "
        f"tuned but unchanged {sorted(expected - changed)[:5]}"
    )
    assert model.pretrained_parameters() and all(id(p) in tuned for p in model.pretrained_parameters())


@pytest.mark.parametrize("name", PRETRAINED)
def test_batched_layer_mean_extraction_is_exact_where_it_batches(name, models, cache, demo_manifest):
    """``LayerMeanExtractor`` batches inputs of different lengths only where padding cannot reach real
    positions (attention masks, per-position norms: text models, layer-norm speech models). Speech models
    whose feature encoder uses group norm over time (wav2vec2-base, HuBERT-base, WavLM-base) normalise
    over the padded length and were pre-trained without an attention mask, and data2vec-audio's five stacked
    positional convolutions carry padded frames into the last real ones (this test found it: batched means
    were off by up to 0.05): those extract one utterance at a time, exact by construction, and the test
    asserts that they do."""
    variant = ENCODERS[name]
    cfg = config(name, models)
    spec = variant.feature_specs(cfg)["layers"]
    encoder = variant.cls.from_spec(variant, spec)
    live_spec = variant.feature_specs(cfg)[encoder.live_role]
    live = cache.get(live_spec, demo_manifest, variant.compute(live_spec), progress=False)
    lengths = live.lengths()
    rows = np.argsort(lengths)[np.linspace(0, len(lengths) - 1, 8).astype(int)]  # 8 distinct lengths, short to long
    items = [live[r] for r in rows]
    assert len({len(i) for i in items}) > 4
    extractor = LayerMeanExtractor(encoder, CPU)
    group_norm = getattr(encoder.backbone.config, "feat_extract_norm", "layer") == "group"
    pos_conv = getattr(encoder.backbone.encoder, "pos_conv_embed", None)
    stacked_pos_conv = len(getattr(pos_conv, "layers", ())) > 1
    assert extractor.batch_size == (1 if group_norm or stacked_pos_conv else EXTRACTION_BATCH)
    batched = np.stack(list(extractor.run(items)))
    alone = np.stack([extractor.means([item])[0] for item in items])
    assert batched.shape == (8, encoder.backbone.config.num_hidden_layers + 1, encoder.backbone.config.hidden_size)
    # stored as float16: equal up to one rounding step of the larger value
    np.testing.assert_allclose(batched.astype(np.float32), alone.astype(np.float32), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("name", UNCOVERED)
def test_cached_frozen_features_match_the_live_encoder(name, models, cache, demo_manifest):
    variant = ENCODERS[name]
    cfg = config(name, models)
    manifest = demo_manifest.iloc[::10]  # 27 utterances: enough to compare, cheap to extract one at a time
    data = load_pair_data(unimodal(name), cfg, manifest, cache, progress=False)
    _, encoder = build(name, cfg, data)
    encoder.eval()
    rows = np.array([3, 11, 20])
    features = data.features[variant.modality]
    with torch.no_grad():
        cached = encoder.layer_means(encoder.embed(encoder.collate(features, rows, live=False)))
        live = torch.cat(
            [
                encoder.layer_means(encoder.embed(encoder.collate(features, rows[i : i + 1], live=True)))
                for i in range(len(rows))
            ]
        )
    torch.testing.assert_close(cached, live, atol=2e-2, rtol=1e-2)  # the cache stores float16


@pytest.mark.parametrize("name", PRETRAINED)
def test_a_frozen_encoder_is_explained_over_its_hidden_states_exactly(name, models, cache, demo_manifest):
    """A frozen branch is attributed over every layer's hidden state at every position (one backbone pass per
    utterance): the input it pools to is exactly the encoder's layer means, and Integrated Gradients run on
    those pooled means and spread back over the positions equals Integrated Gradients over the full
    [positions, layers x hidden] tensor (the pooling is linear), at a fraction of the cost."""
    cfg = config(name, models)
    data = load_pair_data(unimodal(name), cfg, demo_manifest.iloc[::10], cache, progress=False)
    model, encoder = build(name, cfg, data)
    model.eval()
    batch = model.collate(data.features, np.array([2]), live=True)
    embedded = model.embed(batch)[encoder.modality]
    explained = explained_input(encoder, embedded, max_positions=0)
    layers, hidden = encoder.backbone.config.num_hidden_layers + 1, encoder.backbone.config.hidden_size
    assert explained.x.shape[-1] == layers * hidden and explained.x.shape[1] == explained.mask.shape[1]
    with torch.no_grad():
        pooled = explained.pool(explained.x)
        torch.testing.assert_close(pooled, encoder.layer_means(embedded), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            model.forward_embedded({encoder.modality: explained.embed(pooled)}), model(batch), rtol=1e-4, atol=1e-5
        )

    def probability(x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model.forward_embedded({encoder.modality: explained.embed(x)}), -1)

    from captum.attr import IntegratedGradients

    full = IntegratedGradients(lambda x: probability(explained.pool(x))).attribute(
        explained.x, baselines=torch.zeros_like(explained.x), target=0, n_steps=8
    )
    gradient = IntegratedGradients(probability, multiply_by_inputs=False).attribute(
        pooled, baselines=torch.zeros_like(pooled), target=0, n_steps=8
    )
    np.testing.assert_allclose(explained.scores(gradient), full.sum(-1)[0].numpy(), rtol=1e-3, atol=1e-7)


def test_an_explanation_budget_bounds_the_explained_utterances(models, cache, demo_manifest):
    name = "wav2vec2"
    cfg = config(name, models, explain_samples=3, explain_steps=4)
    data = load_pair_data(unimodal(name), cfg, demo_manifest.iloc[::10], cache, progress=False)
    model, _ = build(name, cfg, data)
    rows = np.arange(len(data.manifest))
    assert explain_fold(model, data, rows, cfg, CPU).n_samples == 3
    bounded = explain_fold(model, data, rows, cfg, CPU, budget_s=0.0)
    assert bounded.n_samples == 1 and np.isfinite(bounded.faithfulness)  # at least one, whatever the budget
    spent = explain_fold(model, data, rows, cfg, CPU, budget_s=0.0, min_samples=0)  # a later fold, budget spent
    assert spent.n_samples == 0 and np.isnan(spent.faithfulness) and spent.ablation_f1_drop == bounded.ablation_f1_drop
