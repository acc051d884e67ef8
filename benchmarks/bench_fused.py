"""Fused seeds (harness.models.fused): host operations and wall time per member-step, K separate models
against one fused model of K members, on the demo corpus's small pair at its real config sizes.

    python benchmarks/bench_fused.py [--pair cnnbilstm_bilstm] [--members 1 2 5] [--steps 10] [--device cpu]

A "member-step" is one optimiser step of one seed's model. For K = 1 the step is the ordinary training
step (``fit.optimise``); for K > 1 it is one ``fused_step`` of K members (each its own batch, padded to one
shape), divided by K. Host operations are the ATen operations the step dispatches (forward, backward,
clipping, AdamW), counted with a ``TorchDispatchMode``: on a GPU each is at least one kernel launch, which
is what bounds the small pair's step there (about 2,000 operations, ~13 ms of host time, for ~20 ms of
arithmetic per IEMOCAP-size epoch's worth of batches). Wall time is the median of ``--repeats`` timed runs
of ``--steps`` steps after a warm-up; on a CPU the small pair is compute-bound, so a fused model (whose
block-diagonal LSTMs do K times the recurrent arithmetic of one member) need not be faster there: the
ratio is printed as measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from harness.config import TrialConfig
from harness.corpus import load_corpus
from harness.corpus.demo import ensure_demo_corpus
from harness.corpus.folds import Fold, make_fold
from harness.features import FeatureCache
from harness.models.data import PairData, load_pair_data
from harness.models.fused import FusedEmotionModel, why_not_fused
from harness.models.fusion import EmotionModel
from harness.models.pairs import get_pair
from harness.train.batching import ResidentBuckets
from harness.train.fit import autocast_for, make_optimizer, optimise
from harness.train.fused import build_members, class_weights, fused_step, stack_members
from harness.train.measure import synchronize


class OpCounter(TorchDispatchMode):
    """Counts the ATen operations dispatched while active (each one a kernel launch or more on a GPU)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def make_step(
    cfg: TrialConfig,
    models: list[EmotionModel],
    data: PairData,
    fold: Fold,
    device: torch.device,
    autocast: torch.autocast,
) -> Callable[[int], None]:
    """Step i of the members' own batch orders: the ordinary training step for one model, a fused step for
    several."""
    store = ResidentBuckets(models[0], data, fold.train, cfg.bucket_size, cfg.batch_size, device)
    picks = [store.epoch_indices(np.random.default_rng(100 + m)) for m in range(len(models))]
    n = min(len(p) for p in picks)
    weights = class_weights(cfg, data, fold, device)
    if len(models) == 1:
        model = models[0].to(device).train()
        optimizer = make_optimizer(model, cfg)
        criterion = nn.CrossEntropyLoss(weight=weights)

        def one(i: int) -> None:
            b, index = picks[0][i % n]
            optimise(model, *store.take(b, index), optimizer, criterion, autocast, cfg.grad_clip)

        return one
    fused = FusedEmotionModel(models).to(device).train()
    fused_optimizer = torch.optim.AdamW(fused.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def many(i: int) -> None:
        taken = [store.take(b, index) for b, index in (p[i % n] for p in picks)]
        batch, labels, valid = stack_members([t[0] for t in taken], [t[1] for t in taken])
        fused_step(fused, batch, labels, valid, fused_optimizer, weights, autocast, cfg.grad_clip)

    return many


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", default="cnnbilstm_bilstm")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 2, 5])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides key=value (e.g. audio.hidden=64)")
    parser.add_argument("--json", help="also write the rows to this file (benchmarks/gpu_check.py reads it)")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(max(1, int(os.environ.get("BENCH_THREADS", "1"))))
    root = ensure_demo_corpus(Path(tempfile.gettempdir()) / "harness_demo")
    manifest = load_corpus(root).manifest()
    pair = get_pair(args.pair)
    overrides = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}
    base = TrialConfig.from_flat(overrides)
    cache = FeatureCache(Path(os.environ.get("HARNESS_CACHE", tempfile.gettempdir() + "/harness_cache")))
    data = load_pair_data(pair, base, manifest, cache, progress=False)
    fold = make_fold(manifest, 1)
    autocast = autocast_for(base, device)
    print(
        f"# bench_fused: {args.pair}, device {device} ({platform.processor() or platform.machine()}), "
        f"{torch.get_num_threads()} thread(s), {os.cpu_count()} cores visible, load {os.getloadavg()[0]:.1f}, "
        f"{args.steps} steps x {args.repeats} repeats, batch {base.batch_size}"
    )
    rows = []
    for k in args.members:
        cfgs = [TrialConfig.from_flat(overrides | {"seed": 100 + s}) for s in range(k)]
        models = build_members(cfgs, pair, data, fold)
        reason = why_not_fused(models) if k > 1 else None
        if reason is not None:
            print(f"K={k}: not fused ({reason})")
            continue
        step = make_step(base, models, data, fold, device, autocast)
        for i in range(2):  # warm-up (and cuDNN's autotuning of the first shapes)
            step(i)
        counter = OpCounter()
        with counter:
            step(2)
        times = []
        for _ in range(args.repeats):
            synchronize(device)
            started = time.perf_counter()
            for i in range(args.steps):
                step(i)
            synchronize(device)
            times.append((time.perf_counter() - started) / args.steps)
        ops = sum(counter.ops.values())
        rows.append((k, ops, ops / k, float(np.median(times)), float(np.median(times)) / k))
    one = rows[0]
    print(
        f"{'K':>3} {'ops/step':>9} {'ops/member-step':>16} {'ops ratio':>10} {'ms/step':>8} "
        f"{'ms/member-step':>15} {'wall ratio':>11}"
    )
    for k, ops, per, wall, wall_per in rows:
        print(
            f"{k:>3} {ops:>9d} {per:>16.0f} {one[2] / per:>9.2f}x {wall * 1e3:>8.1f} {wall_per * 1e3:>15.1f} "
            f"{one[4] / wall_per:>10.2f}x"
        )
    print("ratios: K=1 per member-step over this row's (above 1: the fused model is cheaper per seed)")
    if args.json:
        keys = ("members", "ops_per_step", "ops_per_member_step", "s_per_step", "s_per_member_step")
        Path(args.json).write_text(json.dumps({"device": str(device), "rows": [dict(zip(keys, r)) for r in rows]}))


if __name__ == "__main__":
    main()
