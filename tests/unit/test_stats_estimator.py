"""One weighted-F1 estimator (issue 27): the headline, per_emotion.md and the per-emotion plot give the same
figures (each test session's F1 averaged over the pair's seeds, then the mean over the sessions), checked
against scikit-learn; the interval-aware Pareto front."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import f1_score

from harness.corpus import EMOTION_NAMES, EMOTIONS
from harness.report.plots import pareto_front, per_emotion_values
from harness.report.summary import _level
from harness.report.tables import per_emotion_row
from tests.fixtures.predictions import random_runs


@pytest.fixture(scope="module")
def run() -> SimpleNamespace:
    frame = random_runs(np.random.default_rng(11), "cnnbilstm_bilstm", 0.55, [0, 1, 2], 40, (8, 14))
    # sessions of unequal size: the pooled figure differs from the per-session mean
    frame = frame[~((frame.fold == 3) & (frame.utterance_id.str[1:].astype(int) % 3 > 0))]
    return SimpleNamespace(predictions=frame, meta=SimpleNamespace(pair="cnnbilstm_bilstm"), stage="final")


def by_hand(frame, average, label=None) -> float:
    """Per session, scikit-learn's F1 per seed, averaged over the seeds; then the mean over the sessions."""
    per_session = []
    for _, session in frame.groupby("fold"):
        seeds = [
            f1_score(g.label, g.pred, labels=range(6), average=average, zero_division=0)
            for _, g in session.groupby("seed")
        ]
        values = np.array(seeds)
        per_session.append(values.mean(0) if label is None else values[:, label].mean())
    return float(np.mean(per_session))


def test_headline_per_emotion_and_plot_agree(run):
    headline = _level(run.predictions, "weighted_f1").estimate
    row = per_emotion_row(run)
    plotted = per_emotion_values(run)
    assert headline == pytest.approx(by_hand(run.predictions, "weighted"))
    assert row["weighted_f1"] == pytest.approx(headline, abs=5e-5)  # the table rounds to 4 decimals
    for k, emotion in enumerate(EMOTIONS):
        expected = by_hand(run.predictions, None, label=k)
        assert plotted[k] == pytest.approx(expected)
        assert row[EMOTION_NAMES[emotion]] == pytest.approx(expected, abs=5e-5)


def test_the_pooled_figure_is_another_estimator(run):
    pooled = f1_score(run.predictions.label, run.predictions.pred, average="weighted")
    assert abs(pooled - _level(run.predictions, "weighted_f1").estimate) > 1e-4  # not what the tables print


def test_the_front_on_intervals_keeps_pairs_the_data_cannot_tell_apart():
    cost = np.array([1.0, 2.0, 3.0, 4.0])
    f1 = np.array([0.60, 0.58, 0.70, 0.50])
    low, high = f1 - 0.05, f1 + 0.05
    assert pareto_front(cost, f1).tolist() == [0, 2]  # point estimates: 1 and 3 are dominated
    # intervals: 1 overlaps 0 (kept); 3 lies wholly below 0 and 2 (dominated)
    assert pareto_front(cost, f1, low, high).tolist() == [0, 1, 2]
