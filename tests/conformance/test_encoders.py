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
from harness.train.explain import explain_fold
from harness.train.explain.attribute import MIN_STEPS
from harness.train.explain.units import branch_units, training_layer_means, words
from harness.train.fit import autocast_for, make_optimizer, train_step

# The base-size encoders and one of each new family run in the fast lane; the other large variants (same
# classes, other configs) run in the slow lane: on 2 shared cores they would add minutes to it.
FAST = {
    "wav2vec2",
    "hubert",
    "wavlm",
    "data2vec_audio",
    "albert",
    "bert",
    "roberta",
    "deberta_v3",
    "whisper",
    "qwen2_5",
}
ALL_PRETRAINED = [name for name, v in ENCODERS.items() if v.pretrained]
PRETRAINED = [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in ALL_PRETRAINED]
CPU = torch.device("cpu")
# Variants whose cached-equals-live check is not already run by tests/conformance/test_pairs.py (which
# checks the unimodal registered pairs).
UNCOVERED = [
    n if n in FAST else pytest.param(n, marks=pytest.mark.slow)
    for n in ALL_PRETRAINED
    if not any(not p.is_fused and n in p.encoders.values() for p in PAIRS.values())
]


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
    return encoder.layers()


@pytest.mark.parametrize(
    "name, k",
    [(n, 1) if n in FAST else pytest.param(n, 1, marks=pytest.mark.slow) for n in ALL_PRETRAINED]
    + [pytest.param(n, 2, marks=pytest.mark.slow) for n in ALL_PRETRAINED],
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
    pos_conv = getattr(getattr(encoder.backbone, "encoder", None), "pos_conv_embed", None)
    stacked_pos_conv = len(getattr(pos_conv, "layers", ())) > 1
    assert extractor.batch_size == (1 if group_norm or stacked_pos_conv else EXTRACTION_BATCH)
    batched = np.stack(list(extractor.run(items)))
    alone = np.stack([extractor.means([item])[0] for item in items])
    assert batched.shape == (8, encoder.backbone.config.num_hidden_layers + 1, encoder.backbone.config.hidden_size)
    # stored as float16: equal up to one rounding step of the larger value
    np.testing.assert_allclose(batched.astype(np.float32), alone.astype(np.float32), rtol=2e-3, atol=2e-3)
    # and in direction, per utterance and layer, before the float16 store (the 0.9999)
    with torch.inference_mode():
        order = np.argsort([len(i) for i in items], kind="stable")
        batch = {k: v for k, v in encoder.collate_live([items[r] for r in order]).items()}
        together = encoder.layer_means(encoder.embed(batch)).double()
        one = torch.cat([encoder.layer_means(encoder.embed(encoder.collate_live([items[r]]))) for r in order]).double()
    cosine = nn.functional.cosine_similarity(together, one, dim=-1)
    assert cosine.min() >= 0.9999 or extractor.batch_size == 1, (name, cosine.min().item())


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


@pytest.mark.parametrize("level", ["end_to_end", "head_level"])
@pytest.mark.parametrize("name", PRETRAINED)
def test_an_explained_branch_reads_what_the_model_scores(name, level, models, cache, demo_manifest):
    """The explained input of a pretrained branch, end to end (input units through the frozen backbone) or
    at head level (the frozen states at every position, pooled by the head's mean), gives the scored
    prediction; its units are 100 ms bins or words, and replacing every unit gives the baseline."""
    cfg = config(name, models, explain_level=level)
    data = load_pair_data(unimodal(name), cfg, demo_manifest.iloc[::10], cache, progress=False)
    model, encoder = build(name, cfg, data)
    model.eval()
    rows = np.arange(len(data.manifest))
    m = encoder.modality
    baseline = training_layer_means(data.features[m]["layers"], rows) if level == "head_level" else None
    units = branch_units(encoder, data, 2, m, cfg, CPU, baseline)
    assert units.level == level and units.n_units >= 1
    with torch.no_grad():
        explained = model.forward_embedded({m: units.embed(units.x)})
        scored = model(model.collate(data.features, np.array([2]), live=True))
        torch.testing.assert_close(explained, scored, rtol=1e-4, atol=1e-4)
        replaced = units.with_kept(np.zeros((1, units.n_units), dtype=bool))
        torch.testing.assert_close(replaced, units.baseline)
    if m == "audio":  # 100 ms bins: 5 positions of 20 ms (waveform chunks or SSL frames) each
        assert list(np.bincount(units.unit_of[units.unit_of >= 0])[:-1]) == [5] * (units.n_units - 1)
    else:
        assert units.n_units == len(words(data.manifest.text.iloc[2]))  # every word, no special token


def test_a_spent_budget_lowers_steps_but_explains_the_whole_set(models, cache, demo_manifest):
    name = "wav2vec2"
    cfg = config(name, models, explain_samples=3, explain_steps=8)
    data = load_pair_data(unimodal(name), cfg, demo_manifest.iloc[::10], cache, progress=False)
    model, _ = build(name, cfg, data)
    rows = np.arange(len(data.manifest))
    free = explain_fold(model, data, rows, rows, cfg, CPU)
    spent = explain_fold(model, data, rows, rows, cfg, CPU, budget_s=0.0)
    assert free.record.n_samples == spent.record.n_samples == free.record.set_size == 3
    assert set(free.frame.utterance_id) == set(spent.frame.utterance_id)  # the same utterances
    assert spent.record.ig_steps["audio"] == MIN_STEPS and not spent.record.within_budget
    assert free.record.within_budget and free.record.ig_steps["audio"] >= cfg.explain_steps


@pytest.mark.parametrize(
    "name", [n if n in ("whisper", "qwen2_5") else pytest.param(n, marks=pytest.mark.slow) for n in ALL_PRETRAINED]
)
def test_lora_trains_the_adapters_only_and_is_counted_so(name, models, cache, demo_manifest):
    """``finetune: lora``: after a few optimiser steps only the adapters (and the head) changed, the backbone's
    own weights did not, and the trainable-parameter count (the records' column) is exactly what trained."""
    from harness.train.measure import count_params

    m = ENCODERS[name].modality
    cfg = config(name, models, **{f"{m}.finetune": "lora", f"{m}.lora_rank": 2})
    data = load_pair_data(unimodal(name), cfg, demo_manifest.iloc[::10], cache, progress=False)
    assert "layers" not in data.features[m]  # LoRA trains on raw inputs: no cached layer means
    model, encoder = build(name, cfg, data)
    before = {n: p.detach().clone() for n, p in encoder.backbone.named_parameters()}
    model.train()
    optimizer = make_optimizer(model, cfg)
    criterion = nn.CrossEntropyLoss()
    for step in range(2):
        rows = np.arange(4 * step, 4 * step + 4)
        train_step(model, data, rows, optimizer, criterion, CPU, autocast_for(cfg, CPU), 1.0)
    changed = {n for n, p in encoder.backbone.named_parameters() if not torch.equal(p.detach(), before[n])}
    adapters = {n for n, p in encoder.backbone.named_parameters() if "lora_" in n}
    assert changed and changed <= adapters
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    backbone_trainable = {n for n, p in encoder.backbone.named_parameters() if id(p) in trainable}
    assert backbone_trainable == adapters
    head = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and "backbone" not in n)
    lora = sum(p.numel() for n, p in encoder.backbone.named_parameters() if "lora_" in n)
    assert count_params(model).trainable == head + lora
