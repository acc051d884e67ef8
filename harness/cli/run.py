"""One code path for ``harness.search`` (one pair) and ``harness.benchmark`` (every pair, then the final
stage): check everything before Ray starts, extract features, run Ray Tune, keep the run's books."""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pandas as pd

from harness.cli.common import RunIdentity, git_hash, parse_overrides, resolve_checkpoint, versions
from harness.config import ConfigError
from harness.corpus import CLASS_SETS, LABEL_POLICIES, PROTOCOLS, SESSIONS, Corpus, benchmark_manifest, resolve_corpus
from harness.corpus.protocols import SUBSETS, apply_subset, selection_units
from harness.errors import UserError
from harness.features import FeatureCache, corpus_fingerprint
from harness.lock import hold_run
from harness.logs import check_mlflow
from harness.models.hub import checkpoint_or_stand_in
from harness.models.pairs import PairSpec, get_pair
from harness.models.tiny import tiny_overrides
from harness.paths import default_cache_dir, usable_cache_dir
from harness.records import RunMeta
from harness.store import RunStore, Storage
from harness.tune.fidelity import FIDELITIES
from harness.tune.objectives import OBJECTIVES, parse_objectives
from harness.tune.space import SearchSpace, load_space

log = logging.getLogger(__name__)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="IEMOCAP_full_release directory (default: the built-in demo corpus)")
    parser.add_argument("--num-samples", type=int, default=8, help="number of trials (configs) to try per pair")
    parser.add_argument(
        "--gpus-per-trial",
        type=float,
        default=None,
        help="GPU share per trial, e.g. 0.25 runs four trials per GPU (default: 0.25 if a GPU)",
    )
    parser.add_argument("--cpus-per-trial", type=float, default=1.0)
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        help="trials at once (default: what the resources hold, e.g. 4 per GPU at 0.25)",
    )
    parser.add_argument(
        "--storage",
        help="where runs are kept: Ray Tune's storage, a path or a URI such as s3://bucket/runs, read "
        "and written through pyarrow (default: RESULTS/ray)",
    )
    parser.add_argument("--results", default="results", help="reports folder (tables and plots)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, nargs="+", default=list(SESSIONS), help="test sessions to run")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fix a config value, e.g. --set audio.model=/models/wav2vec2-base",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="Ray cluster to join ('auto' for one started with `ray start`; default: $RAY_ADDRESS, "
        "which `ray job submit` sets, else a new local Ray instance)",
    )
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="loso",
        help="loso: five speaker-independent folds, each fold's config chosen on the other four sessions only "
        "(nested); loso-flat: one config chosen on all five folds' validation sessions (non-nested, optimistic); "
        "session5: train 1-4, test 5 (the ERC split)",
    )
    parser.add_argument(
        "--subset",
        choices=SUBSETS,
        default="all",
        help="dialogs to train, select and test on: all, or improvised (or scripted) only; the scripts repeat "
        "across sessions, so scripted test lines often occur verbatim in training",
    )
    parser.add_argument(
        "--objectives",
        default="weighted_f1",
        help="what the search optimises: weighted_f1 (default), or accuracy first then costs for Optuna's "
        f"multi-objective TPE, e.g. weighted_f1,latency_4s_ms (from {', '.join(OBJECTIVES)})",
    )
    parser.add_argument(
        "--inner-folds",
        type=int,
        default=None,
        metavar="N",
        help="nested loso: compare configs on the first N inner folds of each outer fold (default: all four, each "
        "other session validated on in turn; fewer is cheaper and noisier)",
    )
    parser.add_argument(
        "--fidelity",
        choices=FIDELITIES,
        default="epochs",
        help="what ASHA's rungs count: epochs (1, 3, 9 epochs of the first fold, then folds) or folds (1, 2, 4)",
    )
    parser.add_argument(
        "--optuna-storage",
        default=None,
        metavar="URL",
        help="an Optuna RDB storage (postgresql://..., mysql://...) for the studies; default: SQLite in the "
        "run's books, STORAGE/RUN/harness/optuna.db",
    )
    parser.add_argument(
        "--classes",
        type=int,
        choices=sorted(CLASS_SETS),
        default=6,
        help="6 (neu ang hap sad fru exc) or 4 (neu ang sad hap+exc)",
    )
    parser.add_argument(
        "--labels",
        choices=LABEL_POLICIES,
        default="release",
        help="release: labels as read; erc: apply the ERC relabel list (harness/corpus/erc_relabel.csv)",
    )
    parser.add_argument("--skip-bad", action="store_true", help="skip and list malformed corpus entries")
    parser.add_argument("--smoke-test", action="store_true", help="1 fold, 2 trials, 1 epoch, tiny models")
    parser.add_argument("--no-report", action="store_true", help="do not rebuild the reports at the end")
    parser.add_argument(
        "--mlflow",
        metavar="URI",
        help="also track each trial (config, per-fold and final metrics) to MLflow: a tracking server "
        "(http://host:5000), sqlite:////path/mlflow.db or a folder; needs pip install 'harness[mlflow]'",
    )


@dataclass(frozen=True)
class RunData:
    corpus: Corpus
    source: str
    manifest: pd.DataFrame
    fingerprint: str


@dataclass(frozen=True)
class PairPlan:
    """A pair's run, checked and ready: everything Ray needs, decided before Ray starts."""

    pair: PairSpec
    space: SearchSpace
    meta: RunMeta
    store: RunStore
    identity: RunIdentity


def load_data(args: argparse.Namespace) -> RunData:
    usable_cache_dir()  # the demo corpus, then features and stand-in checkpoints, are built there
    corpus, source = resolve_corpus(args.data, skip_bad=args.skip_bad)
    manifest = apply_subset(benchmark_manifest(corpus, args.labels, args.classes), args.subset).reset_index(drop=True)
    return RunData(corpus, source, manifest, corpus_fingerprint(manifest))


def check_arguments(args: argparse.Namespace) -> None:
    args.mlflow = check_mlflow(args.mlflow)
    for name, value in (
        ("--num-samples", args.num_samples),
        ("--cpus-per-trial", args.cpus_per_trial),
        ("--max-concurrent", args.max_concurrent),
    ):
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be > 0, got {value}")
    if args.gpus_per_trial is not None and args.gpus_per_trial < 0:
        raise ConfigError(f"--gpus-per-trial must be >= 0, got {args.gpus_per_trial}")
    if any(f not in SESSIONS for f in args.folds):
        raise ConfigError(f"--folds must be among {SESSIONS}, got {args.folds}")
    if len(set(args.folds)) < len(args.folds):
        raise ConfigError(f"--folds names a session twice: {args.folds}")
    if args.protocol == "session5":
        if args.folds not in (list(SESSIONS), [5]):
            raise ConfigError(f"--protocol session5 has one fold (test Session 5); --folds {args.folds} does not apply")
        args.folds = [5]  # one fold: train on Sessions 1-4, test on Session 5
    check_local_resources(args)
    if isinstance(args.objectives, str):
        args.objectives = parse_objectives(args.objectives)
    if args.inner_folds is not None:
        if args.protocol != "loso":
            raise ConfigError(f"--inner-folds applies to the nested protocol loso, not --protocol {args.protocol}")
        if not 1 <= args.inner_folds <= len(SESSIONS) - 1:
            raise ConfigError(f"--inner-folds must be 1..{len(SESSIONS) - 1}, got {args.inner_folds}")
    if args.smoke_test:
        args.num_samples, args.folds = min(args.num_samples, 2), args.folds[-1:]
        args.inner_folds = 1 if args.protocol == "loso" else None


def check_run_name(name: str | None) -> str | None:
    """A run name is one folder name in the storage (``--name ../x`` would write outside it)."""
    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ConfigError(f"--name {name!r}: use letters, digits and . _ - (one folder name in the storage)")
    return name


def check_model_overrides(pair: PairSpec, overrides: list[str]) -> None:
    """``--set audio.model=...`` for a pair whose audio encoder loads no checkpoint would be stored in the
    run's config and reported as its checkpoint, though nothing loads it."""
    for key in parse_overrides(overrides):
        modality, _, field = key.partition(".")
        variant = pair.variants.get(modality)
        if field == "model" and (variant is None or not variant.pretrained):
            what = f"its {modality} encoder loads no checkpoint" if variant else f"it has no {modality} encoder"
            raise ConfigError(f"--set {key}: pair {pair.name} does not use it ({what})")


def check_local_resources(args: argparse.Namespace) -> None:
    """A trial that asks a new local Ray instance for more than this machine has would wait for ever."""
    if args.address or os.environ.get("RAY_ADDRESS"):
        return  # a cluster: its nodes, not this machine, hold the resources (autoscaling may add them)
    cpus = os.cpu_count() or 1
    if args.cpus_per_trial > cpus:
        raise ConfigError(f"--cpus-per-trial {args.cpus_per_trial:g}: this machine has {cpus} CPUs")
    if args.gpus_per_trial:
        import torch

        gpus = torch.cuda.device_count()
        if args.gpus_per_trial > gpus:
            raise ConfigError(
                f"--gpus-per-trial {args.gpus_per_trial:g}: this machine has {gpus} GPU(s) "
                "(join a cluster with --address to use others)"
            )


def checkpoints_for(
    pair: PairSpec, overrides: dict[str, Any], smoke_test: bool, stand_ins: bool = False
) -> tuple[dict[str, str], bool]:
    """Config overrides naming the checkpoint each pretrained encoder loads, checked before Ray.

    Smoke tests use tiny random-init checkpoints. With ``stand_ins`` (the benchmark), an encoder whose
    published checkpoint is neither cached nor downloadable gets a real-size random-init stand-in; a
    checkpoint the user named is never replaced."""
    if smoke_test:
        return tiny_overrides(pair.variants) | {k: v for k, v in overrides.items() if k.endswith(".model")}, True
    out, stand_in = {}, False
    for modality, variant in pair.variants.items():
        if not variant.pretrained:
            continue
        key = f"{modality}.model"
        if key in overrides:
            out[key] = resolve_checkpoint(variant, str(overrides[key]))
            continue
        if not stand_ins:
            out[key] = resolve_checkpoint(variant, variant.checkpoint)
            continue
        choice = checkpoint_or_stand_in(variant)  # resolved once per process, a stand-in announced once
        out[key], stand_in = choice.path, stand_in or choice.stand_in
    return out, stand_in


def open_storage(args: argparse.Namespace) -> Storage:
    """``--storage`` (default RESULTS/ray), checked writable before Ray starts."""
    uri = args.storage or str(Path(args.results).resolve() / "ray")
    try:
        storage = Storage(uri)
        probe = f"{storage.path.rstrip('/')}/.write_test_{os.getpid()}"
        storage.fs.create_dir(storage.path, recursive=True)
        with storage.fs.open_output_stream(probe) as stream:
            stream.write(b"")
        storage.fs.delete_file(probe)
    except (OSError, ValueError) as err:  # pyarrow's errors are OSError (I/O) or ValueError (bad URI)
        raise UserError(f"--storage {uri}: not usable ({str(err).splitlines()[0]})") from None
    return storage


def plan_pair(
    args: argparse.Namespace,
    pair_name: str,
    data: RunData,
    storage: Storage,
    name: str,
    stage: str,
    space_path: str | None = None,
    stand_ins: bool = False,
    final: dict[str, Any] | None = None,
) -> PairPlan:
    pair = get_pair(pair_name)
    space = load_space(space_path or pair.space_path)
    overrides = {"seed": args.seed} | parse_overrides(args.overrides)
    checkpoints, stand_in = checkpoints_for(pair, overrides, args.smoke_test, stand_ins)
    if args.smoke_test:
        overrides = {"epochs": 1, "explain_samples": 4, "explain_steps": 4} | overrides
    space = space.with_fixed(overrides | checkpoints)
    meta = RunMeta(
        pair.name,
        name,
        data.source,
        git_hash(),
        versions(),
        tuple(args.folds),
        args.seed,
        args.smoke_test,
        checkpoints={k.split(".")[0]: v for k, v in checkpoints.items()},
        stand_in=stand_in or args.smoke_test,
        protocol=args.protocol,
        classes=args.classes,
        labels=args.labels,
        skipped=tuple(str(p) for p in data.corpus.skipped),
        subset=args.subset,
        fidelity=args.fidelity,
        inner_folds=args.inner_folds or 0,
        objectives=tuple(args.objectives),
    )
    identity = RunIdentity(
        pair.name,
        data.source,
        data.fingerprint,
        {"fixed": space.fixed, "params": [p.__dict__ for p in space.params]},
        tuple(args.folds),
        meta.protocol,
        meta.classes,
        meta.labels,
        args.num_samples,
        args.seed,
        stage,
        final,
        subset=args.subset,
        fidelity=args.fidelity,
        inner_folds=args.inner_folds or 0,
        objectives=tuple(args.objectives),
    )
    store = storage.run(name)
    hold_run(store)  # before its books are read: a second command on this run is refused (harness.lock)
    identity.check_against(store)
    return PairPlan(pair, space, meta, store, identity)


def default_run_name(pair: str, source: str, args: argparse.Namespace, suffix: str = "") -> str:
    """PAIR_SOURCE[_PROTOCOL][_NCLS][_LABELS]SUFFIX[_smoke]: runs of other settings never share a folder."""
    setting = "".join(
        part
        for part, default in (
            (f"_{args.protocol}", "_loso"),
            (f"_{args.classes}cls", "_6cls"),
            (f"_{args.labels}", "_release"),
            (f"_{args.subset}", "_all"),
        )
        if part != default
    )
    source_name = "demo" if source == "demo" else "iemocap"
    return f"{pair}_{source_name}{setting}{suffix}{'_smoke' if args.smoke_test else ''}"


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


def execute(
    plan: PairPlan,
    data: RunData,
    args: argparse.Namespace,
    interrupts: Interrupts,
    final_configs: list[dict] | None = None,
) -> dict[str, Any]:
    """Extract features, run the Ray Tune experiment of ``plan``; returns its summary (also in search.json)."""
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
        return {"pair": plan.pair.name, "run": plan.meta.run, "trials": 0, "errors": 0, "interrupted": True}
    init_ray(args.address)
    interrupts.install()
    gpus = args.gpus_per_trial
    if gpus is None:
        gpus = 0.25 if available_gpus() else 0.0
    settings = SearchSettings(
        num_samples=args.num_samples if final_configs is None else len(final_configs),
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=gpus,
        max_concurrent=args.max_concurrent or resource_concurrency(args.cpus_per_trial, gpus),
        storage=plan.store.storage,
        name=plan.meta.run,
        seed=args.seed,
        optuna_storage=args.optuna_storage,
    )
    inputs = TrialInputs(
        plan.meta,
        plan.space,
        data.manifest,
        data.fingerprint,
        str(cache.root),
        args.cpus_per_trial,
        final=final_configs is not None,
        inner_folds=plan.meta.inner_folds or None,
    )
    clock = WallClock(plan.store, plan.store.read("search.json") or {}, started)
    configure_tracking(args.mlflow)
    tuner = restore_or_make(inputs, settings, final_configs)
    try:
        units = 1 if final_configs is not None else len(selection_units(plan.meta.protocol, plan.meta.test_sessions))
        outcome = run_tuner(tuner, settings.num_samples * units)
    except KeyboardInterrupt:  # a second Ctrl-C, or one before Ray's handler was in place
        outcome = None
    interrupted = outcome is None or outcome.interrupted or interrupts.signal is not None
    if outcome is not None and not interrupted and len(outcome.folders) == outcome.trials:
        orphans = plan.store.drop_trials_except(outcome.folders)
        if orphans:
            log.warning(
                "dropped %d trial folder(s) of a killed run that the resumed run never knew: %s",
                len(orphans),
                ", ".join(orphans),
            )
    summary = clock.finish(
        {
            "pair": plan.pair.name,
            "run": plan.meta.run,
            "data_source": data.source,
            "stage": plan.identity.stage,
            "gpus_per_trial": gpus,
            "cpus_per_trial": args.cpus_per_trial,
            "max_concurrent": settings.max_concurrent,
            "num_samples": settings.num_samples,
            "protocol": plan.meta.protocol,
            "fidelity": plan.meta.fidelity,
            "trials": outcome.trials if outcome else None,
            "errors": outcome.failed if outcome else None,
            "interrupted": interrupted,
            "extraction": list(extraction.values()),
            "skipped": list(plan.meta.skipped),
        }
    )
    return summary


class WallClock:
    """Wall time that adds up across resumes (a killed run's time is kept: the summary is written as it goes)."""

    def __init__(self, store: RunStore, previous: dict[str, Any], started: float, every_s: float = 10.0):
        self.store, self.before, self.started = store, float(previous.get("wall_s", 0.0)), started
        self.summary = {**previous, "running": True}
        self._stop = threading.Event()
        self.write(self.summary)
        self._thread = threading.Thread(target=self._tick, args=(every_s,), daemon=True)
        self._thread.start()

    def _tick(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            self.write(self.summary)

    def write(self, summary: dict[str, Any]) -> dict[str, Any]:
        summary = summary | {"wall_s": round(self.before + time.time() - self.started, 1)}
        self.store.write("search.json", summary)
        return summary

    def finish(self, summary: dict[str, Any]) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()  # its last write must not land after this one
        return self.write(summary | {"running": False})


def stop_ray() -> None:
    from harness.tune.ray_search import shutdown_ray

    shutdown_ray()


def report_results(results: Path, storage: Storage) -> None:
    from harness.report.tables import write_reports

    try:
        write_reports(results, storage.uri)
    except FileNotFoundError as err:  # e.g. every trial failed: the trial records say why
        log.warning("no report: %s", err)
