"""Which corpus a command reads: the one at ``--data``, or the built-in demo corpus.

``--data`` may name a manifest CSV (``harness.corpus.manifest``), a CREMA-D release (a folder holding
``AudioWAV``, ``harness.corpus.crema_d``), an MSP-Podcast release (``Labels/labels_consensus.csv``,
``harness.corpus.msp_podcast``) or an IEMOCAP_full_release folder. The source label says which
corpus and which protocol its folds follow; it is stored with every run and heads every report table.
"""

from __future__ import annotations

import logging
from pathlib import Path

from harness.corpus.crema_d import PROTOCOL as CREMA_D_PROTOCOL
from harness.corpus.crema_d import is_crema_d, load_crema_d
from harness.corpus.demo import ensure_demo_corpus
from harness.corpus.iemocap import DEMO_MARKER, Corpus, load_corpus
from harness.corpus.manifest import read_manifest
from harness.corpus.msp_podcast import PROTOCOL as MSP_PROTOCOL
from harness.corpus.msp_podcast import is_msp_podcast, load_msp_podcast
from harness.corpus.synthetic import read_marker

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
    path = Path(data)
    if path.suffix.lower() == ".csv" or path.is_file():
        read = read_manifest(path, skip_bad=skip_bad)
        return read.corpus, _label("manifest", path, read.describe(), read.corpus.root)
    if is_msp_podcast(path):
        corpus = load_msp_podcast(path, skip_bad=skip_bad)
        return corpus, _label("msp-podcast", path, MSP_PROTOCOL, corpus.root)
    if is_crema_d(path):
        corpus = load_crema_d(path, skip_bad=skip_bad)
        return corpus, _label("crema-d", path, CREMA_D_PROTOCOL, corpus.root)
    corpus = load_corpus(data, skip_bad=skip_bad)
    if corpus.demo is not None:
        log.info("%s carries %s: reporting it as the demo corpus", corpus.root, DEMO_MARKER)
        return corpus, "demo"
    return corpus, str(Path(data).resolve())


CORPUS_KINDS: tuple[str, ...] = ("demo", "manifest", "crema-d", "msp-podcast", "iemocap")


def _label(kind: str, path: Path, protocol: str, root: Path) -> str:
    """``KIND PATH (protocol)``, with SYNTHETIC first for a generated corpus (never reported as the real one):
    one whose marker (or the demo's) is beside the manifest or at the corpus root."""
    folder = path.resolve().parent if path.is_file() else path
    synthetic = read_marker(folder) or read_marker(root) or (root / DEMO_MARKER).is_file()
    banner = f"SYNTHETIC {kind}, generated from the demo corpus, not real data: " if synthetic else ""
    return f"{banner}{kind} {path.resolve()} ({protocol})"


def corpus_kind(source: str) -> str:
    """Which reader a source label came from: demo, manifest, crema-d or iemocap (a bare path)."""
    if source == "demo":
        return "demo"
    words = source.removeprefix("SYNTHETIC ").split(" ", 1)[0].rstrip(",")
    return words if words in CORPUS_KINDS else "iemocap"
