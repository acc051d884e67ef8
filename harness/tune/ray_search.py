"""The Ray Tune side of a run: the trainable, the tuner, resources (with ``harness.tune.searchers``, the
only modules that import Ray).

A search trial runs one config on its selection unit's folds (nested LOSO: the inner folds of one outer
test session; otherwise the protocol's folds; ``harness.tune.searchers`` hands them out), in the same
order for every config. It reports the mean validation weighted F1 so far (the current fold at its best
epoch so far) on ASHA's clock, ``fidelity_t`` (``harness.tune.fidelity``). A non-nested search scores
test sessions for the report only; a nested one never sees them (its inner folds hold none). The final
stage runs one trial per seed over every test fold, each fold with the config chosen for it.

After each fold the trial reports a Ray checkpoint holding its ``TrialRecord`` so far (and, in the final
stage, the per-utterance predictions and explanations of the folds done). Ray persists it to the trial's
folder under ``--storage`` (a local path or a URI), so records need no shared filesystem, and a restored
or retried trial continues at the next fold instead of starting over. When a trial ends, the driver
writes its record with how it ended (``TrialLog``). ``harness.store`` reads them back.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import pandas as pd
import ray
import torch
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler

from harness.books import fold_config
from harness.config import ConfigError, TrialConfig
from harness.corpus.folds import Fold
from harness.corpus.protocols import class_set, make_protocol_folds, selection_folds, selection_units
from harness.errors import UserError
from harness.features import FeatureCache
from harness.logs import ray_runtime_env
from harness.models.data import load_pair_data
from harness.models.hub import worker_env
from harness.models.pairs import get_pair
from harness.records import FoldRecord, RunMeta, TrialRecord, read_record
from harness.store import (
    EXPLANATIONS,
    PREDICTIONS,
    RECORD,
    Storage,
    trial_predictions,
    trial_record,
    write_bytes,
    write_json,
)
from harness.train.fit import NonFiniteLossError, default_device, fit_fold
from harness.train.fused import fit_members, why_not_fused_pair
from harness.tune.fidelity import fidelity_time
from harness.tune.objectives import MEASURED
from harness.tune.objectives import value as objective_value
from harness.tune.searchers import METRIC, TIME_ATTR, UNIT_KEY, make_search, unit_search_algorithm
from harness.tune.selection import MEASURE_COSTS, MEASURE_FOLDS
from harness.tune.space import SearchSpace
from harness.tune.studies import bind_run
from harness.tune.tracking import tracking_callbacks, trial_dirname

# The classic reporter (our metric columns: fold, val F1, mean val F1) instead of Ray's new output, which
# ignores a passed ProgressReporter; no warning for the frequent per-fold experiment snapshots.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
log = logging.getLogger(__name__)

_NO_TUNE_SIGINT = "TUNE_DISABLE_SIGINT_HANDLER"
# Failures that recur identically on a retry (a diverging config, a bad value): Ray's FailureConfig
# still retries the trial, but the retry ends at once with the recorded reason instead of re-training.
# An out-of-memory is one too (the same config on the same device runs out again): recorded as the trial's
# result, with the config that caused it, not retried (timm's benchmark does the same).
DETERMINISTIC_FAILURES = (NonFiniteLossError, ConfigError, torch.OutOfMemoryError)


class NotRetried(RuntimeError):
    """A retry of a trial whose earlier attempt failed deterministically."""


@dataclass(frozen=True)
class TrialInputs:
    """Read-only inputs shared by every trial through ``tune.with_parameters`` (the object store)."""

    meta: RunMeta
    space: SearchSpace
    manifest: pd.DataFrame
    fingerprint: str
    cache_dir: str
    cpus_per_trial: float = 1.0
    final: bool = False  # final stage: explain each fold and store per-utterance predictions
    inner_folds: int | None = None  # nested search: run only the first N inner folds (a smoke test)
    keep_models_in: str = ""  # final stage, --keep-models: the storage whose run keeps each fold's model

    def search_folds(self, unit: int | None) -> list[Fold]:
        return selection_folds(self.manifest, self.meta.protocol, self.meta.test_sessions, unit, self.inner_folds)

    def n_search_folds(self) -> int:
        """Folds a search trial runs: the same for every unit."""
        return len(self.search_folds(selection_units(self.meta.protocol, self.meta.test_sessions)[0]))


@dataclass(frozen=True)
class SearchSettings:
    num_samples: int
    cpus_per_trial: float
    gpus_per_trial: float
    max_concurrent: int
    storage: str
    name: str
    seed: int
    max_failures: int = 2
    optuna_storage: str | None = None  # an RDB URL; default: SQLite in the run's books (local storage)


@dataclass(frozen=True)
class SearchOutcome:
    trials: int
    failed: int
    interrupted: bool  # by a signal this process received (Ctrl-C, or SIGTERM turned into one)
    folders: frozenset[str] = frozenset()  # the trial folders (names) of the experiment Ray knows
    short_of: str = ""  # with no signal: why Ray Tune ended before every trial finished ("" when it did not)


def init_ray(address: str | None) -> None:
    """Start a local Ray instance, or join a cluster only when asked (``--address`` or ``RAY_ADDRESS``)."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    try:
        ray.init(
            address=address,
            ignore_reinit_error=True,
            include_dashboard=False,
            log_to_driver=True,
            logging_level=logging.WARNING,
            runtime_env=ray_runtime_env(worker_env()),  # hub offline decision, log file, workers' log routing
        )
    except ConnectionError as err:  # no cluster at that address (Ray retries, then raises)
        raise UserError(f"--address {address}: cannot join a Ray cluster there ({str(err).splitlines()[0]})") from None


def available_gpus() -> float:
    return float(ray.cluster_resources().get("GPU", 0))


def resource_concurrency(cpus_per_trial: float, gpus_per_trial: float) -> int:
    """Trials the Ray cluster holds at once: e.g. four quarter-GPU trials per GPU."""
    resources = ray.cluster_resources()
    limits = [int(resources.get("CPU", 1) // max(cpus_per_trial, 1e-9))]
    if gpus_per_trial > 0:
        limits.append(int(resources.get("GPU", 0) // gpus_per_trial))
    return max(1, min(limits))


def shutdown_ray() -> None:
    ray.shutdown()


def make_record(
    inputs: TrialInputs,
    trial_id: str,
    config: dict,
    folds: list[FoldRecord],
    status: str,
    reason: str = "",
    retryable: bool = True,
    unit: int | None = None,
    n_folds: int = 0,
) -> TrialRecord:
    import torch

    device = default_device()
    return TrialRecord(
        meta=inputs.meta,
        trial_id=trial_id,
        config=config,
        status=status,
        folds=folds,
        reason=reason,
        retryable=retryable,
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        hostname=os.uname().nodename,
        written_at=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        stage="final" if inputs.final else "search",
        node_id=ray.get_runtime_context().get_node_id(),
        outer_fold=unit,
        n_folds=n_folds,
    )


def _predictions(
    inputs: TrialInputs,
    cfg_seed: int,
    fold: int,
    rows: np.ndarray,
    probabilities: np.ndarray,
    labels: np.ndarray,
    classes: tuple[str, ...],
) -> pd.DataFrame:
    manifest = inputs.manifest.iloc[rows]
    frame = pd.DataFrame(
        {
            "pair": inputs.meta.pair,
            "seed": cfg_seed,
            "fold": fold,
            "utterance_id": manifest.utterance_id.to_numpy(),
            "dialog": manifest.dialog.to_numpy(),
            # the utterance's session: the unit of the protocol gap when folds are not sessions (speaker-dependent)
            "session": manifest["session"].to_numpy() if "session" in manifest else fold,
            "label": labels,
            "pred": probabilities.argmax(1),
        }
    )
    for i, emotion in enumerate(classes):
        frame[f"p_{emotion}"] = probabilities[:, i]
    return frame


def keep_fold_model(inputs: TrialInputs, fold: int, cfg: TrialConfig, outcome: Any, trial_id: str) -> None:
    """``--keep-models``: the final stage keeps each test fold's model of its selected config, first seed
    (``meta.seed + 1``; a fused trial's member of that seed), in the run's books (``harness.train.keep``)."""
    if not inputs.keep_models_in or outcome.model is None or cfg.seed != inputs.meta.seed + 1:
        return
    from harness.train.keep import KeptInfo, save_kept

    pair = get_pair(inputs.meta.pair)
    specs = {m: {r: s.describe() for r, s in v.feature_specs(cfg).items()} for m, v in pair.variants.items()}
    info = KeptInfo(
        inputs.meta.pair,
        fold,
        cfg.seed,
        inputs.meta.run,
        trial_id,
        cfg.flat(),
        class_set(inputs.meta.classes),
        features=specs,
        latency_4s_ms=outcome.record.resources.latency_4s_ms,
    )
    save_kept(Storage(inputs.keep_models_in).run(inputs.meta.run), outcome.model, info)


MEMBERS = "members"  # a final-stage trial's further seeds, trained fused with its own (harness.train.fused)
FUSE_SEEDS_ENV = "HARNESS_FUSE_SEEDS"  # "1"/"0" forces fused final-stage seeds on or off (default: on a GPU)


def fuse_seeds(gpus_per_trial: float) -> bool:
    """Whether a final stage trains a fold's seeds as one fused model: on a GPU, where a step is bound by
    the host's dispatch (a CPU is bound by arithmetic: ``benchmarks/bench_fused.py``)."""
    forced = os.environ.get(FUSE_SEEDS_ENV, "")
    return forced == "1" if forced in ("0", "1") else gpus_per_trial > 0


def group_seeds(final_configs: list[dict], inputs: TrialInputs) -> list[dict]:
    """Final-stage trials that differ only in their seed, as one trial each (the first seed's config, the
    others under ``MEMBERS``), where the pair's layers fuse; the rest stay one trial per seed. Each seed
    still gets its own ordinary trial folder and record (``SeedMember``)."""
    pair = get_pair(inputs.meta.pair)
    groups: dict[str, list[dict]] = {}
    for config in final_configs:
        per_fold = {f: {k: v for k, v in c.items() if k != "seed"} for f, c in config["per_fold"].items()}
        reasons = {why_not_fused_pair(pair, inputs.space.config(c)) for c in config["per_fold"].values()}
        key = json.dumps(per_fold, sort_keys=True, default=str) if reasons == {None} else str(id(config))
        if reasons != {None}:
            log.info("%s: final-stage seeds trained one per trial (%s)", pair.name, next(r for r in reasons if r))
        groups.setdefault(key, []).append(config)
    return [_lead(group) for group in groups.values()]


def _lead(group: list[dict]) -> dict:
    """A group's first seed, with the others as its ``MEMBERS``; as the fused model's costs are measured once,
    it measures every fold any of them was dealt (``FinalTrial.measure_folds``)."""
    if len(group) == 1:
        return group[0]
    dealt: list[Any] = [c.get(MEASURE_FOLDS) for c in group]
    folds = None if None in dealt else tuple(sorted({f for d in dealt for f in d}))
    measure = any(c.get(MEASURE_COSTS, True) for c in group)
    return group[0] | {MEASURE_COSTS: measure, MEASURE_FOLDS: folds, MEMBERS: group[1:]}


def members_of(trial: Trial) -> list[dict]:
    return list(dict(trial.config.get("__config", {})).get(MEMBERS, []))


@dataclass
class SeedMember:
    """A further seed of a fused final-stage trial. Its record and tables go to its own trial folder beside
    the Ray trial's (``<trial folder>_seed<N>``, one checkpoint rewritten after each fold), where the store
    reads it as an ordinary trial: same record schema, its own seed's predictions and costs."""

    config: dict[str, Any]
    folder: str
    folds: list[FoldRecord] = field(default_factory=list)
    predictions: list[pd.DataFrame] = field(default_factory=list)
    explanations: list[pd.DataFrame] = field(default_factory=list)

    @property
    def checkpoint(self) -> str:
        return f"{self.folder}/checkpoint_000000"

    def restore(self, fs: Any, done: int) -> None:
        """The folds this member finished with the trial's first ``done`` folds (a retried trial)."""
        record = trial_record(fs, self.folder)
        if record is None:
            return
        self.folds = list(record.folds)[:done]
        sessions = [f.fold for f in self.folds]
        for name, parts in ((PREDICTIONS, self.predictions), (EXPLANATIONS, self.explanations)):
            table = trial_predictions(fs, self.folder, name)
            if table is not None:
                parts.append(table[table["fold"].isin(sessions)])

    def write(self, fs: Any, record: TrialRecord) -> None:
        write_json(fs, f"{self.checkpoint}/{RECORD}", record.to_dict())
        for name, parts in ((PREDICTIONS, self.predictions), (EXPLANATIONS, self.explanations)):
            if parts:
                buffer = io.BytesIO()
                pd.concat(parts, ignore_index=True).to_parquet(buffer, index=False)
                write_bytes(fs, f"{self.checkpoint}/{name}", buffer.getvalue())


def report_fold(
    metrics: dict[str, Any],
    record: TrialRecord,
    predictions: list[pd.DataFrame],
    explanations: list[pd.DataFrame] | None = None,
) -> None:
    """``tune.report`` with a checkpoint holding the record (and predictions, explanations) so far; Ray
    persists it to the trial's folder in the storage."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / RECORD).write_text(json.dumps(record.to_dict(), indent=1, default=str))
        if predictions:
            pd.concat(predictions, ignore_index=True).to_parquet(Path(folder) / PREDICTIONS, index=False)
        if explanations:  # per-utterance explanation rows (harness.train.explain.COLUMNS)
            pd.concat(explanations, ignore_index=True).to_parquet(Path(folder) / EXPLANATIONS, index=False)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def run_trial(config: dict[str, Any], inputs: TrialInputs) -> None:
    """The Ray Tune trainable: a search trial (one config on its unit's folds) or a final-stage trial (one
    seed on every test fold, each with its own chosen config: ``config["per_fold"]``, harness.books.FinalTrial)."""
    import torch

    torch.set_num_threads(max(1, int(inputs.cpus_per_trial)))  # a trial uses the cores it was given, no more
    trial_id = tune.get_context().get_trial_id()
    pair = get_pair(inputs.meta.pair)
    unit = config.get(UNIT_KEY)
    record_config = {k: v for k, v in config.items() if k not in (UNIT_KEY, MEMBERS)}
    crew: list[SeedMember] = []  # a fused final-stage trial's further seeds
    if inputs.final and config.get(MEMBERS):
        storage = tune.get_context().get_storage()
        fs, trial_path = storage.storage_filesystem, storage.trial_fs_path
        crew = [SeedMember(m, f"{trial_path}_seed{m['seed']}") for m in config[MEMBERS]]
    folds: list[Fold]
    configs: dict[int, TrialConfig]  # per fold's position
    if inputs.final:
        folds = make_protocol_folds(inputs.manifest, inputs.meta.protocol, inputs.meta.test_sessions)
    else:
        folds = inputs.search_folds(unit)
    flat = {i: fold_config(record_config, f.test_session, inputs.final) for i, f in enumerate(folds)}
    # each fold's record carries the flat config it trained with (FoldRecord.config: one shape everywhere)
    configs = {i: inputs.space.config(values) for i, values in flat.items()}
    n_folds = len(folds)
    # The latency step and FLOPs cost seconds per trial for a real-size backbone on CPU: a search measures
    # them only when it optimises them, a final stage once per config (its first seed); seeds change
    # neither.
    costs = bool(config.get(MEASURE_COSTS, True)) if inputs.final else bool(set(inputs.meta.objectives) & MEASURED)
    only = config.get(MEASURE_FOLDS) if inputs.final else None  # the folds this final-stage seed measures
    folds_done: list[FoldRecord] = []
    predictions: list[pd.DataFrame] = []
    explanations: list[pd.DataFrame] = []
    checkpoint = tune.get_checkpoint()
    if checkpoint:  # a retried or restored trial continues after its last finished fold
        with checkpoint.as_directory() as folder:
            previous = read_record(Path(folder) / RECORD)
            if previous.status == "failed" and not previous.retryable:
                raise NotRetried(f"not retried: {previous.reason}")
            folds_done = list(previous.folds)
            if (Path(folder) / PREDICTIONS).exists():
                predictions = [pd.read_parquet(Path(folder) / PREDICTIONS)]
            if (Path(folder) / EXPLANATIONS).exists():
                explanations = [pd.read_parquet(Path(folder) / EXPLANATIONS)]

    def record(status: str, reason: str = "", retryable: bool = True) -> TrialRecord:
        return make_record(inputs, trial_id, record_config, folds_done, status, reason, retryable, unit, n_folds)

    for member in crew:  # a retried fused trial: its further seeds continue with the first
        member.restore(fs, len(folds_done))

    loaded: dict[str, Any] = {}  # PairData per distinct config (final-stage folds may differ in features)
    # Latency and FLOPs once per distinct config: a final stage's folds may each have their own (the
    # report's cost columns rest on every fold's selected config); a restored trial keeps what it measured.
    measured = {
        json.dumps(asdict(configs[i]), sort_keys=True, default=str)
        for i, f in enumerate(folds_done)
        if f.resources.latency_4s_ms is not None
    }
    try:
        for position in range(len(folds_done), len(folds)):
            fold, cfg = folds[position], configs[position]
            key = json.dumps(asdict(cfg), sort_keys=True, default=str)
            measure_now = costs and key not in measured and (only is None or fold.test_session in only)
            if measure_now:
                measured.add(key)
            if key not in loaded:
                loaded[key] = load_pair_data(
                    pair,
                    cfg,
                    inputs.manifest,
                    FeatureCache(inputs.cache_dir),
                    inputs.fingerprint,
                    progress=False,
                    classes=class_set(inputs.meta.classes),
                )
            data = loaded[key]
            finished = [f.validation.weighted_f1 for f in folds_done]
            best_so_far = [-1.0]

            # TensorBoard and MLflow draw one curve per key: each fold's validation F1 gets its own
            curve = f"val_weighted_f1/fold{position + 1}"

            def report_epoch(
                metrics: dict, finished: list[float] = finished, best: list[float] = best_so_far, curve: str = curve
            ) -> None:
                best[0] = max(best[0], metrics["val_weighted_f1"])
                running = float(np.mean(finished + [best[0]]))
                clock = fidelity_time(inputs.meta.fidelity, n_folds, len(finished), metrics["epoch"])
                extra = {TIME_ATTR: clock} if clock is not None and not inputs.final else {}
                extra[curve] = metrics["val_weighted_f1"]
                tune.report(metrics | {"folds_done": len(finished), METRIC: running, "fold_end": False} | extra)

            if crew:  # the fold's seeds as one fused model; each further seed's record goes to its own folder
                cfgs = [cfg] + [inputs.space.config(fold_config(m.config, fold.test_session, True)) for m in crew]
                outcome, *others = fit_members(
                    cfgs,
                    pair,
                    data,
                    fold,
                    report_epoch,
                    explain=True,
                    earlier=[folds_done] + [m.folds for m in crew],
                    measure_costs=[measure_now] + [False] * len(crew),  # costs: once per config, the first seed
                    fuse=True,
                )
                for member, theirs, member_cfg in zip(crew, others, cfgs[1:], strict=True):
                    member.folds.append(
                        replace(theirs.record, config=fold_config(member.config, fold.test_session, True))
                    )
                    member.predictions.append(
                        _predictions(
                            inputs,
                            member_cfg.seed,
                            fold.test_session,
                            fold.test,
                            theirs.test_probabilities,
                            data.labels[fold.test],
                            data.classes,
                        )
                    )
                    if theirs.explanations is not None:
                        member.explanations.append(theirs.explanations)
                    status = "finished" if len(member.folds) == n_folds else "running"
                    member_id = f"{trial_id}_seed{member_cfg.seed}"
                    member.write(
                        fs,
                        make_record(inputs, member_id, member.config, member.folds, status, unit=unit, n_folds=n_folds),
                    )
            else:
                outcome = fit_fold(
                    cfg,
                    pair,
                    data,
                    fold,
                    report_epoch,
                    explain=inputs.final,
                    earlier=folds_done,
                    measure_costs=measure_now,
                )
            folds_done.append(replace(outcome.record, config=flat[position]))
            if inputs.final:
                predictions.append(
                    _predictions(
                        inputs,
                        cfg.seed,
                        fold.test_session,
                        fold.test,
                        outcome.test_probabilities,
                        data.labels[fold.test],
                        data.classes,
                    )
                )
                if outcome.explanations is not None:
                    explanations.append(outcome.explanations)
                keep_fold_model(inputs, fold.test_session, cfg, outcome, trial_id)
            # The record travels with this report: ASHA may stop the trial here (its last rung or max_t).
            clock = fidelity_time(inputs.meta.fidelity, n_folds, len(folds_done))
            done = record("finished" if len(folds_done) == n_folds else "running")
            report_fold(
                {
                    "fold": fold.test_session,
                    "validation": fold.validation_speaker,
                    "epoch": outcome.record.epochs_run,
                    "folds_done": len(folds_done),
                    "fold_end": True,
                    "val_weighted_f1": outcome.record.validation.weighted_f1,
                    METRIC: float(np.mean([f.validation.weighted_f1 for f in folds_done])),
                    "params": outcome.record.resources.params_total,
                }
                | ({TIME_ATTR: clock} if clock is not None and not inputs.final else {})
                | {f"objective/{name}": objective_value(done, name) for name in inputs.meta.objectives},
                done,
                predictions,
                explanations,
            )
    except DETERMINISTIC_FAILURES as err:
        # Checkpointed so that Ray's retry reads it and ends at once (NotRetried) instead of re-training.
        # Not a fold's end: the searcher and ASHA's rungs ignore this result.
        finished = [f.validation.weighted_f1 for f in folds_done]
        report_fold(
            {"folds_done": len(folds_done), "fold_end": False, METRIC: float(np.mean(finished)) if finished else 0.0},
            record("failed", f"{type(err).__name__}: {err}", retryable=False),
            predictions,
            explanations,
        )
        raise


class TrialLog(tune.Callback):
    """Driver side, once per ended trial: its record as it ended goes to the trial's folder in the storage
    (a trial that ended without running every fold was stopped by ASHA; a failed one keeps Ray's reason),
    and one log line says how it ended."""

    def __init__(self, meta: RunMeta, final: bool, n_folds: int = 0):
        self.meta, self.final, self.n_folds = meta, final, n_folds

    def _blank(self, trial: Trial) -> TrialRecord:
        """The record of a trial that ended before its first fold's checkpoint."""
        config = dict(trial.config.get("__config", trial.config))
        unit = config.pop(UNIT_KEY, None)
        config.pop(MEMBERS, None)
        return TrialRecord(
            self.meta,
            trial.trial_id,
            config,
            "running",
            [],
            hostname=str(trial.node_ip or ""),
            written_at=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            stage="final" if self.final else "search",
            outer_fold=unit,
            n_folds=self.n_folds,
        )

    def _ended(self, trial: Trial, record: TrialRecord) -> None:
        fs, path = _trial_folder(trial)
        write_json(fs, f"{path}/{RECORD}", record.to_dict())
        mean = record.mean_val_weighted_f1
        unit = f" (outer fold {record.outer_fold})" if record.outer_fold is not None else ""
        line = f"trial {trial.trial_id}{unit} {record.status.replace('_', ' ')}: {len(record.folds)}/"
        line += f"{record.expected_folds} folds, mean val wF1 {f'{mean:.3f}' if mean is not None else 'n/a'}"
        if record.status == "stopped_early" and not record.folds:
            last = trial.last_result or {}
            line += f" (stopped after epoch {last.get('epoch', '?')} of its first fold)"
        if record.status == "failed":
            log.warning("%s; %s", line, record.reason.splitlines()[0] if record.reason else "")
        else:
            log.info("%s", line)

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        record = trial_record(*_trial_folder(trial))
        if record is None:  # stopped by ASHA within its first fold (epoch rungs): no fold checkpoint yet
            record = self._blank(trial)
        if record.status == "running":
            last = trial.last_result or {}
            partial = int(last.get("epoch", 0)) if not last.get("fold_end", True) else 0
            record = replace(record, status="stopped_early", partial_epochs=partial)
        self._ended(trial, record)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        record = trial_record(*_trial_folder(trial))
        if record is not None and record.status == "failed":
            self._ended(trial, record)  # the trial recorded why (a deterministic failure)
            return
        reason = _error_line(trial)
        if record is None:
            record = self._blank(trial)
        self._ended(
            trial,
            replace(
                record,
                status="failed",
                reason=reason,
                written_at=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                stage="final" if self.final else "search",
            ),
        )


def _trial_folder(trial: Trial) -> tuple[Any, str]:
    """The trial's folder in the storage: its pyarrow filesystem and path."""
    assert trial.storage is not None and trial.path is not None
    return trial.storage.storage_filesystem, trial.path


def _error_line(trial: Trial) -> str:
    """The exception line of the trial's error (Ray keeps the whole traceback in its error.txt)."""
    text = ""
    if trial.error_file and Path(trial.error_file).exists():
        text = Path(trial.error_file).read_text()
    else:
        text = str(trial.get_error() or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "failed (no error text from Ray)"


def _trainable(inputs: TrialInputs, settings: SearchSettings) -> Any:
    return tune.with_resources(
        tune.with_parameters(run_trial, inputs=inputs), {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial}
    )


def make_tuner(inputs: TrialInputs, settings: SearchSettings, final_configs: list[dict] | None = None) -> tune.Tuner:
    """A search (Optuna TPE + ASHA per selection unit), or with ``final_configs`` the final stage: those
    configs, no scheduler."""
    if final_configs is not None:
        tune_config = tune.TuneConfig(
            num_samples=1,
            scheduler=FIFOScheduler(),
            reuse_actors=True,
            max_concurrent_trials=settings.max_concurrent,
            trial_dirname_creator=trial_dirname,
        )
        if fuse_seeds(settings.gpus_per_trial):  # a fold's seeds as one fused model (harness.train.fused)
            final_configs = group_seeds(final_configs, inputs)
        param_space: dict[str, Any] = {"__config": tune.grid_search(final_configs)}
        trainable = tune.with_resources(
            tune.with_parameters(_run_final, inputs=inputs),
            {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial},
        )
        n_folds = len(inputs.meta.test_sessions)
    else:
        searcher, scheduler = make_search(inputs, settings)
        tune_config = tune.TuneConfig(
            search_alg=unit_search_algorithm(searcher, settings.max_concurrent),
            scheduler=scheduler,
            num_samples=settings.num_samples * len(searcher.searchers),
            reuse_actors=True,
            trial_dirname_creator=trial_dirname,
        )
        param_space = {}
        trainable = _trainable(inputs, settings)
        n_folds = inputs.n_search_folds()
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune_config,
        run_config=tune.RunConfig(
            name=settings.name,
            storage_path=Storage(settings.storage).uri,
            verbose=0,  # the console gets one line per ended trial (TrialLog) and the benchmark's progress bar
            callbacks=[
                TrialLog(inputs.meta, inputs.final, n_folds),
                *tracking_callbacks(settings.name, inputs.meta.pair, inputs.space.fixed),  # progress, --mlflow
            ],
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        ),
    )


def _run_final(config: dict[str, Any], inputs: TrialInputs) -> None:
    run_trial(config["__config"], inputs)


def restore_or_make(
    inputs: TrialInputs, settings: SearchSettings, final_configs: list[dict] | None = None
) -> tune.Tuner:
    """Resume the experiment if its folder exists (same command after a kill), else start it."""
    path = Storage(settings.storage).run(settings.name).uri
    if tune.Tuner.can_restore(path):
        log.info("resuming the experiment at %s (finished trials are kept)", path)
        bind_run(settings.storage, settings.name, settings.optuna_storage)  # the pickled studies reopen here
        trainable = (
            tune.with_resources(
                tune.with_parameters(_run_final, inputs=inputs),
                {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial},
            )
            if final_configs is not None
            else _trainable(inputs, settings)
        )
        return tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=False)
    return make_tuner(inputs, settings, final_configs)


@contextmanager
def graceful_interrupts() -> Iterator[dict[str, bool]]:
    """Ctrl-C during ``tuner.fit()``: Ray Tune's graceful stop (save the experiment state, stop the trials,
    return), and a record that it came (``["interrupted"]``); a second Ctrl-C skips the save.

    Ray Tune's own SIGINT handler stops the same way but then marks every stopped trial TERMINATED, so an
    interrupted run whose trials had all started looked finished. Its SIGINT handler is switched off
    (``TUNE_DISABLE_SIGINT_HANDLER``) and the stop is reached through the SIGUSR1 handler that Ray Tune
    registers for it during ``fit``. Outside the main thread (no signals there) nothing changes."""
    state = {"interrupted": False}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous, disabled = signal.getsignal(signal.SIGINT), os.environ.get(_NO_TUNE_SIGINT)

    def on_sigint(sig: int, frame: FrameType | None) -> None:
        ray_stop = signal.getsignal(signal.SIGUSR1)  # Ray Tune's stop while fit runs, else the default
        first, state["interrupted"] = not state["interrupted"], True
        if first and callable(ray_stop):
            ray_stop(sig, frame)
            return
        raise KeyboardInterrupt

    os.environ[_NO_TUNE_SIGINT] = "1"
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)  # Ray Tune leaves its handler of the finished fit
        if disabled is None:
            os.environ.pop(_NO_TUNE_SIGINT, None)
        else:
            os.environ[_NO_TUNE_SIGINT] = disabled


def run_tuner(tuner: tune.Tuner, expected: int) -> SearchOutcome:
    """``tuner.fit()``, then what happened: trial counts and whether the run was interrupted (SIGINT, or
    SIGTERM turned into SIGINT by the caller: Ray saves the experiment state and returns early; the caller
    must not call that done)."""
    with graceful_interrupts() as interrupts:
        grid = tuner.fit()
    trials = grid._experiment_analysis.trials
    unfinished = [t for t in trials if t.status not in (Trial.TERMINATED, Trial.ERROR)]
    # a fused final-stage trial counts as its seeds, each with its own folder (SeedMember)
    count = sum(1 + len(members_of(t)) for t in trials)
    failed = sum(1 + len(members_of(t)) for t in trials if t.status == Trial.ERROR)
    folders = frozenset(Path(t.path).name for t in trials if t.path) | {
        f"{Path(t.path).name}_seed{m['seed']}" for t in trials if t.path for m in members_of(t)
    }
    interrupted = interrupts["interrupted"]
    short_of = ""
    if not interrupted and (unfinished or count < expected):
        states = ", ".join(sorted({t.status for t in unfinished})) or "none pending"
        short_of = (
            f"Ray Tune ended with {count} of {expected} trials, {len(unfinished)} unfinished ({states}), "
            "without a signal"
        )
    return SearchOutcome(count, failed, interrupted, folders, short_of)
