"""``when`` in a search space: a mapping (every key holds) or a list of mappings (any holds: "either encoder
fine-tuned"); the two-pretrained-encoder pairs search encoder_lr exactly when one of them is fine-tuned."""

from __future__ import annotations

import optuna
import pytest

from harness.config import ConfigError
from harness.models.pairs import get_pair
from harness.tune.space import load_space


def sampled(space, fixed: dict, seed: int = 0) -> dict:
    """One define-by-run sample with ``fixed`` values enqueued for the searched keys."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    study.enqueue_trial(fixed)
    return space.sample(study.ask())


@pytest.mark.parametrize(
    ("pair", "audio", "text"), [("wav2vec_albert", [0, 2], [0, 1]), ("wavlm_roberta", [0, 2, 4], [0, 2, 4])]
)
def test_encoder_lr_is_searched_when_either_encoder_is_fine_tuned(pair, audio, text):
    space = load_space(get_pair(pair).space_path)
    for a in audio:
        for t in text:
            values = sampled(space, {"audio.finetune_layers": a, "text.finetune_layers": t})
            assert ("encoder_lr" in values) == (a > 0 or t > 0), (a, t, values)


def test_a_list_condition_is_any_and_a_mapping_is_all(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(
        "search:\n"
        "  audio.finetune_layers: {type: categorical, choices: [0, 2]}\n"
        "  text.finetune_layers: {type: categorical, choices: [0, 1]}\n"
        "  encoder_lr: {type: loguniform, low: 1.0e-5, high: 1.0e-4,\n"
        "               when: [{audio.finetune_layers: [2]}, {text.finetune_layers: [1]}]}\n"
        "  dropout: {type: float, low: 0.1, high: 0.5, when: {audio.finetune_layers: 2, text.finetune_layers: 1}}\n"
    )
    space = load_space(path)
    param = {p.name: p for p in space.params}
    assert param["encoder_lr"].active({"audio.finetune_layers": 0, "text.finetune_layers": 1})
    assert not param["encoder_lr"].active({"audio.finetune_layers": 0, "text.finetune_layers": 0})
    assert not param["dropout"].active({"audio.finetune_layers": 2, "text.finetune_layers": 0})
    assert param["dropout"].active({"audio.finetune_layers": 2, "text.finetune_layers": 1})


@pytest.mark.parametrize("when", ["[]", "[3]", "[{auido.finetune_layers: [2]}]", "'yes'"])
def test_a_bad_condition_is_one_clear_error(tmp_path, when):
    path = tmp_path / "space.yaml"
    path.write_text(f"search:\n  encoder_lr: {{type: loguniform, low: 1.0e-5, high: 1.0e-4, when: {when}}}\n")
    with pytest.raises(ConfigError, match="when"):
        load_space(path)
