"""The protocol-gap table (harness.report.protocol_gap): a preset's optimism over nested LOSO, session by
session, against a known truth; the speaker-dependent preset's random parts are compared by session."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.report.protocol_gap import by_session, gap_row, statement


def _predictions(accuracy: float, seed: int, folds_are_sessions: bool = True) -> pd.DataFrame:
    """Five sessions of 400 utterances; each prediction is right with probability ``accuracy``."""
    rng = np.random.default_rng(seed)
    rows = []
    for session in range(1, 6):
        labels = rng.integers(0, 6, 400)
        right = rng.random(400) < accuracy
        preds = np.where(right, labels, (labels + rng.integers(1, 6, 400)) % 6)
        fold = session if folds_are_sessions else rng.integers(1, 6, 400)
        rows.append(
            pd.DataFrame(
                {
                    "pair": "p",
                    "seed": 1,
                    "fold": fold,
                    "utterance_id": [f"Ses0{session}F_u{i}" for i in range(400)],
                    "dialog": f"Ses0{session}F_impro01",
                    "label": labels,
                    "pred": preds,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_a_known_optimism_is_recovered_with_an_interval_that_excludes_zero():
    honest = _predictions(0.5, seed=0)
    optimistic = honest.copy()
    rng = np.random.default_rng(1)
    fix = (optimistic.pred != optimistic.label) & (rng.random(len(optimistic)) < 0.3)  # 15 points more accurate
    optimistic.loc[fix, "pred"] = optimistic.loc[fix, "label"]
    optimistic["fold"] = rng.integers(1, 6, len(optimistic))  # speaker-dependent: random parts, not sessions
    row = gap_row("p", "speaker-dependent", optimistic, honest)
    assert row["n_sessions"] == 5 and row["n_utterances"] == 2000
    assert 0.1 < row["optimism"] < 0.2 and row["ci_low"] > 0
    assert row["statement"].startswith("speaker-dependent overstates weighted F1 by +0.1")
    same = gap_row("p", "random-val", honest, honest)
    assert same["optimism"] == 0 and same["ci_low"] <= 0 <= same["ci_high"]


def test_by_session_reads_the_session_column_or_the_dialog_name():
    frame = _predictions(0.5, seed=0, folds_are_sessions=False)
    assert (by_session(frame).fold == frame.dialog.str[3:5].astype(int)).all()
    with_column = frame.assign(session=3)
    assert (by_session(with_column).fold == 3).all()
    with pytest.raises(ValueError, match="session"):
        by_session(frame.assign(dialog="d1"))


def test_statement_says_which_way():
    assert (
        statement("random-val", 0.0312, -0.004, 0.066) == "random-val overstates weighted F1 by +0.031 [-0.004, +0.066]"
    )
    assert statement("test-selected", -0.01, -0.03, 0.01).startswith("test-selected understates weighted F1 by -0.010")
