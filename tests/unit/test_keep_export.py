"""Kept models (harness.train.keep) and their export (harness.train.export) on the small pair: a kept model
rebuilt from the run's books alone gives, from the wav and the transcript, the probabilities the final
stage computed from cached features; TorchScript and ONNX exports equal it within 1e-4."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from harness.config import TrialConfig
from harness.corpus.folds import make_folds
from harness.features import FeatureCache
from harness.features.frontends import load_audio
from harness.models.data import load_pair_data
from harness.models.fusion import build_pair_model
from harness.models.pairs import get_pair
from harness.store import Storage
from harness.train.batching import predict
from harness.train.export import FORMATS, TOLERANCE, export_and_check
from harness.train.keep import KeptInfo, KeptModelError, kept_folds, load_kept, probabilities, save_kept

SMALL = {
    "batch_size": 16,
    "fusion_dim": 16,
    "audio.channels": 8,
    "audio.hidden": 8,
    "text.embed_dim": 8,
    "text.hidden": 8,
    "seed": 1,
}


@pytest.fixture(scope="module")
def kept_run(demo_manifest, tmp_path_factory):
    """A cnnbilstm_bilstm model of fold 1 (random init, perturbed), kept in a run's books. A few utterances of
    Sessions 1-3 only (fewer features to extract): fold 1 tests on 1, validates on 2, trains on 3."""
    demo_manifest = demo_manifest.groupby("session").head(12)
    demo_manifest = demo_manifest[demo_manifest.session <= 3].reset_index(drop=True)
    cfg = TrialConfig.from_flat(SMALL)
    pair = get_pair("cnnbilstm_bilstm")
    data = load_pair_data(pair, cfg, demo_manifest, FeatureCache(tmp_path_factory.mktemp("features")), progress=False)
    fold = make_folds(demo_manifest, (1,))[0]
    torch.manual_seed(0)
    model = build_pair_model(pair, cfg, data, fold.train).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    rows = fold.test[:8]
    stored = predict(model, data, rows, torch.device("cpu"), cfg.batch_size)
    store = Storage(tmp_path_factory.mktemp("ray")).run("cnnbilstm_bilstm_demo_bench_final")
    store.write("run.json", {"pair": pair.name})  # what makes the folder a run of the storage
    save_kept(store, model, KeptInfo(pair.name, 1, 1, store.name, "t0", cfg.flat(), data.classes, latency_4s_ms=3.0))
    return store, demo_manifest.iloc[rows], stored


def test_kept_model_reproduces_the_stored_predictions_from_wav_and_text(kept_run):
    store, rows, stored = kept_run
    assert kept_folds(store) == [1]
    kept = load_kept(store, 1)
    assert kept.classes == ("neu", "ang", "hap", "sad", "fru", "exc")
    assert kept.info.vocabularies["text"]  # the fold's vocabulary travelled with the weights
    got = np.stack([probabilities(kept, load_audio(r.wav_path, 16_000), r.text) for r in rows.itertuples()])
    np.testing.assert_allclose(got, stored, atol=1e-5)
    assert (got.argmax(1) == stored.argmax(1)).all()


def test_a_missing_fold_or_a_damaged_book_is_one_clear_error(kept_run):
    store, _, _ = kept_run
    with pytest.raises(KeptModelError, match="no kept model for fold 3 .kept: 1"):
        load_kept(store, 3)
    info = f"{store.path}/harness/models/fold1/kept.json"
    raw = json.loads(open(info).read())
    broken = store.path + "_broken"
    import shutil

    shutil.copytree(store.path, broken)
    with open(f"{broken}/harness/models/fold1/kept.json", "w") as out:
        json.dump(raw | {"schema": 99}, out)
    with pytest.raises(KeptModelError, match="schema 99"):
        load_kept(Storage(broken.rsplit("/", 1)[0]).run(broken.rsplit("/", 1)[1]), 1)


@pytest.mark.slow  # two exports and their timing: about a minute on a loaded 2-core machine
@pytest.mark.parametrize("fmt", FORMATS)
def test_export_equals_the_stored_model(kept_run, tmp_path, fmt):
    store, _, _ = kept_run
    kept = load_kept(store, 1)
    exported = export_and_check(kept, tmp_path / f"model.{fmt}", fmt, repeats=2)
    assert exported.max_abs_diff <= TOLERANCE
    assert exported.path.exists() and exported.latency_4s_ms > 0 and exported.report_latency_4s_ms == 3.0
    sidecar = json.loads((tmp_path / f"model.{fmt}.json").read_text())
    assert sidecar["inputs"] == ["audio.frames", "audio.mask", "text.mask", "text.tokens"]
    assert sidecar["classes"] == list(kept.classes)


def test_predict_command_on_one_wav_and_on_a_manifest(kept_run, tmp_path, capsys):
    from harness.cli.main import main

    store, rows, stored = kept_run
    storage = store.storage
    first = rows.iloc[0]
    args = ["--run", "bench", "--pair", "cnnbilstm_bilstm", "--fold", "1", "--storage", storage]
    assert main(["predict", *args, first.wav_path, "--text", first.text]) == 0
    printed = capsys.readouterr().out
    classes = ("neu", "ang", "hap", "sad", "fru", "exc")
    assert f"{first.utterance_id}: {classes[int(stored[0].argmax())]}" in printed
    rows[["utterance_id", "wav_path", "text"]].to_csv(tmp_path / "m.csv", index=False)
    assert main(["predict", *args, "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "p.csv")]) == 0
    import pandas as pd

    table = pd.read_csv(tmp_path / "p.csv")
    np.testing.assert_allclose(table[[f"p_{c}" for c in classes]].to_numpy(), stored, atol=1e-5)
    bad = rows[["wav_path", "text"]].copy()
    bad.iloc[1, 0] = "missing.wav"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    assert main(["predict", *args, "--manifest", str(tmp_path / "bad.csv")]) == 2
    assert "bad.csv:3: no such wav file missing.wav" in capsys.readouterr().err
    assert (
        main(
            [
                "predict",
                "--run",
                "nope",
                "--pair",
                "cnnbilstm_bilstm",
                "--fold",
                "1",
                "--storage",
                storage,
                first.wav_path,
            ]
        )
        == 2
    )
