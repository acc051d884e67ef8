"""Feature cache: first-run (extract) vs second-run (load) time on the demo corpus, per feature kind.

    python benchmarks/bench_cache.py

The cache lives in a temporary folder that is deleted at exit (it holds about 24 MB of features).
"""

from __future__ import annotations

import tempfile
import time

from harness.corpus import load_corpus
from harness.corpus.demo import ensure_demo_corpus
from harness.features import FeatureCache, FeatureSpec, corpus_fingerprint, frontend


def main() -> None:
    manifest = load_corpus(ensure_demo_corpus()).manifest()
    fingerprint = corpus_fingerprint(manifest)
    print(f"{'feature':<10} {'first run s':>12} {'second run s':>13} {'speed-up':>9}  ({len(manifest)} utterances)")
    with tempfile.TemporaryDirectory(prefix="bench_cache_") as folder:
        cache = FeatureCache(folder)
        for spec in (
            FeatureSpec.make("logmel"),
            FeatureSpec.make("mfcc"),
            FeatureSpec.make("waveform"),
            FeatureSpec.make("words"),
        ):
            started = time.perf_counter()
            cache.get(spec, manifest, frontend(spec), fingerprint, progress=False)
            first = time.perf_counter() - started
            assert cache.last_build_seconds > 0
            started = time.perf_counter()
            cache.get(spec, manifest, frontend(spec), fingerprint, progress=False)
            second = time.perf_counter() - started
            assert cache.last_build_seconds == 0, "second run extracted again"
            print(f"{spec.kind:<10} {first:>12.3f} {second:>13.4f} {first / second:>8.0f}x")


if __name__ == "__main__":
    main()
