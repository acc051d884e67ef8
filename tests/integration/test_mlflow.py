"""``--mlflow``: a folder, a sqlite URI and a tracking server each receive a two-trial search, with each
trial's params and metrics agreeing with the harness's own records (Ray Tune's MLflow callback).

MLflow is an optional extra (it pulls a server stack and pins pyarrow): where it is absent these tests skip
and say so. To run them: python3 -m venv --system-site-packages /tmp/mlvenv && /tmp/mlvenv/bin/pip install
mlflow, then /tmp/mlvenv/bin/python -m pytest -m slow tests/integration/test_mlflow.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.store import Storage
from tests.integration.conftest import harness

pytestmark = pytest.mark.slow
mlflow = pytest.importorskip(
    "mlflow", reason="MLflow is not installed (an optional extra: pip install 'harness[mlflow]')"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A local MLflow tracking server on a free port (its own process group, ended by its id)."""
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--default-artifact-root", str(tmp_path / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the MLflow server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
                time.sleep(1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:  # its workers outlived the TERM on a loaded machine
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log.close()


@pytest.mark.parametrize("target", ["folder", "sqlite", "server"])
def test_each_trial_is_tracked_to_mlflow(tmp_path, env, target, request):
    if target == "folder":
        given, store_uri = str(tmp_path / "mlruns"), f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    elif target == "sqlite":
        given = store_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    else:
        given = store_uri = request.getfixturevalue("server")
    results = tmp_path / "results"
    search = harness(
        "search", *("--pair", "bilstm", "--smoke-test", "--results", str(results), "--mlflow", given), env=env
    )
    assert search.returncode == 0, search.stderr[-3000:]
    assert "MLflow tracking" not in search.stderr  # no tracking failure was reported
    assert "performance bottleneck" not in search.stderr  # Ray's timing warnings stay in the log file

    records = Storage(results / "ray").run("bilstm_demo_smoke").records()
    client = mlflow.tracking.MlflowClient(tracking_uri=store_uri)
    experiment = client.get_experiment_by_name("bilstm_demo_smoke")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == len(records) == 2
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
