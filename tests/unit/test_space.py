"""harness.tune.space"""

from __future__ import annotations

import pytest

from harness.config import ConfigError, TrialConfig
from harness.models.pairs import PAIRS, get_pair
from harness.tune.space import load_space


@pytest.mark.parametrize("name", list(PAIRS))
def test_every_pair_space_loads_and_samples(name):
    import optuna

    space = load_space(get_pair(name).space_path)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(5):
        values = space.sample(study.ask())
        assert isinstance(space.config(values), TrialConfig)


def test_conditional_parameter_only_when_active():
    import optuna

    space = load_space(get_pair("wav2vec").space_path)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(20):
        values = space.sample(study.ask())
        assert ("encoder_lr" in values) == (values["audio.finetune_layers"] in (2, 4))
        seen.add(values["audio.finetune_layers"])
    assert seen == {0, 2, 4}


@pytest.mark.parametrize(
    "text, message",
    [
        ("search:\n  lr: {type: loguniform, low: 0, high: 1}\n", "loguniform needs low > 0"),
        ("search:\n  lrr: {type: float, low: 0, high: 1}\n", "did you mean 'lr'"),
        ("search:\n  lr: {type: float, low: 1, high: 0}\n", "numeric 'low' < 'high'"),
        ("fixed: {epochs: 3}\nsearch:\n  lr: [1, 2\n", r"bad\.yaml:\d+: invalid YAML"),
        ("fixd: {}\n", "unknown top-level key"),
        ("fixed: {fusion: sum}\n", "fusion must be one of"),
    ],
)
def test_bad_search_space_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_space(path)
