"""The predictions table: its schema, input checks, alignment of several models on their common
utterances, per-unit class counts and the summary metrics.

A predictions table has one row per (pair, seed, fold, utterance):

========================  ====================================================================
column                    meaning
========================  ====================================================================
``pair``                  model name (str)
``seed``                  training seed (int)
``fold``                  test session of the leave-one-session-out fold (int)
``utterance_id``          utterance id (str)
``dialog``                dialog the utterance belongs to (str)
``label``                 true class, an index into :data:`EMOTIONS` (int 0..5)
``pred``                  predicted class, an index into :data:`EMOTIONS` (int 0..5)
========================  ====================================================================

Other columns (class probabilities, for instance) are allowed and ignored. Each (pair, seed, fold) holds
every test utterance of its fold once; a repeated (pair, seed, fold, utterance_id) is an error.

Self-contained: imports only numpy, pandas and scikit-learn (nothing else from ``harness``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, recall_score

EMOTIONS: tuple[str, ...] = ("neu", "ang", "hap", "sad", "fru", "exc")
"""The six benchmark classes; class index ``i`` in ``label``/``pred`` is ``EMOTIONS[i]``."""

STD_CONVENTION: str = (
    "sample standard deviation (ddof=1) over the seed x fold runs of a pair; NaN when a pair has a single run"
)
"""How the ``run_std_*`` columns of :func:`summarize` are computed."""

REQUIRED_COLUMNS: tuple[str, ...] = ("pair", "seed", "fold", "utterance_id", "dialog", "label", "pred")
"""Columns a predictions table must have (``pair`` is optional for the per-model inputs of the
comparisons, which take one model's rows each)."""

METRICS: tuple[str, ...] = ("weighted_f1", "ua")
"""Metrics the comparisons support: weighted F1 and UA (unweighted accuracy = mean per-class recall)."""

N_CLASSES = len(EMOTIONS)
_LABELS = list(range(N_CLASSES))
_KEY = ["fold", "utterance_id"]
_METRICS = ("weighted_f1", "macro_f1", "ua", "wa", *(f"f1_{e}" for e in EMOTIONS))


def _codes(values: np.ndarray, sort: bool = False) -> tuple[np.ndarray, int]:
    """Integer codes 0..k-1 of the values and k; with ``sort``, codes follow the sorted values (so that what
    is built on them does not depend on row order), else the order of first appearance (faster)."""
    codes, uniques = pd.factorize(values, sort=sort)
    return codes.astype(np.int64), len(uniques)


def check_predictions(frame: pd.DataFrame, name: str, need_pair: bool = True) -> dict[str, np.ndarray]:
    """Validate a predictions table; return its needed columns as arrays (``seed``, ``label``, ``pred`` int64)."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name}: expected a pandas DataFrame, got {type(frame).__name__}")
    required = [c for c in REQUIRED_COLUMNS if need_pair or c != "pair"]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {missing}; a predictions table needs {list(REQUIRED_COLUMNS)}")
    if frame.empty:
        raise ValueError(f"{name}: no predictions")
    out = {c: frame[c].to_numpy() for c in REQUIRED_COLUMNS if c in frame.columns}
    for column in ("label", "pred", "seed"):
        values = out[column]
        if not np.issubdtype(values.dtype, np.integer):
            as_float = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(float)
            if not np.all(np.isfinite(as_float)) or np.any(as_float % 1 != 0):
                raise ValueError(f"{name}: column {column!r} must hold integers")
            values = as_float
        out[column] = values.astype(np.int64)
    for column in ("label", "pred"):
        bad = (out[column] < 0) | (out[column] >= N_CLASSES)
        if bad.any():
            raise ValueError(
                f"{name}: column {column!r} has {int(bad.sum())} value(s) outside 0..{N_CLASSES - 1} "
                f"(the classes are {EMOTIONS})"
            )
    key = np.zeros(len(frame), dtype=np.int64)  # one code per (pair, seed, fold, utterance_id), kept < rows
    for column in ("pair", "seed", "fold", "utterance_id"):
        if column in out:
            codes, size = _codes(out[column])
            key, _ = _codes(key * size + codes)
    if len(np.unique(key)) != len(key):
        keys = [c for c in ("pair", "seed", "fold", "utterance_id") if c in out]
        table = pd.DataFrame({c: out[c] for c in keys})
        repeated = table.duplicated(keys)
        example = table[repeated].iloc[0].to_dict()
        raise ValueError(
            f"{name}: {int(repeated.sum())} repeated {tuple(keys)} row(s), e.g. {example}; "
            f"each run must hold each test utterance once"
        )
    return out


def _single_model(frame: pd.DataFrame, name: str) -> dict[str, np.ndarray]:
    """Validate the predictions of one model (a ``pair`` column, if present, must hold one value)."""
    out = check_predictions(frame, name, need_pair=False)
    if "pair" in out and len(pd.unique(out["pair"])) > 1:
        raise ValueError(
            f"{name}: holds predictions of several pairs {sorted(pd.unique(out['pair']))}; pass one model's rows"
        )
    return out


def check_metric(metric: str) -> str:
    """``metric`` if the comparisons support it (see :data:`METRICS`), else a ValueError naming the choices."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    return metric


@dataclass(frozen=True)
class Aligned:
    """Several models' predictions on their common utterances, as arrays.

    Attributes:
        labels: (n,) true class per utterance.
        sessions: (n,) test-session code 0..n_sessions-1 per utterance (codes follow the sorted ``fold`` values).
        session_values: The ``fold`` value of each session code.
        dialogs: (n,) dialog code 0..n_dialogs-1 per utterance (dialogs are keyed by fold and name, sorted).
        n_dialogs: Number of distinct dialogs.
        preds: (n_models, n_seeds, n) predictions, models in the order given, one row per paired seed.
        seeds: The seed values used (present in every model).
        model_seeds: When each model keeps its own seeds (``harness.report.inference.align_models``): the seed
            values of each model; model i's first ``len(model_seeds[i])`` rows of ``preds`` are its seeds, the
            rest repeat its first seed and weigh nothing. Empty: seeds are paired by value (``seeds``).
    """

    labels: np.ndarray
    sessions: np.ndarray
    session_values: tuple
    dialogs: np.ndarray
    n_dialogs: int
    preds: np.ndarray
    seeds: tuple[int, ...]
    model_seeds: tuple[tuple[int, ...], ...] = ()

    @property
    def n_sessions(self) -> int:
        return len(self.session_values)

    def seed_weights(self) -> np.ndarray:
        """(n_models, n_seed_rows) weight of each prediction row in a model's mean over its seeds."""
        k, rows, _ = self.preds.shape
        counts = [len(s) for s in self.model_seeds] if self.model_seeds else [rows] * k
        weights = np.zeros((k, rows))
        for i, count in enumerate(counts):
            weights[i, :count] = 1.0 / count
        return weights

    @property
    def preds_a(self) -> np.ndarray:
        return self.preds[0]

    @property
    def preds_b(self) -> np.ndarray:
        return self.preds[1]


def align(frames: Sequence[pd.DataFrame], names: Sequence[str] | None = None) -> Aligned:
    """Pair the predictions of several models: seeds by value, utterances by (fold, utterance_id).

    Only seeds present in every model are used. Only utterances that every model predicted under every one
    of those seeds are kept (normally all of them: each (pair, seed, fold) holds its whole test fold).
    Dialogs are keyed by (fold, dialog).

    Args:
        frames: One predictions table per model (``pair`` optional, single-valued).
        names: How errors name the models (default ``a``, ``b``, ... ).

    Raises:
        ValueError: No seed or no utterance in common, or two models disagree on an utterance's label/dialog.
    """
    k = len(frames)
    if k == 0:
        raise ValueError("no predictions to compare")
    names = list(names) if names is not None else [chr(ord("a") + i) for i in range(k)]
    models = [_single_model(frame, name) for frame, name in zip(frames, names)]
    seeds = models[0]["seed"]
    for other in models[1:]:
        seeds = np.intersect1d(seeds, other["seed"])
    seeds = np.unique(seeds)
    if len(seeds) == 0:
        listed = ", ".join(f"{n}: {np.unique(m['seed']).tolist()}" for n, m in zip(names, models))
        raise ValueError(f"{' and '.join(names)} have no seed in common ({listed}); seeds are paired by value")
    used = [np.isin(m["seed"], seeds) for m in models]
    both = {
        c: np.concatenate([m[c][u] for m, u in zip(models, used)])
        for c in ("seed", "fold", "utterance_id", "dialog", "label", "pred")
    }
    model = np.repeat(np.arange(k), [int(u.sum()) for u in used])
    fold, _ = _codes(both["fold"], sort=True)
    utterance, n_utterance_ids = _codes(both["utterance_id"])
    dialog, n_dialog_names = _codes(both["dialog"], sort=True)  # dialogs are resampled units: fix their order
    key = fold * n_utterance_ids + utterance
    # An utterance is common when every model predicted it under every shared seed (no repeats, see above).
    unique_keys, position = np.unique(key, return_inverse=True)
    position = position.reshape(-1)
    count = np.zeros((k, len(unique_keys)), dtype=np.int64)
    np.add.at(count, (model, position), 1)
    common = (count == len(seeds)).all(axis=0)
    if not common.any():
        held = ", ".join(f"{n} has {int((c > 0).sum())}" for n, c in zip(names, count))
        raise ValueError(
            f"{' and '.join(names)} have no utterances in common: no (fold, utterance_id) was predicted by all "
            f"under every shared seed {seeds.tolist()} ({held} utterance(s))"
        )
    index = np.cumsum(common) - 1  # unique key -> column of the common utterances
    keep = common[position]
    column = index[position[keep]]
    n = int(common.sum())
    labels_in, dialog_key, fold_in = both["label"][keep], (fold * n_dialog_names + dialog)[keep], fold[keep]
    labels = np.empty(n, dtype=np.int64)
    labels[column] = labels_in
    dialog_of = np.empty(n, dtype=np.int64)
    dialog_of[column] = dialog_key
    session_of = np.empty(n, dtype=np.int64)
    session_of[column] = fold_in
    disagree = (labels[column] != labels_in) | (dialog_of[column] != dialog_key)
    if disagree.any():
        row = np.flatnonzero(keep)[np.argmax(disagree)]
        raise ValueError(
            f"{' and '.join(names)} (or two seeds) disagree on the label or dialog of utterance "
            f"(fold={both['fold'][row]!r}, utterance_id={both['utterance_id'][row]!r})"
        )
    seed_row = np.searchsorted(seeds, both["seed"][keep])
    preds = np.empty((k, len(seeds), n), dtype=np.int64)
    preds[model[keep], seed_row, column] = both["pred"][keep]
    dialogs, dialog_names = pd.factorize(dialog_of, sort=True)
    sessions, session_codes = pd.factorize(session_of, sort=True)
    fold_values = np.unique(both["fold"])  # sorted, as the codes of ``fold`` are
    return Aligned(
        labels=labels,
        sessions=sessions.astype(np.int64),
        session_values=tuple(v.item() if hasattr(v, "item") else v for v in fold_values[session_codes]),
        dialogs=dialogs.astype(np.int64),
        n_dialogs=len(dialog_names),
        preds=preds,
        seeds=tuple(int(s) for s in seeds),
    )


# --------------------------------------------------------------------------------------------------------
# metrics from counts


def weighted_f1_from_counts(support: np.ndarray, tp: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Weighted F1 from per-class counts (last axis = class), broadcasting over leading axes.

    These three counts (row sums, diagonal and column sums of the confusion matrix) are all weighted F1 needs:
    F1_k = 2 tp_k / (support_k + predicted_k), 0 when both are 0, weighted by support. This is what
    ``sklearn.metrics.f1_score(average="weighted", labels=range(6), zero_division=0)`` computes.
    """
    denominator = support + predicted
    f1 = np.divide(
        2.0 * tp, denominator, out=np.zeros(np.broadcast_shapes(tp.shape, denominator.shape)), where=denominator > 0
    )
    return (support * f1).sum(-1) / support.sum(-1)


def ua_from_counts(support: np.ndarray, tp: np.ndarray) -> np.ndarray:
    """UA (mean recall over the classes present) from per-class counts, broadcasting over leading axes; what
    ``sklearn.metrics.balanced_accuracy_score`` computes."""
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros(np.broadcast_shapes(tp.shape, support.shape)), where=present)
    return recall.sum(-1) / present.sum(-1)


def metric_from_counts(metric: str, support: np.ndarray, tp: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """``metric`` (one of :data:`METRICS`) from per-class counts."""
    if metric == "weighted_f1":
        return weighted_f1_from_counts(support, tp, predicted)
    return ua_from_counts(support, tp)


def unit_counts(
    unit: np.ndarray, n_units: int, labels: np.ndarray, preds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-unit class counts: support (units, 6) and, per prediction row, tp and predicted (units, rows, 6)."""

    def count(codes: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(unit * N_CLASSES + codes, weights=weights, minlength=n_units * N_CLASSES).reshape(
            n_units, N_CLASSES
        )

    support = count(labels).astype(float)
    tp = np.stack([count(labels, (row == labels).astype(float)) for row in preds], axis=1)
    predicted = np.stack([count(row).astype(float) for row in preds], axis=1)
    return support, tp, predicted


# --------------------------------------------------------------------------------------------------------
# summary metrics


def _scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """The summary metrics of one set of predictions (scikit-learn does the arithmetic).

    Weighted F1 averages the per-class F1 over all six classes weighted by support (absent classes weigh 0);
    macro F1 and UA average over the classes present in ``y_true`` (UA = mean recall = balanced accuracy);
    WA is plain accuracy; per-emotion F1 is NaN for a class with no true utterance in the set.
    """
    present = np.unique(y_true)
    per_class = f1_score(y_true, y_pred, labels=_LABELS, average=None, zero_division=0)
    support = np.bincount(y_true, minlength=N_CLASSES)
    out = {
        "weighted_f1": float(f1_score(y_true, y_pred, labels=_LABELS, average="weighted", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "ua": float(recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "wa": float(accuracy_score(y_true, y_pred)),
    }
    for k, emotion in enumerate(EMOTIONS):
        out[f"f1_{emotion}"] = float(per_class[k]) if support[k] > 0 else float("nan")
    return out


def summarize(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per-pair metrics, aggregated over seeds and folds in two stated ways.

    Metrics: ``weighted_f1``, ``macro_f1``, ``ua`` (unweighted accuracy = mean per-class recall = balanced
    accuracy), ``wa`` (weighted accuracy = plain accuracy) and ``f1_<emotion>`` for each of :data:`EMOTIONS`.
    Macro F1 and UA average over the classes present among the true labels; a per-emotion F1 is NaN where
    that emotion has no true utterance (and is then left out of the means).

    Each metric ``m`` appears as:

    * ``pooled_m``: for each seed, ``m`` on all predictions of that seed pooled over the folds; then the
      mean of those per-seed values over the seeds.
    * ``run_mean_m`` and ``run_std_m``: ``m`` per (seed, fold) run, then the mean and the standard deviation
      over the runs (see :data:`STD_CONVENTION`: sample std, ddof=1).

    Args:
        predictions: Predictions table (see the module docstring).

    Returns:
        One row per pair (sorted by name) with columns ``pair``, ``n_runs`` (seed x fold runs), ``n_seeds``,
        ``n_folds``, ``n_utterances`` (distinct (fold, utterance_id)), then the ``pooled_*`` columns, then
        ``run_mean_*``/``run_std_*`` pairs, metric by metric.

    Raises:
        ValueError: Malformed predictions (missing columns, labels outside 0..5, repeated utterances).
    """
    frame = pd.DataFrame(check_predictions(predictions, "predictions"))
    rows = []
    for pair, group in frame.groupby("pair", sort=True):
        pooled = pd.DataFrame(
            [_scores(g["label"].to_numpy(), g["pred"].to_numpy()) for _, g in group.groupby("seed", sort=True)]
        )
        runs = pd.DataFrame(
            [
                _scores(g["label"].to_numpy(), g["pred"].to_numpy())
                for _, g in group.groupby(["seed", "fold"], sort=True)
            ]
        )
        row: dict[str, object] = {
            "pair": pair,
            "n_runs": len(runs),
            "n_seeds": int(group["seed"].nunique()),
            "n_folds": int(group["fold"].nunique()),
            "n_utterances": len(group.drop_duplicates(_KEY)),
        }
        row |= {f"pooled_{m}": float(pooled[m].mean()) for m in _METRICS}
        for m in _METRICS:
            row[f"run_mean_{m}"] = float(runs[m].mean())
            row[f"run_std_{m}"] = float(runs[m].std(ddof=1))
        rows.append(row)
    return pd.DataFrame(rows)
