"""harness.cli: validate, --set parsing, the benchmark's final-stage seeds"""

from __future__ import annotations

import pytest


def test_validate_command_checks_spaces_and_builds_pairs(capsys):
    from harness.cli.validate import main

    assert main(["--spaces-only"]) == 0  # every pair's YAML (the conformance tests build every pair)
    assert main(["--pairs", "cnnbilstm_bilstm", "wav2vec_albert"]) == 0
    assert "forward ok (4, 6)" in capsys.readouterr().out


def test_validate_checkpoints_names_a_missing_one(capsys, monkeypatch):
    from harness.cli.validate import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["--checkpoints", "--pairs", "wav2vec", "--set", "audio.model=/nowhere/w2v"]) == 1
    assert "'/nowhere/w2v' (audio.model): the folder does not exist" in capsys.readouterr().out


def test_set_overrides_parse_numbers_like_a_shell_user_writes_them():
    from harness.cli.common import parse_overrides

    assert parse_overrides(["lr=1e-3", "epochs=3", "fusion=gated", "class_weighted=false", "audio.model=/m/w2v"]) == {
        "lr": 0.001,
        "epochs": 3,
        "fusion": "gated",
        "class_weighted": False,
        "audio.model": "/m/w2v",
    }


@pytest.mark.parametrize(
    "args, message",
    [
        (["--folds", "4", "4"], "--folds names a session twice"),
        (["--protocol", "session5", "--folds", "1"], "--protocol session5 has one fold"),
        (["--protocol", "loso-flat", "--inner-folds", "2"], "--inner-folds applies to the nested protocol loso"),
        (["--inner-folds", "5"], "--inner-folds must be 1..4, got 5"),
        (["--cpus-per-trial", "4096"], "--cpus-per-trial 4096: this machine has"),
        (["--gpus-per-trial", "64"], "--gpus-per-trial 64: this machine has"),
        (["--name", "../../elsewhere"], "--name '../../elsewhere': use letters, digits"),
        (
            ["--set", "audio.model=/models/w2v"],
            "--set audio.model: pair bilstm does not use it (it has no audio encoder)",
        ),
    ],
)
def test_search_refuses_options_that_would_change_the_run_silently_or_never_start(args, message, tmp_path, capsys):
    from harness.cli.search import main

    assert main(["--pair", "bilstm", "--results", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "0"], "--seeds and --top-k must be > 0, got 0"),
        (["--num-samples", "2", "--top-k", "3"], "--top-k 3 is more than the 2 trials searched per pair"),
    ],
)
def test_benchmark_refuses_a_budget_it_cannot_keep(args, message, tmp_path, capsys):
    from harness.cli.benchmark import main

    assert main(["--pairs", "bilstm", "--results", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err


def test_a_damaged_run_folder_is_refused_before_ray_naming_what_is_wrong(tmp_path):
    import pickle

    from harness.cli.common import RunIdentity
    from harness.errors import UserError
    from harness.store import Storage

    identity = RunIdentity("bilstm", "demo", "f", {}, (5,), "loso", 6, "release", 2, 0, "search", split_version=3)
    store = Storage(tmp_path).run("r")
    identity.check_against(store)  # a new run: its books are written
    identity.check_against(store)  # the same run again: resumable, nothing started yet
    (tmp_path / "r" / "trial_1").mkdir()
    with pytest.raises(UserError, match=r"r/tuner\.pkl: missing, so Ray Tune cannot resume"):
        identity.check_against(store)  # the trials would be lost, then dropped, by a fresh experiment
    (tmp_path / "r" / "tuner.pkl").write_bytes(pickle.dumps({}))
    (tmp_path / "r" / "experiment_state-2026.json").write_text('{"trial_data": [')
    with pytest.raises(UserError, match=r"experiment_state-2026\.json: not valid JSON"):
        identity.check_against(store)
    (tmp_path / "r" / "experiment_state-2026.json").write_text("{}")
    (tmp_path / "r" / "harness" / "search.json").write_text("{oops")
    with pytest.raises(UserError, match=r"harness/search\.json: not valid JSON"):
        identity.check_against(store)
    (tmp_path / "r" / "harness" / "search.json").write_text("{}")
    identity.check_against(store)
    (tmp_path / "r" / "harness" / "run.json").unlink()
    with pytest.raises(UserError, match="holds a Ray Tune experiment but not this harness's harness/run.json"):
        identity.check_against(store)  # would resume the trials under whatever options it is given now


def test_a_damaged_local_checkpoint_is_refused_before_ray(tmp_path):
    import shutil

    from harness.cli.common import resolve_checkpoint
    from harness.config import ConfigError
    from harness.models.pairs import get_pair
    from harness.models.tiny import ensure_checkpoint

    variant = get_pair("wav2vec").variants["audio"]
    folder = tmp_path / "w2v"
    shutil.copytree(ensure_checkpoint(variant, "tiny"), folder)
    assert resolve_checkpoint(variant, str(folder)) == str(folder.resolve())
    weights = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(ConfigError, match=r"model\.safetensors is damaged"):
        resolve_checkpoint(variant, str(folder))
    (folder / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match="no weights file"):
        resolve_checkpoint(variant, str(folder))
    (folder / "config.json").write_text('{"model_type": ')
    with pytest.raises(ConfigError, match=r"config\.json is not valid JSON") as err:
        resolve_checkpoint(variant, str(folder))
    assert "huggingface-cli" not in str(err.value)  # a local folder is not downloaded


def test_bad_command_lines_of_the_other_commands_are_one_line_errors(tmp_path, monkeypatch, capsys):
    from harness.cli import data, search, validate

    assert validate.main(["--pairs", "bilstn"]) == 2 and "did you mean 'bilstm'" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert data.main(["demo", "--out", str(tmp_path / "file")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert (
        data.main(["inspect", "--out", str(tmp_path)]) == 2
        and "a directory; name the manifest" in capsys.readouterr().err
    )
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "file" / "cache"))
    assert search.main(["--pair", "bilstm", "--results", str(tmp_path / "r")]) == 2
    assert "HARNESS_CACHE" in capsys.readouterr().err


def test_a_benchmark_smoke_test_keeps_its_tiny_budget_and_says_what_ran():
    from harness.benchmark.spec import DEMO_BUDGET, BenchmarkSpec
    from harness.cli.benchmark import build_parser

    spec = BenchmarkSpec.from_args(build_parser().parse_args(["--smoke-test"]), source="demo")
    assert not spec.demo_budget and not set(DEMO_BUDGET.overrides) & set(spec.run.overrides)  # epochs=6 beat 1
    assert spec.describe().startswith("2 trials per pair and test fold, each on 1 of 4 inner folds")
    assert "test folds [5]" in spec.describe()
    spec = BenchmarkSpec.from_args(build_parser().parse_args([]), source="demo")
    assert spec.demo_budget and spec.run.overrides[: len(DEMO_BUDGET.overrides)] == DEMO_BUDGET.overrides
    assert (spec.seeds, spec.run.num_samples, spec.run.inner_folds) == (2, 2, 2)
    real = BenchmarkSpec.from_args(build_parser().parse_args([]), source="/data/IEMOCAP_full_release")
    assert real.budget.name == "full" and (real.seeds, real.run.num_samples, real.run.inner_folds) == (5, 8, None)


def test_a_spec_is_frozen_and_checked_again_when_changed():
    import dataclasses

    from harness.benchmark.spec import BenchmarkSpec
    from harness.cli.benchmark import build_parser
    from harness.config import ConfigError

    spec = BenchmarkSpec.from_args(build_parser().parse_args(["--pairs", "bilstm"]), source="demo")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seeds = 3  # type: ignore[misc]
    assert spec.pairs == ("bilstm",)
    with pytest.raises(ConfigError, match="--top-k 9 is more than"):
        dataclasses.replace(spec, top_k=9).checked()


def test_validate_reads_set_exactly_as_search_does(capsys):
    from harness.cli.main import main

    assert main(["validate", "--spaces-only", "--set", "lrr=banana"]) == 2
    assert "unknown key 'lrr' (did you mean 'lr'?)" in capsys.readouterr().err
    assert main(["validate", "--spaces-only", "--set", "epochs=0"]) == 2
    assert "epochs = 0 is out of range" in capsys.readouterr().err
    assert main(["validate", "--spaces-only", "--pairs", "bilstm", "--set", "epochs=3"]) == 0


def test_an_internal_value_error_is_not_a_user_error(capsys):
    from harness.cli.common import run_command
    from harness.errors import UserError

    def bug() -> int:
        raise ValueError("a bug")

    assert not issubclass(UserError, ValueError)
    with pytest.raises(ValueError, match="a bug"):  # keeps its traceback: not printed as a user's mistake
        run_command(bug)
    assert run_command(lambda: (_ for _ in ()).throw(UserError("bad input"))) == 2
    assert capsys.readouterr().err.strip() == "error: bad input"


def test_a_grid_names_its_pairs_from_encoders():
    from harness.benchmark.spec import BenchmarkSpec
    from harness.cli.benchmark import build_parser
    from harness.config import ConfigError

    args = build_parser().parse_args(["--grid", "audio=cnn_bilstm,wav2vec2", "text=bilstm,albert"])
    spec = BenchmarkSpec.from_args(args, source="demo")
    assert spec.pairs[:2] == ("cnnbilstm_bilstm", "cnnbilstm_albert") and "wav2vec_albert" in spec.pairs
    assert spec.grid == (("audio", ("cnn_bilstm", "wav2vec2")), ("text", ("bilstm", "albert")))
    for bad, message in (
        (["--grid", "video=x"], "--grid expects MODALITY=ENCODER"),
        (["--grid", "audio=cnn_bilstm", "--pairs", "bilstm"], "name the pairs one way"),
    ):
        with pytest.raises(ConfigError, match=message):
            BenchmarkSpec.from_args(build_parser().parse_args(bad), source="demo")


def test_the_demo_budget_freezes_every_pretrained_encoder_even_where_its_space_searches_lora(tmp_path, monkeypatch):
    """A large encoder's fragment searches frozen vs LoRA; the demo budget's promise (frozen encoders, minutes
    not hours on CPU) must hold for a --grid of them too: no sampled config fine-tunes a backbone."""
    import optuna

    from harness.benchmark.spec import DEMO_BUDGET, parse_overrides
    from harness.models.pairs import compose_grid, get_pair
    from harness.tune.space import load_space

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    demo = parse_overrides(DEMO_BUDGET.overrides)
    for pair in compose_grid(["cnn_bilstm", "whisper"], ["bilstm", "qwen2_5"]):
        space = load_space(get_pair(pair).space_path)
        free = {"audio.finetune", "text.finetune"} & {p.name for p in space.params}
        fixed = space.with_fixed(demo)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(20):
            cfg = fixed.config(fixed.sample(study.ask()))
            assert cfg.audio.finetune == cfg.text.finetune == "layers", pair
            assert cfg.audio.finetune_layers == cfg.text.finetune_layers == 0, pair
        assert not free or not free & {p.name for p in fixed.params}  # the LoRA switch is fixed, not searched
