"""harness.train.explain: the same explanation set for every pair, common units, completeness, sanity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness.config import TrialConfig
from harness.corpus.folds import make_fold
from harness.features import FeatureCache
from harness.models.data import load_pair_data
from harness.models.encoders.registry import ENCODERS
from harness.models.fusion import build_pair_model
from harness.models.pairs import get_pair
from harness.models.tiny import ensure_checkpoint
from harness.train.explain import explain_fold, explanation_set, permutation_partners
from harness.train.explain.attribute import TOLERANCE, converged_ig, flagged, integrated_gradients, sanity_rank_corr
from harness.train.explain.sample import stratified_counts
from harness.train.explain.units import branch_units, subword_words, words

CPU = torch.device("cpu")
SMALL = {
    "epochs": 1,
    "batch_size": 16,
    "fusion_dim": 16,
    "audio.channels": 8,
    "audio.hidden": 8,
    "text.embed_dim": 8,
    "text.hidden": 8,
    "explain_samples": 6,
    "explain_steps": 4,
}


def test_the_set_is_stratified_and_depends_only_on_the_folds_utterances():
    ids = [f"Ses01F_x_{i:03d}" for i in range(60)]
    labels = np.array([0] * 30 + [1] * 20 + [2] * 8 + [3] * 2)
    chosen = explanation_set(ids, labels, 10)
    assert np.bincount(labels[chosen], minlength=4).tolist() == [5, 3, 1, 1]  # proportional, each class once
    order = np.random.default_rng(1).permutation(60)  # another row order: the same utterances
    shuffled = explanation_set([ids[i] for i in order], labels[order], 10)
    assert sorted(ids[i] for i in chosen) == sorted(ids[order[i]] for i in shuffled)
    assert stratified_counts({0: 5, 1: 1}, 100) == {0: 5, 1: 1}
    partners = permutation_partners(ids)
    assert (partners != np.arange(60)).all() and sorted(partners) == list(range(60))


# trains and explains two pairs: the training-heavy lane (123 s measured under load)
@pytest.mark.slow
def test_two_pairs_of_a_fold_explain_exactly_the_same_utterances(demo_manifest, tmp_path):
    cache = FeatureCache(tmp_path)
    fold = make_fold(demo_manifest, 5)
    explained = {}
    for name in ("cnnbilstm", "bilstm"):
        pair = get_pair(name)
        cfg = TrialConfig.from_flat(SMALL | {"seed": len(name)})  # other seeds, other pairs
        data = load_pair_data(pair, cfg, demo_manifest, cache, progress=False)
        model = build_pair_model(pair, cfg, data, fold.train)
        result = explain_fold(model, data, fold.test, fold.train, cfg, CPU, name, 5)
        frame = result.frame
        explained[name] = set(frame.utterance_id[frame.metric == "completeness_error"])
        assert result.record.n_samples == result.record.set_size == 6
    assert explained["cnnbilstm"] == explained["bilstm"]
    ids = demo_manifest.utterance_id.to_numpy()[fold.test]
    labels = data.labels[fold.test]  # class indices, as the pair's data holds them
    assert explained["bilstm"] == set(ids[explanation_set(list(ids), labels, 6)])


def test_audio_is_binned_in_100_ms_and_text_in_words_without_special_tokens(demo_manifest, tmp_path):
    pair = get_pair("cnnbilstm")
    cfg = TrialConfig.from_flat(SMALL)
    data = load_pair_data(pair, cfg, demo_manifest.iloc[:5], FeatureCache(tmp_path), progress=False)
    model = build_pair_model(pair, cfg, data, np.arange(5))
    units = branch_units(model.branches["audio"], data, 0, "audio", cfg, CPU)
    assert units.x.shape[1] == len(data.features["audio"]["frames"][0])  # 10 ms frames
    assert (units.unit_of == np.arange(units.x.shape[1]) // 10).all()  # ten frames to a bin
    scores = units.unit_scores(torch.ones_like(units.x))
    assert scores.sum() == pytest.approx(units.x.numel()) and len(scores) == units.n_units

    checkpoint = str(ensure_checkpoint(ENCODERS["albert"], "tiny", tmp_path))
    from transformers import AutoTokenizer

    text = "I [LAUGHTER] love this wonderful, amazing day!"
    ids = np.asarray(AutoTokenizer.from_pretrained(checkpoint)("I love this wonderful, amazing day!")["input_ids"])
    word_of = subword_words(checkpoint, 128, text, ids)
    assert word_of[0] == -1 and word_of[-1] == -1  # [CLS], [SEP]
    assert sorted(set(word_of[word_of >= 0])) == list(range(len(words(text)))) == list(range(6))
    assert (word_of == -1).sum() == 4  # the two special tokens, the comma and the exclamation mark


def test_integrated_gradients_raises_steps_until_complete_or_says_it_did_not():
    w = torch.tensor([[3.0, -2.0, 5.0, 1.0]])

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(8 * (x * w).sum((1, 2)) - 4)

    x, baseline = torch.ones(1, 1, 4), torch.zeros(1, 1, 4)
    coarse = integrated_gradients(forward, x, baseline, 2, 4)
    assert coarse.error > TOLERANCE  # two steps are far from complete here
    fine = converged_ig(forward, x, baseline, 2, 4)
    assert fine.converged and fine.error <= TOLERANCE and fine.steps > 2
    capped = converged_ig(forward, x, baseline, 2, 4, ceiling=2)
    assert not capped.converged and capped.steps == 2


def test_the_sanity_check_flags_an_attribution_that_ignores_the_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 1))
    x = torch.randn(1, 20, 1) * 2

    def forward(z: torch.Tensor) -> torch.Tensor:
        return model(z).sum((1, 2))

    def ig() -> np.ndarray:
        return integrated_gradients(forward, x, torch.zeros_like(x), 32, 8).attributions.sum(-1)[0].numpy()

    def magnitude() -> np.ndarray:  # planted: input times one, whatever the weights (an "edge detector")
        return x.abs().sum(-1)[0].numpy()

    planted = sanity_rank_corr(magnitude(), magnitude, model)
    assert planted == pytest.approx(1.0) and flagged(planted)
    real = sanity_rank_corr(ig(), ig, model)
    assert not flagged(real)
