"""harness.report.summary (report.md) and harness.report.costs: the headline answers from the stored runs,
costs charged in full to every pair, every table and plot linked."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.corpus import EMOTIONS
from harness.records import EpochStat, FoldRecord, Metrics, Resources, RunMeta, TrialRecord
from harness.report import stats
from harness.report.costs import extraction_cost
from harness.report.summary import pair_order
from harness.report.tables import write_reports
from harness.store import Storage, write_json
from tests.fixtures.books import write_identity
from tests.fixtures.predictions import random_runs

GRID = {"cnnbilstm_bilstm": 0.55, "wav2vec_bilstm": 0.7, "cnnbilstm_albert": 0.6, "wav2vec_albert": 0.8}
SIZES = {"cnnbilstm_bilstm": 1.0, "wav2vec_bilstm": 95.0, "cnnbilstm_albert": 12.0, "wav2vec_albert": 106.0}
LOGMEL = {"kind": "logmel", "n_mels": 64, "extract_seconds": 5.0, "device_seconds": 9.0, "energy_j": None}
W2V = {"kind": "layer_means", "model": "w2v", "extract_seconds": 100.0, "device_seconds": 90.0, "energy_j": 2000.0}
ALBERT = {"kind": "layer_means", "model": "albert", "extract_seconds": 20.0, "device_seconds": 18.0, "energy_j": None}
WORDS = {"kind": "words", "extract_seconds": 1.0, "device_seconds": 1.0, "energy_j": None}
SPECS = {
    "cnnbilstm_bilstm": [LOGMEL, WORDS],
    "wav2vec_bilstm": [W2V, WORDS],
    "cnnbilstm_albert": [LOGMEL, ALBERT],
    "wav2vec_albert": [W2V, ALBERT],
}


def metrics(f1: float) -> Metrics:
    return Metrics(f1, f1, f1, f1, {e: f1 for e in EMOTIONS}, [[1] * 6 for _ in range(6)], 10)


def resources(pair: str, first: bool) -> Resources:
    size = SIZES[pair]
    return Resources(
        int(size * 1e6), int(size * 1e6), None, None, 0.5, 0.1, size / 100, 100.0, None, 10.0, 500.0, "cpu",
        latency_1s_ms=size / 4 if first else None,
        latency_4s_ms=size if first else None,
        latency_10s_ms=size * 2.5 if first else None,
        rtf_4s=size / 4000 if first else None,
        latency_repeats=30 if first else 0,
        gflops_4s=size * 0.7 if first else None,
        device_seconds=36.0,  # every fold: 0.01 device-hours
        params_by_modality={"audio": int(size * 6e5), "text": int(size * 4e5)},
    )  # fmt: skip


def write_pair(results: Path, pair: str, accuracy: float) -> None:
    """A search run (3 trials, 2 folds each) and a final run (2 seeds x 5 folds, predictions) of ``pair``."""
    folds = (1, 2, 3, 4, 5)
    for stage, run, trials in (("search", f"{pair}_s", 3), ("final", f"{pair}_f", 2)):
        meta = RunMeta(pair, run, "demo", "x", {}, folds, 0, False)
        store = Storage(results / "ray").run(run)
        write_identity(store, pair)
        store.write("search.json", {"extraction": SPECS[pair], "gpus_per_trial": 0.0, "wall_s": 50.0})
        if stage == "final":
            store.write("final_configs.json", {"budget": "b", "search_run": f"{pair}_s", "configs": []})
        for i in range(trials):
            n_folds = 5 if stage == "final" else 2
            history = [EpochStat(e, 1.0 / e, accuracy - 0.1 / e) for e in range(1, 4)]
            records = [
                FoldRecord(f, "Ses01F", 3, 3, "max_epochs", metrics(accuracy), metrics(accuracy),
                           resources(pair, f == 1), history=history)
                for f in folds[:n_folds]
            ]  # fmt: skip
            config = {"seed": i, "audio.finetune_layers": 0, "text.finetune_layers": 0}
            status = "finished" if stage == "final" else "stopped_early"
            record = TrialRecord(meta, f"t{i}", config, status, records, stage=stage)
            trial = f"{store.path}/run_trial_t{i}"
            write_json(store.fs, f"{trial}/record.json", record.to_dict())
            if stage == "final":
                (Path(trial) / "checkpoint_000004").mkdir()
                predictions = random_runs(np.random.default_rng(len(pair)), pair, accuracy, [i], 30, (10, 10))
                predictions.to_parquet(Path(trial) / "checkpoint_000004" / "predictions.parquet")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    for pair, accuracy in GRID.items():
        write_pair(results, pair, accuracy)
    path = write_reports(results)
    return results, path


def test_pairs_are_ordered_by_the_question():
    pairs = ["bilstm", "wav2vec_albert", "cnnbilstm_albert", "wav2vec_bilstm", "cnnbilstm_bilstm", "wav2vec"]
    order = pair_order(pairs)
    assert order[0] == "cnnbilstm_bilstm" and order[3] == "wav2vec_albert"  # small-small ... large-large
    assert set(order[1:3]) == {"wav2vec_bilstm", "cnnbilstm_albert"} and set(order[4:]) == {"bilstm", "wav2vec"}


def _headline(text: str) -> list[list[str]]:
    table = [line for line in text.split("\n\n") if line.startswith("| pair")][0]
    return [[c.strip() for c in row.strip("|").split("|")] for row in table.splitlines() if not row.startswith("|:")]


def test_report_starts_with_a_short_headline_that_answers_from_the_predictions(report):
    results, path = report
    assert path == results / "report.md"
    text = path.read_text()
    rows = _headline(text)
    header, body = rows[0], rows[1:]
    assert len(header) <= 12
    names = [r[0] for r in body]  # small-small, the two single swaps (registry order), large-large
    assert names[0] == "cnnbilstm_bilstm" and names[3] == "wav2vec_albert"
    assert set(names[1:3]) == {"wav2vec_bilstm", "cnnbilstm_albert"}
    assert body[0][1] == "cnn_bilstm 0.6M, trained" and body[3][1] == "wav2vec2 63.6M, frozen"
    for row in body:  # every figure rounded: no long decimals or exponents
        assert not re.search(r"\d\.\d{4,}|e[-+]\d", " ".join(row)), row
    # the answer is computed: the large-large pair's difference is the speaker-level one of the statistics
    frames = {
        p: pd.concat([pd.read_parquet(f) for f in (results / "ray" / f"{p}_f").rglob("predictions.parquet")])
        for p in ("wav2vec_albert", "cnnbilstm_bilstm")
    }
    expected = stats.primary_difference(frames["wav2vec_albert"], frames["cnnbilstm_bilstm"], "weighted_f1")
    # the Answer is written from the verdicts (issue 27): the factorial terms, after what the run can decide
    assert text.index("What this run can decide") < text.index("| pair") < text.index("**Answer**")
    assert "- audio size main effect: " in text and "Holm p " in text
    assert "wav2vec_albert (audio cnn_bilstm → wav2vec2, text bilstm → albert): at " in text  # its cost
    assert body[3][5] == f"{expected.estimate:+.3f} [{expected.ci_low:+.3f}, {expected.ci_high:+.3f}]"
    assert "106× the 4-s latency" in text  # 106 ms vs 1 ms


def test_report_links_every_table_and_plot_that_exists(report):
    results, path = report
    text = path.read_text()
    linked = set(re.findall(r"\]\(([^)]+)\)", text))
    assert all((results / name).exists() for name in linked)
    for stem in ("comparison_full", "pairwise", "fusion_gain", "factorial", "per_fold", "importance"):
        assert f"{stem}.md" in linked and f"{stem}.csv" in linked
    pngs = {p.name for p in results.glob("*.png")}
    assert pngs <= linked
    for expected in ("f1_vs_latency.png", "f1_vs_gflops.png", "f1_vs_compute.png", "learning_curves.png",
                     "per_session.png", "expected_max_validation_f1.png"):  # fmt: skip
        assert expected in pngs
    assert not (results / "comparison.md").exists()


def test_costs_charge_every_pair_the_full_extraction_of_what_it_reads(report):
    results, _ = report
    table = pd.read_csv(results / "comparison_full.csv").set_index("pair")
    for column in ("extraction_s", "latency_1s_ms", "latency_4s_ms", "latency_10s_ms", "rtf_4s", "gflops_4s"):
        assert table[column].notna().all(), column
    # wav2vec2's layer means are charged in full to both pairs that read them
    assert table.loc["wav2vec_bilstm", "extraction_s"] == 101.0 and table.loc["wav2vec_albert", "extraction_s"] == 120.0
    # device-hours: 3 search trials x 2 folds + 2 final trials x 5 folds, 36 s each, plus extraction
    trials_s = (3 * 2 + 2 * 5) * 36.0
    assert table.loc["wav2vec_albert", "device_hours"] == pytest.approx((trials_s + 108.0) / 3600, abs=1e-5)
    assert table.loc["wav2vec_albert", "extraction_energy_kj"] == 2.0
    assert table.loc["cnnbilstm_bilstm", "device_hours_basis"] == "measured"
    assert np.isnan(table.loc["cnnbilstm_bilstm", "energy_kj"])  # no per-process energy: never device-wide sums


def test_extraction_cost_counts_each_spec_once_whichever_run_listed_it():
    search = {"extraction": [LOGMEL, W2V]}
    final = {"extraction": [dict(W2V), WORDS]}  # the final stage lists the same wav2vec2 spec again
    cost = extraction_cost([search, final])
    assert cost.specs == 3 and cost.seconds == 106.0 and cost.device_seconds == 100.0 and cost.energy_kj == 2.0
    assert extraction_cost([final, search]) == cost
