"""The cost of the full nested benchmark, from measured per-fold figures (used by bench_scale.py).

The default budget (``python -m harness.benchmark`` on IEMOCAP): every registered pair; per pair and per
outer test session (5 outer folds) ``trials`` configs (8), each trained on inner folds that validate on
each of the other 4 sessions in turn; ASHA stops poor configs; then the final stage re-trains each outer
fold's selected config with ``seeds`` seeds (5), one fold training per seed and outer fold.

ASHA's survivors are modelled analytically, the usual successive-halving count: with reduction factor
eta, a fraction 1/eta of the configs that reach a rung goes on to the next. Ray's ASHA is asynchronous and
promotes a config whenever it is in the top 1/eta of the results its rung holds so far, so the first
configs of a search pass more often and a real 8-trial search trains somewhat more than this count.

The two schedules (``harness/tune/fidelity.py`` holds the search's own):

* ``folds``: rungs after 1 and 2 of the 4 inner folds (and 4, were there more), eta = 2;
* ``epochs``: rungs after 1, 3 and 9 epochs of the first inner fold, then at the end of the second fold,
  eta = 3; a fold shorter than 9 epochs is judged at its end.

A fold that is not stopped by ASHA runs ``fold_epochs`` epochs: the mean observed under early stopping
(patience 6) when one is known, else the cap (30), which makes the figures upper bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

OUTER_FOLDS, INNER_FOLDS, TRIALS, SEEDS, EPOCH_CAP = 5, 4, 8, 5, 30
FIDELITIES = ("folds", "epochs")
EPOCH_RUNGS, EPOCH_ETA, FOLD_ETA = (1, 3, 9), 3, 2


@dataclass(frozen=True)
class Stages:
    """Cumulative cost of a config at each rung and at its end: epochs trained and folds started."""

    epochs: tuple[float, ...]  # the last entry: every inner fold done
    folds: tuple[float, ...]
    eta: int

    def expected(self, values: tuple[float, ...]) -> float:
        """Expected cost per config when a fraction 1/eta of those at a rung goes on to the next stage."""
        out, reach, done = 0.0, 1.0, 0.0
        for value in values:
            out += reach * (value - done)
            done, reach = value, reach / self.eta
        return out


def stages(fidelity: str, fold_epochs: float, inner_folds: int = INNER_FOLDS) -> Stages:
    """The rungs of one config's search over ``inner_folds`` folds of ``fold_epochs`` epochs each."""
    if fidelity == "folds":
        rungs = [r for r in (1, 2, 4, 8) if r < inner_folds] + [inner_folds]
        return Stages(tuple(r * fold_epochs for r in rungs), tuple(float(r) for r in rungs), FOLD_ETA)
    if fidelity != "epochs":
        raise ValueError(f"fidelity must be one of {FIDELITIES}, got {fidelity!r}")
    first = [min(r, fold_epochs) for r in EPOCH_RUNGS]
    epochs, folds = list(first), [1.0] * len(first)
    if inner_folds > 2:  # the rung at the end of the second fold
        epochs.append(2 * fold_epochs)
        folds.append(2.0)
    epochs.append(inner_folds * fold_epochs)
    folds.append(float(inner_folds))
    return Stages(tuple(epochs), tuple(folds), EPOCH_ETA)


@dataclass(frozen=True)
class PairCost:
    pair: str
    device: str
    fidelity: str
    search_trial_epochs: float
    final_trial_epochs: float
    slot_hours: float  # hours of one trial slot (a core group, or a GPU fraction), everything run one by one

    @property
    def trial_epochs(self) -> float:
        return self.search_trial_epochs + self.final_trial_epochs


def pair_cost(
    pair: str,
    device: str,
    fidelity: str,
    epoch_s: float,
    fixed_s: float,
    startup_s: float,
    fold_epochs: float = EPOCH_CAP,
    outer: int = OUTER_FOLDS,
    inner: int = INNER_FOLDS,
    trials: int = TRIALS,
    seeds: int = SEEDS,
) -> PairCost:
    """One pair's nested benchmark at the default budget from its measured epoch time on a full training
    fold (``epoch_s``: training steps + validation), fixed cost per fold and trial start-up, all in seconds."""
    schedule = stages(fidelity, fold_epochs, inner)
    search_configs = outer * trials
    search_epochs = search_configs * schedule.expected(schedule.epochs)
    search_folds = search_configs * schedule.expected(schedule.folds)
    final_epochs, final_folds = outer * seeds * fold_epochs, outer * seeds
    seconds = (
        (search_epochs + final_epochs) * epoch_s
        + (search_folds + final_folds) * fixed_s
        + (search_configs + seeds) * startup_s  # one final trial per seed runs every outer fold
    )
    return PairCost(pair, device, fidelity, search_epochs, final_epochs, seconds / 3600)
