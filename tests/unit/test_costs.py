"""harness.train.costs: the latency protocol (raw inputs through every front end) and FLOPs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.config import TrialConfig
from harness.features import FeatureCache
from harness.models.data import load_pair_data
from harness.models.fusion import build_model
from harness.models.pairs import get_pair
from harness.models.tiny import tiny_overrides
from harness.train.costs import (
    LATENCY_SECONDS,
    RawPath,
    count_flops,
    forward_gflops,
    measure_latencies,
    synthetic_utterance,
    train_gflops_per_epoch,
)

SMALL = {"fusion_dim": 16, "audio.channels": 8, "audio.hidden": 8, "text.embed_dim": 8, "text.hidden": 8}


@pytest.fixture(scope="module")
def built(tmp_path_factory, demo_manifest):
    """name -> (model, data) for a pair with tiny checkpoints and the given config values."""
    cache = FeatureCache(tmp_path_factory.mktemp("features"))
    tiny_folder = tmp_path_factory.mktemp("tiny")
    manifest = demo_manifest.iloc[:12]

    def build(name: str, **values) -> tuple:
        pair = get_pair(name)
        cfg = TrialConfig.from_flat(tiny_overrides(pair.variants, tiny_folder) | SMALL | values)
        data = load_pair_data(pair, cfg, manifest, cache, progress=False)
        return build_model(pair, cfg, data.features, np.arange(len(manifest))).eval(), data

    return build


def path_of(model, data) -> RawPath:
    return RawPath(model, data, torch.device("cpu"), torch.autocast("cpu", enabled=False))


def test_synthetic_utterances_have_the_length_and_speaking_rate_of_the_protocol():
    for seconds in LATENCY_SECONDS:
        utterance = synthetic_utterance(seconds)
        assert len(utterance.audio) == seconds * 16_000 and utterance.audio.dtype == np.float32
        assert len(utterance.text.split()) == 3 * seconds  # 3 words per second: 12 words for 4 s


def test_every_timed_call_runs_the_small_pairs_front_ends_from_the_raw_waveform_and_string(built, monkeypatch):
    """Log-mel frames and word lookup are part of the small pair's latency, as the SSL front end is of the
    large pair's: each warm-up and timed call computes them from the raw inputs."""
    from harness.features import frontends

    model, data = built("cnnbilstm_bilstm")
    calls = {"logmel": [], "words": []}
    spectral, words = frontends.spectral_of, frontends.words_of
    monkeypatch.setattr(
        frontends, "spectral_of", lambda spec, audio: calls["logmel"].append(len(audio)) or spectral(spec, audio)
    )
    monkeypatch.setattr(frontends, "words_of", lambda text: calls["words"].append(text) or words(text))
    timed = measure_latencies(path_of(model, data), repeats=4, warmup=2)
    assert sorted(timed) == list(LATENCY_SECONDS)
    # every length: 2 warm-up + 4 timed calls, each from the raw waveform of that length
    assert calls["logmel"] == [int(s * 16_000) for s in LATENCY_SECONDS for _ in range(6)]
    assert len(calls["words"]) == 18
    for seconds, figures in timed.items():
        assert figures.repeats == 4 and figures.warmup == 2 and figures.median_ms > 0 and figures.iqr_ms >= 0
        assert figures.rtf == pytest.approx(figures.median_ms / 1000 / seconds)


def test_a_frozen_pretrained_pair_is_timed_on_its_backbone_and_tokeniser_not_on_cached_means(built, monkeypatch):
    from harness.features import frontends

    model, data = built("wav2vec_albert")
    tokenised = []
    original = frontends.subword_tokenizer

    def counting(model_name, max_tokens):
        tokenize = original(model_name, max_tokens)
        return lambda text: tokenised.append(text) or tokenize(text)

    monkeypatch.setattr(frontends, "subword_tokenizer", counting)
    path = path_of(model, data)
    batch = path.batch(synthetic_utterance(4.0))
    assert set(batch["audio"]) == {"chunks", "mask", "lengths"} and batch["audio"]["lengths"].item() == 64_000
    assert "ids" in batch["text"] and "layers" not in batch["text"]
    assert tokenised == [synthetic_utterance(4.0).text]
    assert path(synthetic_utterance(1.0)).shape == (1, 6)


def test_flops_count_recurrent_layers_and_grow_with_the_model(built):
    lstm = torch.nn.LSTM(10, 20, batch_first=True, bidirectional=True)
    x = torch.zeros(3, 7, 10)
    # 2 directions x 7 steps x 3 utterances x 2 FLOPs x (4*20*10 + 4*20*20) multiply-adds
    assert count_flops(lambda: lstm(x)) == 2 * 7 * 3 * 2 * (800 + 1600)

    small, data = built("cnnbilstm_bilstm")
    large, large_data = built("cnnbilstm_bilstm", **{"audio.channels": 32, "audio.hidden": 32})
    small_gflops, large_gflops = forward_gflops(path_of(small, data)), forward_gflops(path_of(large, large_data))
    assert 0 < small_gflops < large_gflops
    # a longer utterance costs more
    assert forward_gflops(path_of(small, data), seconds=10.0) > small_gflops


def test_training_flops_per_epoch_scale_with_the_training_utterances(built):
    model, data = built("cnnbilstm_bilstm")
    rows = np.arange(12)
    one = train_gflops_per_epoch(model, data, rows[:1], torch.device("cpu"))
    all_rows = train_gflops_per_epoch(model, data, rows, torch.device("cpu"), sample=12)
    assert one > 0 and all_rows > one
    assert train_gflops_per_epoch(model, data, rows[:0], torch.device("cpu")) == 0.0
