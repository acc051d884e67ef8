"""Every registered pair, with tiny encoders: forward, backward, one fold of training, explanation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.config import TrialConfig
from harness.corpus.folds import make_fold
from harness.features import FeatureCache
from harness.models.data import load_pair_data
from harness.models.fusion import build_model
from harness.models.pairs import PAIRS, get_pair
from harness.models.tiny import tiny_overrides
from harness.train.batching import predict
from harness.train.fit import NonFiniteLossError, fit_fold


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Every pair's tiny checkpoints: modality -> "{modality}.model" overrides, per pair."""
    folder = tmp_path_factory.mktemp("tiny")
    return lambda name: tiny_overrides(get_pair(name).variants, folder)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return FeatureCache(tmp_path_factory.mktemp("features"))


def small_config(tiny: dict[str, str], **values) -> TrialConfig:
    base = {
        "epochs": 2,
        "batch_size": 16,
        "fusion_dim": 32,
        "audio.channels": 16,
        "audio.hidden": 16,
        "text.embed_dim": 16,
        "text.hidden": 16,
        "explain_samples": 3,
        "explain_steps": 4,
        "latency_repeats": 3,  # the protocol's 30 are for reports, not for checking the plumbing
    }
    return TrialConfig.from_flat(tiny | base | values)


@pytest.mark.parametrize("name", list(PAIRS))
def test_forward_backward(name, tiny, cache, demo_manifest):
    pair = get_pair(name)
    cfg = small_config(tiny(name))
    data = load_pair_data(pair, cfg, demo_manifest, cache, progress=False)
    rows = np.arange(6)
    model = build_model(pair, cfg, data.features, np.arange(len(demo_manifest)))
    logits = model(model.collate(data.features, rows))
    assert logits.shape == (6, 6)
    logits.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    # the frozen backbone gets no gradient and is not counted as trainable
    for encoder in model.encoders.values():
        if hasattr(encoder, "backbone"):
            assert not any(p.requires_grad for p in encoder.backbone.parameters())


@pytest.mark.parametrize("name", list(PAIRS))
def test_an_utterance_scores_the_same_alone_or_padded_in_a_batch(name, tiny, cache, demo_manifest):
    """Padding never leaks into real positions (default configs: frozen encoders read cached means;
    live wav2vec2-base batches are the known exception, its group norm saw padding in pre-training)."""
    pair = get_pair(name)
    cfg = small_config(tiny(name))
    data = load_pair_data(pair, cfg, demo_manifest, cache, progress=False)
    model = build_model(pair, cfg, data.features, np.arange(len(demo_manifest))).eval()
    lengths = model.input_lengths(data.features)
    short, longest = int(np.argmin(lengths)), int(np.argmax(lengths))
    with torch.no_grad():
        alone = model(model.collate(data.features, np.array([short])))
        padded = model(model.collate(data.features, np.array([short, longest])))[:1]
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-4)
    rows = np.array([longest, short, 7, 3])  # predict batches by length and hands back rows' order
    one_by_one = np.concatenate([predict(model, data, rows[i : i + 1], torch.device("cpu"), 1) for i in range(4)])
    np.testing.assert_allclose(predict(model, data, rows, torch.device("cpu"), 2), one_by_one, atol=1e-5)


@pytest.mark.parametrize(
    "name", [p for p in PAIRS if not get_pair(p).is_fused and any(v.pretrained for v in get_pair(p).variants.values())]
)
def test_cached_frozen_features_match_the_live_encoder(name, tiny, cache, demo_manifest):
    pair = get_pair(name)
    cfg = small_config(tiny(name))
    data = load_pair_data(pair, cfg, demo_manifest, cache, progress=False)
    model = build_model(pair, cfg, data.features, np.arange(len(demo_manifest))).eval()
    encoder = next(iter(model.encoders.values()))
    modality = encoder.modality
    rows = np.array([3])
    with torch.no_grad():
        cached = encoder.layer_means(encoder.embed(encoder.collate(data.features[modality], rows, live=False)))
        live = encoder.layer_means(encoder.embed(encoder.collate(data.features[modality], rows, live=True)))
    torch.testing.assert_close(cached, live, atol=2e-2, rtol=1e-2)  # cache stores float16


@pytest.mark.parametrize(
    "name, fusion",
    [("cnnbilstm_bilstm", "concat"), ("wav2vec_albert", "attention")]
    + [
        pytest.param(n, f, marks=pytest.mark.slow)
        for n, f in (
            ("cnnbilstm_bilstm", "gated"),
            ("cnnbilstm_bilstm", "attention"),
            ("wav2vec_albert", "concat"),
            ("wav2vec_albert", "gated"),
        )
    ],
)
def test_fit_fold_reports_and_scores(name, fusion, tiny, cache, demo_manifest):
    pair = get_pair(name)
    cfg = small_config(tiny(name), fusion=fusion)
    data = load_pair_data(pair, cfg, demo_manifest, cache, progress=False)
    reports = []
    outcome = fit_fold(cfg, pair, data, make_fold(demo_manifest, 5), reports.append, explain=True)
    result = outcome.record
    assert outcome.test_probabilities.shape == (90, 6)
    assert set(result.seconds) == {"train", "score", "measure", "explain"}
    assert [r["epoch"] for r in reports] == list(range(1, result.epochs_run + 1))
    assert all(r["fold"] == 5 for r in reports)
    assert result.test.n == 90 and sum(map(sum, result.test.confusion)) == 90
    assert 0 <= result.test.weighted_f1 <= 1
    assert result.resources.params_trainable <= result.resources.params_total
    assert result.resources.latency_ms > 0 and result.resources.train_utterances_per_s > 0
    assert result.resources.peak_rss_gb > 0
    assert (
        set(result.explanation.ablation_f1_drop) == {"audio", "text"} and result.explanation.ablation == "permutation"
    )
    assert set(result.explanation.comprehensiveness) == set(result.explanation.level) == {"audio", "text"}
    # the whole explanation set, whatever the budget; per-utterance rows for the report
    assert result.explanation.n_samples == result.explanation.set_size == cfg.explain_samples
    assert {"sanity_rank_corr", "completeness_error", "attribution"} <= set(outcome.explanations.metric)
    assert all(math.isfinite(v) for v in result.explanation.completeness_error.values())
    # the explanation's time budget: explain_budget x the fold's train + score + measure time
    before = sum(v for k, v in result.seconds.items() if k != "explain")
    assert result.explanation.budget_s == pytest.approx(cfg.explain_budget * before, rel=1e-2, abs=2e-3)


@pytest.mark.slow
def test_training_is_deterministic(tiny, cache, demo_manifest):
    pair = get_pair("cnnbilstm_bilstm")
    cfg = small_config(tiny("cnnbilstm_bilstm"))
    data = load_pair_data(pair, cfg, demo_manifest, cache, progress=False)
    fold = make_fold(demo_manifest, 2)
    first, second = [fit_fold(cfg, pair, data, fold, lambda r: None).record for _ in range(2)]
    assert first.test.confusion == second.test.confusion
    assert first.validation.weighted_f1 == second.validation.weighted_f1


def test_nan_loss_ends_the_trial_with_a_reason(tiny, cache, demo_manifest):
    pair = get_pair("bilstm")
    cfg = small_config(tiny("bilstm"), lr=1e30, grad_clip=1e30)
    data = load_pair_data(pair, cfg, demo_manifest, cache, progress=False)
    with pytest.raises(NonFiniteLossError, match="fold 5 epoch .*: training loss is"):
        fit_fold(cfg, pair, data, make_fold(demo_manifest, 5), lambda r: None)


@pytest.mark.slow
def test_small_pair_learns_and_fusion_beats_each_modality(cache, demo_manifest, tiny):
    """On the demo corpus, where each modality alone can separate only part of the classes."""
    scores = {}
    for name in ("cnnbilstm_bilstm", "cnnbilstm", "bilstm"):
        pair = get_pair(name)
        cfg = small_config(
            tiny(name), epochs=25, patience=25, lr=3e-3, **{"audio.channels": 32, "audio.hidden": 32, "text.hidden": 32}
        )
        data = load_pair_data(pair, cfg, demo_manifest, cache, progress=False)
        scores[name] = fit_fold(cfg, pair, data, make_fold(demo_manifest, 5), lambda r: None).record.test.weighted_f1
    assert scores["cnnbilstm_bilstm"] > max(scores["cnnbilstm"], scores["bilstm"]), scores
    assert scores["cnnbilstm_bilstm"] > 0.5, scores


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CI has none)")
@pytest.mark.parametrize("name, finetune", [("cnnbilstm_bilstm", 0), ("wav2vec_albert", 0), ("wav2vec_albert", 1)])
def test_cuda_fold_with_bf16_autocast_reports_gpu_resources(name, finetune, tiny, cache, demo_manifest):
    pair = get_pair(name)
    cfg = small_config(
        tiny(name), mixed_precision=True, **{"audio.finetune_layers": finetune, "text.finetune_layers": finetune}
    )
    data = load_pair_data(pair, cfg, demo_manifest, cache, progress=False)
    result = fit_fold(
        cfg, pair, data, make_fold(demo_manifest, 5), lambda r: None, device=torch.device("cuda"), explain=True
    ).record
    assert result.resources.device.startswith("cuda")
    assert result.resources.peak_gpu_gb > 0
    assert result.resources.peak_nvml_gb is None or result.resources.peak_nvml_gb >= result.resources.peak_gpu_gb
    assert 0 <= result.test.weighted_f1 <= 1 and result.resources.latency_ms > 0
    assert result.explanation.n_samples == result.explanation.set_size
