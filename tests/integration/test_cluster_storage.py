"""A search on a two-node Ray cluster keeps its records in Ray Tune's storage (here a ``file://`` URI in
another folder than ``--results``): nothing is written to the results folder but the reports, and the
report reads the runs back from the storage alone."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.store import Storage
from tests.integration.conftest import harness

pytestmark = pytest.mark.slow


def test_records_travel_through_ray_storage_on_a_two_node_cluster(tmp_path, env, monkeypatch):
    import ray
    from ray.cluster_utils import Cluster

    monkeypatch.setenv("RAY_TMPDIR", env["RAY_TMPDIR"])
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})  # trials run on the workers
    workers = {cluster.add_node(num_cpus=1).node_id, cluster.add_node(num_cpus=1).node_id}
    results, storage = tmp_path / "results", f"file://{tmp_path / 'storage'}"
    try:
        cluster.wait_for_nodes()
        search = harness(
            "search",
            *("--pair", "bilstm", "--num-samples", "2", "--max-concurrent", "2", "--folds", "5"),
            *("--protocol", "loso-flat", "--fidelity", "folds"),  # a search that reports test scores itself
            *("--set", "epochs=2", "--address", cluster.address, "--storage", storage, "--results", str(results)),
            env=env,
        )
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert search.returncode == 0, search.stderr[-3000:]
    records = Storage(storage).run("bilstm_demo_loso-flat").records()
    assert len(records) == 2 and all(r.status == "finished" for r in records)
    # trials ran on worker nodes, none on the head (usually one on each, but Ray may hand a finished
    # trial's reused actor to the other trial before that trial's own actor starts)
    assert {r.node_id for r in records} <= workers
    written = {p.relative_to(results).as_posix() for p in results.rglob("*") if p.is_file()}
    assert (
        "comparison_full.csv" in written
        and "report.md" in written
        and not [p for p in written if p.endswith(".json") or "/" in p]
    )

    again = tmp_path / "again"
    report = harness("report", "--results", str(again), "--storage", storage, env=env)
    assert report.returncode == 0, report.stderr[-2000:]
    pd.testing.assert_frame_equal(
        pd.read_csv(again / "comparison_full.csv"), pd.read_csv(results / "comparison_full.csv")
    )
