"""Speaker-level inference: the primary difference of two models and general contrasts of several, with an
interval and a p value that test the same statistic.

**The statistic.** For each test session s (a leave-one-session-out fold: one speaker pair, and that fold's
own trained models) the metric (weighted F1 or UA) of every model is computed on that session's utterances
for each of **that model's own seeds** and averaged over them (seeds are not paired by value: model a's seed
3 has nothing to do with model b's seed 3, and a model missing a seed keeps its others); the contrast
``c_s = sum_i w_i * mean over model i's seeds of metric_i(seed, s)`` is one number per session (for a
difference, ``w = (+1, -1)``); the estimate is the mean of ``c_s`` over the sessions, each session weighing
the same (the population is one of speaker pairs, not of utterances).

**The interval** is the Student t interval of that mean on ``n_sessions - 1`` degrees of freedom, and the
p value is the one-sample t test of the same ``c_s`` against 0 (two-sided), so the p value rejects exactly
when the interval excludes 0. Why this method: the session is the unit the claim generalises over
(new speakers), and the per-session values already contain every source of noise below the session (the
dialogs of the session, the seeds, and that fold's training run), so their spread across sessions measures
all of it at once, including a model difference that truly varies from speaker pair to speaker pair,
which a dialog bootstrap misses (:mod:`harness.report.bootstrap`). With 5 sessions the t quantile is 2.78,
so intervals are honest and wide. What it conditions on: the corpus's scripts and scenarios (all sessions
act the same ones), the class set, and the selection procedure; it treats the test sessions as independent
draws, and is **conditional on these five training sets**: it does not see that LOSO training sets overlap.

**The overlap-aware interval** (``overlap_*``; the one the verdicts use) is the Nadeau-Bengio corrected t:
the same mean and df, the variance of the mean taken as ``(1/J + n_test/n_train) * s^2`` instead of
``s^2 / J`` (J test sessions, one test session against ``train_sessions`` training sessions per fold: 3 in
this harness's LOSO, so 1/5 + 1/3 and 1.63x the width at 5 folds). Fold k trains on the three sessions
other than k and k+1, so adjacent folds share two training sessions and the others one; a training-set
effect then moves the mean far more than the spread of the five values shows (about a sixth of it), and no
unbiased estimator of that variance exists with K folds (Bengio & Grandvalet 2004). The correction is exact
when the training-set variance equals the per-fold test variance, over-covers when there is none, and
five folds cannot tell which (docs/statistics.md has the derivation and the simulation).
:mod:`harness.report.simulation` checks the coverage; ``benchmarks/bench_coverage.py`` prints it.

**One estimator.** A model's level (weighted F1, UA, F1 per emotion) is the mean over the test sessions of
its seed-averaged per-session value (:func:`per_session_means`); the headline, the per-emotion table and
its plot all use it, and a difference is the difference of those levels.

**One session** (the ``session5`` protocol): no between-session spread can be estimated, so the interval
is the dialog bootstrap's, labelled as conditional on these speakers (``method`` says so), with the
bootstrap p value of the same statistic (floor 2 / (n_boot + 1)).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import astuple, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats

from harness.report.bootstrap import bootstrap_p, contrast_bootstrap
from harness.report.predictions import EMOTIONS, Aligned, align, check_metric, metric_from_counts, unit_counts

SESSION_T = "per-session t (n_sessions - 1 df)"
"""``method`` of a speaker-level result: per-session contrasts, Student t interval and t test."""

ONE_SESSION_BOOTSTRAP = "dialog bootstrap, conditional on these speakers (one test session)"
"""``method`` of a result from a single test session: the dialog bootstrap, not a speaker-level interval."""

TRAIN_SESSIONS = 3
"""Sessions a LOSO fold's model is fitted on (all five but the test and the validation session,
``harness.corpus.folds``); the Nadeau-Bengio ratio n_test / n_train is 1 / this."""


def overlap_factor(n_folds: int, train_sessions: int = TRAIN_SESSIONS) -> float:
    """Nadeau-Bengio's variance factor: Var(mean of the fold values) ~ ``(1/J + n_test/n_train) * s^2``.

    Args:
        n_folds: J, the number of test folds (sessions) averaged.
        train_sessions: Sessions each fold trains on (one test session per fold).
    """
    return 1.0 / n_folds + 1.0 / train_sessions


def overlap_summary(
    values: np.ndarray, confidence: float = 0.95, train_sessions: int = TRAIN_SESSIONS
) -> dict[str, np.ndarray]:
    """:func:`t_summary` with the Nadeau-Bengio corrected standard error (same mean and df), vectorised over
    the leading axes: the overlap-aware interval and its two-sided p value."""
    x = np.asarray(values, dtype=float)
    n = x.shape[-1]
    mean = x.mean(axis=-1)
    se = x.std(axis=-1, ddof=1) * np.sqrt(overlap_factor(n, train_sessions))
    return _t_from(mean, se, n - 1, confidence)


def _t_from(mean: np.ndarray, se: np.ndarray, df: int, confidence: float) -> dict[str, np.ndarray]:
    half = _scipy_stats.t.ppf(0.5 + confidence / 2.0, df) * se
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, mean / np.where(se > 0, se, 1.0), np.where(mean == 0, 0.0, np.inf))
    p = 2.0 * _scipy_stats.t.sf(np.abs(t), df)
    return {"mean": mean, "se": se, "low": mean - half, "high": mean + half, "p": p, "df": np.full_like(mean, df)}


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval for a mean.

    Unpacks like a tuple: ``mean, low, high, n = t_interval(values)``.

    Attributes:
        mean: Sample mean (NaN when ``n == 0``).
        low: Lower bound (NaN when ``n < 2``).
        high: Upper bound (NaN when ``n < 2``).
        n: Number of values.
    """

    mean: float
    low: float
    high: float
    n: int

    def __iter__(self) -> Iterator[float | int]:
        return iter(astuple(self))


def t_interval(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Interval:
    """Student t interval for the mean of a few numbers (per-fold scores, say), with n - 1 degrees of freedom.

    The interval is mean +/- t_{n-1, (1+confidence)/2} * s / sqrt(n), with s the sample std (ddof=1), as
    ``scipy.stats.t.interval`` computes it. With n < 2 the bounds are NaN; with zero spread they equal the
    mean.

    Args:
        values: The numbers (NaN not allowed).
        confidence: Nominal coverage.

    Returns:
        ``Interval(mean, low, high, n)``.

    Raises:
        ValueError: A value is NaN/infinite or ``confidence`` is outside (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    x = np.asarray(values, dtype=float).reshape(-1)
    if np.any(~np.isfinite(x)):
        raise ValueError("t_interval: values must be finite")
    n = int(x.size)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, float("nan"), float("nan"), n)
    summary = t_summary(x, confidence)
    return Interval(mean, float(summary["low"]), float(summary["high"]), n)


def t_summary(values: np.ndarray, confidence: float = 0.95) -> dict[str, np.ndarray]:
    """Mean, standard error, t interval and two-sided one-sample t test against 0 over the last axis
    (vectorised over the leading ones; at least two values each).

    With zero spread the interval is the mean itself and the p value is 1 for a mean of 0, else 0.
    """
    x = np.asarray(values, dtype=float)
    n = x.shape[-1]
    return _t_from(x.mean(axis=-1), x.std(axis=-1, ddof=1) / np.sqrt(n), n - 1, confidence)


def per_session_contrast(
    labels: np.ndarray,
    sessions: np.ndarray,
    n_sessions: int,
    preds: np.ndarray,
    weights: Sequence[float] | np.ndarray,
    metric: str = "weighted_f1",
    seed_weights: np.ndarray | None = None,
) -> np.ndarray:
    """The contrast of each session: ``sum_i weights[i] * mean over model i's seeds of metric(i, seed, session)``.

    Args:
        labels: (n,) true classes.
        sessions: (n,) session code 0..n_sessions-1 of each utterance.
        n_sessions: Number of sessions (codes without an utterance give NaN).
        preds: (n_models, n_seeds, n) predictions.
        weights: One weight per model.
        metric: ``"weighted_f1"`` or ``"ua"``.
        seed_weights: (n_models, n_seeds) weight of each seed row in its model's mean (``Aligned.seed_weights``);
            default: every row, equally.

    Returns:
        (n_sessions,) contrast values.
    """
    k, n_seeds, n = preds.shape
    support, tp, predicted = unit_counts(sessions, n_sessions, labels, preds.reshape(k * n_seeds, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        values = metric_from_counts(metric, support[:, None, :], tp, predicted)  # (sessions, k * seeds)
    per_seed = np.full((k, n_seeds), 1.0 / n_seeds) if seed_weights is None else np.asarray(seed_weights, float)
    means = (values.reshape(n_sessions, k, n_seeds) * per_seed).sum(axis=-1)  # (sessions, models)
    return means @ np.asarray(weights, dtype=float)


@dataclass(frozen=True)
class ContrastResult:
    """A contrast of models' metric with its interval and p value (for two models: a minus b).

    Attributes:
        estimate: Mean over the test sessions of the per-session contrast (one session: the pooled contrast).
        ci_low: Lower bound of the interval.
        ci_high: Upper bound of the interval.
        p_value: Two-sided p value of "contrast = 0" for the same statistic; NaN for a level (weights that do
            not sum to 0).
        n_sessions: Number of test sessions (folds) the contrast rests on.
        n_dialogs: Number of dialogs among the common utterances.
        n_seeds: Fewest seeds of a model (each model is averaged over its own seeds).
        n_utterances: Number of common utterances.
        method: :data:`SESSION_T` or :data:`ONE_SESSION_BOOTSTRAP`.
        metric: ``"weighted_f1"`` or ``"ua"``.
        confidence: Nominal coverage of the interval.
        se: Standard error of the estimate (t method; NaN for the bootstrap).
        df: Degrees of freedom of the t method (NaN for the bootstrap).
        per_session: The per-session contrasts, in session order (t method; empty for the bootstrap).
        replicates: Bootstrap replicates (bootstrap only; excluded from ``==`` and repr).
        overlap_ci_low: Lower bound of the overlap-aware (Nadeau-Bengio corrected t) interval; NaN for one
            session.
        overlap_ci_high: Its upper bound.
        overlap_p_value: Its two-sided p value of "contrast = 0" (NaN for a level or one session).
        overlap_se: Its standard error.
        seeds_per_model: How many seeds each model was averaged over.
    """

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    n_sessions: int
    n_dialogs: int
    n_seeds: int
    n_utterances: int
    method: str
    metric: str
    confidence: float
    se: float = float("nan")
    df: float = float("nan")
    per_session: tuple[float, ...] = ()
    replicates: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False, compare=False)
    overlap_ci_low: float = float("nan")
    overlap_ci_high: float = float("nan")
    overlap_p_value: float = float("nan")
    overlap_se: float = float("nan")
    seeds_per_model: tuple[int, ...] = ()

    @property
    def conditional_on_speakers(self) -> bool:
        """Whether the interval holds the test speakers fixed (one session: the dialog bootstrap)."""
        return self.method == ONE_SESSION_BOOTSTRAP

    def equivalence_p(self, margin: float, overlap: bool = False) -> float:
        """TOST p value of ``|contrast| < margin`` for the same statistic: the larger of the two one-sided
        p values (t method: t tests of ``contrast <= -margin`` and ``>= margin`` on the same df, with the
        overlap-aware standard error when ``overlap``; bootstrap: the shares of replicates beyond each margin,
        +1 corrected). Below alpha exactly when the (1 - 2 alpha) interval lies inside (-margin, margin)."""
        if margin <= 0:
            raise ValueError(f"equivalence margin must be positive, got {margin!r}")
        if self.method == ONE_SESSION_BOOTSTRAP:
            b = len(self.replicates)
            lower = (np.sum(self.replicates <= -margin) + 1) / (b + 1)
            upper = (np.sum(self.replicates >= margin) + 1) / (b + 1)
            return float(max(lower, upper))
        se = self.overlap_se if overlap else self.se
        if not se > 0:
            return 0.0 if abs(self.estimate) < margin else 1.0
        lower = _scipy_stats.t.sf((self.estimate + margin) / se, self.df)
        upper = _scipy_stats.t.cdf((self.estimate - margin) / se, self.df)
        return float(max(lower, upper))


def session_contrast(
    frames: Sequence[pd.DataFrame],
    weights: Sequence[float],
    metric: str = "weighted_f1",
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int | np.random.Generator | None = 0,
    names: Sequence[str] | None = None,
) -> ContrastResult:
    """A contrast ``sum_i weights[i] * metric(model i)`` at the speaker level (see the module docstring).

    Models are matched by :func:`align_models`: utterances on (fold, utterance_id), only what every model
    has; each model keeps its own seeds. ``weights=(1,)`` gives a model's own level with a
    per-session t interval; ``(1, -1)`` is :func:`primary_difference`; ``(0.5, 0.5, -0.5, -0.5)`` a main
    effect of a 2x2 design.

    Args:
        frames: One predictions table per model.
        weights: One weight per model.
        metric: ``"weighted_f1"`` or ``"ua"``.
        confidence: Nominal coverage of the interval.
        n_boot: Resamples of the dialog bootstrap (used only with a single test session).
        seed: Seed of that bootstrap.
        names: How errors name the models.

    Raises:
        ValueError: Bad arguments, malformed predictions, or no seed / no utterance in common.
    """
    check_metric(metric)
    if len(weights) != len(frames):
        raise ValueError(f"{len(weights)} weight(s) for {len(frames)} model(s)")
    return aligned_contrast(align_models(frames, names), weights, metric, confidence, n_boot, seed)


def align_models(frames: Sequence[pd.DataFrame], names: Sequence[str] | None = None) -> Aligned:
    """Several models' predictions on their common utterances, **each model with its own seeds**.

    :func:`harness.report.predictions.align` pairs seeds by value; here a model's seeds are numbered 0..s-1 in
    sorted order and a model with fewer seeds than the most has its first seed repeated in the extra rows
    with weight 0 (``Aligned.model_seeds`` / ``Aligned.seed_weights``), so one missing seed of one model
    changes that model's mean and nothing else. Utterances: those every model predicted under every one of
    its seeds (normally all: each (pair, seed, fold) holds its whole test fold).

    Raises:
        ValueError: As :func:`harness.report.predictions.align` (no utterance in common, malformed tables).
    """
    names = list(names) if names is not None else [chr(ord("a") + i) for i in range(len(frames))]
    own: list[tuple[int, ...]] = []
    for frame in frames:
        if not isinstance(frame, pd.DataFrame) or "seed" not in frame.columns or frame.empty:
            return align(frames, names)  # the checks there give the error
        own.append(tuple(int(v) for v in np.unique(pd.to_numeric(frame["seed"], errors="coerce").dropna())))
    rows = max(len(s) for s in own)
    renumbered = []
    for frame, seeds in zip(frames, own):
        numbered = pd.to_numeric(frame["seed"]).to_numpy()
        frame = frame.assign(seed=np.searchsorted(np.asarray(seeds), numbered))
        first = frame[frame["seed"] == 0]
        extra = [first.assign(seed=r) for r in range(len(seeds), rows)]  # weight 0: never counted
        renumbered.append(pd.concat([frame, *extra], ignore_index=True) if extra else frame)
    return replace(align(renumbered, names), model_seeds=tuple(own))


def aligned_contrast(
    data: Aligned,
    weights: Sequence[float],
    metric: str = "weighted_f1",
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int | np.random.Generator | None = 0,
) -> ContrastResult:
    """:func:`session_contrast` on predictions already aligned (one alignment serves several metrics)."""
    check_metric(metric)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if len(weights) != data.preds.shape[0]:
        raise ValueError(f"{len(weights)} weight(s) for {data.preds.shape[0]} model(s)")
    is_contrast = bool(np.isclose(np.sum(weights), 0.0))
    counts = tuple(len(s) for s in data.model_seeds) or (len(data.seeds),) * data.preds.shape[0]
    sizes: dict[str, Any] = {
        "n_utterances": len(data.labels),
        "metric": metric,
        "confidence": float(confidence),
        "n_sessions": data.n_sessions,
        "n_dialogs": data.n_dialogs,
        "n_seeds": min(counts),
        "seeds_per_model": counts,
    }
    if data.n_sessions < 2:
        boot = contrast_bootstrap(data, weights, metric, n_boot, seed, confidence)
        return ContrastResult(
            estimate=boot.estimate,
            ci_low=boot.ci_low,
            ci_high=boot.ci_high,
            p_value=bootstrap_p(boot.replicates) if is_contrast else float("nan"),
            method=ONE_SESSION_BOOTSTRAP,
            replicates=boot.replicates,
            **sizes,
        )
    values = per_session_contrast(
        data.labels, data.sessions, data.n_sessions, data.preds, weights, metric, data.seed_weights()
    )
    summary = t_summary(values, confidence)
    overlap = overlap_summary(values, confidence)
    return ContrastResult(
        estimate=float(summary["mean"]),
        ci_low=float(summary["low"]),
        ci_high=float(summary["high"]),
        p_value=float(summary["p"]) if is_contrast else float("nan"),
        method=SESSION_T,
        se=float(summary["se"]),
        df=float(summary["df"]),
        per_session=tuple(float(v) for v in values),
        overlap_ci_low=float(overlap["low"]),
        overlap_ci_high=float(overlap["high"]),
        overlap_p_value=float(overlap["p"]) if is_contrast else float("nan"),
        overlap_se=float(overlap["se"]),
        **sizes,
    )


def per_session_means(frame: pd.DataFrame, name: str = "predictions") -> dict[str, float]:
    """One model's levels by **the report's one weighted-F1 estimator**: per test session, the metric of each
    of its seeds on that session's utterances, averaged over the seeds; then the mean over the sessions
    (what the headline's interval is around, :func:`session_contrast` with weight 1).

    Returns ``weighted_f1``, ``ua`` and ``f1_<emotion>`` per emotion (a session without an utterance of
    that emotion has no F1 for it and is left out of that emotion's mean), each with ``<key>_sd``: the SD
    over the sessions of the seed-averaged values (ddof=1; NaN with one session).
    """
    data = align([frame], [name])
    n_sessions = data.n_sessions
    support, tp, predicted = unit_counts(data.sessions, n_sessions, data.labels, data.preds[0])
    out: dict[str, float] = {}

    def put(key: str, per_session: np.ndarray) -> None:
        kept = per_session[np.isfinite(per_session)]
        out[key] = float(kept.mean()) if kept.size else float("nan")
        out[f"{key}_sd"] = float(kept.std(ddof=1)) if kept.size > 1 else float("nan")

    for metric in ("weighted_f1", "ua"):
        with np.errstate(divide="ignore", invalid="ignore"):
            put(metric, metric_from_counts(metric, support[:, None, :], tp, predicted).mean(axis=1))
    denominator = support[:, None, :] + predicted
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(denominator > 0, 2.0 * tp / denominator, 0.0).mean(axis=1)  # (sessions, classes)
    f1[support == 0] = np.nan
    for k, emotion in enumerate(EMOTIONS):
        put(f"f1_{emotion}", f1[:, k])
    return out


def primary_difference(
    a: pd.DataFrame,
    b: pd.DataFrame,
    metric: str = "weighted_f1",
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int | np.random.Generator | None = 0,
) -> ContrastResult:
    """The difference a minus b in weighted F1 (or ``metric="ua"``) with a speaker-level interval and the
    p value of the same statistic; :func:`session_contrast` with weights (+1, -1).

    Args:
        a: Predictions of model a (one pair; the columns of a predictions table, ``fold`` = test session).
        b: Predictions of model b.
        metric: ``"weighted_f1"`` or ``"ua"``.
        confidence: Nominal coverage of the interval.
        n_boot: Resamples of the dialog bootstrap, used only when the tables hold a single test session.
        seed: Seed of that bootstrap.

    Returns:
        Estimate, the per-session t interval and p value (conditional on these training sets), the
        overlap-aware interval and p value (``overlap_ci_low``, ``overlap_ci_high``, ``overlap_p_value``:
        Nadeau-Bengio corrected t, what the verdicts use), the numbers of sessions, dialogs and seeds, and
        the method used.
    """
    return session_contrast([a, b], (1.0, -1.0), metric, confidence, n_boot, seed, names=("a", "b"))
