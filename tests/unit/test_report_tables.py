"""Report tables: numbers in the CSVs, "mean ± std" only in the Markdown view."""
from __future__ import annotations

import pandas as pd

from harness.report.tables import _mean_std, markdown_table


def test_mean_std_columns_are_numbers_and_one_fold_has_no_spread():
    assert _mean_std("f1", [0.5, 0.7]) == {"f1": 0.6, "f1_std": 0.1}
    one = _mean_std("f1", [0.5])
    assert one["f1"] == 0.5 and pd.isna(one["f1_std"])
    assert pd.isna(_mean_std("f1", [])["f1"])


def test_markdown_view_merges_mean_and_std_and_writes_missing_as_na():
    frame = pd.DataFrame([{"pair": "a", **_mean_std("f1", [0.5, 0.7]), "energy_kj": float("nan"), "trials": 3},
                          {"pair": "b", **_mean_std("f1", [0.25]), "energy_kj": 1.5, "trials": 2}])
    lines = markdown_table(frame).splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == ["pair", "f1", "energy_kj", "trials"]
    assert [c.strip() for c in lines[2].strip("|").split("|")] == ["a", "0.600 ± 0.100", "n/a", "3"]
    assert [c.strip() for c in lines[3].strip("|").split("|")] == ["b", "0.250", "1.5", "2"]
    assert lines[1].startswith("|:--") and lines[1].endswith("--:|")  # text left, numbers right


def per_fold(scores: dict[str, list[float]], source: str = "demo") -> pd.DataFrame:
    return pd.DataFrame([{"pair": pair, "data_source": source, "test_session": session, "test_weighted_f1": f1,
                          "val_weighted_f1": f1} for pair, f1s in scores.items() for session, f1 in enumerate(f1s, 1)])


def test_fusion_gain_compares_each_fused_pair_with_its_own_unimodal_baselines():
    from harness.report.tables import fusion_gain

    table = fusion_gain(per_fold({"cnnbilstm_bilstm": [0.6, 0.7, 0.5], "cnnbilstm": [0.5, 0.6, 0.5],
                                  "bilstm": [0.7, 0.7, 0.6], "wav2vec": [0.9, 0.9, 0.9]}))
    rows = {r.baseline: r for r in table.itertuples()}
    assert set(rows) == {"cnnbilstm", "bilstm"}  # wav2vec is not a part of cnnbilstm_bilstm
    assert rows["cnnbilstm"].baseline_modality == "audio" and rows["bilstm"].baseline_modality == "text"
    assert rows["cnnbilstm"].gain == 0.0667 and rows["bilstm"].gain == -0.0667
    assert rows["cnnbilstm"].folds == 3 and rows["cnnbilstm"].per_fold_diff == "+0.100 +0.100 +0.000"
    assert rows["cnnbilstm"].ci95_low <= rows["cnnbilstm"].gain <= rows["cnnbilstm"].ci95_high


def test_fusion_gain_uses_only_folds_both_ran_and_keeps_sources_apart():
    from harness.report.tables import fusion_gain

    scores = per_fold({"wav2vec_albert": [0.6, 0.7], "albert": [0.5]})
    table = fusion_gain(pd.concat([scores, per_fold({"albert": [0.1, 0.1]}, source="/data/IEMOCAP")]))
    assert len(table) == 1 and table.folds[0] == 1 and table.gain[0] == 0.1
    assert fusion_gain(per_fold({"bilstm": [0.5]})).empty
