"""Other corpora and ASR text end to end: a manifest corpus, a CREMA-D release, and gold vs ASR text on the
demo corpus, each through ``python -m harness.search --smoke-test`` (generated corpora, tiny models)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness.corpus.synthetic import write_crema_d, write_manifest_corpus
from harness.report.tables import write_reports
from harness.store import Storage
from tests.integration.conftest import harness

pytestmark = [pytest.mark.slow, pytest.mark.heavy, pytest.mark.timeout(1500)]


def _search(env: dict, results: Path, *args: str) -> None:
    result = harness("search", "--smoke-test", "--results", str(results), *args, env=env, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]


def test_manifest_corpus_end_to_end(tmp_path, env):
    manifest = write_manifest_corpus(tmp_path / "corpus", cache_dir=env["HARNESS_CACHE"])
    _search(env, tmp_path / "results", "--pair", "bilstm", "--data", str(manifest))
    store = Storage(tmp_path / "results" / "ray").run("bilstm_manifest_smoke")
    records = store.records()
    assert any(r.status == "finished" for r in records) and not any(r.status == "failed" for r in records)
    meta = records[0].meta
    assert meta.data_source.startswith("SYNTHETIC manifest")
    assert "leave-one-group-out over 5 speaker groups" in meta.data_source
    assert "leave-one-group-out" in (tmp_path / "results" / "smoke_runs.md").read_text()  # in the report header


def test_crema_d_release_end_to_end(tmp_path, env):
    root = write_crema_d(tmp_path / "crema", cache_dir=env["HARNESS_CACHE"])
    _search(env, tmp_path / "results", "--pair", "cnnbilstm", "--data", str(root), "--classes", "4")
    records = Storage(tmp_path / "results" / "ray").run("cnnbilstm_crema-d_4cls_smoke").records()
    assert any(r.status == "finished" for r in records) and not any(r.status == "failed" for r in records)
    assert "5 groups of actors" in records[0].meta.data_source


def test_gold_vs_asr_text_on_the_demo_corpus(tmp_path, env):
    """Two searches of one pair, gold and ASR text (tiny Whisper); the report sets them side by side with WER."""
    results = tmp_path / "results"
    common = ["--pair", "bilstm", "--protocol", "loso-flat", "--no-report"]  # loso-flat: the search scores a test fold
    _search(env, results, *common)
    _search(env, results, *common, "--text-source", "asr")
    storage = Storage(results / "ray")
    asr = storage.run("bilstm_demo_loso-flat_asr_smoke").records()[0].meta
    assert asr.text_source == "asr" and Path(asr.asr_model).name == "whisper_asr"
    assert asr.wer["words_5"] > 0 and asr.wer["errors_5"] > 0  # a random-init model gets words wrong
    gold = storage.run("bilstm_demo_loso-flat_smoke").records()[0].meta
    assert gold.text_source == "gold" and gold.wer == {}
    assert len([p for p in Path(env["HARNESS_CACHE"], "features").glob("asr-*") if p.is_dir()]) == 1  # once
    write_reports(results, results / "ray")
    wer = pd.read_csv(results / "wer.csv")
    assert wer["wer"].tolist() == [pytest.approx(asr.wer["errors_5"] / asr.wer["words_5"], abs=1e-4)]
    factor = pd.read_csv(results / "text_source.csv")
    assert factor[["pair", "sessions"]].values.tolist() == [["bilstm", 1]]
    assert {"gold_f1", "asr_f1", "asr_minus_gold", "wer"} <= set(factor.columns)
