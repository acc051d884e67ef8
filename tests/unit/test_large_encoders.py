"""The large side (issue 25): real sizes on the meta device, LoRA's share, Whisper's lengths, checkpoints
that load or refuse (one line, before Ray), per-encoder keys, model_type, grids composed from encoders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers

from harness.config import ConfigError
from harness.features.threads import extraction_threads
from harness.models import hub
from harness.models.encoders.pretrained import FROZEN, Tuning
from harness.models.encoders.registry import ENCODERS, get_encoder
from harness.models.encoders.whisper import HOP, log_mel
from harness.models.pairs import PAIRS, compose_grid, parse_grid
from harness.models.tiny import ensure_checkpoint
from harness.tune.space import load_space


def meta_backbone(name: str):
    variant = get_encoder(name)
    config = getattr(transformers, variant.arch.config_class)(**variant.arch.real)
    with torch.device("meta"):  # shapes only: no memory, no init
        model = transformers.AutoModel.from_config(config)
    return model.get_encoder() if variant.arch.config_class == "WhisperConfig" else model


def test_whisper_large_v3_encoder_has_its_published_size():
    millions = sum(p.numel() for p in meta_backbone("whisper").parameters()) / 1e6
    assert 635 <= millions <= 640


@pytest.mark.parametrize(
    "name, millions",
    [("wavlm_large", 315.5), ("hubert_large", 315.4), ("roberta_large", 355.4), ("qwen2_5", 1543.7)],
)
def test_large_real_configs_have_their_published_sizes(name, millions):
    assert round(sum(p.numel() for p in meta_backbone(name).parameters()) / 1e6, 1) == millions


def test_lora_trains_under_two_percent_of_a_large_encoder():
    from harness.models.encoders.lora import add_lora

    backbone = meta_backbone("wavlm_large")
    total = sum(p.numel() for p in backbone.parameters())
    add_lora(backbone, Tuning("lora", lora_rank=8, lora_targets="attention_full"))
    trainable = sum(p.numel() for p in backbone.parameters() if p.requires_grad)
    assert 0 < trainable < 0.02 * total
    assert all("lora_" in n for n, p in backbone.named_parameters() if p.requires_grad)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_large")
    return lambda name: str(ensure_checkpoint(ENCODERS[name], "tiny", folder))


def test_whisper_log_mel_matches_the_feature_extractor():
    rng = np.random.default_rng(0)
    wave = (rng.standard_normal(16_000 * 2) * 0.1).astype(np.float32)
    extractor = transformers.WhisperFeatureExtractor(feature_size=128)
    reference = extractor(wave, sampling_rate=16_000, padding="longest", return_tensors="np").input_features[0].T
    ours = log_mel(torch.from_numpy(wave), torch.as_tensor(extractor.mel_filters, dtype=torch.float32))
    assert ours.shape == reference.shape == (len(wave) // HOP, 128)
    np.testing.assert_allclose(ours.numpy(), reference, atol=2e-4)


def test_whisper_cost_follows_length_and_stops_at_30_s(tiny):
    """Shorter than 30 s: encoded at its own length (frames/2 positions); longer: its first 30 s (1500)."""
    variant = ENCODERS["whisper"]
    encoder = variant.cls(variant, tiny("whisper"), FROZEN, 60.0)
    rng = np.random.default_rng(1)
    for seconds, positions in ((2.0, 100), (40.0, 1500)):
        wave = (rng.standard_normal(int(16_000 * seconds)) * 3000).astype(np.int16)
        with torch.no_grad():
            states, mask = encoder.hidden_states(encoder.embed(encoder.collate_live([wave])))
        assert states[0].shape[1] == positions and int(mask.sum()) == positions
    window = ENCODERS["whisper_30s"]
    padded = window.cls(window, tiny("whisper"), FROZEN, 60.0)
    with torch.no_grad():
        states, mask = padded.hidden_states(padded.embed(padded.collate_live([wave[: 16_000 * 2]])))
    assert states[0].shape[1] == 1500 and int(mask.sum()) == 100  # as trained: 30 s attended, 2 s pooled


def test_last_token_pooling_reads_the_last_real_token(tiny):
    from dataclasses import replace

    variant = replace(ENCODERS["qwen2_5"], options=(("pooling", "last"),))
    encoder = variant.cls(variant, tiny("qwen2_5"), FROZEN)
    items = [np.array([5, 9, 7], dtype=np.int32), np.array([4, 8, 6, 12, 5, 9], dtype=np.int32)]
    with torch.no_grad():
        together = encoder.layer_means(encoder.embed(encoder.collate_live(items)))
        alone = torch.cat([encoder.layer_means(encoder.embed(encoder.collate_live([i]))) for i in items])
        states, _ = encoder.hidden_states(encoder.embed(encoder.collate_live(items[:1])))
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone[0, -1], states[-1][0, 2])


# -- checkpoints ------------------------------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.reset()
    yield
    hub.reset()


def test_a_missing_checkpoint_stops_a_real_corpus_run_with_one_line(offline):
    variants = [ENCODERS["wav2vec2"], ENCODERS["whisper"], ENCODERS["wav2vec2"], ENCODERS["bilstm"]]
    with pytest.raises(hub.MissingCheckpointsError) as err:
        hub.require_checkpoints(variants, {}, demo=False, allow_stand_ins=False)
    message = str(err.value)
    assert "\n" not in message
    assert "hf download facebook/wav2vec2-base && hf download openai/whisper-large-v3" in message
    assert "huggingface-cli" not in message
    assert hub.require_checkpoints(variants, {}, demo=True, allow_stand_ins=False) == (
        "facebook/wav2vec2-base",
        "openai/whisper-large-v3",
    )
    assert hub.require_checkpoints(variants, {}, demo=False, allow_stand_ins=True)


def test_a_checkpoint_of_another_architecture_is_refused(offline, tiny):
    wav2vec2_folder = tiny("wav2vec2")
    with pytest.raises(ConfigError, match="it is a wav2vec2 checkpoint, and hubert needs a hubert one"):
        hub.resolve_checkpoint(ENCODERS["hubert"], wav2vec2_folder)
    with pytest.raises(ConfigError, match="wav2vec2 checkpoint"):
        hub.require_checkpoints([ENCODERS["hubert"]], {"hubert.model": wav2vec2_folder}, False, False)
    assert json.loads((ensure_checkpoint(ENCODERS["hubert"], "tiny").parent / "hubert" / "config.json").read_text())


def test_per_encoder_keys_point_each_encoder_at_its_folder(offline, tiny):
    overrides = {"whisper.model": tiny("whisper"), "text.model": tiny("qwen2_5"), "lr": 0.01}
    plan = hub.choose_checkpoints(
        {"audio": ENCODERS["whisper"], "text": ENCODERS["qwen2_5"]}, overrides, smoke_test=False, stand_ins=False
    )
    assert plan.overrides == {"audio.model": tiny("whisper"), "text.model": tiny("qwen2_5")} and not plan.stand_in
    config, keys = hub.split_encoder_keys(overrides)
    assert config == {"text.model": tiny("qwen2_5"), "lr": 0.01} and keys == {"whisper.model": tiny("whisper")}


# -- grids ------------------------------------------------------------------------------------------------


def test_a_grid_is_composed_from_encoders(tmp_path):
    grid = parse_grid(["audio=cnn_bilstm,whisper", "text=bilstm,qwen2_5"])
    names = compose_grid(grid["audio"], grid["text"], tmp_path)
    assert names[0] == "cnnbilstm_bilstm" and names[-1] == "qwen2_5"  # small-small first; registered names kept
    assert [PAIRS[n].is_fused for n in names] == [True] * 4 + [False] * 4
    fused = PAIRS["whisper_qwen2_5"]
    space = load_space(fused.space_path)
    names_searched = {p.name for p in space.params}
    assert {"audio.finetune", "audio.lora_rank", "text.finetune", "fusion_dim"} <= names_searched
    encoder_lr = next(p for p in space.params if p.name == "encoder_lr")
    assert len(encoder_lr.when_any) == 2  # searched when either encoder trains, not only the last fragment's
    assert compose_grid(["cnn_bilstm", "wav2vec2"], ["bilstm", "albert"], tmp_path)[:4] == (
        "cnnbilstm_bilstm",
        "cnnbilstm_albert",
        "wav2vec_bilstm",
        "wav2vec_albert",
    )


def test_extraction_threads_leave_busy_cores_alone(monkeypatch):
    monkeypatch.delenv("HARNESS_EXTRACT_THREADS", raising=False)
    monkeypatch.setattr("harness.features.threads.usable_cpus", lambda: 4)
    assert extraction_threads(load=0.0) == 4
    assert extraction_threads(load=1.2) == 3
    assert extraction_threads(load=9.0) == 1
    monkeypatch.setenv("HARNESS_EXTRACT_THREADS", "2")
    assert extraction_threads(load=9.0) == 2


def test_extraction_threads_read_the_load_now_not_a_minute_ago():
    """A process that just stopped still weighs on the 1-minute load average; the sampled load does not."""
    import multiprocessing
    import time

    from harness.features.threads import busy_cores

    spinner = multiprocessing.get_context("spawn").Process(target=_spin, args=(1.5,))
    spinner.start()
    time.sleep(0.5)
    during = busy_cores(0.3)
    spinner.join()
    after = busy_cores(0.3)
    assert during >= 0.6 and after < during - 0.4  # the load average would still show the spinner for a minute


def _spin(seconds: float) -> None:
    import time

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_gradient_checkpointing_gives_the_same_gradients(tiny):
    """Recomputing each layer in backward (the backbone in eval mode) changes memory, not gradients."""
    variant = ENCODERS["hubert_large"]
    wave = (np.random.default_rng(2).standard_normal(16_000) * 3000).astype(np.int16)
    folder = tiny("hubert_large")  # built before the seed: building draws random numbers
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)  # the same LoRA initialisation both times
        encoder = variant.cls(variant, folder, Tuning("lora", checkpointing=checkpointing), 15.0)
        assert encoder.layers()[0].forward.__name__ == ("run" if checkpointing else "forward")
        for p in encoder.pretrained_parameters():  # LoRA's B starts at 0: give it a value so A gets a gradient
            torch.nn.init.normal_(p, std=0.02)
        encoder.layer_means(encoder.embed(encoder.collate_live([wave]))).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in encoder.pretrained_parameters()]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)


def test_another_process_finds_a_composed_pair_by_name(tmp_path, monkeypatch):
    """Ray workers start with the built-in registry: a composed pair is found from the cache by its name."""
    from harness.models.pairs import get_pair

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    earlier = PAIRS.pop("whisper_qwen2_5", None)  # composed by another test in another cache folder
    try:
        name = compose_grid(["whisper"], ["qwen2_5"])[0]
        registered = PAIRS.pop(name)
        found = get_pair(name)
        assert (found.audio, found.text, found.space) == (registered.audio, registered.text, registered.space)
    finally:
        PAIRS.pop("whisper_qwen2_5", None)
        if earlier is not None:
            PAIRS["whisper_qwen2_5"] = earlier
