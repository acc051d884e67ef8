"""--top-k > 1: each further rank of a pair's final stage is its own row, never extra seeds of rank 1."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from harness.books import FinalConfigs, FinalTrial, Selected
from harness.report import contrasts
from harness.report.runs import split_ranks
from harness.report.tables import _finals
from tests.fixtures.predictions import random_runs


def test_a_second_rank_stays_a_separate_row():
    # seeded() is rank-major: seeds 1, 2 train rank 1; seeds 3, 4 train rank 2 (a worse config here)
    best = random_runs(np.random.default_rng(1), "cnnbilstm_bilstm", 0.7, [1, 2], 30, (8, 12))
    second = random_runs(np.random.default_rng(2), "cnnbilstm_bilstm", 0.4, [3, 4], 30, (8, 12))
    final = FinalConfigs(
        "b",
        "search",
        [FinalTrial(seed, seed == 1, {}) for seed in (1, 2, 3, 4)],
        [Selected("cnnbilstm_bilstm", s, r, f"t{r}", "", 0.5) for s in range(1, 6) for r in (1, 2)],
    )
    rank1, others = split_ranks(pd.concat([best, second], ignore_index=True), final)
    assert sorted(rank1.seed.unique()) == [1, 2] and list(others) == [2]
    assert sorted(others[2].seed.unique()) == [3, 4]
    run = SimpleNamespace(meta=SimpleNamespace(pair="cnnbilstm_bilstm"), predictions=rank1, other_ranks=others)
    baseline = random_runs(np.random.default_rng(3), "cnnbilstm", 0.5, [1, 2], 30, (8, 12))
    plain = SimpleNamespace(meta=SimpleNamespace(pair="cnnbilstm"), predictions=baseline, other_ranks={})
    finals = _finals(SimpleNamespace(rows=[run, plain]))
    assert list(finals) == ["cnnbilstm_bilstm", "cnnbilstm", "cnnbilstm_bilstm (rank 2)"]
    table = contrasts.verdict_table(finals).set_index("pairs")
    # rank 1 against its baseline is the fusion gain; rank 2 is an exploratory row of its own
    assert table.loc["cnnbilstm_bilstm - cnnbilstm", "family"] == "fusion"
    assert table.loc["cnnbilstm_bilstm - cnnbilstm", "estimate"] > 0.1  # rank 2's weaker runs not pooled in
    assert any("(rank 2)" in p for p in table.index[table.family == "exploratory"])


def test_one_rank_is_left_as_it_is():
    frame = random_runs(np.random.default_rng(1), "bilstm", 0.6, [1, 2], 30, (8, 12))
    final = FinalConfigs("b", "s", [FinalTrial(1, True, {}), FinalTrial(2, False, {})], [])
    kept, others = split_ranks(frame, final)
    assert kept is frame and others == {}
