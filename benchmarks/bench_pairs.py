"""Per pair: params, training utterances/s, latency and peak memory for a fixed number of steps on the
demo corpus; then the training-throughput ratio of the cached pipeline over a naive one that decodes
wavs and computes features (or runs the frozen encoder) inside the data loader at every step.

    python benchmarks/bench_pairs.py [--steps 20] [--pairs cnnbilstm_bilstm wav2vec_bilstm] [--bucket-size 128]

The first table trains each pair both ways the training loop can feed it: batches collated at every step
(the loop before fold-resident buckets; ``bucket_size: 0``) and fold-resident length buckets (the inputs
collated once on the device, batches indexed there; the default), with the padded steps per real step of
each.

Both pipelines are warmed up before timing (librosa's first call JIT-compiles for seconds, which would
otherwise flatter the cache). The ratio is (step + data) / step per utterance, where data is what the
naive loader adds: the cache removes the data term, so the ratio can only reach 10x when the model step
costs at most a ninth of it. The last column prints that bound.

Without network access the pretrained pairs use tiny random-init checkpoints; pass --audio-model /
--text-model (hub names or local paths) to benchmark the real ones.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from harness.config import TrialConfig
from harness.corpus import load_corpus
from harness.corpus.demo import ensure_demo_corpus
from harness.features import FeatureCache, Features, corpus_fingerprint
from harness.features.frontends import per_utterance
from harness.models.data import PairData, load_pair_data
from harness.models.encoders.base import EncoderVariant
from harness.models.encoders.pretrained import LayerMeanExtractor, PretrainedEncoder
from harness.models.fusion import build_model
from harness.models.pairs import PAIRS, PairSpec, get_pair
from harness.models.tiny import tiny_overrides
from harness.train.batching import ResidentBuckets, length_grouped_batches, padding_share, to_device
from harness.train.fit import autocast_for, default_device, make_optimizer, optimise, seed_everything, train_step
from harness.train.measure import ResourceMonitor, count_params, measure_latency

WARMUP_STEPS = 3


class OnTheFly:
    """A feature computed from the wav/text at every access: what a naive data loader does."""

    def __init__(self, cached: Features, manifest: pd.DataFrame, variant: EncoderVariant):
        self.cached = cached
        rows = list(manifest.itertuples(index=False))
        if cached.spec.kind == "layer_means":  # the frozen encoder runs on every utterance, every epoch
            assert issubclass(variant.cls, PretrainedEncoder)
            live = per_utterance(variant.cls.live_spec_of(cached.spec))
            extractor = LayerMeanExtractor(variant.cls.from_spec(variant, cached.spec))
            self.extract: Callable[[int], Any] = lambda row: extractor.means([live(rows[row])])[0]
        else:
            compute = per_utterance(cached.spec)
            self.extract = lambda row: compute(rows[row])

    def __getitem__(self, row: int) -> Any:
        return self.extract(row)

    def lengths(self) -> np.ndarray:
        return self.cached.lengths()


def naive(pair: PairSpec, data: PairData) -> PairData:
    return PairData(
        data.manifest,
        data.labels,
        {
            m: {role: OnTheFly(f, data.manifest, pair.variants[m]) for role, f in roles.items()}
            for m, roles in data.features.items()
        },
    )


def train_steps(
    pair: PairSpec, cfg: TrialConfig, data: PairData, steps: int, device: torch.device, buckets: bool = False
) -> dict:
    """Time ``steps`` optimiser steps after ``WARMUP_STEPS`` untimed ones, as the training loop runs them:
    ``buckets`` = fold-resident length buckets (``ResidentBuckets`` + ``optimise``; building them is timed
    apart, once per fold in training), else per-step collation (``train_step``) of length-grouped batches.
    Returns utterances/s, padded steps per real step, latency, memory."""
    seed_everything(0)
    rows = np.arange(len(data.manifest))
    model = build_model(pair, cfg, data.features, rows).to(device)
    optimizer = make_optimizer(model, cfg)
    criterion, autocast = nn.CrossEntropyLoss(), autocast_for(cfg, device)
    rng, lengths = np.random.default_rng(0), model.input_lengths(data.features)
    model.train()
    build_s = 0.0
    if buckets:
        started = time.perf_counter()
        store = ResidentBuckets(model, data, rows, cfg.bucket_size, cfg.batch_size, device)
        build_s = time.perf_counter() - started
        picks: list[tuple[int, np.ndarray]] = []
        while len(picks) < steps + WARMUP_STEPS:
            picks += store.epoch(rng)
        padding = padding_share([store.rows_of(b, p) for b, p in picks], lengths)

        def step(i: int) -> int:
            inputs, labels = store.take(*picks[i])
            loss = optimise(model, inputs, labels, optimizer, criterion, autocast, cfg.grad_clip)
            if i == WARMUP_STEPS + steps - 1:
                loss.item()  # the loop waits for the device once per epoch; the timing must include the work
            return len(labels)

    else:
        chunks: list[np.ndarray] = []
        while len(chunks) < steps + WARMUP_STEPS:
            chunks += length_grouped_batches(rows, lengths, cfg.batch_size, rng)
        padding = padding_share(chunks, lengths)

        def step(i: int) -> int:
            train_step(model, data, chunks[i], optimizer, criterion, device, autocast, cfg.grad_clip)
            return len(chunks[i])

    for i in range(WARMUP_STEPS):
        step(i)
    with ResourceMonitor(device) as monitor:
        trained = sum(step(i) for i in range(WARMUP_STEPS, WARMUP_STEPS + steps))
    model.eval()
    live = to_device(model.collate(data.features, rows[:1], live=True), device)
    with torch.no_grad():
        latency = measure_latency(lambda: model(live), device, warmup=3, repeats=10)
    params = count_params(model)
    return {
        "params_M": params.total / 1e6,
        "trainable_M": params.trainable / 1e6,
        "utt_per_s": trained / monitor.wall_s,
        "padding": padding,
        "build_s": build_s,
        "latency_ms": latency * 1000,
        "peak_gb": (monitor.peak_gpu_bytes or monitor.peak_rss_bytes) / 1024**3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS))
    parser.add_argument(
        "--ratio-pairs",
        nargs="+",
        default=["cnnbilstm_bilstm", "wav2vec_bilstm"],
        help="pairs whose cached-vs-naive training throughput is compared",
    )
    parser.add_argument("--batch-size", type=int, default=TrialConfig.batch_size)
    parser.add_argument("--bucket-size", type=int, default=TrialConfig.bucket_size)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way per pair (best kept)")
    parser.add_argument("--audio-model")
    parser.add_argument("--text-model")
    args = parser.parse_args()
    device = default_device()
    manifest = load_corpus(ensure_demo_corpus()).manifest()
    fingerprint = corpus_fingerprint(manifest)
    with tempfile.TemporaryDirectory(prefix="bench_pairs_") as tmp:  # features and tiny models: gone at exit
        run(args, device, manifest, fingerprint, Path(tmp))


def run(args: argparse.Namespace, device: torch.device, manifest: pd.DataFrame, fingerprint: str, tmp: Path) -> None:
    cache = FeatureCache(tmp / "features")
    chosen = {k: v for k, v in (("audio.model", args.audio_model), ("text.model", args.text_model)) if v}
    names = list(dict.fromkeys(args.pairs + args.ratio_pairs))
    configs = {
        name: TrialConfig.from_flat(
            tiny_overrides(get_pair(name).variants, tmp / "models")
            | chosen
            | {"batch_size": args.batch_size, "bucket_size": args.bucket_size}
        )
        for name in names
    }
    data = {
        name: load_pair_data(get_pair(name), configs[name], manifest, cache, fingerprint, progress=False)
        for name in names
    }
    cfg = next(iter(configs.values()))

    print(
        f"device: {device}, {torch.get_num_threads()} threads; {args.steps} steps of {cfg.batch_size} "
        f"utterances after {WARMUP_STEPS} warm-up steps, best of {args.repeats} alternating runs per way; demo "
        f"corpus; load average before: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(
        f"{'pair':<18} {'params M':>9} {'train M':>8} {'per-step utt/s':>15} {'buckets utt/s':>14} {'speed-up':>9} "
        f"{'pad per-step':>13} {'pad buckets':>12} {'build s':>8} {'latency ms':>11} {'peak GB':>8}"
    )
    for name in args.pairs:
        try:
            # alternating runs, best of each: on a shared machine other jobs only ever slow a run down
            runs = [
                train_steps(get_pair(name), configs[name], data[name], args.steps, device, buckets=buckets)
                for _ in range(args.repeats)
                for buckets in (False, True)
            ]
            r = max(runs[0::2], key=lambda x: x["utt_per_s"])
            b = max(runs[1::2], key=lambda x: x["utt_per_s"])
        except torch.OutOfMemoryError:  # recorded, and the other pairs still run (timm's benchmark does the same)
            print(f"{name:<18} out of memory at batch size {cfg.batch_size}")
            torch.cuda.empty_cache()
            continue
        print(
            f"{name:<18} {r['params_M']:>9.3f} {r['trainable_M']:>8.3f} {r['utt_per_s']:>15.1f} "
            f"{b['utt_per_s']:>14.1f} {b['utt_per_s'] / r['utt_per_s']:>8.2f}x {r['padding']:>12.1%} "
            f"{b['padding']:>12.1%} {b['build_s']:>8.2f} {r['latency_ms']:>11.2f} {r['peak_gb']:>8.2f}"
        )

    print("\ncached vs naive training throughput (naive: inputs recomputed from wav/text at every step)")
    print(
        f"{'pair':<18} {'cached utt/s':>12} {'naive utt/s':>12} {'ratio':>7} {'step ms/utt':>12} "
        f"{'data ms/utt':>12} {'10x needs step ms/utt <=':>25}"
    )
    for name in args.ratio_pairs:
        pair = get_pair(name)
        cached = train_steps(pair, configs[name], data[name], args.steps, device)["utt_per_s"]
        slow = train_steps(pair, configs[name], naive(pair, data[name]), args.steps, device)["utt_per_s"]
        step_ms, data_ms = 1000 / cached, 1000 / slow - 1000 / cached
        print(
            f"{name:<18} {cached:>12.1f} {slow:>12.1f} {cached / slow:>6.1f}x {step_ms:>12.2f} {data_ms:>12.2f} "
            f"{data_ms / 9:>25.2f}"
        )
    print("target: >= 10x for cnnbilstm_bilstm on CPU")


if __name__ == "__main__":
    main()
