"""The corpus stage: the IEMOCAP reader, the generated demo corpus, and the evaluation folds."""

from harness.corpus.folds import Fold, make_fold, make_folds
from harness.corpus.iemocap import (
    EMOTION_NAMES,
    EMOTIONS,
    SESSIONS,
    Corpus,
    CorpusError,
    counts_table,
    load_corpus,
    speaker_of,
)
from harness.corpus.source import resolve_corpus

__all__ = [
    "EMOTIONS",
    "EMOTION_NAMES",
    "SESSIONS",
    "Corpus",
    "CorpusError",
    "Fold",
    "counts_table",
    "load_corpus",
    "make_fold",
    "make_folds",
    "resolve_corpus",
    "speaker_of",
]
