"""Ray Tune's search side of a run: one Optuna study and one ASHA bracket per selection unit.

A search trial is one config for one selection unit: under nested LOSO an outer test session, whose
config is chosen on inner folds of the other sessions only; otherwise (``loso-flat``, ``session5``) the
protocol's folds. ``UnitSearch`` hands out ``num_samples`` trials per unit, each unit's results going to
its own study (``FoldOptunaSearch``); ``UnitScheduler`` keeps one ASHA bracket per unit on ASHA's clock
(``harness.tune.fidelity``). So nothing that samples, prunes or ranks a config for outer fold k reads a
score computed on Session k. Imported by ``harness.tune.ray_search`` (these two modules import Ray).
"""

from __future__ import annotations

import logging
import pickle
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher, SearchGenerator
from ray.tune.search.optuna import OptunaSearch

from harness.corpus.protocols import selection_units
from harness.store import Storage
from harness.tune.fidelity import EPOCH_REDUCTION, FOLD_REDUCTION, MAX_T
from harness.tune.objectives import Objective
from harness.tune.studies import bound_run, optuna_storage, study_name

log = logging.getLogger(__name__)
METRIC = "mean_val_weighted_f1"
TIME_ATTR = "fidelity_t"  # ASHA's clock (harness.tune.fidelity.fidelity_time)
UNIT_KEY = "__outer"  # a search trial's selection unit (outer test session), added to its config


class FoldOptunaSearch(OptunaSearch):
    """Optuna TPE that hears ASHA's clock: intermediate values are keyed by ``fidelity_t`` (the rungs), and
    a trial that did not run every fold (stopped by ASHA) is PRUNED, never COMPLETE with a partial mean."""

    _ot_study: Any

    def __init__(self, *args: Any, n_folds: int, objectives: tuple[str, ...] = ("weighted_f1",), **kwargs: Any):
        if len(objectives) > 1:  # Optuna's multi-objective TPE; ASHA still prunes on METRIC (accuracy)
            kwargs |= {
                "metric": [f"objective/{n}" for n in objectives],
                "mode": [Objective(n).mode for n in objectives],
            }
        super().__init__(*args, **kwargs)
        self.n_folds, self.objectives = n_folds, objectives

    def _report(self, trial_id: str, result: dict) -> None:
        step = result.get(TIME_ATTR)
        if step is None or trial_id not in self._ot_trials or len(self.objectives) > 1:
            return  # Optuna keeps no intermediate values for multi-objective studies
        ot_trial = self._ot_trials[trial_id]
        if step not in self._ot_study._storage.get_trial(ot_trial._trial_id).intermediate_values:
            ot_trial.report(result[METRIC], step)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self._completed_trials:
            self._report(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        from optuna.trial import TrialState

        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial = self._ot_trials[trial_id]
        if result:  # the result at which a scheduler stops a trial reaches the searcher only here
            self._report(trial_id, result)
        if error:
            self._ot_study.tell(ot_trial, state=TrialState.FAIL)
        elif result and result.get("fold_end") and result.get("folds_done") == self.n_folds:
            values = [result[f"objective/{n}"] for n in self.objectives] if len(self.objectives) > 1 else None
            self._ot_study.tell(ot_trial, values or result[METRIC], state=TrialState.COMPLETE)
        else:
            self._ot_study.tell(ot_trial, state=TrialState.PRUNED)
        self._completed_trials.add(trial_id)

    def fail_orphans(self) -> int:
        """Mark FAIL the study's trials left RUNNING by a killed driver that no restored Ray trial continues."""
        from optuna.trial import TrialState

        alive = {t._trial_id for tid, t in self._ot_trials.items() if tid not in self._completed_trials}
        storage, failed = self._ot_study._storage, 0
        for trial in self._ot_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial._trial_id not in alive:
                storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
                failed += 1
        return failed

    @property
    def study(self) -> Any:
        return self._ot_study


class UnitSearch(Searcher):
    """One Optuna study per selection unit (outer test session), ``num_samples`` trials each, handed out in
    turn. A trial's config carries its unit (``UNIT_KEY``); results go to its unit's study only, so TPE
    for outer fold k never learns from a score computed on Session k."""

    def __init__(self, searchers: dict[int | None, FoldOptunaSearch], num_samples: int):
        super().__init__(metric=METRIC, mode="max")
        self.searchers, self.num_samples = searchers, num_samples
        self.unit_of: dict[str, int | None] = {}

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # each unit's searcher has its space, metric and mode

    def suggest(self, trial_id: str) -> dict | None:
        if trial_id not in self.unit_of:
            counts = {u: 0 for u in self.searchers}
            for u in self.unit_of.values():
                counts[u] += 1
            open_units = [u for u in self.searchers if counts[u] < self.num_samples]
            if not open_units:
                return Searcher.FINISHED  # type: ignore[return-value]
            self.unit_of[trial_id] = min(open_units, key=lambda u: counts[u])  # in turn, ties in unit order
        unit = self.unit_of[trial_id]
        config = self.searchers[unit].suggest(trial_id)
        if not isinstance(config, dict) or unit is None:
            return config
        return config | {UNIT_KEY: unit}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.unit_of:
            self.searchers[self.unit_of[trial_id]].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.unit_of:
            self.searchers[self.unit_of[trial_id]].on_trial_complete(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as stream:
            pickle.dump(
                {"unit_of": self.unit_of, "searchers": {u: s.__dict__ for u, s in self.searchers.items()}}, stream
            )

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as stream:
            state = pickle.load(stream)
        self.unit_of = state["unit_of"]
        for unit, searcher_state in state["searchers"].items():
            self.searchers[unit].__dict__.update(searcher_state)
        failed = sum(s.fail_orphans() for s in self.searchers.values())
        if failed:
            log.info("marked %d Optuna trial(s) left running by the killed driver as FAIL", failed)

    @property
    def studies(self) -> dict[int | None, Any]:
        return {u: s.study for u, s in self.searchers.items()}


class RelocatableSearch(SearchGenerator):
    """Ray Tune's search generator, whose restored experiment is moved to where the run is now.

    Ray restores a moved run's trials at the new place (``Trial.set_storage``), but the search generator's
    pickled experiment keeps the old storage path, so every trial created after the resume is set up at
    the old place (or fails there: "Unable to set up cluster storage"). Its storage is pointed at the run
    the driver resumes (``harness.tune.studies.bind_run``), as Ray does for the trials."""

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        storage, here = getattr(self._experiment, "storage", None), bound_run()
        if storage is None or here is None:
            return
        root, run, _ = here
        place = Storage(root)
        storage.storage_filesystem, storage.storage_fs_path = place.fs, place.path
        storage.experiment_dir_name = run


def unit_search_algorithm(searcher: UnitSearch, max_concurrent: int) -> RelocatableSearch:
    """What ``TuneConfig.search_alg`` gets: the unit search, at most ``max_concurrent`` trials at once."""
    return RelocatableSearch(ConcurrencyLimiter(searcher, max_concurrent=max_concurrent))


class UnitScheduler(FIFOScheduler):
    """ASHA with one bracket per selection unit: a config for outer fold k is only ever compared with the
    other configs for outer fold k, on the same folds and epochs."""

    def __init__(self, units: tuple[int | None, ...], make: Any):
        super().__init__()
        self.schedulers: dict[int | None, ASHAScheduler] = {u: make() for u in units}

    def _of(self, trial: Trial) -> ASHAScheduler:
        return self.schedulers[trial.config.get(UNIT_KEY)]

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return all(s.set_search_properties(metric, mode, **spec) for s in self.schedulers.values())

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        self._of(trial).on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        return self._of(trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        self._of(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        self._of(trial).on_trial_remove(tune_controller, trial)

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        self._of(trial).on_trial_error(tune_controller, trial)

    def debug_string(self) -> str:
        stopped = sum(s._num_stopped for s in self.schedulers.values())
        return f"ASHA per outer fold ({len(self.schedulers)} brackets): {stopped} stopped"


def asha(fidelity: str, n_folds: int) -> ASHAScheduler:
    """One bracket on ASHA's clock (``harness.tune.fidelity``)."""
    max_t, reduction = (max(n_folds, 1), FOLD_REDUCTION) if fidelity == "folds" else (MAX_T, EPOCH_REDUCTION)
    return ASHAScheduler(
        time_attr=TIME_ATTR, metric=METRIC, mode="max", max_t=max_t, grace_period=1, reduction_factor=reduction
    )


def make_search(inputs: Any, settings: Any) -> tuple[UnitSearch, UnitScheduler]:
    """One Optuna TPE study and one ASHA bracket per selection unit (``inputs``: ``TrialInputs``,
    ``settings``: ``SearchSettings`` of ``harness.tune.ray_search``)."""
    from optuna.samplers import TPESampler

    units = selection_units(inputs.meta.protocol, inputs.meta.test_sessions)
    n_folds = inputs.n_search_folds()
    storage = optuna_storage(settings.storage, settings.name, settings.optuna_storage)
    searchers = {
        unit: FoldOptunaSearch(
            space=inputs.space.sample,
            metric=METRIC,
            mode="max",
            n_folds=n_folds,
            objectives=inputs.meta.objectives,
            study_name=study_name(settings.name, unit),
            storage=storage,
            sampler=TPESampler(
                seed=settings.seed + (unit or 0), n_startup_trials=min(10, max(2, settings.num_samples // 3))
            ),
        )
        for unit in units
    }
    return UnitSearch(searchers, settings.num_samples), UnitScheduler(
        units, lambda: asha(inputs.meta.fidelity, n_folds)
    )
