"""The corpus stage: the IEMOCAP reader, the generated demo corpus, dialogue structure, folds and protocols."""

from harness.corpus.dialogs import DialogTurns, Windows
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
from harness.corpus.protocols import (
    CLASS_SETS,
    LABEL_POLICIES,
    PROTOCOLS,
    ProtocolError,
    apply_class_set,
    apply_labels,
    benchmark_manifest,
    class_set,
    make_protocol_folds,
)
from harness.corpus.source import resolve_corpus

__all__ = [
    "CLASS_SETS",
    "EMOTIONS",
    "EMOTION_NAMES",
    "LABEL_POLICIES",
    "PROTOCOLS",
    "SESSIONS",
    "Corpus",
    "CorpusError",
    "DialogTurns",
    "Fold",
    "ProtocolError",
    "Windows",
    "apply_class_set",
    "apply_labels",
    "benchmark_manifest",
    "class_set",
    "counts_table",
    "load_corpus",
    "make_fold",
    "make_folds",
    "make_protocol_folds",
    "resolve_corpus",
    "speaker_of",
]
