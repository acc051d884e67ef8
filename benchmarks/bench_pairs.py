"""Per pair: params, training utterances/s, latency and peak memory for a fixed number of steps on the
demo corpus; and the training-throughput ratio of the cached pipeline over a naive one that decodes
wavs and computes features inside the data loader every epoch (target: >= 10x for the small pair on CPU).

    python benchmarks/bench_pairs.py [--steps 20] [--pairs cnnbilstm_bilstm wav2vec_bilstm]

Without network access the pretrained pairs use tiny random-init checkpoints (pass --set-style paths
with --audio-model / --text-model to benchmark the real ones).
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from harness.cache import FeatureCache, corpus_fingerprint
from harness.config import TrialConfig
from harness.corpus import load_corpus
from harness.dataset import PairData, load_pair_data
from harness.demo import ensure_demo_corpus
from harness.features import per_utterance_extractor
from harness.inference import batches, to_device
from harness.measure import ResourceMonitor, count_params, measure_latency
from harness.model import build_model
from harness.pairs import PAIRS, get_pair
from harness.tiny_models import ensure_tiny_models
from harness.train import default_device, seed_everything


class OnTheFly:
    """Features computed from the wav/text at every access: what a naive data loader does."""

    def __init__(self, cached, manifest):
        self.extract = per_utterance_extractor(cached.spec)
        self.rows = list(manifest.itertuples(index=False))

    def __getitem__(self, row: int):
        return self.extract(self.rows[row])


def train_steps(pair_name: str, cfg: TrialConfig, data: PairData, steps: int, device: torch.device) -> dict:
    seed_everything(0)
    pair = get_pair(pair_name)
    rows = np.arange(len(data.manifest))
    model = build_model(pair, cfg, data.features, rows).to(device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    order = np.random.default_rng(0).permutation(np.tile(rows, steps * cfg.batch_size // len(rows) + 1))
    chunks = batches(order, cfg.batch_size)[:steps]
    with ResourceMonitor(device) as monitor:
        started = time.perf_counter()
        for chunk in chunks:
            batch = to_device(model.collate(data.features, chunk), device)
            loss = torch.nn.functional.cross_entropy(model(batch), torch.as_tensor(data.labels[chunk], device=device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - started
    model.eval()
    live = to_device(model.collate(data.features, rows[:1], live=True), device)
    with torch.no_grad():
        latency = measure_latency(lambda: model(live), device, warmup=3, repeats=10)
    params = count_params(model)
    peak = monitor.peak_gpu_bytes or monitor.peak_rss_bytes
    return {"params_M": params.total / 1e6, "trainable_M": params.trainable / 1e6,
            "utt_per_s": steps * cfg.batch_size / seconds, "latency_ms": latency * 1000, "peak_gb": peak / 1024**3}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS))
    parser.add_argument("--audio-model")
    parser.add_argument("--text-model")
    args = parser.parse_args()
    device = default_device()
    manifest = load_corpus(ensure_demo_corpus()).manifest()
    fingerprint = corpus_fingerprint(manifest)
    cache = FeatureCache(tempfile.mkdtemp(prefix="bench_pairs_"))
    models = ensure_tiny_models(tempfile.mkdtemp(prefix="tiny_"))
    models |= {k: v for k, v in (("audio.model", args.audio_model), ("text.model", args.text_model)) if v}
    cfg = TrialConfig.from_flat(models | {"batch_size": 16})
    print(f"device: {device}; {args.steps} steps of {cfg.batch_size} utterances; demo corpus")
    print(f"{'pair':<18} {'params M':>9} {'train M':>8} {'utt/s':>8} {'latency ms':>11} {'peak GB':>8}")
    for name in args.pairs:
        data = load_pair_data(get_pair(name), cfg, manifest, cache, fingerprint, progress=False)
        r = train_steps(name, cfg, data, args.steps, device)
        print(f"{name:<18} {r['params_M']:>9.3f} {r['trainable_M']:>8.3f} {r['utt_per_s']:>8.1f} "
              f"{r['latency_ms']:>11.2f} {r['peak_gb']:>8.2f}")

    small = "cnnbilstm_bilstm"
    data = load_pair_data(get_pair(small), cfg, manifest, cache, fingerprint, progress=False)
    cached = train_steps(small, cfg, data, args.steps, device)["utt_per_s"]
    naive_features = {m: {role: OnTheFly(f, manifest) for role, f in roles.items()} for m, roles in data.features.items()}
    naive_data = PairData(data.manifest, data.labels, naive_features)
    naive = train_steps(small, cfg, naive_data, max(4, args.steps // 4), device)["utt_per_s"]
    print(f"\n{small}: cached pipeline {cached:.1f} utt/s vs naive (decode + features in the loader) "
          f"{naive:.1f} utt/s -> {cached / naive:.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
