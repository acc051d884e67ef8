"""Which corpus a command reads: the one at ``--data``, or the built-in demo corpus."""
from __future__ import annotations

from pathlib import Path

from harness.corpus.demo import ensure_demo_corpus
from harness.corpus.iemocap import Corpus, load_corpus


def resolve_corpus(data: str | None, skip_bad: bool = False, cache_dir: str | None = None) -> tuple[Corpus, str]:
    """The corpus at ``data``, or the demo corpus when ``data`` is None; also returns a source label."""
    if data is None:
        root = ensure_demo_corpus(cache_dir)
        return load_corpus(root, skip_bad=skip_bad), "demo"
    return load_corpus(data, skip_bad=skip_bad), str(Path(data).resolve())
