"""What the issue-19 explanation protocol costs in a final-stage trial, per pair, with real-size checkpoints.

    python benchmarks/bench_explain.py [--pairs cnnbilstm_bilstm wav2vec_albert] [--folds 4 5]
                                       [--level head_level|end_to_end] [--samples 6] [--steps 8]
                                       [--tiny] [--finetune K] [--set KEY=VALUE ...] [--out FILE.json]

For each pair, a final-stage trial of the default config (``harness/search_spaces/_base.yaml``'s fixed values, then
the demo budget's training overrides, then the options) on the demo corpus: ``fit_fold`` with
``explain=True`` over the folds in turn, the trial's own code path (``harness.train.explain``). Every pair of
a fold explains the same class-stratified explanation set (``--samples`` utterances drawn from the fold and
a fixed seed), in the same units (100 ms waveform bins, transcript words), at ``--level`` (``head_level``
explains a frozen pretrained branch at its head, labelled; every other branch is end to end). Integrated
Gradients starts at ``--steps`` and doubles them until the completeness error is under its tolerance; the
time budget (``explain_budget``, default 0.1 x the trial's train+score+measure time, carried over folds)
lowers the steps, never the set.

One line per pair: parameters, the trial's train+score+measure seconds, its explanation seconds and their
share of the trial, utterances explained per fold against the set size (must be the full set), whether
each fold stayed within its budget, the mean IG steps used per utterance and branch, the mean relative
completeness error (and how many utterance-branches stayed over tolerance), the peak memory while
explaining (GPU memory on CUDA, the process's resident memory on CPU) and each branch's level. Targets
(issue 19, IEMOCAP scale on a GPU): share under 10%, under 4 GB of extra memory. On the demo corpus the
trial's training is tiny, so the share here overstates IEMOCAP's (the explanation's cost does not grow with
the training set); ``--set explain_budget=0`` shows the unbounded cost.

Pretrained encoders use real-size RANDOM-INIT checkpoints (``ensure_checkpoint(variant, "real")``:
wav2vec2-base 94.4 M, albert-base 11.7 M parameters, built offline once under $HARNESS_CACHE): sizes, time
and memory are real, scores and attributions mean nothing. ``--tiny`` uses the tiny ones (a quick check).
``--finetune K`` fine-tunes the top K layers of pretrained audio encoders (and ALBERT's shared layer); a
fine-tuned branch is always explained end to end, through the backbone to the waveform or the words.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import torch

from harness.config import EXPLAIN_LEVELS, TrialConfig
from harness.corpus import load_corpus, make_folds
from harness.corpus.demo import ensure_demo_corpus
from harness.features import FeatureCache, corpus_fingerprint
from harness.models.data import load_pair_data
from harness.models.pairs import get_pair
from harness.models.tiny import ensure_checkpoint
from harness.paths import default_cache_dir
from harness.records import FoldRecord
from harness.train.explain.attribute import TOLERANCE
from harness.train.fit import default_device, fit_fold
from harness.tune.space import load_space

DEFAULT_PAIRS = ["cnnbilstm_bilstm", "wav2vec_albert"]  # the small pair and the frozen large pair
# The demo budget's training (harness/cli/benchmark.py DEMO_OVERRIDES): frozen backbones, few epochs.
TRAINING = {"epochs": 8, "patience": 3, "audio.finetune_layers": 0, "text.finetune_layers": 0, "latency_repeats": 3}


def machine(device: torch.device) -> str:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    cpu = f"{psutil.cpu_count()} CPU cores, load average {load}"
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, {cpu}"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {cpu}"


def final_config(pair_name: str, size: str, overrides: dict) -> TrialConfig:
    """The search space's fixed values (what a final-stage config keeps) with the offline checkpoints."""
    pair = get_pair(pair_name)
    fixed = load_space(pair.space_path).fixed
    models = {f"{m}.model": str(ensure_checkpoint(v, size)) for m, v in pair.variants.items() if v.pretrained}
    return TrialConfig.from_flat(fixed | TRAINING | models | overrides)


def summarise(name: str, cfg: TrialConfig, records: list[FoldRecord], frames: list[pd.DataFrame]) -> dict:
    """One pair's row from its folds' records and per-utterance explanation rows."""
    explained = [f.explanation for f in records if f.explanation is not None]
    work = [sum(v for k, v in f.seconds.items() if k != "explain") for f in records]
    spent = [f.seconds.get("explain", 0.0) for f in records]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["metric", "modality", "value"])
    steps = rows[rows.metric == "ig_steps"]
    error = rows[rows.metric == "completeness_error"]
    sets = {(f.fold, rows.utterance_id[(rows.fold == f.fold) & (rows.metric == "ig_steps")].nunique()) for f in records}
    levels = explained[0].level if explained else {}
    return {
        "pair": name,
        "level": levels,
        "level_asked": cfg.explain_level,
        "finetune": f"{cfg.audio.finetune_layers}/{cfg.text.finetune_layers}",
        "folds": [f.fold for f in records],
        "params_M": records[0].resources.params_total / 1e6,
        "work_s": round(sum(work), 3),
        "explain_s": round(sum(spent), 3),
        "explain_share": sum(spent) / max(sum(work) + sum(spent), 1e-9),
        "max_fold_share": max(s / max(w + s, 1e-9) for w, s in zip(work, spent)),
        "set_size": [e.set_size for e in explained],
        "explained_per_fold": [e.n_samples for e in explained],
        "full_set": bool(explained) and all(e.n_samples == e.set_size == cfg.explain_samples for e in explained),
        "explained_ids_per_fold": dict(sorted(sets)),
        "within_budget": [e.within_budget for e in explained],
        "budget_s": [e.budget_s for e in explained],
        "ig_steps_start": cfg.explain_steps,
        "ig_steps_mean": float(steps.value.mean()) if len(steps) else float("nan"),
        "ig_steps_by_modality": {m: float(g.value.mean()) for m, g in steps.groupby("modality")},
        "completeness_error_mean": float(error.value.mean()) if len(error) else float("nan"),
        "completeness_error_max": float(error.value.max()) if len(error) else float("nan"),
        "over_tolerance": int((error.value > TOLERANCE).sum()),
        "utterance_branches": len(error),
        "explain_peak_gb": max((e.peak_rss_gb or 0.0) for e in explained) if explained else float("nan"),
        "train_peak_rss_gb": max(f.resources.peak_rss_gb for f in records),
        "epochs": [f.epochs_run for f in records],
    }


def bench_pair(
    name: str, cfg: TrialConfig, folds: tuple[int, ...], cache: FeatureCache, device: torch.device, threads: int
) -> dict:
    """One final-stage trial of ``cfg``: ``fit_fold`` over ``folds`` in turn, as ``run_trial`` calls it."""
    torch.set_num_threads(threads)
    pair = get_pair(name)
    manifest = load_corpus(ensure_demo_corpus()).manifest()
    data = load_pair_data(pair, cfg, manifest, cache, corpus_fingerprint(manifest), progress=False)
    records: list[FoldRecord] = []
    frames: list[pd.DataFrame] = []
    for fold in make_folds(manifest, folds):
        outcome = fit_fold(cfg, pair, data, fold, lambda r: None, device, explain=True, earlier=records)
        records.append(outcome.record)
        if outcome.explanations is not None:
            frames.append(outcome.explanations)
    return summarise(name, cfg, records, frames)


def short_level(levels: dict[str, str]) -> str:
    return " ".join(f"{m[0]}:{'head' if v == 'head_level' else 'e2e'}" for m, v in sorted(levels.items())) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", default=DEFAULT_PAIRS)
    parser.add_argument("--folds", type=int, nargs="+", default=[4, 5], help="test sessions, in trial order")
    parser.add_argument("--level", choices=EXPLAIN_LEVELS, default="head_level", help="explain_level (demo: head)")
    parser.add_argument("--samples", type=int, default=6, help="explanation set per fold (demo 6, IEMOCAP 60)")
    parser.add_argument("--steps", type=int, default=8, help="starting IG steps (demo 8, default 16)")
    parser.add_argument("--tiny", action="store_true", help="tiny checkpoints instead of real-size ones")
    parser.add_argument("--finetune", type=int, default=0, help="fine-tune the top K layers of pretrained encoders")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", help="write the rows as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    overrides: dict = {"explain_level": args.level, "explain_samples": args.samples, "explain_steps": args.steps}
    if args.finetune:
        overrides |= {"audio.finetune_layers": args.finetune, "text.finetune_layers": 1}
    overrides |= {
        k: json.loads(v) if v[:1] in "0123456789-[{tf" else v
        for k, v in (item.split("=", 1) for item in args.overrides)
    }
    device = default_device()
    cache = FeatureCache(default_cache_dir() / "features")
    size = "tiny" if args.tiny else "real"
    cfg0 = TrialConfig.from_flat(TRAINING | overrides)
    print(
        f"{machine(device)}\ndemo corpus folds {' '.join(map(str, args.folds))}; {size} random-init checkpoints; "
        f"level {cfg0.explain_level}; {cfg0.explain_samples} utterances per fold; IG from {cfg0.explain_steps} "
        f"steps (completeness tolerance {TOLERANCE:.0%}); budget {cfg0.explain_budget} x the trial's work"
    )
    header = (
        f"{'pair':<18} {'params M':>8} {'work s':>7} {'explain s':>9} {'share':>6} {'explained/set':>13} "
        f"{'in budget':>9} {'IG steps':>8} {'compl err':>9} {'over tol':>8} {'expl GB':>7} {'level':<13}"
    )
    print(header)
    rows = []
    for name in args.pairs:
        cfg = final_config(name, size, overrides)
        # One fresh process per pair, as a trial is: peak memory is that pair's, not the largest so far.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            row = pool.submit(bench_pair, name, cfg, tuple(args.folds), cache, device, torch.get_num_threads()).result()
        rows.append(row)
        explained = " ".join(f"{n}/{s}" for n, s in zip(row["explained_per_fold"], row["set_size"]))
        print(
            f"{name:<18} {row['params_M']:>8.1f} {row['work_s']:>7.1f} {row['explain_s']:>9.1f} "
            f"{row['explain_share']:>6.1%} {explained:>13} "
            f"{' '.join('y' if w else 'n' for w in row['within_budget']):>9} {row['ig_steps_mean']:>8.1f} "
            f"{row['completeness_error_mean']:>9.3f} {row['over_tolerance']:>3}/{row['utterance_branches']:<4} "
            f"{row['explain_peak_gb']:>7.2f} {short_level(row['level']):<13}",
            flush=True,
        )
        if not row["full_set"]:
            print(f"  {name}: NOT the full explanation set in every fold ({row['explained_ids_per_fold']})")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.out:
        rows_json = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()} for r in rows]
        Path(args.out).write_text(json.dumps({"machine": machine(device), "rows": rows_json}, indent=1))


if __name__ == "__main__":
    main()
