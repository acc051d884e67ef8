"""ASHA's clock: at which points of a search trial configs are compared (no Ray here, so the CLI can check
``--fidelity`` before Ray starts).

``epochs`` (the default): rungs after 1, 3 and 9 epochs of a config's first fold (reduction factor 3), then
after its second fold; the last fold ends at ``MAX_T``. Poor configs stop after an epoch or three instead of
a whole fold (Li et al. 2020, ASHA; Egele et al. 2023 on one-epoch screening). ``folds``: rungs after 1, 2
and 4 folds (reduction factor 2), the harness's earlier schedule.
"""

from __future__ import annotations

FIDELITIES: tuple[str, ...] = ("epochs", "folds")
EPOCH_RUNGS, FOLD_RUNG, MAX_T = (1, 3, 9), 27, 81
EPOCH_REDUCTION, FOLD_REDUCTION = 3, 2


def fidelity_time(fidelity: str, n_folds: int, folds_done: int, epoch: int | None = None) -> int | None:
    """ASHA's clock for a result: ``epoch`` of the fold after ``folds_done`` finished ones, or (``epoch``
    None) the end of fold ``folds_done``. None: the result is not on the clock (ASHA and Optuna skip it).

    Every config is judged at the same points: epochs 1, 3 and 9 of its first fold (a fold that early-stops
    sooner is judged at 9 on its best epoch, the model it keeps), the end of its second fold, and the end of
    its last (``MAX_T``, where ASHA ends it anyway)."""
    if fidelity == "folds":
        return folds_done if epoch is None else None
    if epoch is not None:
        return min(epoch, EPOCH_RUNGS[-1]) if folds_done == 0 else None
    if folds_done >= n_folds:
        return MAX_T
    return EPOCH_RUNGS[-1] if folds_done == 1 else FOLD_RUNG + folds_done - 2


def rungs(fidelity: str, n_folds: int) -> tuple[int, ...]:
    """The clock values at which ASHA compares configs (below its end)."""
    if fidelity == "folds":
        return tuple(r for r in (1, 2, 4, 8) if r < n_folds)
    points = EPOCH_RUNGS + ((FOLD_RUNG,) if n_folds > 2 else ())
    return points
