"""Dialogue context: turn order, windows, window gathering, and the context-free model unchanged."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.cli.common import parse_overrides
from harness.config import ContextConfig, TrialConfig
from harness.corpus import load_corpus
from harness.corpus.dialogs import DialogTurns
from harness.corpus.folds import make_fold
from harness.features import FeatureCache
from harness.models.context import TurnContext
from harness.models.data import load_pair_data
from harness.models.encoders.bilstm import WordBiLstm
from harness.models.encoders.cnn_bilstm import CnnBiLstm
from harness.models.fusion import EmotionModel, build_pair_model
from harness.models.pairs import get_pair
from harness.train.batching import dialog_batches, predict
from harness.train.explain import explain_fold
from harness.train.fit import train_step
from tests.fixtures.iemocap import write_dialog

CPU = torch.device("cpu")


def _line(start: float, utt: str, label: str) -> str:
    return f"[{start:.4f} - {start + 1:.4f}]\t{utt}\t{label}\t[2.0000, 3.0000, 3.0000]\n"


def test_turns_follow_start_time_not_file_order(tmp_path):
    """Both files list the turns out of time order (one speaker's lines first); turns follow start times."""
    d = "Ses01F_script02_1"
    timed = [(1.0, f"{d}_F000"), (2.5, f"{d}_M000"), (4.0, f"{d}_F001"), (5.5, f"{d}_M001"), (7.0, f"{d}_F002")]
    by_speaker = sorted(timed, key=lambda t: t[1][-4])  # F lines, then M lines
    summary = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n" + "".join(
        _line(start, utt, "neu") + "\n" for start, utt in by_speaker
    )
    transcript = "".join(f"{utt} [{start:08.4f}-{start + 1:08.4f}]: words here.\n" for start, utt in by_speaker)
    write_dialog(tmp_path, 1, d, summary, transcript, [utt for _, utt in timed])
    manifest = load_corpus(tmp_path, sessions=(1,)).manifest()
    assert list(manifest["utterance_id"]) == [utt for _, utt in by_speaker]  # the files' order ...
    turns = DialogTurns.from_manifest(manifest)
    in_time = [utt for _, utt in timed]
    assert list(manifest["utterance_id"].iloc[turns.dialog_order(0)]) == in_time  # ... is not the turn order
    windows = turns.windows(np.array([manifest.index[manifest["utterance_id"] == f"{d}_F001"][0]]), 2, 1)
    assert [manifest["utterance_id"].iloc[r] if r >= 0 else None for r in windows.rows[0]] == in_time[:4]
    assert windows.same_speaker[0].tolist() == [True, False, True, False]  # both speakers, marked


def test_windows_stop_at_dialog_ends(demo_manifest):
    turns = DialogTurns.from_manifest(demo_manifest)
    for dialog, group in demo_manifest.groupby("dialog"):
        ordered = turns.dialog_order(int(group.index[0]))
        assert list(ordered) == list(group.sort_values("start").index)
        windows = turns.windows(ordered, 2, 2)
        assert windows.rows[0].tolist()[:2] == [-1, -1] and windows.rows[-1].tolist()[3:] == [-1, -1]
        assert (windows.rows[:, 2] == ordered).all()
        assert set(demo_manifest["dialog"].iloc[windows.rows[windows.mask]]) == {dialog}
        if len(ordered) < 8:  # a dialog of mostly unrated (xxx) turns: no full window in its middle
            continue
        middle = windows.rows[5]
        assert middle.tolist() == list(ordered[3:8])
        speakers = demo_manifest["speaker"].to_numpy()
        assert (windows.same_speaker[5] == (speakers[middle] == speakers[ordered[5]])).all()


def _small(**values) -> TrialConfig:
    base = {
        "epochs": 1,
        "batch_size": 8,
        "fusion_dim": 16,
        "audio.channels": 8,
        "audio.hidden": 8,
        "text.embed_dim": 8,
        "text.hidden": 8,
        "explain_samples": 2,
        "explain_steps": 2,
    }
    return TrialConfig.from_flat(base | values)


@pytest.fixture(scope="module")
def small_pair_data(tmp_path_factory, demo_manifest):
    cfg = _small()
    return load_pair_data(
        get_pair("cnnbilstm_bilstm"),
        cfg,
        demo_manifest,
        FeatureCache(tmp_path_factory.mktemp("features")),
        progress=False,
    )


def test_a_batch_encodes_each_distinct_turn_once(small_pair_data):
    data = small_pair_data
    cfg = _small(**{"context.past_turns": 2, "context.future_turns": 1})
    model = build_pair_model(get_pair("cnnbilstm_bilstm"), cfg, data, np.arange(len(data.manifest))).eval()
    torch.nn.init.normal_(model.context.out.weight, std=0.1)  # trained, not zero as at the start
    rows = data.dialogs.dialog_order(0)[2:10]  # consecutive turns: their windows overlap
    batch = model.collate(data.features, rows)
    distinct = np.unique(data.dialogs.windows(rows, 2, 1).rows)
    distinct = distinct[distinct >= 0]
    assert len(distinct) == 8 + 2 + 1 < 8 * 4
    encoded = []
    for encoder in model.encoders.values():

        def counted(embedded, encode=encoder.encode):
            encoded.append(embedded.x.shape[0])
            return encode(embedded)

        encoder.encode = counted
    with torch.no_grad():
        logits = model(batch)
    assert logits.shape == (8, 6) and encoded == [len(distinct), len(distinct)]
    # a turn's score does not depend on its batch-mates, nor on any label
    one_by_one = np.concatenate([predict(model, data, rows[i : i + 1], CPU, 1) for i in range(len(rows))])
    np.testing.assert_allclose(predict(model, data, rows, CPU, 4), one_by_one, atol=1e-5)
    np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), one_by_one, atol=1e-5)
    data.labels = data.labels[::-1].copy()
    try:
        np.testing.assert_allclose(predict(model, data, rows, CPU, 4), one_by_one, atol=1e-5)
    finally:
        data.labels = data.labels[::-1].copy()


@pytest.mark.parametrize("layer", ["lstm", "transformer"])
@pytest.mark.parametrize("past, future", [(3, 0), (2, 2)])
def test_turn_reader_never_reads_missing_turns(layer, past, future):
    torch.manual_seed(0)
    reader = TurnContext(8, ContextConfig(past, future, layer), dropout=0.0).eval()
    torch.nn.init.normal_(reader.out.weight)  # trained, not zero as at the start
    width = past + 1 + future
    mask = torch.ones(2, width, dtype=torch.bool)
    mask[0, 0] = False  # the first target sits near its dialog's start
    index = torch.arange(2 * width).view(2, width)
    plan = {"index": index, "mask": mask, "same_speaker": torch.zeros(2, width, dtype=torch.bool)}
    fused = torch.randn(2 * width, 8)
    changed = fused.clone()
    changed[0] = 100.0  # the missing turn's slot
    with torch.no_grad():
        torch.testing.assert_close(reader(fused, plan), reader(changed, plan))
        # the current turn's own vector reaches the output through the residual
        assert not torch.allclose(reader(fused, plan)[1], reader(fused + 1.0, plan)[1])


def _reference_batch() -> dict:
    generator = torch.Generator().manual_seed(1)
    frames = torch.randn(3, 40, 16, generator=generator)
    frames_mask = torch.arange(40)[None] < torch.tensor([40, 25, 12])[:, None]
    tokens = torch.randint(2, 12, (3, 7), generator=generator)
    tokens_mask = torch.arange(7)[None] < torch.tensor([7, 4, 2])[:, None]
    return {
        "audio": {"frames": frames * frames_mask[..., None], "mask": frames_mask},
        "text": {"tokens": tokens * tokens_mask, "mask": tokens_mask},
    }


# Parameter counts and logits of the utterance-level model before context existed (same seed, same inputs).
BEFORE_CONTEXT = {
    "concat": (15878, [-0.041952, -0.009108, 0.118042, -0.052595, 0.010151, 0.098347]),
    "gated": (16934, [0.110235, 0.078306, -0.005863, 0.099693, 0.081739, -0.012272]),
    "attention": (26374, [0.149974, 0.158896, 0.048018, 0.145475, 0.166375, 0.058526]),
}


@pytest.mark.parametrize("fusion", list(BEFORE_CONTEXT))
def test_context_zero_is_the_utterance_level_model(fusion, demo_manifest):
    cfg = TrialConfig.from_flat(
        {
            "fusion": fusion,
            "fusion_dim": 32,
            "audio.channels": 16,
            "audio.hidden": 16,
            "audio.n_mels": 16,
            "text.embed_dim": 16,
            "text.hidden": 16,
        }
    )
    torch.manual_seed(0)
    encoders = {
        "audio": CnnBiLstm(cfg, 16, np.zeros(16), np.ones(16)),
        "text": WordBiLstm(cfg, {f"w{i}": i + 2 for i in range(10)}),
    }
    model = EmotionModel(encoders, cfg, dialogs=DialogTurns.from_manifest(demo_manifest)).eval()
    with torch.no_grad():
        logits = model(_reference_batch())
    params, first = BEFORE_CONTEXT[fusion]
    assert model.context is None and sum(p.numel() for p in model.parameters()) == params
    np.testing.assert_allclose(logits[:2, :3].flatten().numpy(), first, atol=1e-5)


def test_context_keys_are_config_keys():
    cfg = TrialConfig.from_flat(parse_overrides(["context.past_turns=3", "context.layer=transformer"]))
    assert cfg.context == ContextConfig(past_turns=3, layer="transformer") and cfg.context.enabled
    assert TrialConfig.from_flat(cfg.flat()) == cfg
    assert not TrialConfig().context.enabled


# trains and explains a context model: the training-heavy lane (88 s measured under load)
@pytest.mark.slow
def test_a_context_model_trains_and_is_explained_with_its_window(small_pair_data, demo_manifest):
    cfg = _small(**{"context.past_turns": 2})
    fold = make_fold(demo_manifest, 5)
    model = build_pair_model(get_pair("cnnbilstm_bilstm"), cfg, small_pair_data, fold.train)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = train_step(
        model,
        small_pair_data,
        fold.train[:8],
        optimizer,
        torch.nn.CrossEntropyLoss(),
        CPU,
        torch.autocast("cpu", enabled=False),
        1.0,
    )
    assert math.isfinite(loss) and all(p.grad is not None for p in model.context.parameters())
    explained = explain_fold(model, small_pair_data, fold.test[:6], fold.train, cfg, CPU)
    assert explained.record.n_samples == 2 and all(map(math.isfinite, explained.record.completeness_error.values()))


def test_context_training_batches_are_runs_of_consecutive_turns(demo_manifest):
    turns = DialogTurns.from_manifest(demo_manifest)
    rows = make_fold(demo_manifest, 5).train
    chunks = dialog_batches(rows, turns, 16, np.random.default_rng(0))
    assert sorted(np.concatenate(chunks)) == sorted(rows)
    union = [len(np.unique(turns.windows(c, 2, 2).rows)) for c in chunks]
    assert sum(union) < 2 * len(rows) < 5 * len(rows)  # far below one full window per target
    assert all((np.diff(turns.position[c]) > 0).sum() >= len(c) - 2 for c in chunks)  # time order, <= 1 dialog jump
