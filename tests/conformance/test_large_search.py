"""Every encoder of the large side runs a tiny offline search: one Optuna trial drawn from its composed search
space (base + its fragment: frozen or LoRA, rank, alpha, targets), 1 epoch, 2 folds, tiny checkpoints, no Ray.
The fused whisper x qwen2_5 pair of the issue's grid runs the same way."""

from __future__ import annotations

import math

import optuna
import pytest

from harness.corpus.folds import make_fold
from harness.features import FeatureCache
from harness.models.data import load_pair_data
from harness.models.encoders.registry import ENCODERS
from harness.models.pairs import PAIRS, compose_pair
from harness.models.tiny import tiny_overrides
from harness.train.fit import fit_fold
from harness.tune.space import load_space

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
LARGE = [
    "whisper",
    "whisper_30s",
    "whisper_medium",
    "whisper_small",
    "wavlm_large",
    "hubert_large",
    "data2vec_audio_large",
    "roberta_large",
    "deberta_v3_large",
    "qwen2_5",
    "llama3_2",
]
SMALL = {"epochs": 1, "batch_size": 16, "fusion_dim": 16, "explain_samples": 0, "latency_repeats": 1}


@pytest.mark.parametrize("encoders", [(n,) for n in LARGE] + [("whisper", "qwen2_5")], ids="-".join)
def test_a_tiny_offline_search(encoders, tmp_path, demo_manifest):
    audio = next((e for e in encoders if ENCODERS[e].modality == "audio"), None)
    text = next((e for e in encoders if ENCODERS[e].modality == "text"), None)
    pair = PAIRS[compose_pair(audio, text, tmp_path)]
    space = load_space(pair.space_path).with_fixed(tiny_overrides(pair.variants, tmp_path) | SMALL)
    assert any(p.name.endswith(".finetune") for p in space.params)  # frozen vs LoRA is searched
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=len(pair.name))).ask()
    cfg = space.config(space.sample(trial))
    manifest = demo_manifest.iloc[::10].reset_index(drop=True)  # 27 utterances: the plumbing, not a score
    data = load_pair_data(pair, cfg, manifest, FeatureCache(tmp_path / "features"), progress=False)
    for session in (4, 5):
        record = fit_fold(cfg, pair, data, make_fold(manifest, session), lambda r: None, measure_costs=False).record
        assert record.test is not None and math.isfinite(record.test.weighted_f1)
