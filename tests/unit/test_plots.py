"""harness.report.plots"""

from __future__ import annotations

import numpy as np


def test_parameter_importances_find_the_parameter_that_drives_the_score():
    import pandas as pd

    from harness.report.plots import parameter_importances

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
    importances = parameter_importances("bilstm", pd.DataFrame(rows))
    assert max(importances, key=importances.get) == "lr"
    assert importances["lr"] > 0.8
    assert parameter_importances("bilstm", pd.DataFrame(rows[:2])) is None  # too few trials
