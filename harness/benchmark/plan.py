"""A pair's run, planned before Ray starts: the corpus read once (``load_data``), the storage checked
writable (``open_storage``), each pair's space with its fixed values and checkpoints, its books and its
identity checked against a stored run (``plan_pair``)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness import __version__
from harness.benchmark.spec import RunOptions
from harness.books import RunIdentity
from harness.config import ConfigError
from harness.corpus import Corpus, benchmark_manifest, resolve_corpus
from harness.corpus.folds import SPLIT_VERSION
from harness.corpus.protocols import apply_subset
from harness.corpus.source import corpus_kind
from harness.endpoints import probe_endpoints
from harness.errors import UserError
from harness.features import corpus_fingerprint
from harness.features.asr import asr_manifest, asr_model_for, wer_counts
from harness.lock import hold_run
from harness.models.hub import choose_checkpoints, split_encoder_keys
from harness.models.pairs import PairSpec, get_pair
from harness.paths import usable_cache_dir
from harness.records import RunMeta
from harness.redact import mask_secrets
from harness.store import RunStore, Storage
from harness.tune.space import SearchSpace, load_space


@dataclass(frozen=True)
class RunData:
    corpus: Corpus
    source: str
    manifest: pd.DataFrame
    fingerprint: str
    text_source: str = "gold"  # or "asr": manifest["text"] is the ASR checkpoint's, the gold text in gold_text
    asr_model: str = ""


@dataclass(frozen=True)
class PairPlan:
    """A pair's run, checked and ready: everything Ray needs, decided before Ray starts."""

    pair: PairSpec
    space: SearchSpace
    meta: RunMeta
    store: RunStore
    identity: RunIdentity


def git_hash() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions() -> dict[str, str]:
    """The versions a run records (``RunMeta.versions``) and every report header prints."""
    out = {"harness": __version__, "python": platform.python_version()}
    for package in ("torch", "transformers", "peft", "ray", "optuna", "numpy", "pandas", "librosa", "scikit-learn"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "missing"
    return out


def load_data(options: RunOptions) -> RunData:
    usable_cache_dir()  # the demo corpus, then features and stand-in checkpoints, are built there
    corpus, source = resolve_corpus(options.data, skip_bad=options.skip_bad)
    manifest = benchmark_manifest(corpus, options.labels, options.classes)
    manifest = apply_subset(manifest, options.subset).reset_index(drop=True)
    groups = tuple(sorted(int(s) for s in set(manifest["session"])))
    if not set(options.folds) <= set(groups):  # a manifest's groups are numbered 1..N (harness.corpus.manifest)
        raise UserError(f"--folds {' '.join(map(str, options.folds))}: the corpus has sessions/groups {groups} only")
    text_source = getattr(options, "text_source", "gold")
    asr_model = asr_model_for(text_source, options.fixed, options.smoke_test)
    if asr_model:  # transcribed once into the feature cache (harness.features.asr), before Ray starts
        manifest = asr_manifest(corpus.manifest(excluded=True), manifest, asr_model)
    return RunData(corpus, source, manifest, corpus_fingerprint(manifest), text_source, asr_model)


def check_model_overrides(pair: PairSpec, options: RunOptions) -> None:
    """``--set audio.model=...`` for a pair whose audio encoder loads no checkpoint would be stored in the
    run's config and reported as its checkpoint, though nothing loads it."""
    config_keys, encoder_keys = split_encoder_keys(options.fixed)
    for key in encoder_keys:  # --set whisper.model=DIR: the pair must use that encoder
        if key.partition(".")[0] not in pair.encoders.values():
            raise ConfigError(f"--set {key}: pair {pair.name} does not use encoder {key.partition('.')[0]}")
    for key in config_keys:
        modality, _, field = key.partition(".")
        variant = pair.variants.get(modality)
        if field == "model" and (variant is None or not variant.pretrained):
            what = f"its {modality} encoder loads no checkpoint" if variant else f"it has no {modality} encoder"
            raise ConfigError(f"--set {key}: pair {pair.name} does not use it ({what})")


def checkpoints_for(
    pair: PairSpec, overrides: dict[str, Any], smoke_test: bool, stand_ins: bool = False
) -> tuple[dict[str, str], bool]:
    """Config overrides naming the checkpoint each pretrained encoder loads, checked before Ray.

    Smoke tests use tiny random-init checkpoints. With ``stand_ins`` (the benchmark), an encoder whose
    published checkpoint is neither cached nor downloadable gets a real-size random-init stand-in; a
    checkpoint the user named is never replaced."""
    plan = choose_checkpoints(pair.variants, overrides, smoke_test, stand_ins)  # harness.models.hub
    return plan.overrides, plan.stand_in


def open_storage(options: RunOptions) -> Storage:
    """``--storage`` (default RESULTS/ray), checked writable before Ray starts, after every network endpoint
    of the run (storage, ``--address``, ``--optuna-storage``) answered within a timeout."""
    uri = options.storage or str(Path(options.results).resolve() / "ray")
    probe_endpoints(uri, options.address, options.optuna_storage)  # one line, not a hang, when one is down
    try:
        storage = Storage(uri)
        probe = f"{storage.path.rstrip('/')}/.write_test_{os.getpid()}"
        storage.fs.create_dir(storage.path, recursive=True)
        with storage.fs.open_output_stream(probe) as stream:
            stream.write(b"")
        storage.fs.delete_file(probe)
    except (OSError, ValueError) as err:  # pyarrow's errors are OSError (I/O) or ValueError (bad URI)
        raise UserError(f"--storage {mask_secrets(uri)}: not usable ({str(err).splitlines()[0]})") from None
    return storage


def plan_pair(
    options: RunOptions,
    pair_name: str,
    data: RunData,
    storage: Storage,
    name: str,
    stage: str,
    space_path: str | None = None,
    stand_ins: bool = False,
    final: dict[str, Any] | None = None,
) -> PairPlan:
    """Check and fix everything of ``pair_name``'s run ``name`` (``stage`` "search" or "final"; ``final``:
    the final stage's identity, ``BenchmarkSpec.final``); holds the run's lock from here on."""
    pair = get_pair(pair_name)
    space = load_space(space_path or pair.space_path)
    overrides = {"seed": options.seed} | options.fixed
    checkpoints, stand_in = checkpoints_for(pair, overrides, options.smoke_test, stand_ins)
    overrides, _ = split_encoder_keys(overrides)  # per-encoder keys became audio.model / text.model above
    if options.smoke_test:
        overrides = {"epochs": 1, "explain_samples": 4, "explain_steps": 4} | overrides
    space = space.with_fixed(overrides | checkpoints)
    meta = RunMeta(
        pair.name,
        name,
        data.source,
        git_hash(),
        versions(),
        tuple(options.folds),
        options.seed,
        options.smoke_test,
        checkpoints={k.split(".")[0]: v for k, v in checkpoints.items()},
        stand_in=stand_in or options.smoke_test,
        protocol=options.protocol,
        classes=options.classes,
        labels=options.labels,
        skipped=tuple(str(p) for p in data.corpus.skipped),
        subset=options.subset,
        fidelity=options.fidelity,
        inner_folds=options.inner_folds or 0,
        objectives=tuple(options.objectives),
        text_source=data.text_source,
        asr_model=data.asr_model,
        wer=wer_counts(data.manifest) if data.asr_model else {},
    )
    space_book = {"fixed": space.fixed, "params": [p.__dict__ for p in space.params]}
    identity = RunIdentity.of(meta, data.fingerprint, space_book, options.num_samples, stage, final, SPLIT_VERSION)
    store = storage.run(name)
    hold_run(store)  # before its books are read: a second command on this run is refused (harness.lock)
    identity.check_against(store)
    return PairPlan(pair, space, meta, store, identity)


def default_run_name(pair: str, source: str, options: RunOptions, suffix: str = "") -> str:
    """PAIR_SOURCE[_PROTOCOL][_NCLS][_LABELS][_SUBSET][_asr]SUFFIX[_smoke]: runs of other settings never share
    a folder."""
    setting = "".join(
        part
        for part, default in (
            (f"_{options.protocol}", "_loso"),
            (f"_{options.classes}cls", "_6cls"),
            (f"_{options.labels}", "_release"),
            (f"_{options.subset}", "_all"),
        )
        if part != default
    )
    setting += "_asr" if getattr(options, "text_source", "gold") == "asr" else ""
    source_name = corpus_kind(source)  # demo, iemocap, manifest or crema-d
    return f"{pair}_{source_name}{setting}{suffix}{'_smoke' if options.smoke_test else ''}"
