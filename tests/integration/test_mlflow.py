"""``--mlflow sqlite:///...``: each trial's params and metrics arrive in the MLflow store (Ray Tune's MLflow
callback), and agree with the harness's own records."""

from __future__ import annotations

import pytest

from harness.store import Storage
from tests.integration.conftest import harness

pytestmark = pytest.mark.slow


def test_each_trial_is_tracked_to_mlflow(tmp_path, env):
    mlflow = pytest.importorskip("mlflow", reason="MLflow is an optional extra: pip install 'harness[mlflow]'")
    store_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    results = tmp_path / "results"
    search = harness(
        "search",
        *("--pair", "bilstm", "--smoke-test", "--results", str(results), "--mlflow", store_uri),
        env=env,
    )
    assert search.returncode == 0, search.stderr[-3000:]

    records = Storage(results / "ray").run("bilstm_demo_smoke").records()
    client = mlflow.tracking.MlflowClient(tracking_uri=store_uri)
    experiment = client.get_experiment_by_name("bilstm_demo_smoke")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == len(records) >= 2
    by_trial = {r.data.tags["trial_name"].rsplit("_", 1)[-1]: r for r in runs}
    for record in records:
        run = by_trial[record.trial_id]
        assert run.data.tags["harness.pair"] == "bilstm"
        params = run.data.params
        for key in ("lr", "dropout", "weight_decay"):  # the sampled config
            assert float(params[key]) == pytest.approx(record.config[key])
        assert params["epochs"] == "1"  # a fixed value of the run
        history = client.get_metric_history(run.info.run_id, "mean_val_weighted_f1")
        assert history  # every reported result, per epoch and per fold
        if record.status == "finished":
            assert run.info.status == "FINISHED"
            assert history[-1].value == pytest.approx(record.mean_val_weighted_f1)
