"""harness.report.plots"""

from __future__ import annotations

import numpy as np
import pytest


def test_parameter_importances_find_the_parameter_that_drives_the_score():
    """PED-ANOVA on a rebuilt Optuna study: the one parameter that drives the score dominates."""
    import pandas as pd

    from harness.report.search_plots import parameter_importances

    rng = np.random.default_rng(0)
    rows = []
    for _ in range(24):
        config = {
            "lr": float(10 ** rng.uniform(-4, np.log10(3e-3))),
            "weight_decay": float(10 ** rng.uniform(-4, -1)),
            "dropout": float(rng.uniform(0.1, 0.5)),
            "fusion_dim": int(rng.choice([64, 128, 256])),
            "text.embed_dim": 128,
            "text.hidden": 128,
        }
        score = 0.3 + 0.1 * (np.log10(config["lr"]) + 4) + 0.002 * rng.normal()  # lr alone matters
        rows.append({"config": config, "mean_val_weighted_f1": score})
    rows.append({"config": rows[0]["config"] | {"lr": 1e30}, "mean_val_weighted_f1": 0.1})  # a --set run
    rows.append({"config": rows[0]["config"], "mean_val_weighted_f1": None})  # a failed trial
    importances = parameter_importances("bilstm", pd.DataFrame(rows), value="mean_val_weighted_f1")
    assert max(importances, key=importances.get) == "lr"
    assert importances["lr"] > 0.8
    assert parameter_importances("bilstm", pd.DataFrame(rows[:9]), value="mean_val_weighted_f1") is None  # too few


def test_expected_max_matches_simulated_best_of_n_draws():
    """Dodge et al.'s expected maximum equals the mean best of n draws with replacement; the naive 'best of
    the first n trials' depends on trial order and is not it."""
    from harness.report.search_plots import expected_max

    rng = np.random.default_rng(1)
    values = rng.uniform(0.3, 0.7, size=12)
    curve = expected_max(values)
    assert len(curve) == 12 and np.all(np.diff(curve) >= 0)
    assert curve[0] == pytest.approx(values.mean()) and curve[-1] <= values.max()
    draws = rng.choice(values, size=(200_000, 5))
    assert curve[4] == pytest.approx(draws.max(axis=1).mean(), abs=2e-3)


def test_pareto_front_ignores_missing_costs():
    from harness.report.plots import pareto_front

    x = np.array([1.0, 2.0, np.nan, 3.0, 0.5])
    y = np.array([0.5, 0.7, 0.9, 0.6, 0.4])
    assert pareto_front(x, y).tolist() == [4, 0, 1]  # 3.0 is dominated by 2.0; NaN cost is not ranked
