"""ASHA-stopped configs reach Optuna as PRUNED with their intermediate values on ASHA's clock, never
COMPLETE; the study is stored in SQLite in the run's books and opens with Optuna's own API."""

from __future__ import annotations

import pytest

from harness.features import FeatureCache, corpus_fingerprint
from harness.models.pairs import get_pair
from harness.records import RunMeta
from harness.store import Storage
from harness.tune.prebuild import prebuild_features
from harness.tune.space import load_space

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("fidelity", ["epochs", "folds"])
def test_stopped_trials_are_pruned_in_the_optuna_study(fidelity, tmp_path, demo_manifest, ray_tmp, monkeypatch):
    import optuna
    import ray
    from optuna.trial import TrialState

    from harness.tune.fidelity import MAX_T
    from harness.tune.ray_search import SearchSettings, TrialInputs, make_tuner, run_tuner
    from harness.tune.studies import OPTUNA_DB

    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    pair = get_pair("bilstm")
    # lr spans four decades: some configs learn nothing in 2 epochs, and ASHA (rung 1 = fold 4) stops them.
    space = load_space(pair.space_path).with_fixed({"epochs": 2, "text.embed_dim": 16, "text.hidden": 64})
    cache = FeatureCache(tmp_path / "features")
    fingerprint = corpus_fingerprint(demo_manifest)
    prebuild_features(pair, space, demo_manifest, cache, fingerprint)
    meta = RunMeta(pair.name, "prune", "demo", "test", {}, (4, 5, 1), 0, False, protocol="loso-flat", fidelity=fidelity)
    inputs = TrialInputs(meta, space, demo_manifest, fingerprint, str(cache.root))
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        tuner = make_tuner(
            inputs,
            SearchSettings(
                num_samples=6,
                cpus_per_trial=1,
                gpus_per_trial=0,
                max_concurrent=1,  # which trial reaches a rung first, and so what ASHA stops, is then fixed
                storage=str(tmp_path / "ray"),
                name="prune",
                seed=0,
            ),
        )
        outcome = run_tuner(tuner, 6)
    finally:
        ray.shutdown()
    assert outcome.trials == 6 and not outcome.interrupted
    database = tmp_path / "ray" / "prune" / "harness" / OPTUNA_DB
    study = optuna.load_study(study_name="prune", storage=f"sqlite:///{database}")  # what optuna-dashboard opens
    records = {r.trial_id: r for r in Storage(tmp_path / "ray").run("prune").records()}
    states = [t.state for t in study.trials]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states, states
    # epochs: 1, 2 (capped epochs=2) of the first fold, its end (9), the second fold's end (27), the last (MAX_T)
    clock = {1, 2, 9, 27, MAX_T} if fidelity == "epochs" else {1, 2, 3}
    last = MAX_T if fidelity == "epochs" else 3
    for trial in study.trials:
        steps = sorted(trial.intermediate_values)
        assert set(steps) <= clock, steps
        if trial.state == TrialState.COMPLETE:
            assert steps[-1] == last and trial.value == trial.intermediate_values[last]
        if trial.state == TrialState.PRUNED:  # Optuna keeps the last intermediate value of a pruned trial
            assert steps[-1] < last and trial.value == trial.intermediate_values[steps[-1]]
    stopped = [r for r in records.values() if r.status == "stopped_early"]
    assert len(stopped) == states.count(TrialState.PRUNED)
    assert all(len(r.folds) < 3 for r in stopped)
    complete = [r for r in records.values() if r.status == "finished"]
    assert len(complete) == states.count(TrialState.COMPLETE)
    values = sorted(t.value for t in study.trials if t.state == TrialState.COMPLETE)
    assert values == pytest.approx(sorted(r.mean_val_weighted_f1 for r in complete))  # the records agree
    for record in records.values():  # a search that does not optimise latency skips the latency step
        assert all(f.resources.latency_ms is None and f.resources.gflops_4s is None for f in record.folds)
