"""harness.train.explain.ExplainBudget: a share of the trial's time, carried over its folds, spent by
lowering Integrated-Gradients steps (never by explaining fewer utterances)."""

from __future__ import annotations

import pytest

from harness.corpus import EMOTIONS
from harness.records import Explanation, FoldRecord, Metrics, Resources
from harness.train.explain import ExplainBudget
from harness.train.explain.attribute import MAX_STEPS, MIN_STEPS
from harness.train.explain.fold import _Steps

METRICS = Metrics(0.5, 0.5, 0.5, 0.5, {e: 0.5 for e in EMOTIONS}, [[0] * 6 for _ in range(6)], 10)
RESOURCES = Resources(1, 1, None, None, 0.5, 0.1, 0.01, 100.0, 1.0, 1.0, None, "cpu")


def fold(work_s: float, explain_s: float | None, n: int = 1) -> FoldRecord:
    explanation = None if explain_s is None else Explanation({}, {}, {}, {}, {}, 0.0, n, explain_s)
    seconds = {"train": work_s - 1.0, "score": 0.5, "measure": 0.5} | ({"explain": explain_s} if explain_s else {})
    return FoldRecord(1, "Ses01F", 1, 1, "max_epochs", METRICS, METRICS, RESOURCES, explanation, seconds)


def test_the_first_fold_gets_a_share_of_its_work():
    budget = ExplainBudget.after(0.1, [])
    assert budget.seconds(20.0) == pytest.approx(2.0) and budget.per_utterance_s == 0.0


def test_later_folds_get_what_the_trial_has_not_spent():
    earlier = [fold(10.0, 1.6, n=2), fold(10.0, 0.2, n=1)]  # earned 2.0 s, spent 1.8 s
    budget = ExplainBudget.after(0.1, earlier)
    assert budget.seconds(10.0) == pytest.approx(0.2 + 1.0)
    assert budget.per_utterance_s == pytest.approx(0.8)  # the slowest per utterance so far
    overspent = ExplainBudget.after(0.1, [fold(1.0, 0.7)])  # one utterance cost 7x the share of a 1 s fold
    assert overspent.seconds(1.0) == pytest.approx(-0.5)  # the debt is carried: the next fold lowers its steps


def test_a_projection_past_the_budget_lowers_steps_never_below_the_floor():
    steps = _Steps(16, budget_s=10.0)
    steps.update(elapsed=1.0, per_utterance=0.1, left=10)  # 2 s projected: unchanged, may rise for completeness
    assert (steps.steps, steps.ceiling, steps.lowered) == (16, MAX_STEPS, False)
    steps.update(elapsed=1.0, per_utterance=1.5, left=10)  # 16 s projected: no rise, then half the steps
    assert steps.lowered and steps.ceiling == steps.steps == 8
    steps.update(elapsed=50.0, per_utterance=5.0, left=10)  # hopeless: the floor, and the fold says so later
    assert steps.steps == steps.ceiling == MIN_STEPS
    unbounded = _Steps(16, budget_s=None)
    unbounded.update(elapsed=1e6, per_utterance=1e6, left=100)
    assert (unbounded.steps, unbounded.ceiling) == (16, MAX_STEPS)


def test_a_zero_share_is_unbounded():
    assert ExplainBudget.after(0.0, [fold(10.0, 5.0)]).seconds(10.0) is None
