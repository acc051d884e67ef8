"""PNG plots for the report (matplotlib, Agg backend), each linked from ``report.md``.

Per group of comparable runs: per-emotion F1 bars; weighted F1 against parameters, memory, latency, GFLOPs
and total compute, with the per-session t interval as error bars and the non-dominated pairs (no other pair
is both cheaper and better) marked; learning curves (validation weighted F1 per epoch of the final
configs); per-session test F1 with each pair's paired per-session difference from the small-small pair;
row-normalised confusion matrices. Per searched pair (``harness.report.search_plots``): expected best
validation F1 against the number of trials (Dodge et al. 2019), hyperparameter importance and score
against each searched parameter.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.corpus import EMOTION_NAMES, EMOTIONS
from harness.report.figures import legend_outside, plt, save
from harness.report.inference import per_session_means

log = logging.getLogger(__name__)


def pareto_front(
    x: np.ndarray, y: np.ndarray, low: np.ndarray | None = None, high: np.ndarray | None = None
) -> np.ndarray:
    """Indices of the non-dominated points, sorted by x; NaN points never count.

    On point estimates (no ``low``/``high``): a point is dominated when another is at most as costly and
    has a higher y. With intervals: only when another at most as costly has its whole interval above this
    one's (``low_j > high_i``), so two pairs whose intervals overlap are both kept: the front then says
    what the data can tell apart, not the order of the point estimates.
    """
    valid = [i for i in np.argsort(x, kind="stable") if not (np.isnan(x[i]) or np.isnan(y[i]))]
    if low is None or high is None:
        front, best = [], -np.inf
        for i in valid:
            if y[i] > best:
                front.append(i)
                best = y[i]
        return np.array(front, dtype=int)
    lo = np.where(np.isnan(low), y, low)
    hi = np.where(np.isnan(high), y, high)
    kept = [i for i in valid if not any(j != i and x[j] <= x[i] and lo[j] > hi[i] for j in valid)]
    return np.array(kept, dtype=int)


def write_plots(out: Path, grouped: list, comparison: list[tuple], runs: list) -> list[Path]:
    """Every plot; returns the paths written (file names carry the group's index when there are several)."""
    from harness.report.search_plots import write_search_plots

    written: list[Path] = []
    for index, (group, table) in enumerate(comparison):
        if table.empty:
            continue
        suffix = "" if len(comparison) == 1 else f"_group{index + 1}"
        written += _group_plots(out, group, table, suffix)
    written += write_search_plots(out, runs)
    return written


def _labels(table: pd.DataFrame) -> list[str]:
    return [f"{p}{' (stand-in)' if 'STAND-IN' in c else ''}" for p, c in zip(table.pair, table.checkpoints)]


def _group_plots(out: Path, group: Any, table: pd.DataFrame, suffix: str) -> list[Path]:
    labels = _labels(table)
    written = [_per_emotion(out, group, labels, suffix)]
    written += _tradeoffs(out, table, labels, suffix)
    curves = _learning_curves(out, group, suffix)
    written += [curves] if curves else []
    sessions = _per_session(out, group, suffix)
    written += [sessions] if sessions else []
    for run, label in zip(group.rows, labels):
        if _tested(run):
            written.append(_confusion(out, run, label))
    return written


def _tested(run: Any) -> list[Any]:
    """The fold records of a run's complete trials that hold test scores (a nested search's do not)."""
    return [f for t in run.records if t.complete for f in t.folds if f.test is not None]


def per_emotion_values(run: Any) -> np.ndarray:
    """F1 per emotion of a run by the report's one estimator (``harness.report.stats.per_session_means``:
    each test session's F1 averaged over the seeds, then over the sessions), as per_emotion.md shows it; a
    search row without predictions: the per-session mean of its fold records."""
    if run.predictions is not None:
        means = per_session_means(run.predictions)
        return np.array([means[f"f1_{e}"] for e in EMOTIONS])
    frame = pd.DataFrame(
        [{"fold": f.fold} | {e: f.test.per_emotion_f1.get(e, np.nan) for e in EMOTIONS} for f in _tested(run)],
        columns=["fold", *EMOTIONS],
    )
    return frame.groupby("fold")[list(EMOTIONS)].mean().mean().to_numpy(dtype=float)


def _per_emotion(out: Path, group: Any, labels: list[str], suffix: str) -> Path:
    per_emotion = np.array([per_emotion_values(run) for run in group.rows])
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        ax.bar(np.arange(len(EMOTIONS)) + i * width, per_emotion[i], width, label=label)
    ax.set_xticks(np.arange(len(EMOTIONS)) + 0.4 - width / 2, [EMOTION_NAMES[e] for e in EMOTIONS])
    ax.set_ylabel("test F1 (per-session mean of seed means)")
    legend_outside(ax)  # beside the bars, never over them
    return save(fig, out / f"per_emotion_f1{suffix}.png")


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
TRADEOFFS = (
    ("params_total_M", "parameters (M)", "f1_vs_params", False),
    ("model_memory_gb", "model training memory (GB)", "f1_vs_memory", False),
    ("latency_4s_ms", "latency of a 4-s utterance, front end included (ms, log scale)", "f1_vs_latency", True),
    ("gflops_4s", "forward GFLOPs of a 4-s utterance (log scale)", "f1_vs_gflops", True),
    ("device_hours", "total compute: device-hours, extraction included (log scale)", "f1_vs_compute", True),
)


def _tradeoffs(out: Path, table: pd.DataFrame, labels: list[str], suffix: str) -> list[Path]:
    """Weighted F1 against each cost, with the t interval over test sessions and the non-dominated set."""
    f1 = table.test_weighted_f1.to_numpy(dtype=float)
    low = table.get("test_weighted_f1_ci_low", pd.Series(np.nan, index=table.index)).to_numpy(dtype=float)
    high = table.get("test_weighted_f1_ci_high", pd.Series(np.nan, index=table.index)).to_numpy(dtype=float)
    errors = np.vstack([np.nan_to_num(f1 - low), np.nan_to_num(high - f1)])
    written = []
    for column, xlabel, name, log_x in TRADEOFFS:
        if column not in table:
            continue
        x = table[column].to_numpy(dtype=float)
        if np.isnan(x).all():
            continue
        fig, ax = plt.subplots(figsize=(8, 4.2))
        # one marker and colour per pair, named in the legend: labels written beside the points overlap
        # where pairs have similar costs (the unimodal baselines and their fused pair)
        for i, (xi, yi, label) in enumerate(zip(x, f1, labels)):
            if not np.isnan(xi):
                ax.errorbar(
                    [xi], [yi], yerr=errors[:, i : i + 1], fmt=MARKERS[i % len(MARKERS)], ms=7, capsize=3,
                    color=f"C{i % 10}", label=label,
                )  # fmt: skip
        front = pareto_front(x, f1, low, high)
        if len(front):
            ax.plot(x[front], f1[front], "k--", lw=0.8, label="non-dominated (no cheaper pair's CI wholly above)")
        if log_x and (x[~np.isnan(x)] > 0).all():
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test weighted F1 (95% CI over sessions)")
        legend_outside(ax)
        written.append(save(fig, out / f"{name}{suffix}.png"))
    return written


def _learning_curves(out: Path, group: Any, suffix: str) -> Path | None:
    """Validation weighted F1 per epoch of every final-stage fold (thin) and its mean per epoch (thick)."""
    curves = {
        run.meta.pair: [[e.val_weighted_f1 for e in f.history] for t in run.records if t.complete for f in t.folds]
        for run in group.rows
    }
    curves = {pair: [c for c in runs if c] for pair, runs in curves.items()}
    curves = {pair: runs for pair, runs in curves.items() if runs}
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, (pair, runs) in enumerate(curves.items()):
        color = f"C{i % 10}"
        for curve in runs:
            ax.plot(range(1, len(curve) + 1), curve, color=color, alpha=0.2, lw=0.8)
        longest = max(len(c) for c in runs)
        mean = [np.mean([c[e] for c in runs if len(c) > e]) for e in range(longest)]
        ax.plot(range(1, longest + 1), mean, color=color, lw=2, label=f"{pair} ({len(runs)} folds x seeds)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation weighted F1")
    ax.set_title("Learning curves of the final configs (mean: folds still training at that epoch)", fontsize=9)
    legend_outside(ax)
    return save(fig, out / f"learning_curves{suffix}.png")


def _per_session(out: Path, group: Any, suffix: str) -> Path | None:
    """Test weighted F1 per test session (mean over seeds) and each pair's paired difference per session
    from the small-small pair: what the speaker-level interval is computed from."""
    from harness.report.summary import pair_order

    frame = pd.DataFrame(
        [
            (run.meta.pair, f.fold, f.test.weighted_f1)
            for run in group.rows
            for t in run.records
            if t.complete
            for f in t.folds
            if f.test is not None
        ],
        columns=["pair", "session", "f1"],
    )
    if frame.empty or frame.session.nunique() < 2:
        return None
    means = frame.groupby(["pair", "session"]).f1.mean().unstack("session")
    order = pair_order(list(means.index))
    base = order[0]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), sharex=True)
    sessions = [int(s) for s in means.columns]
    for i, pair in enumerate(order):
        left.plot(sessions, means.loc[pair], marker="o", color=f"C{i % 10}", label=pair)
        if pair != base:
            diff = means.loc[pair] - means.loc[base]
            right.plot(sessions, diff, marker="o", color=f"C{i % 10}")
    right.axhline(0, color="grey", lw=0.8)
    for ax in (left, right):
        ax.set_xticks(sessions, [str(s) for s in sessions])  # the sessions, not 1.0, 1.5, ...
        ax.set_xlabel("test session")
    left.set_ylabel("test weighted F1 (mean over seeds)")
    right.set_ylabel(f"paired difference from {base}")
    # one legend for both panels (same colours), beside them, never over a line
    right.legend(*left.get_legend_handles_labels(), fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save(fig, out / f"per_session{suffix}.png")


def _confusion(out: Path, run: Any, label: str) -> Path:
    """Row-normalised confusion matrix (each true class's row sums to 1): each seed's matrix summed over
    its test folds, then averaged over the seeds, so the counts are utterances (not utterances x seeds)."""
    per_seed = [
        np.sum([np.array(f.test.confusion) for f in t.folds if f.test is not None], axis=0)
        for t in run.records
        if t.complete and any(f.test is not None for f in t.folds)
    ]
    matrix = np.mean(per_seed, axis=0)
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=float), where=totals > 0)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(share):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v > 0.6 else "black")
    classes = EMOTIONS[: matrix.shape[0]]
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), [f"{c} ({round(n)})" for c, n in zip(classes, totals[:, 0])])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (test utterances)")
    seeds = f", mean of {len(per_seed)} seeds" if len(per_seed) > 1 else ""
    ax.set_title(f"{label}: share of each true class, test folds summed{seeds}", fontsize=9)
    return save(fig, out / f"confusion_{run.meta.pair}_{run.meta.run}.png")
