"""benchmarks/nested_cost.py: the analytic count of ASHA's survivors matches a simulated successive-halving
search, the rungs are the search's own, and the cost adds up."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from nested_cost import EPOCH_CAP, INNER_FOLDS, OUTER_FOLDS, SEEDS, TRIALS, pair_cost, stages  # noqa: E402


def simulate(fidelity: str, fold_epochs: float, configs: int, seed: int) -> tuple[float, float]:
    """Successive halving with random scores: every config trains to the first rung, the top 1/eta of those
    at a rung train on to the next. Returns the mean epochs and folds trained per config."""
    schedule = stages(fidelity, fold_epochs)
    rng = np.random.default_rng(seed)
    alive = np.arange(configs)
    epochs = np.zeros(configs)
    folds = np.zeros(configs)
    done_e = done_f = 0.0
    for e, f in zip(schedule.epochs, schedule.folds):
        epochs[alive] += e - done_e
        folds[alive] += f - done_f
        done_e, done_f = e, f
        scores = rng.normal(size=len(alive))
        alive = alive[np.argsort(-scores)[: len(alive) // schedule.eta]]
    return float(epochs.mean()), float(folds.mean())


@pytest.mark.parametrize("fidelity", ["folds", "epochs"])
@pytest.mark.parametrize("fold_epochs", [7.0, 12.5, 30.0])
def test_analytic_survivors_match_a_simulated_search(fidelity, fold_epochs):
    schedule = stages(fidelity, fold_epochs)
    configs = schedule.eta ** len(schedule.epochs) * 7  # divisible at every rung
    epochs, folds = simulate(fidelity, fold_epochs, configs, seed=1)
    assert schedule.expected(schedule.epochs) == pytest.approx(epochs)
    assert schedule.expected(schedule.folds) == pytest.approx(folds)
    # a count that forgets pruning (every config runs every inner fold) is far off
    assert INNER_FOLDS * fold_epochs > 1.5 * epochs


def test_schedules_by_hand():
    folds = stages("folds", 30)
    assert folds.epochs == (30, 60, 120) and folds.eta == 2
    assert folds.expected(folds.epochs) == 60  # 30 + 30/2 + 60/4: two folds per config
    epochs = stages("epochs", 30)
    assert epochs.epochs == (1, 3, 9, 60, 120) and epochs.eta == 3
    assert epochs.expected(epochs.epochs) == pytest.approx(1 + 2 / 3 + 6 / 9 + 51 / 27 + 60 / 81)
    short = stages("epochs", 5)  # a fold that early-stops before the 9-epoch rung is judged at its end
    assert short.epochs == (1, 3, 5, 10, 20)
    with pytest.raises(ValueError, match="fidelity"):
        stages("steps", 30)


def test_rungs_are_the_searchs_own():
    if importlib.util.find_spec("harness.tune.fidelity") is None:
        pytest.skip("harness.tune.fidelity not present")
    from harness.tune import fidelity

    assert fidelity.EPOCH_REDUCTION == stages("epochs", 30).eta
    assert fidelity.FOLD_REDUCTION == stages("folds", 30).eta
    assert fidelity.rungs("folds", INNER_FOLDS) == tuple(int(f) for f in stages("folds", 30).folds[:-1])
    assert fidelity.rungs("epochs", INNER_FOLDS)[:3] == stages("epochs", 30).epochs[:3]


def test_pair_cost_adds_search_and_final_stage():
    cost = pair_cost("p", "cpu", "folds", epoch_s=10.0, fixed_s=0.0, startup_s=0.0)
    assert cost.search_trial_epochs == OUTER_FOLDS * TRIALS * 2 * EPOCH_CAP
    assert cost.final_trial_epochs == OUTER_FOLDS * SEEDS * EPOCH_CAP
    assert cost.slot_hours * 3600 == pytest.approx(cost.trial_epochs * 10.0)
    overhead = pair_cost("p", "cpu", "folds", epoch_s=0.0, fixed_s=2.0, startup_s=3.0)
    # folds started: 2 per search config, one per final seed and outer fold; a start-up per trial
    expected = OUTER_FOLDS * TRIALS * 2 * 2.0 + OUTER_FOLDS * SEEDS * 2.0 + (OUTER_FOLDS * TRIALS + SEEDS) * 3.0
    assert overhead.slot_hours * 3600 == pytest.approx(expected)
    epochs = pair_cost("p", "cpu", "epochs", epoch_s=10.0, fixed_s=0.0, startup_s=0.0)
    assert epochs.search_trial_epochs < cost.search_trial_epochs / 10  # rungs in epochs stop configs early
    assert epochs.final_trial_epochs == cost.final_trial_epochs  # the final stage is the same
