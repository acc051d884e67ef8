"""The Ray Tune side: the trainable, Optuna TPE search, ASHA early stopping and resources.

The trainable runs the five folds of one config in turn. After each fold it reports the mean validation
weighted F1 so far with ``folds_done`` as ASHA's time axis, so a config that is poor on its first folds is
stopped before the rest. The test sessions are scored for the reporter only; nothing here reads them.
After each fold the trial's results are written to ``results/<pair>/<run>/trial_<id>.json`` and
checkpointed, so a restored or retried trial continues at the next fold instead of starting over.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from harness.atomic import write_json_atomic
from harness.cache import FeatureCache
from harness.config import ConfigError
from harness.dataset import load_pair_data
from harness.folds import make_folds
from harness.pairs import get_pair
from harness.space import SearchSpace
from harness.train import FoldResult, NonFiniteLossError, default_device, fit_fold

log = logging.getLogger(__name__)
METRIC = "mean_val_weighted_f1"
# Failures that recur identically on a retry (a diverging config, a bad value): Ray's FailureConfig
# still retries the trial, but the retry ends at once with the recorded reason instead of re-training.
DETERMINISTIC_FAILURES = (NonFiniteLossError, ConfigError)


class NotRetried(RuntimeError):
    """A retry of a trial whose earlier attempt failed deterministically."""


@dataclass(frozen=True)
class RunMeta:
    pair: str
    run: str
    data_source: str  # "demo" or the IEMOCAP path
    git_hash: str
    versions: dict[str, str]
    test_sessions: tuple[int, ...]
    seed: int
    smoke_test: bool


@dataclass(frozen=True)
class TrialInputs:
    """Read-only inputs shared by every trial through ``tune.with_parameters`` (the object store)."""

    meta: RunMeta
    space: SearchSpace
    manifest: pd.DataFrame
    fingerprint: str
    cache_dir: str
    results_dir: str


def trial_record(inputs: TrialInputs, trial_id: str, config: dict, folds: list[dict], status: str,
                 reason: str = "", retryable: bool = True) -> dict:
    import torch

    device = default_device()
    return {
        "meta": asdict(inputs.meta), "trial_id": trial_id, "config": config, "status": status, "reason": reason,
        "retryable": retryable,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "hostname": os.uname().nodename, "folds": folds,
        "written_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "mean_val_weighted_f1": float(np.mean([f["validation"]["weighted_f1"] for f in folds])) if folds else None,
    }


def run_trial(config: dict[str, Any], inputs: TrialInputs) -> None:
    """The Ray Tune trainable."""
    context = tune.get_context()
    trial_id = context.get_trial_id()
    cfg = inputs.space.config(config)
    pair = get_pair(inputs.meta.pair)
    out = Path(inputs.results_dir) / f"trial_{trial_id}.json"
    if out.exists():
        previous = json.loads(out.read_text())
        if previous["status"] == "failed" and not previous.get("retryable", True):
            raise NotRetried(f"not retried: {previous['reason']}")
    folds_done: list[dict] = []
    checkpoint = tune.get_checkpoint()
    if checkpoint:  # a retried or restored trial continues after its last finished fold
        with checkpoint.as_directory() as folder:
            folds_done = json.loads((Path(folder) / "folds.json").read_text())
    try:
        data = load_pair_data(pair, cfg, inputs.manifest, FeatureCache(inputs.cache_dir), inputs.fingerprint,
                              progress=False)
        folds = make_folds(inputs.manifest, inputs.meta.test_sessions)
        for fold in folds[len(folds_done):]:
            finished = [f["validation"]["weighted_f1"] for f in folds_done]

            def report_epoch(metrics: dict) -> None:
                running = float(np.mean(finished + [metrics["val_weighted_f1"]]))
                tune.report(metrics | {"folds_done": len(finished), METRIC: running})

            result: FoldResult = fit_fold(cfg, pair, data, fold, report_epoch)
            folds_done.append(asdict(result))
            # Written before reporting: ASHA may stop the trial at this report (its last rung or max_t).
            status = "finished" if len(folds_done) == len(folds) else "running"
            write_json_atomic(out, trial_record(inputs, trial_id, config, folds_done, status))
            with tempfile.TemporaryDirectory() as folder:
                (Path(folder) / "folds.json").write_text(json.dumps(folds_done, default=str))
                val = [f["validation"]["weighted_f1"] for f in folds_done]
                tune.report({"fold": fold.test_session, "epoch": result.epochs_run, "folds_done": len(folds_done),
                             "val_weighted_f1": result.validation.weighted_f1, METRIC: float(np.mean(val)),
                             "params": result.resources.params_total},
                            checkpoint=tune.Checkpoint.from_directory(folder))
    except Exception as err:
        write_json_atomic(out, trial_record(inputs, trial_id, config, folds_done, "failed",
                                            f"{type(err).__name__}: {err}",
                                            retryable=not isinstance(err, DETERMINISTIC_FAILURES)))
        raise


def _trainable(inputs: TrialInputs, cpus_per_trial: float, gpus_per_trial: float) -> object:
    return tune.with_resources(tune.with_parameters(run_trial, inputs=inputs),
                               {"cpu": cpus_per_trial, "gpu": gpus_per_trial})


def make_tuner(inputs: TrialInputs, *, num_samples: int, cpus_per_trial: float, gpus_per_trial: float,
               max_concurrent: int, storage: str, name: str, seed: int, max_failures: int = 2) -> tune.Tuner:
    from optuna.samplers import TPESampler

    trainable = _trainable(inputs, cpus_per_trial, gpus_per_trial)
    n_folds = len(inputs.meta.test_sessions)
    searcher = OptunaSearch(space=inputs.space.sample, metric=METRIC, mode="max",
                            sampler=TPESampler(seed=seed, n_startup_trials=min(10, max(2, num_samples // 3))))
    scheduler = ASHAScheduler(time_attr="folds_done", metric=METRIC, mode="max", max_t=max(n_folds, 1),
                              grace_period=1, reduction_factor=2)
    reporter = tune.CLIReporter(
        metric_columns={"params": "params", "fold": "fold", "epoch": "epoch", "val_weighted_f1": "val F1",
                        METRIC: "mean val F1", "folds_done": "folds"},
        max_report_frequency=15)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=ConcurrencyLimiter(searcher, max_concurrent=max_concurrent),
                                    scheduler=scheduler, num_samples=num_samples),
        run_config=tune.RunConfig(name=name, storage_path=storage, progress_reporter=reporter, verbose=1,
                                  failure_config=tune.FailureConfig(max_failures=max_failures),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
    )


def restore_or_make(inputs: TrialInputs, **kwargs: Any) -> tune.Tuner:
    """Resume the experiment if its folder exists (same command after a kill), else start it."""
    path = str(Path(kwargs["storage"]) / kwargs["name"])
    if tune.Tuner.can_restore(path):
        log.info("resuming the experiment at %s (finished trials are kept)", path)
        trainable = _trainable(inputs, kwargs["cpus_per_trial"], kwargs["gpus_per_trial"])
        return tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=False)
    return make_tuner(inputs, **kwargs)
