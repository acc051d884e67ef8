"""``harness audit`` end to end: it passes on a nested run and fails on a test-selected run of the same
corpus and budget; and a kept model of a benchmark's final stage reproduces, through ``harness predict``, the
predictions the final stage stored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.corpus.source import resolve_corpus
from harness.store import Storage
from tests.integration.conftest import harness

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
# One config, one seed, six epochs with no early stop: what test-selected chooses on the test labels is the
# best epoch, and rotated labels move it.
DESIGN = ["--pairs", "bilstm", "--fold", "1", "--num-samples", "1", "--seeds", "1", "--set", "epochs=6"]
DESIGN += ["--set", "patience=6", "--set", "explain_samples=0"]


@pytest.mark.timeout(1500)
def test_audit_passes_nested_loso_and_fails_test_selected(tmp_path, env):
    nested = harness("cli.audit", *DESIGN, "--inner-folds", "1", "--results", str(tmp_path), env=env, timeout=900)
    assert nested.returncode == 0, nested.stdout[-3000:] + nested.stderr[-3000:]
    assert "PASS" in nested.stdout and "0 of 90 predictions on fold 1 moved" in nested.stdout
    leaky = harness(
        "cli.audit", *DESIGN, "--protocol", "test-selected", "--results", str(tmp_path), env=env, timeout=900
    )
    assert leaky.returncode == 1, leaky.stdout[-3000:] + leaky.stderr[-3000:]
    assert "FAIL (leak)" in leaky.stdout


@pytest.mark.timeout(900)
def test_predict_on_a_kept_model_reproduces_the_stored_test_predictions(tmp_path, env, monkeypatch):
    args = ["--pairs", "cnnbilstm_bilstm", "--num-samples", "1", "--seeds", "1", "--folds", "2", "--inner-folds", "1"]
    args += ["--set", "epochs=1", "--set", "explain_samples=0", "--set", "audio.channels=8", "--no-report"]
    result = harness("benchmark", *args, "--results", str(tmp_path), env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    final = Storage(tmp_path / "ray").run("cnnbilstm_bilstm_demo_bench_final")
    stored = final.predictions().sort_values("utterance_id").reset_index(drop=True)
    monkeypatch.setenv("HARNESS_CACHE", env["HARNESS_CACHE"])  # the demo corpus the benchmark read
    corpus, _ = resolve_corpus(None)
    # the whole test session: a context model reads neighbouring turns among the manifest's rows
    rows = corpus.manifest().set_index("utterance_id").loc[stored.utterance_id].reset_index()
    rows[["utterance_id", "wav_path", "text", "dialog", "start", "end", "speaker"]].to_csv(
        tmp_path / "m.csv", index=False
    )
    predicted = harness(
        "cli.predict",
        "--run",
        "bench",
        "--pair",
        "cnnbilstm_bilstm",
        "--fold",
        "2",
        "--manifest",
        str(tmp_path / "m.csv"),
        "--out",
        str(tmp_path / "p.csv"),
        "--results",
        str(tmp_path),
        env=env,
    )
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    table = pd.read_csv(tmp_path / "p.csv")
    columns = [c for c in stored.columns if c.startswith("p_")]
    np.testing.assert_allclose(table[columns].to_numpy(), stored[columns].to_numpy(), atol=1e-5)
    exported = harness(
        "cli.export",
        "--run",
        "bench",
        "--pair",
        "cnnbilstm_bilstm",
        "--fold",
        "2",
        "--format",
        "onnx",
        "--repeats",
        "2",
        "--results",
        str(tmp_path),
        env=env,
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert "latency" in exported.stdout and "report" in exported.stdout
