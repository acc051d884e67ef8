"""A trial whose worker node dies mid-trial is retried on another node and continues from its last
finished fold (FailureConfig(max_failures) + per-fold checkpoints)."""

from __future__ import annotations

import threading

import pytest

from harness.features import FeatureCache, corpus_fingerprint
from harness.models.pairs import get_pair
from harness.store import Storage
from harness.tune.prebuild import prebuild_features
from harness.tune.space import load_space

pytestmark = pytest.mark.slow


def test_trial_survives_worker_loss(tmp_path, demo_manifest, ray_tmp, monkeypatch):
    import ray
    from ray.cluster_utils import Cluster

    from harness.records import RunMeta
    from harness.tune.ray_search import SearchSettings, TrialInputs, TrialLog, make_tuner

    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    # The node dies as soon as the driver has registered the first fold's checkpoint (not when the file
    # appears in the storage: the worker writes it before the driver knows of it, and a retry restores
    # only what the driver knows), so the second fold is surely still running.
    registered = threading.Event()
    on_checkpoint = TrialLog.on_checkpoint

    def on_checkpoint_and_tell(self, *args, **kwargs):
        on_checkpoint(self, *args, **kwargs)
        registered.set()

    monkeypatch.setattr(TrialLog, "on_checkpoint", on_checkpoint_and_tell)

    pair = get_pair("cnnbilstm_bilstm")
    space = load_space(pair.space_path).with_fixed({"epochs": 6, "patience": 6, "explain_samples": 0})
    cache = FeatureCache(tmp_path / "features")
    fingerprint = corpus_fingerprint(demo_manifest)
    prebuild_features(pair, space, demo_manifest, cache, fingerprint)
    meta = RunMeta(pair.name, "loss", "demo", "test", {}, (4, 5), 0, False, protocol="loso-flat")
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
        assert registered.wait(300), "the first fold never finished"
        cluster.remove_node(doomed, allow_graceful=False)  # the trial's node dies during its second fold
        [snapshot] = store.records()
        assert len(snapshot.folds) == 1, "fold 2 finished before the node was removed"
        cluster.add_node(num_cpus=1)  # the retried trial waits for a node, then runs here
        thread.join(timeout=400)
        assert grids and not grids[0].errors
        [final] = store.records()
        assert final.status == "finished" and [f.fold for f in final.folds] == [4, 5]
        assert final.folds[0] == snapshot.folds[0]  # fold 4 came from the checkpoint, not a rerun
        assert final.node_id != snapshot.node_id  # fold 5 ran on the node that replaced the lost one
    finally:
        ray.shutdown()
        cluster.shutdown()
