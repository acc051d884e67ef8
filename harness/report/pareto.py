"""``pareto``: each pair's configs on accuracy and cost, and which are non-dominated.

Per pair and selection unit (outer test fold; one unit for a non-nested search), every complete search
trial with its objectives (``--objectives``; a single-objective search, which skips the latency step, gets
weighted F1 and parameters), and ``on_front``: no other config of that unit is at least as good on every
objective and better on one. Configs of different outer folds were scored on different inner folds, so each unit has
its own front. ``on_front`` is on point estimates (each config's mean validation scores; a search trial has
no interval), which the plot's title says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.report.figures import plt, save
from harness.tune.objectives import Objective, pareto_mask, value

COLUMNS = 4  # panels per row of pareto.png
DEFAULT = ("weighted_f1", "params_m")  # a single-objective search measures no latency (harness.tune.objectives)


def pareto_table(runs: list[Any]) -> pd.DataFrame:
    """``runs``: the search runs to show (``harness.report.tables.Run``), one per pair."""
    rows = []
    for run in runs:
        objectives = run.meta.objectives if len(run.meta.objectives) > 1 else DEFAULT
        complete = [r for r in run.records if r.complete]
        for unit in sorted({r.outer_fold for r in complete}, key=lambda u: (u is None, u)):
            members = [r for r in complete if r.outer_fold == unit]
            values = np.array([[value(r, n) for n in objectives] for r in members], dtype=float)
            front = pareto_mask(values, tuple(Objective(n).mode for n in objectives))
            for record, row, on_front in zip(members, values, front):
                rows.append(
                    {"pair": run.meta.pair, "outer_fold": unit, "trial_id": record.trial_id}
                    | {n: round(float(v), 4) for n, v in zip(objectives, row)}
                    | {"on_front": bool(on_front)}
                )
    return pd.DataFrame(rows)


def pareto_plot(table: pd.DataFrame, path: Path) -> bool:
    """Accuracy against the first cost per pair, the front's configs marked; False when nothing to draw.
    One panel per pair, at most ``COLUMNS`` to a row (a row of eight panels was a 2816x330 strip); a cost
    spanning more than 10x on a log axis."""
    if table.empty:
        return False
    pairs = sorted(table.pair.unique())
    columns = min(COLUMNS, len(pairs))
    rows = -(-len(pairs) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.2 * rows), squeeze=False)
    for ax, pair in zip(axes.flat, pairs):
        shown = table[table.pair == pair].dropna(axis=1, how="all")
        names = [c for c in shown.columns if c not in ("pair", "outer_fold", "trial_id", "on_front")]
        if len(names) < 2:
            ax.set_visible(False)
            continue
        accuracy, cost = names[0], names[1]
        ax.scatter(shown[cost], shown[accuracy], c=np.where(shown.on_front, "tab:red", "tab:gray"), s=18)
        positive = shown[cost][shown[cost] > 0]
        if len(positive) == len(shown) and positive.max() > 10 * positive.min():
            ax.set_xscale("log")
        ax.set_title(pair, fontsize=9)
        ax.set_xlabel(cost, fontsize=8)
        ax.set_ylabel(f"validation {accuracy}", fontsize=8)
    for ax in list(axes.flat)[len(pairs) :]:
        ax.set_visible(False)
    fig.suptitle("Configs per pair (red: non-dominated within their outer fold, on point estimates)", fontsize=9)
    fig.tight_layout()
    save(fig, path)
    return True
