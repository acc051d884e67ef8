"""``python -m harness.search --pair PAIR``: Optuna (TPE) search with ASHA over one pair's space.

With no ``--data`` it runs on the built-in demo corpus. Running the same command again after a kill
resumes the experiment. ``--smoke-test``: one fold, two trials, one epoch, tiny random-init pretrained
models (CI runs this).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from harness.atomic import write_json_atomic
from harness.cache import FeatureCache, corpus_fingerprint
from harness.config import ConfigError
from harness.corpus import SESSIONS, CorpusError
from harness.data import resolve_corpus
from harness.dataset import feature_specs, load_pair_data
from harness.demo import default_cache_dir
from harness.logs import setup_logging
from harness.pairs import UnknownPairError, get_pair
from harness.space import SearchSpace, load_space
from harness.tiny_models import ensure_tiny_models

log = logging.getLogger(__name__)


def parse_overrides(pairs: list[str]) -> dict:
    values = {}
    for item in pairs:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        value = yaml.safe_load(raw)  # "3" -> 3, "true" -> True, "attention" -> "attention"
        if isinstance(value, str):
            try:
                value = float(value)  # YAML 1.1 reads "1e-3" (no dot) as a string
            except ValueError:
                pass
        values[key.strip()] = value
    return values


def git_hash() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions() -> dict[str, str]:
    out = {}
    for package in ("torch", "transformers", "ray", "optuna", "librosa", "scikit-learn"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "missing"
    return out


def prebuild_features(pair_name: str, space: SearchSpace, manifest, cache: FeatureCache, fingerprint: str) -> None:
    """Extract every feature the trials of this space can ask for, once, before Ray starts.

    Each modality's features depend on single keys (front end, mel bins, checkpoint, fine-tuning or
    not), so varying one searched value at a time finds them all; anything missed is built by the
    first trial that needs it, under the cache's lock.
    """
    pair = get_pair(pair_name)
    variants = [{}] + [{p.name: value} for p in space.params for value in space.possible_values(p.name)]
    seen = set()
    for values in variants:
        cfg = space.config(values)
        specs = repr(feature_specs(pair, cfg))
        if specs not in seen:
            seen.add(specs)
            load_pair_data(pair, cfg, manifest, cache, fingerprint, progress=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness.search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", required=True, help="model pair, e.g. wav2vec_bilstm")
    parser.add_argument("--data", help="IEMOCAP_full_release directory (default: the built-in demo corpus)")
    parser.add_argument("--num-samples", type=int, default=8, help="number of trials (configs) to try")
    parser.add_argument("--gpus-per-trial", type=float, default=None,
                        help="GPU share per trial, e.g. 0.25 runs four trials per GPU (default: 0.25 if a GPU)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0)
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--storage", help="Ray experiment storage (path or URI; default: RESULTS/ray)")
    parser.add_argument("--name", help="experiment name (default: PAIR_demo or PAIR_iemocap); same name resumes")
    parser.add_argument("--results", default="results", help="results folder (tables, trial JSON)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, nargs="+", default=list(SESSIONS), help="test sessions to run")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="fix a config value, e.g. --set audio.model=/models/wav2vec2-base")
    parser.add_argument("--space", help="search space YAML (default: search_spaces/PAIR.yaml)")
    parser.add_argument("--address", default=None,
                        help="Ray cluster to join ('auto' for one started with `ray start`; default: $RAY_ADDRESS, "
                             "which `ray job submit` sets, else a new local Ray instance)")
    parser.add_argument("--skip-bad", action="store_true", help="skip and list malformed corpus entries")
    parser.add_argument("--smoke-test", action="store_true", help="1 fold, 2 trials, 1 epoch, tiny models")
    parser.add_argument("--no-report", action="store_true", help="do not rebuild the reports at the end")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    try:
        # Everything that can be wrong with the inputs is checked here, before Ray starts.
        pair = get_pair(args.pair)
        space = load_space(args.space or pair.space_path)
        overrides = {"seed": args.seed} | parse_overrides(args.overrides)
        if args.smoke_test:
            args.num_samples, args.folds = min(args.num_samples, 2), args.folds[-1:]
            tiny = ensure_tiny_models(default_cache_dir())
            overrides = {"epochs": 1, "explain_samples": 4, "explain_steps": 4} | tiny | overrides
        space = space.with_fixed(overrides)
        for name, value, low in (("--num-samples", args.num_samples, 1), ("--cpus-per-trial", args.cpus_per_trial, 0),
                                 ("--max-concurrent", args.max_concurrent, 1)):
            if value < low or (name == "--cpus-per-trial" and value == 0):
                raise ConfigError(f"{name} must be > 0, got {value}")
        if args.gpus_per_trial is not None and args.gpus_per_trial < 0:
            raise ConfigError(f"--gpus-per-trial must be >= 0, got {args.gpus_per_trial}")
        if any(f not in SESSIONS for f in args.folds):
            raise ConfigError(f"--folds must be among {SESSIONS}, got {args.folds}")
        corpus, source = resolve_corpus(args.data, skip_bad=args.skip_bad)
    except (ConfigError, CorpusError, UnknownPairError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    import ray
    import torch

    from harness.tune_ray import RunMeta, TrialInputs, restore_or_make

    gpus = args.gpus_per_trial if args.gpus_per_trial is not None else (0.25 if torch.cuda.is_available() else 0.0)
    results = Path(args.results).resolve()
    name = args.name or f"{pair.name}_{'demo' if source == 'demo' else 'iemocap'}{'_smoke' if args.smoke_test else ''}"
    run_dir = results / pair.name / name
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = corpus.manifest()
    cache = FeatureCache(default_cache_dir() / "features")
    fingerprint = corpus_fingerprint(manifest)
    started = time.time()
    prebuild_features(pair.name, space, manifest, cache, fingerprint)
    meta = RunMeta(pair.name, name, source, git_hash(), versions(), tuple(args.folds), args.seed, args.smoke_test)
    inputs = TrialInputs(meta, space, manifest, fingerprint, str(cache.root), str(run_dir))
    # Never join a cluster by accident: only an explicit --address or RAY_ADDRESS does.
    address = args.address or os.environ.get("RAY_ADDRESS") or "local"
    ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=True)
    tuner = restore_or_make(inputs, num_samples=args.num_samples, cpus_per_trial=args.cpus_per_trial,
                            gpus_per_trial=gpus, max_concurrent=args.max_concurrent,
                            storage=args.storage or str(results / "ray"), name=name, seed=args.seed)
    grid = tuner.fit()
    elapsed = time.time() - started
    summary = {"pair": pair.name, "run": name, "data_source": source, "wall_s": elapsed,
               "gpus_per_trial": gpus, "cpus_per_trial": args.cpus_per_trial, "num_samples": args.num_samples,
               "trials": len(grid), "errors": len(grid.errors)}
    previous = run_dir / "search.json"
    if previous.exists():  # a resumed search adds to the wall time already spent
        summary["wall_s"] += json.loads(previous.read_text()).get("wall_s", 0.0)
    write_json_atomic(previous, summary)
    if not args.no_report:
        from harness.report import write_reports

        try:
            write_reports(results)
        except FileNotFoundError as err:  # e.g. every trial failed: the trial files say why
            log.warning("no report: %s", err)
    for error in grid.errors:
        log.warning("a trial failed: %s", str(error).splitlines()[0] if str(error) else type(error).__name__)
    print(f"done: {len(grid)} trials ({len(grid.errors)} failed) in {elapsed:.0f}s. Trial results: {run_dir}; "
          f"report: {results / 'comparison.md'}")
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
