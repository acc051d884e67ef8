"""Ray Tune callbacks added around every search: trial counts for a progress bar (``TrialCounter``) and,
with ``--mlflow URI``, MLflow tracking through Ray Tune's own ``MLflowLoggerCallback``.

Ray pickles an experiment's callbacks with it (``tuner.pkl``) and a resumed run uses the pickled ones, so
these hold no process state: the counter tells whichever listener the resuming process registered
(``set_listener``), and a run tracks to MLflow as it was started (``--mlflow`` given to a resume of a run
started without it does not apply).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from ray import tune
from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.tune.experiment import Trial

log = logging.getLogger(__name__)


class TrialListener(Protocol):
    """What a progress display is told about the experiment running now."""

    def experiment_started(self, total: int) -> None: ...

    def ended_before(self, trials: int) -> None: ...

    def trial_ended(self, failed: bool) -> None: ...


_listener: TrialListener | None = None
_mlflow_uri: str | None = None


def set_listener(listener: TrialListener | None) -> None:
    global _listener
    _listener = listener


def configure(mlflow_uri: str | None) -> None:
    """Track the experiments this process starts to MLflow at ``mlflow_uri`` (None: no MLflow)."""
    global _mlflow_uri
    _mlflow_uri = mlflow_uri


class TrialCounter(tune.Callback):
    """Tells the process's listener the experiment's number of trials, how many had ended before it
    started (a resumed run), and each trial that ends."""

    def setup(self, stop: Any = None, num_samples: int | None = None, total_num_samples: int | None = None, **info):
        self._counted = False
        if _listener is not None:
            _listener.experiment_started(int(total_num_samples or num_samples or 0))

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if getattr(self, "_counted", True):
            return
        self._counted = True
        if _listener is not None:
            _listener.ended_before(sum(t.status in (Trial.TERMINATED, Trial.ERROR) for t in trials))

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        if _listener is not None:
            _listener.trial_ended(False)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        if _listener is not None:
            _listener.trial_ended(True)


def trial_dirname(trial: Trial) -> str:
    """A trial's folder, and so its TensorBoard run name: ``run_trial_<id>`` (Ray's default appends every
    sampled value and a date, ~150 characters). A module-level function: Ray pickles it with the run."""
    return f"{trial.trainable_name}_{trial.trial_id}"


def tracking_callbacks(run: str, pair: str, fixed: dict[str, Any]) -> list[tune.Callback]:
    """The callbacks for one experiment: the trial counter, and MLflow when configured. MLflow gets one
    experiment per run (named after it), one MLflow run per trial with its sampled config and the run's
    fixed values as params, and every result Ray Tune gets (per epoch and per fold: the fold's and the
    running mean validation weighted F1, ``folds_done``) as metrics, stepped by Ray's iteration."""
    callbacks: list[tune.Callback] = [TrialCounter()]
    if _mlflow_uri:
        callbacks.append(HarnessMLflow(_mlflow_uri, run, pair, fixed))
    return callbacks


class HarnessMLflow(MLflowLoggerCallback):
    """Ray Tune's MLflow callback, plus the run's fixed config values as params of each trial.

    MLflow failing never stops the search: the first failure is named in one warning line (the store, what
    failed and why; for a resumed run, that it keeps the store it was started with) and tracking stops for
    the rest of the command. The trial records are the harness's own account in any case."""

    def __init__(self, uri: str, run: str, pair: str, fixed: dict[str, Any]):
        super().__init__(tracking_uri=uri, experiment_name=run, tags={"harness.pair": pair, "harness.run": run})
        self.fixed = fixed
        self.run = run

    def _guarded(self, what: str, call: Any, *args: Any) -> None:
        if getattr(self, "_failed", False):
            return
        try:
            call(*args)
        except Exception as err:  # noqa: BLE001 - any MLflow or store error: say it once, keep searching
            self._failed = True
            reason = " ".join(str(err).split())[:300]
            log.warning(
                "MLflow tracking to %s stopped (%s: %s: %s); the search goes on. A resumed run tracks to the "
                "store it was started with: to track elsewhere, start a new run (--name NEW --mlflow URI)",
                self.tracking_uri,
                what,
                type(err).__name__,
                reason,
            )

    def setup(self, *args: Any, **kwargs: Any) -> None:
        self._failed = False
        self._guarded("opening the store", lambda: super(HarnessMLflow, self).setup(*args, **kwargs))

    def log_trial_start(self, trial: Trial) -> None:
        def start() -> None:
            super(HarnessMLflow, self).log_trial_start(trial)
            fixed_only = {k: v for k, v in self.fixed.items() if k not in trial.config}
            self.mlflow_util.log_params(run_id=self._trial_runs[trial], params_to_log=fixed_only)

        self._guarded("starting a trial's run", start)

    def log_trial_result(self, iteration: int, trial: Trial, result: dict) -> None:
        self._guarded("logging metrics", super().log_trial_result, iteration, trial, result)

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        self._guarded("ending a trial's run", super().log_trial_end, trial, failed)
