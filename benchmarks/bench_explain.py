"""What explanations cost in a final-stage fold (issue 11 item 2), per pair, with real-size checkpoints.

    python benchmarks/bench_explain.py [--pairs wav2vec_albert ...] [--fold 5] [--tiny] [--finetune K]
                                       [--budget 0.1] [--set KEY=VALUE ...] [--out FILE.json]

For each pair, on one demo fold with the default final-stage config (``search_spaces/_base.yaml``'s fixed
values): ``fit_fold``'s steps (train_fold, score, measure, explain_fold: the same calls in the same order,
timed one by one in wall and process-CPU seconds, since this benchmark's machine is shared), then one line:
seconds per step, the explanation's share of the fold (wall and CPU), the utterances it explained, the peak
RSS while explaining and the faithfulness. Target (issue 11): share under 10% and peak memory under 4 GB.

Pretrained encoders use real-size RANDOM-INIT checkpoints (``ensure_checkpoint(variant, "real")``:
wav2vec2-base 94.4 M, albert-base 11.7 M parameters, built offline once under $HARNESS_CACHE): sizes,
time and memory are real, scores mean nothing. ``--tiny`` uses the tiny ones (a quick check).
``--budget F`` passes ``budget_s = F x (train + score + measure seconds)`` to ``explain_fold``, which then
explains fewer utterances where 24 would cost more (the share stays under F / (1 + F)).
``--finetune K`` fine-tunes the top K layers of pretrained audio encoders (and ALBERT's shared layer),
whose attributions go through the backbone to the raw input.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil
import torch

from harness.config import TrialConfig
from harness.corpus import load_corpus, make_fold
from harness.corpus.demo import ensure_demo_corpus
from harness.features import FeatureCache, corpus_fingerprint
from harness.models.data import load_pair_data
from harness.models.pairs import GRID, get_pair
from harness.models.tiny import ensure_checkpoint
from harness.paths import default_cache_dir
from harness.train.explain import explain_fold
from harness.train.fit import default_device, measure, score, train_fold
from harness.tune.space import load_space

T = TypeVar("T")
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
    name: str, cfg: TrialConfig, fold_session: int, budget: float | None, cache: FeatureCache, device: torch.device
) -> dict:
    """``fit_fold``'s four steps, one by one (the same calls in the same order), each timed in wall and
    process CPU seconds: this machine is shared, and CPU seconds show what other processes' load hides."""
    pair = get_pair(name)
    manifest = load_corpus(ensure_demo_corpus()).manifest()
    data = load_pair_data(pair, cfg, manifest, cache, corpus_fingerprint(manifest), progress=False)
    fold = make_fold(manifest, fold_session)
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def timed(step: str, run: Callable[[], T]) -> T:
        started, started_cpu = time.perf_counter(), time.process_time()
        out = run()
        wall[step], cpu[step] = time.perf_counter() - started, time.process_time() - started_cpu
        return out

    trained = timed("train", lambda: train_fold(cfg, pair, data, fold, lambda r: None, device))
    timed("score", lambda: score(trained.model, data, fold, device, cfg.batch_size))
    resources = timed("measure", lambda: measure(trained, cfg, data, fold, device))
    # the budget: a fraction of the fold's time before explaining (so the share stays <= F / (1 + F))
    budget_s = None if budget is None else budget * sum(wall.values())
    explanation = timed("explain", lambda: explain_fold(trained.model, data, fold.test, cfg, device, budget_s))
    return {
        "pair": name,
        "finetune": f"{cfg.audio.finetune_layers}/{cfg.text.finetune_layers}",
        **{f"{k}_s": round(v, 3) for k, v in wall.items()},
        **{f"{k}_cpu_s": round(v, 3) for k, v in cpu.items()},
        "explain_share": wall["explain"] / sum(wall.values()),
        "explain_cpu_share": cpu["explain"] / sum(cpu.values()),
        "explained": explanation.n_samples,
        "budget_s": budget_s,
        "explain_peak_rss_gb": explanation.peak_rss_gb,
        "train_peak_rss_gb": resources.peak_rss_gb,
        "faithfulness": explanation.faithfulness,
        "params_M": resources.params_total / 1e6,
        "epochs": trained.epochs_run,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", default=ORIGINAL_PAIRS)
    parser.add_argument("--fold", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="tiny checkpoints instead of real-size ones")
    parser.add_argument("--finetune", type=int, default=0, help="fine-tune the top K layers of pretrained encoders")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="explain with budget_s = BUDGET x train seconds (explain_fold's time budget)",
    )
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
        f"{machine(device)}; demo corpus fold {args.fold}; {size} random-init checkpoints; "
        f"{f'explain budget {args.budget} x the fold before it' if args.budget else 'no explain budget'}"
    )
    header = (
        f"{'pair':<18} {'ft':>5} {'params M':>8} {'ep':>3} {'train s':>8} {'score s':>8} {'measure s':>9} "
        f"{'explain s':>9} {'share':>6} {'CPU share':>9} {'n expl':>6} {'expl RSS GB':>11} {'faithful':>8}"
    )
    print(header)
    rows = []
    for name in args.pairs:
        cfg = final_config(name, size, overrides)
        row = bench_pair(name, cfg, args.fold, args.budget, cache, device)
        rows.append(row)
        print(
            f"{name:<18} {row['finetune']:>5} {row['params_M']:>8.1f} {row['epochs']:>3} {row['train_s']:>8.1f} "
            f"{row['score_s']:>8.2f} {row['measure_s']:>9.2f} {row['explain_s']:>9.2f} "
            f"{row['explain_share']:>6.1%} {row['explain_cpu_share']:>9.1%} {row['explained']:>6} "
            f"{row['explain_peak_rss_gb'] or 0:>11.2f} "
            f"{row['faithfulness']:>8.3f}",
            flush=True,
        )
    if args.out:
        Path(args.out).write_text(json.dumps({"machine": machine(device), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
