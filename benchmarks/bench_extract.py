"""Frozen-feature extraction on CPU: batched vs one at a time, and beside a busy process vs without.

    python benchmarks/bench_extract.py [--encoder whisper_small] [--utterances 8] [--batch 8]

On a real-size random-init build of ``--encoder`` (weights do not change the cost), for ``--utterances``
synthetic utterances of 2-6 s, it times ``LayerMeanExtractor`` (the cache's extraction of per-layer means):

1. one utterance at a time vs batches of ``--batch`` in length order (the extractor's rule where padding is
   exact), and the smallest per-utterance cosine between the two (the test's bar is 0.9999);
2. beside one busy process (a Python loop spinning on one core) vs without it, with PyTorch's default threads
   (one per core) and with the extractor's rule (the cores not busy, ``harness.features.threads``): the
   ratio busy/quiet says how much a shared machine slows each down (issue 26 saw 112 s vs 0.3 s per
   utterance with oversubscribed threads).

Every figure is wall time of one pass after a warm-up pass; the header prints the machine and its load
(other users' processes count: "quiet" means without our busy process, not an idle machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

import numpy as np
import torch

from harness.features.threads import THREADS_VARIABLE, extraction_threads
from harness.models.encoders.pretrained import LayerMeanExtractor
from harness.models.encoders.registry import ENCODERS

sys.path.insert(0, os.path.dirname(__file__))
from bench_encoders import build  # noqa: E402

CPU = torch.device("cpu")


def utterances(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(rng.standard_normal(int(s * 16_000)) * 3000).astype(np.int16) for s in np.linspace(2, 6, n)]


def timed(extractor: LayerMeanExtractor, items: list[np.ndarray]) -> tuple[float, np.ndarray]:
    list(extractor.run(items[:2]))  # warm-up
    started = time.perf_counter()
    means = np.stack(list(extractor.run(items))).astype(np.float32)
    return time.perf_counter() - started, means


def with_threads(threads: str | None, extractor: LayerMeanExtractor, items: list[np.ndarray]) -> float:
    """One timed pass with ``HARNESS_EXTRACT_THREADS`` = ``threads`` (None: the extractor's own rule)."""
    before = os.environ.pop(THREADS_VARIABLE, None)
    if threads is not None:
        os.environ[THREADS_VARIABLE] = threads
    try:
        return timed(extractor, items)[0]
    finally:
        os.environ.pop(THREADS_VARIABLE, None)
        if before is not None:
            os.environ[THREADS_VARIABLE] = before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="whisper_small")
    parser.add_argument("--utterances", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(
        f"# {platform.node()}: {cores} CPUs, torch {torch.__version__}, load average {os.getloadavg()[0]:.1f} "
        f"before the run (other users' processes included); {args.encoder} real-size random-init, "
        f"{args.utterances} utterances of 2-6 s"
    )
    encoder = build(ENCODERS[args.encoder], "cpu")
    items = utterances(args.utterances)

    one = LayerMeanExtractor(encoder, CPU, batch_size=1)
    batched = LayerMeanExtractor(encoder, CPU, batch_size=args.batch)
    t_one, m_one = timed(one, items)
    t_batch, m_batch = timed(batched, items)
    cosine = (m_one * m_batch).sum(-1) / (np.linalg.norm(m_one, axis=-1) * np.linalg.norm(m_batch, axis=-1))
    print(f"batch 1: {t_one:.1f} s; batch {batched.batch_size}: {t_batch:.1f} s; speed-up {t_one / t_batch:.2f}x")
    print(f"smallest per-utterance, per-layer cosine batched vs one at a time: {cosine.min():.6f}")

    quiet = {"default": with_threads(str(cores), batched, items), "rule": with_threads(None, batched, items)}
    busy_process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(2.0)
        rule_threads = extraction_threads()
        busy = {"default": with_threads(str(cores), batched, items), "rule": with_threads(None, batched, items)}
    finally:
        busy_process.kill()
        busy_process.wait()
    print(f"{'threads':<32}{'quiet (s)':>10}{'beside 1 busy (s)':>19}{'ratio':>8}")
    for key, label in (("default", f"PyTorch default ({cores})"), ("rule", f"free cores (busy: {rule_threads})")):
        print(f"{label:<32}{quiet[key]:>10.1f}{busy[key]:>19.1f}{busy[key] / quiet[key]:>8.2f}")


if __name__ == "__main__":
    main()
