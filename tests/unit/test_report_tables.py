"""harness.report.tables: numbers in the CSVs, groups that never mix, smoke runs kept out, final-stage stats."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.corpus import EMOTIONS
from harness.records import FoldRecord, Metrics, Resources, RunMeta, TrialRecord
from harness.report.inference import SESSION_T
from harness.report.multiplicity import benjamini_hochberg, holm
from harness.report.tables import _stat, markdown_table, write_reports
from harness.store import Storage, write_json
from tests.fixtures.books import write_identity
from tests.fixtures.predictions import random_runs


def test_stat_columns_are_numbers_with_sample_std_and_one_value_has_no_spread():
    assert _stat("f1", [0.5, 0.7]) == {"f1": 0.6, "f1_std": round(float(np.std([0.5, 0.7], ddof=1)), 4)}
    one = _stat("f1", [0.5])
    assert one["f1"] == 0.5 and pd.isna(one["f1_std"])
    assert pd.isna(_stat("f1", [])["f1"])


def test_markdown_view_merges_mean_and_std_and_writes_missing_as_na():
    frame = pd.DataFrame(
        [
            {"pair": "a", "f1": 0.6, "f1_std": 0.1, "energy_kj": float("nan"), "trials": 3},
            {"pair": "b", "f1": 0.25, "f1_std": float("nan"), "energy_kj": 1.5, "trials": 2},
        ]
    )
    lines = markdown_table(frame).splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == ["pair", "f1", "energy_kj", "trials"]
    assert [c.strip() for c in lines[2].strip("|").split("|")] == ["a", "0.600 ± 0.100", "n/a", "3"]
    assert [c.strip() for c in lines[3].strip("|").split("|")] == ["b", "0.250", "1.5", "2"]
    assert lines[1].startswith("|:--") and lines[1].endswith("--:|")  # text left, numbers right


def metrics(f1: float) -> Metrics:
    return Metrics(f1, f1, f1, f1, {e: f1 for e in EMOTIONS}, [[0] * 6 for _ in range(6)], 10)


RESOURCES = Resources(1000, 1000, None, None, 0.5, 0.1, 0.01, 100.0, 1.0, 1.0, None, "cpu")


def write_run(
    results: Path,
    pair: str,
    run: str,
    folds: tuple[int, ...],
    val: list[float],
    test: float = 0.5,
    smoke: bool = False,
    source: str = "demo",
    stage: str = "search",
    protocol: str = "loso",
    predictions: pd.DataFrame | None = None,
    search_run: str = "",
) -> None:
    """A run in the default storage (RESULTS/ray), laid out as the trials and the driver leave it: the
    run's books, one trial folder per validation score (all complete), predictions in a checkpoint."""
    meta = RunMeta(pair, run, source, "x", {}, folds, 0, smoke, protocol=protocol)
    store = Storage(results / "ray").run(run)
    write_identity(store, pair)
    if search_run:
        store.write("final_configs.json", {"budget": "b", "search_run": search_run, "configs": []})
    for i, v in enumerate(val):
        fold_records = [
            FoldRecord(f, "Ses01F", 1, 1, "max_epochs", metrics(v), metrics(test), RESOURCES) for f in folds
        ]
        record = TrialRecord(meta, f"t{i}", {"seed": i}, "finished", fold_records, stage=stage)
        trial = f"{store.path}/run_trial_t{i}"
        write_json(store.fs, f"{trial}/record.json", record.to_dict())
        if predictions is not None and i == 0:
            (Path(trial) / "checkpoint_000004").mkdir()
            predictions.to_parquet(Path(trial) / "checkpoint_000004" / "predictions.parquet")


def test_best_config_never_crosses_fold_sets_or_sources_and_smoke_runs_stay_out(tmp_path):
    write_run(tmp_path, "bilstm", "one_fold", (5,), [0.9], test=0.1)  # a 1-fold run with a great val score
    write_run(tmp_path, "bilstm", "five_folds", (1, 2, 3, 4, 5), [0.4, 0.6], test=0.7)
    write_run(tmp_path, "bilstm", "iemocap", (1, 2, 3, 4, 5), [0.3], test=0.3, source="/data/IEMOCAP")
    write_run(tmp_path, "cnnbilstm", "smoke", (1, 2, 3, 4, 5), [0.99], test=0.99, smoke=True)
    write_reports(tmp_path)
    table = pd.read_csv(tmp_path / "comparison_full.csv")
    rows = {(r.data_source, r.folds): r for r in table.itertuples()}
    assert set(rows) == {("demo", "5"), ("demo", "1 2 3 4 5"), ("/data/IEMOCAP", "1 2 3 4 5")}
    assert rows[("demo", "1 2 3 4 5")].run == "five_folds" and rows[("demo", "1 2 3 4 5")].test_weighted_f1 == 0.7
    assert rows[("demo", "5")].test_weighted_f1 == 0.1  # ranked only against runs of its own fold set
    assert "cnnbilstm" not in set(table.pair)  # the smoke run is not a result
    assert "cnnbilstm" in (tmp_path / "smoke_runs.md").read_text()
    markdown = (tmp_path / "comparison_full.md").read_text()
    assert markdown.count("## ") == 3 and "DEMO CORPUS, NOT IEMOCAP" in markdown


def test_a_final_row_takes_its_search_figures_from_its_own_search_run(tmp_path):
    write_run(tmp_path, "bilstm", "bilstm_demo", (4, 5), [0.9, 0.8, 0.7])  # a separate search, best val F1
    write_run(tmp_path, "bilstm", "bilstm_demo_bench", (4, 5), [0.5, 0.4])  # the benchmark's own search
    write_run(
        tmp_path, "bilstm", "bilstm_demo_bench_final", (4, 5), [0.5], stage="final", search_run="bilstm_demo_bench"
    )
    write_run(tmp_path, "bilstm", "bilstm_orphan_final", (1,), [0.5], stage="final", search_run="deleted")
    write_reports(tmp_path)
    rows = {r.run: r for r in pd.read_csv(tmp_path / "comparison_full.csv").itertuples()}
    assert set(rows) == {"bilstm_demo_bench_final", "bilstm_orphan_final"}
    assert rows["bilstm_demo_bench_final"].search_trials == 2  # not the 3 trials of the other search
    orphan = rows["bilstm_orphan_final"]  # its search is gone: no search figures, not the final stage's
    assert pd.isna(orphan.search_trials) and pd.isna(orphan.search_wall_s) and pd.isna(orphan.device_hours)


def test_final_stage_tables_compare_pairs_and_fusion_against_its_own_baselines(tmp_path):
    accuracy = {"cnnbilstm_bilstm": 0.8, "cnnbilstm": 0.5, "bilstm": 0.6, "wav2vec": 0.7}
    for pair, acc in accuracy.items():
        write_run(
            tmp_path,
            pair,
            f"{pair}_final",
            (1, 2, 3, 4, 5),
            [0.5, 0.7],
            stage="final",
            predictions=random_runs(np.random.default_rng(int(acc * 1000)), pair, acc, [0, 1], 30, (10, 10)),
        )
    write_reports(tmp_path)
    pairwise = pd.read_csv(tmp_path / "pairwise.csv")
    assert list(pairwise.columns[4:13]) == [
        "pair_a",
        "pair_b",
        "orientation",
        "family",
        "diff_weighted_f1",
        "ci_low",
        "ci_high",
        "p",
        "overlap_ci_low",
    ]
    assert len(pairwise) == 6  # every pair of the four models once
    # oriented by the question, never alphabetically: fused minus unimodal, large minus small
    assert set(zip(pairwise.pair_a, pairwise.pair_b, pairwise.orientation)) == {
        ("cnnbilstm_bilstm", "cnnbilstm", "fused - unimodal"),
        ("cnnbilstm_bilstm", "bilstm", "fused - unimodal"),
        ("cnnbilstm_bilstm", "wav2vec", "fused - unimodal"),
        ("wav2vec", "cnnbilstm", "large - small"),
        ("wav2vec", "bilstm", "large - small"),
        ("bilstm", "cnnbilstm", "registry order"),
    }
    rows = pairwise.set_index(["pair_a", "pair_b"])
    assert rows.loc[("cnnbilstm_bilstm", "cnnbilstm")].diff_weighted_f1 > 0  # the fused pair is better
    assert rows.loc[("cnnbilstm_bilstm", "cnnbilstm")].ci_low > 0
    primary = pairwise[pairwise.family == "fusion"]  # the fusion gains: Holm over them only (overlap-aware p)
    assert set(zip(primary.pair_a, primary.pair_b)) == {
        ("cnnbilstm_bilstm", "cnnbilstm"),
        ("cnnbilstm_bilstm", "bilstm"),
    }
    assert primary.holm_p.tolist() == pytest.approx(holm(primary.overlap_p).tolist())
    assert primary.bh_p.isna().all() and set(primary.verdict) <= {"equivalent", "different", "inconclusive"}
    exploratory = pairwise[pairwise.family == "exploratory"]
    assert exploratory.holm_p.isna().all()
    assert exploratory.bh_p.tolist() == pytest.approx(benjamini_hochberg(exploratory.overlap_p).tolist())
    assert (pairwise.n_sessions == 5).all() and (pairwise.method == SESSION_T).all()
    assert {"diff_ua", "ua_ci_low", "ua_ci_high", "ua_p", "ci_low_given_speakers"} <= set(pairwise.columns)
    gain = pd.read_csv(tmp_path / "fusion_gain.csv")
    assert sorted(zip(gain.pair, gain.baseline, gain.baseline_modality)) == [
        ("cnnbilstm_bilstm", "bilstm", "text"),
        ("cnnbilstm_bilstm", "cnnbilstm", "audio"),
    ]
    assert (gain.gain_weighted_f1 > 0).all()
    same = gain.merge(primary, left_on=["pair", "baseline"], right_on=["pair_a", "pair_b"])
    assert len(same) == 2 and (same.holm_p_x == same.holm_p_y).all() and (same.p_x == same.p_y).all()
    markdown = (tmp_path / "pairwise.md").read_text()
    assert not re.search(r"\de-\d", markdown)  # p values rounded for display (the CSV keeps them exact)
    assert "conditional on these speakers" in markdown
    subsets = pd.read_csv(tmp_path / "subsets.csv")
    assert list(subsets.columns[4:]) == ["pair", "subset", "n_utterances", "weighted_f1", "ua", "ci_low", "ci_high"]
    counts = subsets.set_index(["pair", "subset"]).n_utterances
    assert counts[("bilstm", "improvised")] + counts[("bilstm", "scripted")] == counts[("bilstm", "all")]
    assert counts[("bilstm", "scripted")] > 0
    comparison = pd.read_csv(tmp_path / "comparison_full.csv").set_index("pair")
    assert comparison.loc["cnnbilstm_bilstm", "stage"] == "final" and comparison.loc["cnnbilstm_bilstm", "seeds"] == 2
    assert comparison.loc["cnnbilstm_bilstm", "pooled_weighted_f1"] == pytest.approx(0.8, abs=0.06)
    assert comparison.loc["cnnbilstm_bilstm", "val_weighted_f1"] == 0.6  # over the seeds, not the best seed's
    per_emotion = pd.read_csv(tmp_path / "per_emotion.csv")
    assert per_emotion.Neutral_std.notna().all() and (per_emotion.Neutral_std > 0).all()  # over seed x fold runs


def test_final_runs_of_other_seed_sets_are_compared_each_over_its_own_seeds(tmp_path):
    for pair, seeds in (("cnnbilstm_bilstm", [0, 1]), ("cnnbilstm", [0, 1]), ("bilstm", [0, 1, 2])):
        predictions = random_runs(np.random.default_rng(len(pair)), pair, 0.6, seeds, 30, (10, 10))
        write_run(tmp_path, pair, f"{pair}_final", (1, 2, 3, 4, 5), [0.5], stage="final", predictions=predictions)
    write_reports(tmp_path)
    pairwise = pd.read_csv(tmp_path / "pairwise.csv")
    assert len(pairwise) == 3  # no pairing by seed value: a pair with a third seed is compared too
    assert sorted(pd.read_csv(tmp_path / "fusion_gain.csv").baseline) == ["bilstm", "cnnbilstm"]
    assert "bilstm: 3" in pairwise.set_index("pair_b").loc["bilstm", "seeds_per_pair"]


def test_report_is_reproducible(tmp_path):
    write_run(tmp_path, "bilstm", "five_folds", (1, 2, 3, 4, 5), [0.4, 0.6], test=0.7)
    write_reports(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.csv")} | {
        p.name: p.read_bytes() for p in tmp_path.glob("*.md")
    }
    write_reports(tmp_path)
    assert before == {p.name: p.read_bytes() for p in tmp_path.glob("*.csv")} | {
        p.name: p.read_bytes() for p in tmp_path.glob("*.md")
    }


def test_a_session5_group_shows_the_published_rows_beside_its_own_and_loso_does_not(tmp_path):
    write_run(tmp_path, "bilstm", "s5", (5,), [0.5], protocol="session5")
    write_run(tmp_path, "bilstm", "loso", (1, 2, 3, 4, 5), [0.5])
    write_reports(tmp_path)
    sections = {
        part.split(",")[1].strip(): part for part in (tmp_path / "per_emotion.md").read_text().split("\n## ")[1:]
    }
    session5, loso = sections["session5"], sections["loso"]
    assert "Published, not run here" in session5 and "DialogueRNN" in session5 and "0.6275" in session5
    assert "Published, not run here" not in loso
    assert "DialogueRNN" not in pd.read_csv(tmp_path / "per_emotion.csv").to_string()  # never mixed into the data
