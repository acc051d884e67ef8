"""PNG plots for the report (matplotlib, Agg backend): per-emotion bars, F1 vs size and memory with the
Pareto front, confusion matrices of each best config, Optuna parameter importances."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from harness.corpus import EMOTION_NAMES, EMOTIONS  # noqa: E402

log = logging.getLogger(__name__)


def _save(fig: plt.Figure, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    tmp.replace(path)


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of points no other point beats (lower x and higher y), sorted by x."""
    order = np.argsort(x, kind="stable")
    front, best = [], -np.inf
    for i in order:
        if y[i] > best:
            front.append(i)
            best = y[i]
    return np.array(front, dtype=int)


def write_plots(out: Path, grouped: list, comparison: list[tuple], runs: list) -> None:
    """Plots per group of comparable runs (file names carry the group's index when there are several)."""
    for index, (group, table) in enumerate(comparison):
        if table.empty:
            continue
        suffix = "" if len(comparison) == 1 else f"_group{index + 1}"
        _group_plots(out, group, table, suffix)
    for pair in sorted({r.meta.pair for r in runs if r.stage == "search" and not r.meta.smoke_test}):
        records = [
            t for r in runs if r.meta.pair == pair and r.stage == "search" and not r.meta.smoke_test for t in r.records
        ]
        frame = pd.DataFrame(
            {
                "config": [t.config for t in records],
                "mean_val_weighted_f1": [t.mean_val_weighted_f1 if t.complete else None for t in records],
            }
        )
        importances = parameter_importances(pair, frame)
        if importances is None:
            continue
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.barh(list(importances), list(importances.values()))
        ax.set_xlabel("importance (fANOVA, Optuna)")
        finished = int(frame.mean_val_weighted_f1.notna().sum())
        ax.set_title(f"{pair}: {finished} complete trials" + (" (few: importances are noisy)" if finished < 20 else ""))
        _save(fig, out / f"importance_{pair}.png")


def _group_plots(out: Path, group, table: pd.DataFrame, suffix: str) -> None:
    labels = [f"{p}{' (stand-in)' if 'STAND-IN' in c else ''}" for p, c in zip(table.pair, table.checkpoints)]
    per_emotion = np.array(
        [
            [
                np.nanmean([f.test.per_emotion_f1.get(e, np.nan) for t in run.records if t.complete for f in t.folds])
                for e in EMOTIONS
            ]
            for run in group.rows
        ]
    )
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        ax.bar(np.arange(len(EMOTIONS)) + i * width, per_emotion[i], width, label=label)
    ax.set_xticks(np.arange(len(EMOTIONS)) + 0.4 - width / 2, [EMOTION_NAMES[e] for e in EMOTIONS])
    ax.set_ylabel("test F1 (mean over runs)")
    ax.legend(fontsize=7)
    _save(fig, out / f"per_emotion_f1{suffix}.png")

    f1 = table.test_weighted_f1.to_numpy(dtype=float)
    for column, xlabel, name in (
        ("params_total_M", "parameters (M)", "f1_vs_params"),
        ("model_memory_gb", "model training memory (GB)", "f1_vs_memory"),
    ):
        x = table[column].to_numpy(dtype=float)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.scatter(x, f1)
        for xi, yi, label in zip(x, f1, labels):
            ax.annotate(label, (xi, yi), fontsize=7)
        front = pareto_front(x, f1)
        ax.plot(x[front], f1[front], "r--", label="Pareto front")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test weighted F1")
        ax.legend()
        _save(fig, out / f"{name}{suffix}.png")

    for run, label in zip(group.rows, labels):
        matrix = np.sum([np.array(f.test.confusion) for t in run.records if t.complete for f in t.folds], axis=0)
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.imshow(matrix, cmap="Blues")
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(j, i, str(int(v)), ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(EMOTIONS)), EMOTIONS)
        ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{label}: test folds summed", fontsize=9)
        _save(fig, out / f"confusion_{run.meta.pair}_{run.meta.run}.png")


def parameter_importances(pair: str, trials: pd.DataFrame) -> dict[str, float] | None:
    """Optuna importances over the pair's finished trials, rebuilt from stored configs; None when too few."""
    import optuna

    from harness.models.pairs import get_pair
    from harness.tune.space import load_space

    space = load_space(get_pair(pair).space_path)

    def in_space(config: dict) -> bool:  # a --set value outside the YAML range: that run did not search it
        return all(p.contains(config[p.name]) for p in space.params if p.name in config)

    done = trials[trials.mean_val_weighted_f1.notna() & trials.config.map(in_space)]
    if len(done) < 3:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for config, value in zip(done.config, done.mean_val_weighted_f1):
        searched = [p for p in space.params if p.name in config]
        study.add_trial(
            optuna.trial.create_trial(
                params={p.name: config[p.name] for p in searched},
                distributions={p.name: p.distribution() for p in searched},
                value=float(value),
            )
        )
    try:
        importances = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
        )
    except (RuntimeError, ValueError) as err:
        log.info("no parameter importances for %s: %s", pair, err)
        return None
    return dict(sorted(importances.items(), key=lambda kv: kv[1]))
