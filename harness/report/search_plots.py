"""What the searches show, per searched pair: every trial's first-rung validation score, hyperparameter
importance on it (``importance.csv`` / ``.md``), score against each searched parameter, and the expected
best validation F1 against the number of trials (Dodge et al. 2019, "Show your work").

**First-rung score**: the validation weighted F1 of a trial's first fold, which every trial that finished
a fold has, ASHA's stopped trials included; importances fitted on complete trials only would describe the
survivors, whose values ASHA already chose. (A trial stopped inside its first fold, under ``--fidelity
epochs``, has no fold record and is left out.) Under nested LOSO the trials of all outer folds are pooled;
their first folds differ, which adds noise but no bias towards any parameter.

**Importance**: PED-ANOVA (Optuna's ``PedAnovaImportanceEvaluator``: how differently the top-quantile
trials' values are distributed from all trials'), on an in-memory Optuna study rebuilt from the stored
configs; the top quantile holds at least two trials. Skipped, with the reason in ``importance.md``, below
``MIN_TRIALS`` trials.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from harness.atomic import write_atomic
from harness.report.figures import legend_outside, plt, save

log = logging.getLogger(__name__)
MIN_TRIALS = 10  # fewer: the top 10-20% is one or two trials and any parameter can look important
IMPORTANCE_COLUMNS = ["pair", "parameter", "importance", "n_trials"]


def first_rung_scores(records: list[Any]) -> pd.DataFrame:
    """``config`` and ``score`` (first fold's validation weighted F1) of every trial that finished a fold."""
    rows = [{"config": r.config, "score": r.folds[0].validation.weighted_f1} for r in records if r.folds]
    return pd.DataFrame(rows, columns=["config", "score"])


def expected_max(values: np.ndarray | list[float]) -> np.ndarray:
    """Expected maximum of n values drawn (with replacement) from ``values``, for n = 1..len(values)
    (Dodge et al. 2019, eq. 1): sum_i v_(i) [(i/N)^n - ((i-1)/N)^n] over the sorted values."""
    v = np.sort(np.asarray(values, dtype=float))
    n_values = len(v)
    if n_values == 0:
        return np.empty(0)
    i = np.arange(1, n_values + 1)
    return np.array([np.sum(v * ((i / n_values) ** n - ((i - 1) / n_values) ** n)) for n in i])


def _space(pair: str) -> Any:
    from harness.models.pairs import get_pair
    from harness.tune.space import load_space

    return load_space(get_pair(pair).space_path)


def parameter_importances(pair: str, trials: pd.DataFrame, value: str = "score") -> dict[str, float] | None:
    """PED-ANOVA importances of the searched parameters for the ``value`` column of ``trials`` (with a
    ``config`` column), rebuilt as an Optuna study from the stored configs; None when too few trials."""
    import optuna

    space = _space(pair)

    def in_space(config: dict) -> bool:  # a --set value outside the YAML range: that run did not search it
        return all(p.contains(config[p.name]) for p in space.params if p.name in config)

    done = trials[trials[value].notna() & trials.config.map(in_space)]
    if len(done) < MIN_TRIALS:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for config, score in zip(done.config, done[value]):
        searched = [p for p in space.params if p.name in config]
        study.add_trial(
            optuna.trial.create_trial(
                params={p.name: config[p.name] for p in searched},
                distributions={p.name: p.distribution() for p in searched},
                value=float(score),
            )
        )
    quantile = min(0.5, max(0.1, 2 / len(done)))  # at least two trials in the top quantile
    try:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=quantile)
    except TypeError:  # optuna before local PED-ANOVA (~4.7) named the same top quantile baseline_quantile
        evaluator = optuna.importance.PedAnovaImportanceEvaluator(baseline_quantile=quantile)  # type: ignore[call-arg]
    try:
        importances = optuna.importance.get_param_importances(study, evaluator=evaluator, normalize=True)
    except (RuntimeError, ValueError) as err:
        log.info("no parameter importances for %s: %s", pair, err)
        return None
    return dict(sorted(importances.items(), key=lambda kv: kv[1]))


def _search_records(runs: list[Any], pair: str) -> list[Any]:
    return [t for r in runs if r.meta.pair == pair and r.stage == "search" and not r.meta.smoke_test for t in r.records]


def write_search_plots(out: Path, runs: list[Any]) -> list[Path]:
    """Expected-max curves, importances (``importance.csv``/``.md`` and bars) and score scatters."""
    pairs = sorted({r.meta.pair for r in runs if r.stage == "search" and not r.meta.smoke_test})
    written: list[Path] = []
    rows, notes = [], []
    curves: dict[str, np.ndarray] = {}
    for pair in pairs:
        scores = first_rung_scores(_search_records(runs, pair))
        if scores.empty:
            notes.append(f"- {pair}: no trial finished a fold")
            continue
        curves[pair] = expected_max(scores.score.to_numpy())
        written += _scatter(out, pair, scores)
        importances = parameter_importances(pair, scores)
        if importances is None:
            notes.append(
                f"- {pair}: skipped, {len(scores)} trial(s) with a first-rung score; importances need at least "
                f"{MIN_TRIALS} (fewer leave one or two trials in the top quantile)"
            )
            continue
        rows += [
            {"pair": pair, "parameter": k, "importance": round(v, 4), "n_trials": len(scores)}
            for k, v in sorted(importances.items(), key=lambda kv: -kv[1])
        ]
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.barh(list(importances), list(importances.values()))
        ax.set_xlabel("importance (PED-ANOVA on first-rung validation F1, Optuna)")
        ax.set_title(f"{pair}: {len(scores)} trials (stopped ones included)", fontsize=9)
        written.append(save(fig, out / f"importance_{pair}.png"))
    table = pd.DataFrame(rows, columns=IMPORTANCE_COLUMNS)
    write_atomic(out / "importance.csv", lambda p: table.to_csv(p, index=False))
    text = [
        "# Hyperparameter importance (PED-ANOVA on every trial's first-rung validation weighted F1)",
        "",
        "Per pair: PED-ANOVA (Optuna's `PedAnovaImportanceEvaluator`: how differently the top-quantile trials' "
        "values are distributed from all trials'; the top quantile holds at least two trials) on every search "
        "trial's first-rung score, its first fold's validation weighted F1, ASHA-stopped trials included. "
        f"Pairs with fewer than {MIN_TRIALS} such trials are skipped.",
        "",
        table.to_markdown(index=False) if not table.empty else "_No pair has enough trials._",
        "",
        *notes,
        "",
    ]
    write_atomic(out / "importance.md", lambda p: p.write_text("\n".join(text)))
    if curves:
        written.append(_expected_max_plot(out, curves))
    return written


def _expected_max_plot(out: Path, curves: dict[str, np.ndarray]) -> Path:
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for pair, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", ms=3, label=pair)
    ax.set_xlabel("number of trials (configs sampled)")
    ax.set_ylabel("expected best first-rung validation weighted F1")
    ax.set_title("Expected best validation F1 vs search budget (Dodge et al. 2019)", fontsize=9)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are counted in whole numbers
    legend_outside(ax)
    return save(fig, out / "expected_max_validation_f1.png")


def _scatter(out: Path, pair: str, scores: pd.DataFrame) -> list[Path]:
    """First-rung score against each parameter the pair's space searches (one panel each)."""
    params = {p.name: p for p in _space(pair).params if any(p.name in c for c in scores.config)}
    names = list(params)
    if not names:
        return []
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        values = [c.get(name) for c in scores.config]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values if v is not None)
        if numeric:
            ax.scatter([np.nan if v is None else v for v in values], scores.score, s=12)
            positive = [v for v in values if v is not None and v > 0]
            # the axis the space samples on: a loguniform parameter (learning rates) on a log axis
            if params[name].type == "loguniform" or (positive and max(positive) / min(positive) > 50):
                ax.set_xscale("log")
        else:
            labels = sorted({str(v) for v in values})
            ax.scatter([labels.index(str(v)) for v in values], scores.score, s=12)
            ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel(name, fontsize=8)
        ax.set_ylabel("first-rung val wF1", fontsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(f"{pair}: {len(scores)} trials", fontsize=9)
    return [save(fig, out / f"search_scores_{pair}.png")]
