"""Which corpus a command reads: the one at ``--data``, or the built-in demo corpus."""

from __future__ import annotations

import logging
from pathlib import Path

from harness.corpus.demo import ensure_demo_corpus
from harness.corpus.iemocap import DEMO_MARKER, Corpus, load_corpus

log = logging.getLogger(__name__)


def resolve_corpus(data: str | None, skip_bad: bool = False, cache_dir: str | None = None) -> tuple[Corpus, str]:
    """The corpus at ``data``, or the demo corpus when ``data`` is None; also returns a source label.

    The label is ``"demo"`` for the built-in demo corpus and for any directory carrying the demo marker (a
    copy of the demo passed with ``--data`` is still the demo: its tables must say so); otherwise it is the
    resolved path. ``Corpus.root`` keeps the path either way.
    """
    if data is None:
        root = ensure_demo_corpus(cache_dir)
        return load_corpus(root, skip_bad=skip_bad), "demo"
    corpus = load_corpus(data, skip_bad=skip_bad)
    if corpus.demo is not None:
        log.info("%s carries %s: reporting it as the demo corpus", corpus.root, DEMO_MARKER)
        return corpus, "demo"
    return corpus, str(Path(data).resolve())
