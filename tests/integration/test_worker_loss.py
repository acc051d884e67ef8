"""A trial whose worker node dies mid-trial is retried on another node and continues from its last
finished fold (FailureConfig(max_failures) + per-fold checkpoints)."""

from __future__ import annotations

import threading
import time

import pytest

from harness.features import FeatureCache, corpus_fingerprint
from harness.models.pairs import get_pair
from harness.store import Storage
from harness.tune.prebuild import prebuild_features
from harness.tune.space import load_space

pytestmark = pytest.mark.slow


def test_trial_survives_worker_loss(tmp_path, demo_manifest):
    import ray
    from ray.cluster_utils import Cluster

    from harness.records import RunMeta
    from harness.tune.ray_search import SearchSettings, TrialInputs, make_tuner

    pair = get_pair("cnnbilstm_bilstm")
    space = load_space(pair.space_path).with_fixed({"epochs": 6, "patience": 6, "explain_samples": 0})
    cache = FeatureCache(tmp_path / "features")
    fingerprint = corpus_fingerprint(demo_manifest)
    prebuild_features(pair, space, demo_manifest, cache, fingerprint)
    meta = RunMeta(pair.name, "loss", "demo", "test", {}, (4, 5), 0, False)
    inputs = TrialInputs(meta, space, demo_manifest, fingerprint, str(cache.root))
    store = Storage(tmp_path / "ray").run("loss")

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})  # trials never run on the head
    doomed = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address)
    try:
        tuner = make_tuner(
            inputs,
            SearchSettings(
                num_samples=1,
                cpus_per_trial=1,
                gpus_per_trial=0,
                max_concurrent=1,
                storage=str(tmp_path / "ray"),
                name="loss",
                seed=0,
                max_failures=2,
            ),
        )
        grids = []
        thread = threading.Thread(target=lambda: grids.append(tuner.fit()))
        thread.start()
        deadline, snapshot = time.time() + 300, None
        while time.time() < deadline and snapshot is None:
            try:
                snapshot = next((r for r in store.records() if len(r.folds) == 1), None)
            except (OSError, ValueError):  # the checkpoint is being written
                pass
            time.sleep(0.05)
        assert snapshot, "the first fold never finished"
        cluster.add_node(num_cpus=1)
        cluster.remove_node(doomed, allow_graceful=False)  # the trial's node dies during its second fold
        assert len(store.records()[0].folds) == 1, "fold 2 finished before the node was removed"
        thread.join(timeout=400)
        assert grids and not grids[0].errors
        [final] = store.records()
        assert final.status == "finished" and [f.fold for f in final.folds] == [4, 5]
        assert final.folds[0] == snapshot.folds[0]  # fold 4 came from the checkpoint, not a rerun
        assert final.node_id != snapshot.node_id  # fold 5 ran on the node that replaced the lost one
    finally:
        ray.shutdown()
        cluster.shutdown()
