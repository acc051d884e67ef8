"""A final stage with fused seeds (issue 26, forced on CPU with HARNESS_FUSE_SEEDS=1): one Ray trial trains
a fold's seeds as one model and every seed still gets its own ordinary trial folder and record (same schema),
its own predictions, and its share of the costs."""

from __future__ import annotations

import pytest

from harness.store import Storage
from tests.integration.conftest import harness

pytestmark = [pytest.mark.slow, pytest.mark.heavy]


@pytest.mark.timeout(1200)
def test_fused_seeds_final_stage_writes_one_ordinary_record_per_seed(tmp_path, env):
    results = tmp_path / "results"
    args = ["--pairs", "cnnbilstm_bilstm", "--num-samples", "1", "--seeds", "2", "--folds", "5"]
    args += ["--inner-folds", "1", "--results", str(results), "--no-report"]
    args += ["--set", "epochs=2", "--set", "explain_samples=2", "--set", "explain_steps=4"]
    result = harness("benchmark", *args, env=env | {"HARNESS_FUSE_SEEDS": "1"}, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    store = Storage(results / "ray").run("cnnbilstm_bilstm_demo_bench_final")
    records = store.records()
    assert len(records) == 2 and all(r.complete and r.status == "finished" for r in records)
    assert sorted(r.folds[0].config["seed"] for r in records) == [1, 2]
    first, second = sorted(records, key=lambda r: r.folds[0].config["seed"])
    assert second.trial_id == f"{first.trial_id}_seed2"  # the second seed's folder sits beside the Ray trial's
    assert first.to_dict().keys() == second.to_dict().keys() and "members" not in second.config
    assert first.folds[0].resources.train_wall_s == pytest.approx(second.folds[0].resources.train_wall_s)
    assert first.folds[0].resources.latency_4s_ms is not None  # costs measured once per config: the first seed
    predictions = store.predictions()
    assert predictions is not None and sorted(predictions.seed.unique()) == [1, 2]
    assert predictions.groupby("seed").utterance_id.apply(lambda ids: ids.is_unique).all()
    assert not (
        predictions[predictions.seed == 1].set_index("utterance_id").p_neu
        == predictions[predictions.seed == 2].set_index("utterance_id").p_neu
    ).all()  # two models, not one copied
