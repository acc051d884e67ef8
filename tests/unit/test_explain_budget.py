"""harness.train.explain.ExplainBudget: a share of the trial's time, carried over its folds."""

from __future__ import annotations

import pytest

from harness.corpus import EMOTIONS
from harness.records import Explanation, FoldRecord, Metrics, Resources
from harness.train.explain import ExplainBudget

METRICS = Metrics(0.5, 0.5, 0.5, 0.5, {e: 0.5 for e in EMOTIONS}, [[0] * 6 for _ in range(6)], 10)
RESOURCES = Resources(1, 1, None, None, 0.5, 0.1, 0.01, 100.0, 1.0, 1.0, None, "cpu")


def fold(work_s: float, explain_s: float | None, n: int = 1) -> FoldRecord:
    explanation = None if explain_s is None else Explanation({}, {}, {}, {}, {}, 0.0, n, explain_s)
    seconds = {"train": work_s - 1.0, "score": 0.5, "measure": 0.5} | ({"explain": explain_s} if explain_s else {})
    return FoldRecord(1, "Ses01F", 1, 1, "max_epochs", METRICS, METRICS, RESOURCES, explanation, seconds)


def test_the_first_fold_explains_at_least_one_utterance_within_a_share_of_its_work():
    budget = ExplainBudget.after(0.1, [])
    assert budget.min_samples == 1 and budget.seconds(20.0) == pytest.approx(2.0)


def test_later_folds_get_what_the_trial_has_not_spent_and_may_explain_none():
    earlier = [fold(10.0, 1.6, n=2), fold(10.0, 0.2, n=1)]  # earned 2.0 s, spent 1.8 s
    budget = ExplainBudget.after(0.1, earlier)
    assert budget.min_samples == 0
    assert budget.seconds(10.0) == pytest.approx(0.2 + 1.0)
    assert budget.per_utterance_s == pytest.approx(0.8)  # the slowest per utterance so far
    overspent = ExplainBudget.after(0.1, [fold(1.0, 0.7)])  # one utterance cost 7x the share of a 1 s fold
    assert overspent.seconds(1.0) == pytest.approx(-0.5)  # the debt is carried: nothing fits next


def test_a_zero_share_is_unbounded():
    assert ExplainBudget.after(0.0, [fold(10.0, 5.0)]).seconds(10.0) is None
