"""Classification metrics over a class set, the six benchmark classes by default (scikit-learn does the
arithmetic)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from harness.corpus import EMOTIONS
from harness.records import Metrics


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...] = EMOTIONS) -> Metrics:
    """Metrics over class indices into ``classes``. A class with no true utterance has no F1 of its own
    (NaN in ``per_emotion_f1``, as in the report's pooled figures) and weighs 0 in weighted F1."""
    labels = list(range(len(classes)))
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    present = np.unique(y_true)
    return Metrics(
        weighted_f1=float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        macro_f1=float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        unweighted_accuracy=float(balanced_accuracy_score(y_true, y_pred)),
        weighted_accuracy=float(accuracy_score(y_true, y_pred)),
        per_emotion_f1={
            e: float(f) if k in present else float("nan") for k, (e, f) in enumerate(zip(classes, per_class))
        },
        confusion=confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        n=int(len(y_true)),
    )
