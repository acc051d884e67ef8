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
        (
            "search:\n  lr: {type: float, low: 0.1, high: 1}\n  lr: {type: float, low: 0.2, high: 1}\n",
            r"bad\.yaml:3: .*'lr' written twice",
        ),
        ("fixed: {lr: 0.1}\nsearch:\n  lr: {type: float, low: 0.01, high: 1}\n", r"\['lr'\] both fixed and searched"),
        ("search:\n  text.hidden: {type: int, low: 64, high: 250, step: 64}\n", "186 is not a multiple of step 64"),
        ("search:\n  lr: {type: gaussian, low: 0, high: 1}\n", "unknown type 'gaussian'"),
        ("include: bad.yaml\n", r"include cycle \(bad\.yaml -> bad\.yaml\)"),
    ],
)
def test_bad_search_space_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_space(path)


def test_included_files_merge_in_order_and_errors_name_the_file_they_are_in(tmp_path):
    (tmp_path / "_parent.yaml").write_text("search:\n  lr: {type: loguniform, low: 1.0e-4, high: 1.0e-2}\n")
    (tmp_path / "child.yaml").write_text("include: _parent.yaml\nfixed: {lr: 0.001}\n")
    space = load_space(tmp_path / "child.yaml")
    assert space.fixed["lr"] == 0.001 and "lr" not in [p.name for p in space.params]  # the child fixes it
    (tmp_path / "_parent.yaml").write_text("search:\n  lr: {type: float, low: 1, high: 0}\n")
    with pytest.raises(ConfigError, match=r"_parent\.yaml: search\.lr: needs numeric"):
        load_space(_child_searching(tmp_path))
    with pytest.raises(ConfigError, match="cannot read the search space file"):
        load_space(tmp_path)  # a folder


def _child_searching(tmp_path):
    path = tmp_path / "child2.yaml"
    path.write_text("include: _parent.yaml\nfixed: {epochs: 2}\n")
    return path
