"""``python -m harness.benchmark``: same budget per pair, a multi-seed final stage, tables from predictions."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from harness.corpus import load_corpus
from harness.corpus.demo import ensure_demo_corpus
from harness.store import Storage
from tests.integration.conftest import harness

pytestmark = pytest.mark.slow


@pytest.mark.timeout(1500)  # the benchmark subprocess alone may take 900 s on a loaded machine
def test_benchmark_final_stage_predictions_and_tables(tmp_path, env):
    results = tmp_path / "results"
    pairs = ["cnnbilstm_bilstm", "cnnbilstm", "bilstm"]
    args = ["--pairs", *pairs, "--num-samples", "2", "--seeds", "2", "--folds", "4", "5", "--results", str(results)]
    args += ["--inner-folds", "2"]  # nested: each test fold's 2 configs compared on 2 of its inner folds
    args += ["--set", "epochs=3", "--set", "explain_samples=2", "--set", "explain_steps=4"]
    result = harness("benchmark", *args, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # the overall bar's total is the benchmark's trials from its first line to its last: 3 pairs x (2 trials x
    # 2 test folds searched + 1 config x 2 seeds in the final stage)
    totals = re.findall(r"\d+/(\d+) trials", result.stderr)
    assert totals and set(totals) == {"18"}, sorted(set(totals))
    # no third-party bars and no colour codes (SGR escapes); the harness's own nested bars may move the cursor
    assert "Writing model shards" not in result.stderr and not re.search(r"\x1b\[[0-9;]*m", result.stderr)
    manifest = load_corpus(ensure_demo_corpus(env["HARNESS_CACHE"])).manifest()
    test_ids = {fold: set(manifest[manifest.session == fold].utterance_id) for fold in (4, 5)}
    for pair in pairs:
        predictions = Storage(results / "ray").run(f"{pair}_demo_bench_final").predictions()
        for (_seed, fold), group in predictions.groupby(["seed", "fold"]):
            assert set(group.utterance_id) == test_ids[fold] and group.utterance_id.is_unique  # each once
        # final seeds never reuse the search's seed 0
        assert sorted(predictions.seed.unique()) == [1, 2] and sorted(predictions.fold.unique()) == [4, 5]
    comparison = pd.read_csv(results / "comparison_full.csv")
    assert set(comparison.pair) == set(pairs) and set(comparison.stage) == {"final"}
    assert (comparison.seeds == 2).all() and (comparison.search_trials == 4).all()  # 2 per test fold
    # the final stage explains every pair (faithfulness itself is NaN where a 3-epoch model barely relies on
    # a modality: below the normaliser's floor)
    assert comparison.explain_level.notna().all() and (comparison.explain_level != "").all()
    explained = pd.read_csv(results / "explainability.csv")
    assert set(explained.pair) == set(pairs) and {"sanity_rank_corr", "completeness_error"} <= set(explained.metric)
    for column in ("latency_1s_ms", "latency_4s_ms", "latency_10s_ms", "rtf_4s", "gflops_4s"):
        assert (comparison[column] > 0).all(), column
    assert (comparison.extraction_s >= 0).all()  # log-mel takes seconds; a word lookup rounds to 0.0
    assert (comparison.set_index("pair").extraction_s[["cnnbilstm_bilstm", "cnnbilstm"]] > 0).all()
    report = (results / "report.md").read_text()
    assert "| pair" in report and "[comparison_full.md](comparison_full.md)" in report
    pairwise = pd.read_csv(results / "pairwise.csv")
    assert len(pairwise) == 3 and {"ci_low", "ci_high", "p", "holm_p", "bh_p", "family"} <= set(pairwise.columns)
    assert sorted(pairwise.family) == ["exploratory", "fusion", "fusion"]  # the fusion gains: their own family
    assert (pairwise.n_sessions == 2).all() and (results / "subsets.csv").exists()
    gain = pd.read_csv(results / "fusion_gain.csv")
    assert sorted(gain.baseline) == ["bilstm", "cnnbilstm"]
    assert (
        "Budget: 2 trials per pair and test fold, each on 2 of 4 inner folds"
        in (results / "comparison_full.md").read_text()
    )
    selected = pd.read_csv(results / "selected_configs.csv")
    assert len(selected) == 6 and not selected.test_session_chose_it.any()  # 3 pairs x 2 test folds, nested
    for png in ("per_emotion_f1.png", "f1_vs_params.png", "f1_vs_memory.png"):
        assert (results / png).stat().st_size > 1000

    more = list(args)
    more[more.index("--seeds") + 1] = "3"
    more_seeds = harness("benchmark", *more, env=env, timeout=120)  # the finished benchmark with other seeds
    assert more_seeds.returncode == 2 and "this run was started with other options" in more_seeds.stderr
    assert "final" in more_seeds.stderr and "Traceback" not in more_seeds.stderr
