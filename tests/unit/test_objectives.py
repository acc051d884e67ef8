"""harness.tune.objectives: parsing, the Pareto front, cheapest-within-margin, and the pareto report."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from harness.errors import UserError
from harness.records import RunMeta, TrialRecord
from harness.report.pareto import pareto_table
from harness.tune.objectives import cheapest_within_margin, pareto_mask, parse_objectives


def test_objectives_are_checked_before_anything_runs():
    assert parse_objectives("weighted_f1,latency_4s_ms") == ("weighted_f1", "latency_4s_ms")
    for bad, message in (
        ("latency_4s_ms,weighted_f1", "first objective must be an accuracy one"),
        ("weighted_f1,speed", "unknown speed"),
        ("ua,ua", "twice"),
    ):
        with pytest.raises(UserError, match=message):
            parse_objectives(bad)


def test_pareto_front_keeps_exactly_the_non_dominated_configs():
    values = np.array([[0.60, 10.0], [0.55, 5.0], [0.50, 6.0], [0.60, 12.0], [np.nan, 1.0], [0.40, 4.0]])
    assert pareto_mask(values, ("max", "min")).tolist() == [True, True, False, False, False, True]


def _record(trial: str, f1: float, latency: float, outer: int | None = 1) -> TrialRecord:
    meta = RunMeta("bilstm", "r", "demo", "g", {}, (1,), 0, False, objectives=("weighted_f1", "latency_4s_ms"))
    fold = SimpleNamespace(
        validation=SimpleNamespace(weighted_f1=f1, unweighted_accuracy=f1),
        resources=SimpleNamespace(latency_4s_ms=latency, params_total=1_000_000),
    )
    return TrialRecord(meta, trial, {}, "finished", [fold], outer_fold=outer, n_folds=1)  # type: ignore[list-item]


def test_cheapest_within_margin_trades_accuracy_for_cost_only_inside_the_margin():
    records = [_record("a", 0.70, 40.0), _record("b", 0.69, 10.0), _record("c", 0.60, 1.0)]
    assert [r.trial_id for r in cheapest_within_margin(records, "latency_4s_ms", 0.02)] == ["b", "a", "c"]
    assert [r.trial_id for r in cheapest_within_margin(records, "latency_4s_ms", 0.0)][0] == "a"


def test_pareto_report_marks_the_front_per_outer_fold():
    records = [_record("a", 0.7, 40.0, 1), _record("b", 0.6, 50.0, 1), _record("c", 0.5, 99.0, 2)]
    run = SimpleNamespace(meta=records[0].meta, records=records)
    table = pareto_table([run])
    assert table.set_index("trial_id").on_front.to_dict() == {"a": True, "b": False, "c": True}
    assert {"pair", "outer_fold", "weighted_f1", "latency_4s_ms"} <= set(table.columns)
