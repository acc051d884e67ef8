"""The benchmark stage: every pair searched at one budget (``execute``, the same path as ``harness search``),
then each pair's final stage (``final_stage``): per test fold the top-k configs of its search, re-trained
with several seeds on every test fold, with explanations and per-utterance predictions.

No argparse here: the CLI builds a ``BenchmarkSpec`` and prints; this module runs it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, replace
from types import FrameType
from typing import Protocol

from harness.benchmark.plan import PairPlan, RunData, default_run_name, open_storage, plan_pair
from harness.benchmark.spec import BenchmarkSpec, RunOptions
from harness.books import FINAL_BOOK, SUMMARY_BOOK, FinalConfigs, FinalTrial, SearchSummary, Selected, read_book
from harness.corpus.protocols import selection_units
from harness.errors import UserError
from harness.features import FeatureCache
from harness.logs import LOG_FILE_VARIABLE
from harness.models.hub import require_checkpoints
from harness.models.pairs import get_pair
from harness.paths import default_cache_dir, disk_full_error, is_disk_full
from harness.records import TrialRecord
from harness.redact import mask_secrets
from harness.resume_check import snapshot_ray_state
from harness.store import RunStore, Storage
from harness.tune.selection import select_configs, validation_sessions

log = logging.getLogger(__name__)


class Interrupts:
    """SIGTERM behaves like Ctrl-C (Ray Tune saves its state and returns); remembers which signal came."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __enter__(self) -> Interrupts:
        self._old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        self.install()
        return self

    def install(self) -> None:
        """(Re)install the handlers: ``ray.init`` replaces the SIGTERM handler with its own."""
        signal.signal(signal.SIGTERM, self._term)
        signal.signal(signal.SIGINT, self._int)

    def _term(self, sig: int, frame: FrameType | None) -> None:
        self.signal = signal.SIGTERM
        signal.raise_signal(signal.SIGINT)

    def _int(self, sig: int, frame: FrameType | None) -> None:
        self.signal = self.signal or signal.SIGINT
        raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)

    @property
    def exit_code(self) -> int:
        return 128 + (self.signal or signal.SIGINT)


class Progress(Protocol):
    """What the stage tells a progress display (``harness.cli.progress.BenchmarkProgress``)."""

    def enter(self, pair: str, stage: str) -> None: ...


class NoProgress:
    def enter(self, pair: str, stage: str) -> None:
        pass


def execute(
    plan: PairPlan,
    data: RunData,
    options: RunOptions,
    interrupts: Interrupts,
    final_configs: list[FinalTrial] | None = None,
) -> SearchSummary:
    """Extract features, run the Ray Tune experiment of ``plan``; returns its summary (also ``search.json``)."""
    from harness.tune.prebuild import prebuild_features
    from harness.tune.ray_search import (
        SearchSettings,
        TrialInputs,
        available_gpus,
        init_ray,
        resource_concurrency,
        restore_or_make,
        run_tuner,
    )
    from harness.tune.tracking import configure as configure_tracking

    started = time.time()
    cache = FeatureCache(default_cache_dir() / "features")
    try:
        extraction = prebuild_features(plan.pair, plan.space, data.manifest, cache, data.fingerprint)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM while extracting: the cache keeps only complete folders
        return SearchSummary(plan.pair.name, plan.meta.run, trials=0, errors=0, interrupted=True)
    init_ray(options.address)
    interrupts.install()
    gpus = options.gpus_per_trial
    if gpus is None:
        gpus = 0.25 if available_gpus() else 0.0
    settings = SearchSettings(
        num_samples=options.num_samples if final_configs is None else len(final_configs),
        cpus_per_trial=options.cpus_per_trial,
        gpus_per_trial=gpus,
        max_concurrent=options.max_concurrent or resource_concurrency(options.cpus_per_trial, gpus),
        storage=plan.store.storage,
        name=plan.meta.run,
        seed=options.seed,
        optuna_storage=options.optuna_storage,
    )
    inputs = TrialInputs(
        plan.meta,
        plan.space,
        data.manifest,
        data.fingerprint,
        str(cache.root),
        options.cpus_per_trial,
        final=final_configs is not None,
        inner_folds=plan.meta.inner_folds or None,
        # --keep-models: the final stage keeps each fold's selected model (harness.train.keep)
        keep_models_in=plan.store.storage if final_configs is not None and options.keep_models else "",
    )
    clock = WallClock(plan.store, read_book(plan.store, SUMMARY_BOOK, SearchSummary) or SearchSummary(), started)
    configure_tracking(options.mlflow)
    ray_configs = None if final_configs is None else [t.ray_config() for t in final_configs]
    tuner = restore_or_make(inputs, settings, ray_configs)
    try:
        units = 1 if final_configs is not None else len(selection_units(plan.meta.protocol, plan.meta.test_sessions))
        outcome = run_tuner(tuner, settings.num_samples * units)
    except KeyboardInterrupt:  # a second Ctrl-C, or one before Ray's handler was in place
        outcome = None
    except Exception as err:  # a full storage disk surfaces from Ray's controller (SQLite, pyarrow): one line
        if not is_disk_full(err):
            raise
        clock.disk_full = True
    if clock.disk_full:
        clock._stop.set()
        raise disk_full_error(plan.store.storage, f"saving run {plan.meta.run}")
    interrupted = outcome is None or outcome.interrupted or interrupts.signal is not None
    short_of = "" if interrupted or outcome is None else outcome.short_of  # never called "interrupted" (no signal)
    if outcome is not None and not interrupted and not short_of and len(outcome.folders) == outcome.trials:
        orphans = plan.store.drop_trials_except(outcome.folders)
        if orphans:
            log.warning(
                "dropped %d trial folder(s) of a killed run that the resumed run never knew: %s",
                len(orphans),
                ", ".join(orphans),
            )
    summary = clock.finish(
        replace(
            clock.summary,
            pair=plan.pair.name,
            run=plan.meta.run,
            data_source=data.source,
            stage=plan.identity.stage,
            gpus_per_trial=gpus,
            cpus_per_trial=options.cpus_per_trial,
            max_concurrent=settings.max_concurrent,
            num_samples=settings.num_samples,
            protocol=plan.meta.protocol,
            fidelity=plan.meta.fidelity,
            trials=outcome.trials if outcome else None,
            errors=outcome.failed if outcome else None,
            interrupted=interrupted,
            extraction=list(extraction.values()),
            skipped=list(plan.meta.skipped),
        )
    )
    if short_of:
        raise RunFellShort(
            f"run {plan.meta.run}: {short_of}; its finished trials are kept in {mask_secrets(plan.store.uri)} and "
            f"the log file {os.environ.get(LOG_FILE_VARIABLE, '')} says what Ray did; run the same command again "
            "to continue it"
        )
    return summary


class RunFellShort(UserError):
    """Ray Tune returned before the run's trials were all done, and no signal asked it to."""


class WallClock:
    """Wall time that adds up across resumes (a killed run's time is kept: the summary is written as it goes)."""

    def __init__(self, store: RunStore, previous: SearchSummary, started: float, every_s: float = 10.0):
        self.store, self.before, self.started = store, float(previous.wall_s), started
        self.summary = replace(previous, running=True)
        self._stop = threading.Event()
        self.disk_full = False  # the storage's disk filled: the run was stopped (``execute`` says so)
        self.write(self.summary)
        self._thread = threading.Thread(target=self._tick, args=(every_s,), daemon=True)
        self._thread.start()

    def _tick(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                self.write(self.summary)
                snapshot_ray_state(self.store)  # a whole copy of Ray's state: repairs a file a full disk cut
            except OSError as err:
                if not is_disk_full(err):
                    raise
                if not self.disk_full:  # stop the run now (Ray Tune's graceful stop), not trial by trial
                    self.disk_full = True
                    log.warning("%s: disk full; stopping the run", self.store.storage)
                    signal.raise_signal(signal.SIGINT)

    def write(self, summary: SearchSummary) -> SearchSummary:
        summary = replace(summary, wall_s=round(self.before + time.time() - self.started, 1))
        self.store.write(SUMMARY_BOOK, asdict(summary))
        return summary

    def finish(self, summary: SearchSummary) -> SearchSummary:
        self._stop.set()
        self._thread.join()  # its last write must not land after this one
        return self.write(replace(summary, running=False))


def stop_ray() -> None:
    from harness.tune.ray_search import shutdown_ray

    shutdown_ray()


def seeded(selected: dict[int, list[TrialRecord]], seeds: int, search_seed: int) -> list[FinalTrial]:
    """The final stage's trials: for each rank r (the r-th best config of every test fold) and seed, one
    trial over every test fold, each fold with its own chosen config (``per_fold``). Seeds are
    search_seed+1.. onwards (search_seed+1..+S for the best configs, the next S for the next rank), never
    a search trial's seed, so no final model is a search run itself; every trial has its own seed, the key
    of its predictions."""
    ranks = min(len(records) for records in selected.values())
    folds = sorted(selected)
    trials = []
    for rank in range(ranks):
        for s in range(seeds):
            seed = search_seed + 1 + rank * seeds + s
            per_fold = {str(fold): records[rank].config | {"seed": seed} for fold, records in selected.items()}
            # Latency and FLOPs depend on the configs, not on the seed: each fold's config is measured once,
            # the i-th fold by seed i mod S, so the seeds' trials (run side by side) share the step.
            mine = tuple(fold for i, fold in enumerate(folds) if i % seeds == s)
            trials.append(FinalTrial(seed=seed, measure_costs=bool(mine), per_fold=per_fold, measure_folds=mine))
    return trials


def selection_rows(pair: str, selected: dict[int, list[TrialRecord]]) -> list[Selected]:
    """What chose each test fold's config, for ``final_configs.json`` (and the report's selected_configs)."""
    return [
        Selected(
            pair=pair,
            test_session=fold,
            rank=rank + 1,
            trial_id=record.trial_id,
            selected_on_sessions=" ".join(str(s) for s in validation_sessions(record)),
            val_weighted_f1=record.mean_val_weighted_f1,
        )
        for fold, records in selected.items()
        for rank, record in enumerate(records)
    ]


@dataclass(frozen=True)
class StageOutcome:
    """How a pair's final stage went: ``ran`` False when a test fold had fewer than top-k complete configs
    (nothing trained); ``summary`` None then."""

    pair: str
    ran: bool
    summary: SearchSummary | None = None
    missing: tuple[int, ...] = ()  # test folds without top-k complete configs

    @property
    def interrupted(self) -> bool:
        return self.summary is not None and self.summary.interrupted


def final_stage(
    spec: BenchmarkSpec,
    search: PairPlan,
    final: PairPlan,
    data: RunData,
    interrupts: Interrupts,
    folds: tuple[int, ...] | None = None,
    progress: Progress | None = None,
) -> StageOutcome:
    """One pair's selection and final stage: per test fold (``folds``, default the search's own) the top
    ``spec.top_k`` configs of ``search``'s records by ``spec.select``, re-trained with ``spec.seeds`` seeds
    into ``final``'s run (whose ``meta.test_sessions`` must be those folds)."""
    pair = search.pair.name
    meta = search.meta if folds is None else replace(search.meta, test_sessions=tuple(folds))
    selected = select_configs(search.store.records(), meta, spec.top_k, spec.select, spec.margin, spec.cost)
    missing = tuple(f for f, records in selected.items() if len(records) < spec.top_k)
    if missing:
        log.warning(
            "%s: fewer than %d config(s) ran every fold for test fold(s) %s; no final stage for it",
            pair,
            spec.top_k,
            " ".join(str(f) for f in missing),
        )
        return StageOutcome(pair, ran=False, missing=missing)
    trials = seeded(selected, spec.seeds, spec.run.seed)
    book = FinalConfigs(spec.describe(), search.meta.run, trials, selection_rows(pair, selected))
    final.store.write(FINAL_BOOK, asdict(book))
    log.info("final stage: %s, %d config(s) per fold x %d seeds", pair, spec.top_k, spec.seeds)
    (progress or NoProgress()).enter(pair, "final")
    return StageOutcome(pair, ran=True, summary=execute(final, data, spec.run, interrupts, final_configs=trials))


@dataclass(frozen=True)
class BenchmarkPlans:
    """Every pair's search and final-stage runs, planned (and locked) before Ray starts."""

    storage: Storage
    searches: dict[str, PairPlan]
    finals: dict[str, PairPlan]


def plan_benchmark(spec: BenchmarkSpec, data: RunData) -> BenchmarkPlans:
    """Plan every pair's search and final stage; the final stages too, before Ray starts: a rerun with
    other ``--seeds`` or ``--top-k`` is refused here."""
    storage = open_storage(spec.run)
    # Every published checkpoint loads, or the run refuses here, before Ray, naming all of them; random-init
    # stand-ins only on the demo corpus or with --allow-stand-ins (flagged in every header).
    stand_ins = data.source == "demo" or spec.run.allow_stand_ins
    variants = [v for p in spec.pairs for v in get_pair(p).variants.values()]
    if not spec.run.smoke_test:
        require_checkpoints(variants, spec.run.fixed, data.source == "demo", spec.run.allow_stand_ins)

    def plan(pair: str, stage: str) -> PairPlan:
        suffix = f"_{spec.name}" + ("_final" if stage == "final" else "")
        name = default_run_name(pair, data.source, spec.run, suffix)
        final = spec.final if stage == "final" else None
        return plan_pair(spec.run, pair, data, storage, name, stage=stage, stand_ins=stand_ins, final=final)

    searches = {p: plan(p, "search") for p in spec.pairs}
    return BenchmarkPlans(storage, searches, {p: plan(p, "final") for p in spec.pairs})


@dataclass(frozen=True)
class Interrupted:
    """Where a benchmark was interrupted (None: it was not)."""

    pair: str
    stage: str


def run_benchmark(
    spec: BenchmarkSpec,
    data: RunData,
    plans: BenchmarkPlans,
    interrupts: Interrupts,
    progress: Progress | None = None,
) -> Interrupted | None:
    """The search of every pair, then the final stage of every pair; returns where it was interrupted."""
    progress = progress or NoProgress()
    log.info("budget: %s", spec.describe())  # once: the line is long
    with interrupts:
        for pair, plan in plans.searches.items():
            log.info("search: %s", pair)
            progress.enter(pair, "search")
            if execute(plan, data, spec.run, interrupts).interrupted:
                return Interrupted(pair, "search")
        for pair, plan in plans.searches.items():
            outcome = final_stage(spec, plan, plans.finals[pair], data, interrupts, progress=progress)
            if outcome.interrupted:
                return Interrupted(pair, "final stage")
    return None
