"""The comparison table's explainability columns: one faithfulness column per explanation level, never a
mean over branches explained at different levels (issue 19, "no row mixes head-level and end-to-end")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.records import Explanation, FoldRecord, RunMeta, TrialRecord
from harness.report.explainability import comparison_columns
from harness.report.tables import write_reports
from harness.store import Storage, write_json
from tests.fixtures.books import write_identity
from tests.unit.test_report_tables import RESOURCES, metrics

E2E, HEAD = "end_to_end", "head_level"


def explanation(comp: dict[str, float], random: dict[str, float], level: dict[str, str], n: int = 6) -> Explanation:
    """A fold's record as ``harness.train.explain.fold`` writes it: ``faithfulness`` is the mean over every
    branch of comprehensiveness minus random, whatever the branches' levels."""
    gaps = [comp[m] - random[m] for m in comp]
    return Explanation(
        {m: 0.1 for m in comp},
        {},
        comp,
        {m: 0.0 for m in comp},
        random,
        float(np.mean(gaps)),
        n,
        level=level,
        set_size=n,
    )


def write_final_run(results: Path, pair: str, explanations: list[Explanation]) -> None:
    """A one-seed final run whose folds 4, 5 carry ``explanations`` (one per fold)."""
    folds = (4, 5)
    meta = RunMeta(pair, f"{pair}_final", "demo", "x", {}, folds, 0, False)
    store = Storage(results / "ray").run(meta.run)
    write_identity(store, pair)
    records = [
        FoldRecord(f, "Ses01F", 1, 1, "max_epochs", metrics(0.5), metrics(0.5), RESOURCES, e)
        for f, e in zip(folds, explanations)
    ]
    record = TrialRecord(meta, "t0", {"seed": 0}, "finished", records, stage="final")
    write_json(store.fs, f"{store.path}/run_trial_t0/record.json", record.to_dict())


def test_each_level_has_its_own_column_and_a_mixed_pair_is_split_not_averaged(tmp_path):
    both_e2e = {"audio": E2E, "text": E2E}
    both_head = {"audio": HEAD, "text": HEAD}
    mixed = {"audio": E2E, "text": HEAD}
    write_final_run(
        tmp_path,
        "cnnbilstm_bilstm",
        [
            explanation({"audio": 0.6, "text": 0.8}, {"audio": 0.2, "text": 0.2}, both_e2e),  # 0.4, 0.6 -> 0.5
            explanation({"audio": 0.5, "text": 0.5}, {"audio": 0.2, "text": 0.2}, both_e2e),  # 0.3
        ],
    )
    write_final_run(
        tmp_path,
        "wav2vec_albert",
        [
            explanation({"audio": 0.9, "text": 0.9}, {"audio": 0.1, "text": 0.1}, both_head),  # 0.8
            explanation({"audio": 0.7, "text": 0.9}, {"audio": 0.1, "text": 0.1}, both_head),  # 0.6, 0.8 -> 0.7
        ],
    )
    # audio end to end (0.1 in both folds), text at head level (0.9, 0.7): the record's own faithfulness,
    # the mean over both branches (0.5, 0.4), is what the table used to show
    mixed_folds = [
        explanation({"audio": 0.3, "text": 1.0}, {"audio": 0.2, "text": 0.1}, mixed),
        explanation({"audio": 0.3, "text": 0.8}, {"audio": 0.2, "text": 0.1}, mixed),
    ]
    write_final_run(tmp_path, "cnnbilstm_albert", mixed_folds)
    write_reports(tmp_path)
    table = pd.read_csv(tmp_path / "comparison_full.csv").set_index("pair")

    small = table.loc["cnnbilstm_bilstm"]
    assert small.explain_level == E2E
    assert small.faithfulness == pytest.approx(0.4) and small.faithfulness_std == pytest.approx(
        np.std([0.5, 0.3], ddof=1), abs=1e-4
    )
    assert pd.isna(small.faithfulness_head_level)

    large = table.loc["wav2vec_albert"]
    assert large.explain_level == HEAD
    assert pd.isna(large.faithfulness)  # a head-level figure never lands in the end-to-end column
    assert large.faithfulness_head_level == pytest.approx(0.75)

    split = table.loc["cnnbilstm_albert"]
    assert split.explain_level == "audio:end_to_end text:head_level"
    assert split.faithfulness == pytest.approx(0.1)  # the audio branch only
    assert split.faithfulness_head_level == pytest.approx(0.8)  # the text branch only
    assert np.mean([e.faithfulness for e in mixed_folds]) == pytest.approx(0.45)  # the mixed mean, not shown
    assert not np.isclose(split.faithfulness, 0.45) and not np.isclose(split.faithfulness_head_level, 0.45)


def test_older_records_without_levels_and_empty_folds_fill_no_level_column():
    older = explanation({"audio": 0.6}, {"audio": 0.2}, {})  # before levels were stored: which level is unknown
    columns = comparison_columns([older])
    assert columns["explain_level"] == "unlabelled"
    assert np.isnan(columns["faithfulness"]) and np.isnan(columns["faithfulness_head_level"])

    nothing = explanation({"audio": 0.6}, {"audio": 0.2}, {"audio": E2E}, n=0)  # a fold that explained none
    one = explanation({"audio": 0.6}, {"audio": 0.2}, {"audio": E2E})
    columns = comparison_columns([nothing, one])
    assert columns["faithfulness"] == pytest.approx(0.4) and np.isnan(columns["faithfulness_std"])
    assert comparison_columns([]) == {
        "explain_level": "",
        "faithfulness": pytest.approx(np.nan, nan_ok=True),
        "faithfulness_std": pytest.approx(np.nan, nan_ok=True),
        "faithfulness_head_level": pytest.approx(np.nan, nan_ok=True),
        "faithfulness_head_level_std": pytest.approx(np.nan, nan_ok=True),
    }


def test_a_branch_whose_normaliser_was_undefined_is_left_out_not_counted_as_zero():
    # text's whole-modality drop was under the floor on every utterance: its normalised figures are NaN
    level = {"audio": E2E, "text": E2E}
    e = explanation({"audio": 0.5, "text": float("nan")}, {"audio": 0.1, "text": float("nan")}, level)
    assert comparison_columns([e])["faithfulness"] == pytest.approx(0.4)
