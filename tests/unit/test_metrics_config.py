from __future__ import annotations

import numpy as np
import pytest

from harness.config import ConfigError, TrialConfig
from harness.train.metrics import compute_metrics
from harness.models.pairs import PAIRS, get_pair
from harness.tune.space import load_space


def test_metrics_against_hand_computed_case():
    # classes: 0 neu, 1 ang. true = [0,0,0,1], pred = [0,0,1,1]
    m = compute_metrics(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1]))
    f1_neu = 2 * 1.0 * (2 / 3) / (1.0 + 2 / 3)  # precision 1, recall 2/3 -> 0.8
    f1_ang = 2 * 0.5 * 1.0 / 1.5  # precision 1/2, recall 1 -> 2/3
    assert m.per_emotion_f1["neu"] == pytest.approx(0.8) == pytest.approx(f1_neu)
    assert m.per_emotion_f1["ang"] == pytest.approx(f1_ang)
    assert m.weighted_f1 == pytest.approx(0.75 * 0.8 + 0.25 * 2 / 3)
    assert m.macro_f1 == pytest.approx((0.8 + 2 / 3) / 2)  # over classes present in the truth only
    assert m.weighted_accuracy == pytest.approx(0.75)
    assert m.unweighted_accuracy == pytest.approx((2 / 3 + 1) / 2)
    assert m.confusion[0][:2] == [2, 1] and m.confusion[1][:2] == [0, 1]
    assert m.per_emotion_f1["exc"] == 0.0


def test_config_rejects_unknown_and_mistyped_keys():
    with pytest.raises(ConfigError, match="did you mean 'audio.hidden'"):
        TrialConfig.from_flat({"audio.hiden": 3})
    with pytest.raises(ConfigError, match="expected an integer"):
        TrialConfig.from_flat({"epochs": 2.5})
    with pytest.raises(ConfigError, match="fusion must be one of"):
        TrialConfig.from_flat({"fusion": "sum"})
    cfg = TrialConfig.from_flat({"lr": 0.01, "text.hidden": 32})
    assert TrialConfig.from_flat(cfg.flat()) == cfg


def test_unknown_pair_suggests_a_name():
    with pytest.raises(KeyError, match="did you mean 'wav2vec_bilstm'"):
        get_pair("wav2vec_bilstn")


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


@pytest.mark.parametrize("text, message", [
    ("search:\n  lr: {type: loguniform, low: 0, high: 1}\n", "loguniform needs low > 0"),
    ("search:\n  lrr: {type: float, low: 0, high: 1}\n", "did you mean 'lr'"),
    ("search:\n  lr: {type: float, low: 1, high: 0}\n", "numeric 'low' < 'high'"),
    ("fixed: {epochs: 3}\nsearch:\n  lr: [1, 2\n", r"bad\.yaml:\d+: invalid YAML"),
    ("fixd: {}\n", "unknown top-level key"),
    ("fixed: {fusion: sum}\n", "fusion must be one of"),
])
def test_bad_search_space_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_space(path)


def test_validate_command_checks_every_pair():
    from harness.validate import main

    assert main([]) == 0


def test_set_overrides_parse_numbers_like_a_shell_user_writes_them():
    from harness.search import parse_overrides

    assert parse_overrides(["lr=1e-3", "epochs=3", "fusion=gated", "class_weighted=false", "audio.model=/m/w2v"]) == {
        "lr": 0.001, "epochs": 3, "fusion": "gated", "class_weighted": False, "audio.model": "/m/w2v"}


def test_parameter_importances_find_the_parameter_that_drives_the_score():
    import pandas as pd

    from harness.report.plots import parameter_importances

    rng = np.random.default_rng(0)
    rows = []
    for _ in range(24):
        config = {"lr": float(10 ** rng.uniform(-4, np.log10(3e-3))), "weight_decay": float(10 ** rng.uniform(-4, -1)),
                  "dropout": float(rng.uniform(0.1, 0.5)), "fusion_dim": int(rng.choice([64, 128, 256])),
                  "text.embed_dim": 128, "text.hidden": 128}
        score = 0.3 + 0.1 * (np.log10(config["lr"]) + 4) + 0.002 * rng.normal()  # lr alone matters
        rows.append({"config": config, "mean_val_weighted_f1": score})
    rows.append({"config": rows[0]["config"] | {"lr": 1e30}, "mean_val_weighted_f1": 0.1})  # a --set run
    rows.append({"config": rows[0]["config"], "mean_val_weighted_f1": None})  # a failed trial
    importances = parameter_importances("bilstm", pd.DataFrame(rows))
    assert max(importances, key=importances.get) == "lr"
    assert importances["lr"] > 0.8
    assert parameter_importances("bilstm", pd.DataFrame(rows[:2])) is None  # too few trials


def test_nvml_reads_the_gpu_torch_uses_not_the_one_at_the_same_index(monkeypatch):
    """Under Ray, cuda:0 is whichever GPU CUDA_VISIBLE_DEVICES names; NVML must be asked by UUID."""
    import sys
    import types

    import torch

    from harness.train.measure import _Nvml

    handles = {"GPU-1111": "physical-gpu-0", "GPU-2222": "physical-gpu-3"}
    fake = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlDeviceGetHandleByUUID=lambda uuid: handles[uuid],
        nvmlDeviceGetHandleByIndex=lambda index: f"physical-gpu-{index}",
        nvmlDeviceGetMemoryInfo=lambda handle: types.SimpleNamespace(used={"physical-gpu-3": 7}[handle]))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: types.SimpleNamespace(uuid="2222"))
    assert _Nvml(torch.device("cuda", 0)).used_bytes() == 7
    assert _Nvml(torch.device("cpu")).used_bytes() is None
