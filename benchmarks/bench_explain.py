"""What explanations cost in a final-stage trial (issue 11 item 2), per pair, with real-size checkpoints.

    python benchmarks/bench_explain.py [--pairs wav2vec_albert ...] [--folds 1 2 3 4 5] [--tiny]
                                       [--finetune K] [--set KEY=VALUE ...] [--out FILE.json]

For each pair, a final-stage trial of the default config (``search_spaces/_base.yaml``'s fixed values) on
the demo corpus: ``fit_fold`` with ``explain=True`` over the folds in turn, the trial's own code path, so
the explanation budget (``explain_budget``, default 0.1, carried over the trial's folds) is the one a
benchmark run uses. One line per pair: the trial's train+score+measure seconds, its explanation seconds,
the explanation's share of the trial, the largest share of one fold, utterances explained per fold, the
peak memory while explaining and the faithfulness. Targets (issue 11): share under 10% and peak memory
under 4 GB. ``--set explain_budget=0`` shows the unbounded cost.

Pretrained encoders use real-size RANDOM-INIT checkpoints (``ensure_checkpoint(variant, "real")``:
wav2vec2-base 94.4 M, albert-base 11.7 M parameters, built offline once under $HARNESS_CACHE): sizes,
time and memory are real, scores mean nothing. ``--tiny`` uses the tiny ones (a quick check).
``--finetune K`` fine-tunes the top K layers of pretrained audio encoders (and ALBERT's shared layer),
whose attributions go through the backbone to the raw input.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import platform
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import torch

from harness.config import TrialConfig
from harness.corpus import load_corpus, make_folds
from harness.corpus.demo import ensure_demo_corpus
from harness.features import FeatureCache, corpus_fingerprint
from harness.models.data import load_pair_data
from harness.models.pairs import GRID, get_pair
from harness.models.tiny import ensure_checkpoint
from harness.paths import default_cache_dir
from harness.records import FoldRecord
from harness.train.fit import default_device, fit_fold
from harness.tune.space import load_space

ORIGINAL_PAIRS = list(GRID)  # the 2x2 grid and its unimodal baselines


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, {psutil.cpu_count()} CPU cores"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def final_config(pair_name: str, size: str, overrides: dict) -> TrialConfig:
    """The search space's fixed values (what a final-stage config keeps) with the offline checkpoints."""
    pair = get_pair(pair_name)
    fixed = load_space(pair.space_path).fixed
    models = {f"{m}.model": str(ensure_checkpoint(v, size)) for m, v in pair.variants.items() if v.pretrained}
    return TrialConfig.from_flat(fixed | models | overrides)


def bench_pair(
    name: str, cfg: TrialConfig, folds: tuple[int, ...], cache: FeatureCache, device: torch.device, threads: int
) -> dict:
    """One final-stage trial of ``cfg``: ``fit_fold`` over ``folds`` in turn, as ``run_trial`` calls it."""
    torch.set_num_threads(threads)
    pair = get_pair(name)
    manifest = load_corpus(ensure_demo_corpus()).manifest()
    data = load_pair_data(pair, cfg, manifest, cache, corpus_fingerprint(manifest), progress=False)
    records: list[FoldRecord] = []
    for fold in make_folds(manifest, folds):
        records.append(fit_fold(cfg, pair, data, fold, lambda r: None, device, explain=True, earlier=records).record)
    explained = [f.explanation for f in records if f.explanation is not None]
    work = [sum(v for k, v in f.seconds.items() if k != "explain") for f in records]
    spent = [f.seconds.get("explain", 0.0) for f in records]
    faithful = [e.faithfulness for e in explained if e.n_samples and np.isfinite(e.faithfulness)]
    return {
        "pair": name,
        "finetune": f"{cfg.audio.finetune_layers}/{cfg.text.finetune_layers}",
        "folds": list(folds),
        "work_s": round(sum(work), 3),
        "explain_s": round(sum(spent), 3),
        "explain_share": sum(spent) / (sum(work) + sum(spent)),
        "max_fold_share": max(s / (w + s) for w, s in zip(work, spent)),
        "explained_per_fold": [e.n_samples for e in explained],
        "explain_peak_gb": max((e.peak_rss_gb or 0.0) for e in explained),
        "train_peak_rss_gb": max(f.resources.peak_rss_gb for f in records),
        "faithfulness": float(np.mean(faithful)) if faithful else float("nan"),
        "params_M": records[0].resources.params_total / 1e6,
        "epochs": [f.epochs_run for f in records],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", default=ORIGINAL_PAIRS)
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--tiny", action="store_true", help="tiny checkpoints instead of real-size ones")
    parser.add_argument("--finetune", type=int, default=0, help="fine-tune the top K layers of pretrained encoders")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", help="write the rows as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    overrides = {
        k: json.loads(v) if v[:1] in "0123456789-[{tf" else v
        for k, v in (item.split("=", 1) for item in args.overrides)
    }
    if args.finetune:
        overrides |= {"audio.finetune_layers": args.finetune, "text.finetune_layers": 1}
    device = default_device()
    cache = FeatureCache(default_cache_dir() / "features")
    size = "tiny" if args.tiny else "real"
    print(
        f"{machine(device)}; demo corpus folds {' '.join(map(str, args.folds))}; {size} random-init checkpoints; "
        f"explain budget {overrides.get('explain_budget', TrialConfig().explain_budget)} x the trial's work"
    )
    header = (
        f"{'pair':<18} {'ft':>5} {'params M':>8} {'work s':>8} {'explain s':>9} {'share':>6} {'max fold':>8} "
        f"{'explained per fold':>18} {'expl GB':>7} {'faithful':>8}"
    )
    print(header)
    rows = []
    for name in args.pairs:
        cfg = final_config(name, size, overrides)
        # One fresh process per pair, as a trial is: peak memory is that pair's, not the largest so far.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            row = pool.submit(bench_pair, name, cfg, tuple(args.folds), cache, device, torch.get_num_threads()).result()
        rows.append(row)
        print(
            f"{name:<18} {row['finetune']:>5} {row['params_M']:>8.1f} {row['work_s']:>8.1f} {row['explain_s']:>9.2f} "
            f"{row['explain_share']:>6.1%} {row['max_fold_share']:>8.1%} "
            f"{' '.join(map(str, row['explained_per_fold'])):>18} {row['explain_peak_gb']:>7.2f} "
            f"{row['faithfulness']:>8.3f}",
            flush=True,
        )
    if args.out:
        Path(args.out).write_text(json.dumps({"machine": machine(device), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
