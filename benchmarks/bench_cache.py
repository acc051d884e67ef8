"""Feature cache: first-run (extract) vs second-run (load) time on the demo corpus, per feature kind.

    python benchmarks/bench_cache.py
"""
from __future__ import annotations

import tempfile
import time

from harness.features import FeatureCache, corpus_fingerprint
from harness.corpus import load_corpus
from harness.corpus.demo import ensure_demo_corpus
from harness.features import FeatureSpec


def main() -> None:
    manifest = load_corpus(ensure_demo_corpus()).manifest()
    fingerprint = corpus_fingerprint(manifest)
    cache = FeatureCache(tempfile.mkdtemp(prefix="bench_cache_"))
    print(f"{'feature':<10} {'first run s':>12} {'second run s':>13} {'speed-up':>9}  ({len(manifest)} utterances)")
    for spec in (FeatureSpec("logmel"), FeatureSpec("mfcc"), FeatureSpec("waveform"), FeatureSpec("words")):
        started = time.perf_counter()
        cache.get(spec, manifest, fingerprint, progress=False)
        first = time.perf_counter() - started
        assert cache.last_build_seconds > 0
        started = time.perf_counter()
        cache.get(spec, manifest, fingerprint, progress=False)
        second = time.perf_counter() - started
        assert cache.last_build_seconds == 0, "second run extracted again"
        print(f"{spec.kind:<10} {first:>12.3f} {second:>13.4f} {first / second:>8.0f}x")


if __name__ == "__main__":
    main()
