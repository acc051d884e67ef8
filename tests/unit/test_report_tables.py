"""Report tables: numbers in the CSVs, "mean ± std" only in the Markdown view."""
from __future__ import annotations

import pandas as pd

from harness.report import _mean_std, markdown_table


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
