"""Nested selection without Ray's runtime: inner folds, ASHA's clock, one study and one bracket per outer
fold, and final-stage seeds."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.corpus.folds import inner_folds, make_folds
from harness.corpus.protocols import selection_folds, selection_units
from harness.records import RunMeta, TrialRecord
from harness.tune.fidelity import MAX_T, fidelity_time, rungs
from harness.tune.selection import select_configs


def test_inner_folds_never_hold_the_outer_test_session(demo_manifest):
    session = demo_manifest.session.to_numpy()
    for outer in range(1, 6):
        folds = inner_folds(demo_manifest, outer)
        assert [f.validation_speaker for f in folds] == [f"Ses{(outer + i - 1) % 5 + 1:02d}" for i in range(1, 5)]
        for fold in folds:
            assert not len(fold.test)
            assert outer not in set(session[fold.train]) | set(session[fold.validation])
            assert len(fold.train) + len(fold.validation) == (session != outer).sum()
    # the final stage's fold k trains and early-stops on sessions other than k, tests on k
    for fold in make_folds(demo_manifest):
        assert set(session[fold.test]) == {fold.test_session}
        assert fold.test_session not in set(session[fold.train]) | set(session[fold.validation])


def test_selection_units_and_folds_per_protocol(demo_manifest):
    assert selection_units("loso", (1, 2, 3)) == (1, 2, 3)
    assert selection_units("loso-flat", (1, 2, 3)) == (None,)
    assert len(selection_folds(demo_manifest, "loso", (1, 2), 2)) == 4
    assert len(selection_folds(demo_manifest, "loso", (1, 2), 2, inner=1)) == 1  # a smoke test's budget
    flat = selection_folds(demo_manifest, "loso-flat", (1, 2), None)
    assert [f.test_session for f in flat] == [1, 2] and all(len(f.test) for f in flat)


def test_epoch_fidelity_judges_every_config_on_the_same_fold_and_epochs():
    clock = [fidelity_time("epochs", 4, 0, e) for e in range(1, 13)]
    assert clock == [1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9]  # epochs of the first fold, capped at the last rung
    assert fidelity_time("epochs", 4, 1, 5) is None  # later folds' epochs are off the clock
    ends = [fidelity_time("epochs", 4, k) for k in range(1, 5)]
    assert ends == [9, 27, 28, MAX_T]  # a fold-1 that stops at epoch 7 is judged at 9 on its kept model
    assert rungs("epochs", 4) == (1, 3, 9, 27)
    assert [fidelity_time("folds", 5, k) for k in range(1, 6)] == [1, 2, 3, 4, 5]
    assert fidelity_time("folds", 5, 0, 3) is None
    assert rungs("folds", 5) == (1, 2, 4)


def _meta(protocol: str) -> RunMeta:
    return RunMeta("bilstm", "r", "demo", "g", {}, (1, 2), 0, False, protocol=protocol)


def _record(meta: RunMeta, trial: str, outer: int | None, f1: float, folds_run: int = 2) -> TrialRecord:
    folds = [
        SimpleNamespace(validation=SimpleNamespace(weighted_f1=f1), validation_speaker="Ses03", test=None)
        for _ in range(folds_run)
    ]
    status = "finished" if folds_run == 2 else "stopped_early"
    return TrialRecord(meta, trial, {"lr": f1}, status, folds, outer_fold=outer, n_folds=2)  # type: ignore[arg-type]


def test_each_test_fold_gets_the_best_config_of_its_own_candidates():
    meta = _meta("loso")
    records = [_record(meta, "a", 1, 0.9), _record(meta, "b", 1, 0.5), _record(meta, "c", 2, 0.4)]
    records.append(_record(meta, "d", 2, 0.95, folds_run=1))  # stopped early: never selected
    chosen = select_configs(records, meta, 1)
    assert [r.trial_id for r in chosen[1]] == ["a"] and [r.trial_id for r in chosen[2]] == ["c"]
    flat = select_configs([_record(_meta("loso-flat"), t, None, v) for t, v in (("a", 0.2), ("b", 0.7))], meta, 1)
    assert chosen.keys() == flat.keys()


def test_final_stage_seeds_never_reuse_a_search_seed():
    from harness.benchmark.stage import seeded

    meta = _meta("loso")
    selected = {1: [_record(meta, "a", 1, 0.9), _record(meta, "b", 1, 0.8)], 2: [_record(meta, "c", 2, 0.4)] * 2}
    trials = seeded(selected, seeds=3, search_seed=0)
    assert [t.seed for t in trials] == [1, 2, 3, 4, 5, 6]
    assert trials[0].per_fold["1"]["lr"] == 0.9 and trials[3].per_fold["1"]["lr"] == 0.8
    assert all(c["seed"] == t.seed for t in trials for c in t.per_fold.values())


def test_each_folds_costs_are_measured_once_and_dealt_over_its_seeds():
    from dataclasses import asdict

    from harness.benchmark.stage import seeded
    from harness.tune.ray_search import _lead

    meta = _meta("loso")
    selected = {f: [_record(meta, "a", f, 0.9), _record(meta, "b", f, 0.8)] for f in (1, 2, 3, 4, 5)}
    trials = seeded(selected, seeds=2, search_seed=0)
    for rank in (trials[:2], trials[2:]):  # each config (rank) of each fold: measured by exactly one seed
        assert sorted(f for t in rank for f in t.measure_folds) == [1, 2, 3, 4, 5]
        assert [t.measure_folds for t in rank] == [(1, 3, 5), (2, 4)]  # side-by-side seeds share the step
    one = seeded({1: selected[1]}, seeds=3, search_seed=0)
    assert [t.measure_costs for t in one[:3]] == [True, False, False]
    # fused seeds train as one trial: its lead measures every fold any member was dealt
    lead = _lead([asdict(t) for t in trials[:2]])
    assert lead["measure_costs"] and lead["measure_folds"] == (1, 2, 3, 4, 5) and len(lead["members"]) == 1
    assert _lead([asdict(t) | {"measure_folds": None} for t in trials[:2]])["measure_folds"] is None  # old books


@pytest.fixture
def searchers():
    pytest.importorskip("ray")
    from optuna.samplers import RandomSampler

    from harness.tune.searchers import METRIC, FoldOptunaSearch, UnitSearch

    def sample(trial):
        return {"lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True)}

    units = {
        u: FoldOptunaSearch(space=sample, metric=METRIC, mode="max", n_folds=2, sampler=RandomSampler(seed=u))
        for u in (1, 2)
    }
    return UnitSearch(units, num_samples=2)


def test_one_optuna_study_per_outer_fold_hears_only_its_own_trials(searchers):
    from optuna.trial import TrialState

    from harness.tune.searchers import METRIC, TIME_ATTR, UNIT_KEY

    configs = {t: searchers.suggest(t) for t in ("t0", "t1", "t2", "t3")}
    assert [c[UNIT_KEY] for c in configs.values()] == [1, 2, 1, 2]  # handed out in turn
    assert searchers.suggest("t4") == "FINISHED"
    for t, value in (("t0", 0.9), ("t1", 0.1), ("t2", 0.2), ("t3", 0.3)):
        searchers.on_trial_result(t, {METRIC: value, TIME_ATTR: 1, "fold_end": False})
    searchers.on_trial_complete("t0", {METRIC: 0.9, TIME_ATTR: MAX_T, "fold_end": True, "folds_done": 2})
    searchers.on_trial_complete("t2", {METRIC: 0.2, TIME_ATTR: 1, "fold_end": False, "folds_done": 0})
    studies = searchers.studies
    assert [t.state for t in studies[1].trials] == [TrialState.COMPLETE, TrialState.PRUNED]
    assert [t.intermediate_values for t in studies[1].trials] == [{1: 0.9, MAX_T: 0.9}, {1: 0.2}]
    assert [t.intermediate_values for t in studies[2].trials] == [{1: 0.1}, {1: 0.3}]  # never outer 1's


def test_asha_brackets_are_per_outer_fold_where_one_bracket_would_leak():
    pytest.importorskip("ray")
    from harness.tune.searchers import METRIC, TIME_ATTR, UNIT_KEY, UnitScheduler, asha

    def trial(name, unit):
        return SimpleNamespace(trial_id=name, config={UNIT_KEY: unit})

    def run(scheduler):
        trials = [trial("a", 1), trial("b", 1), trial("c", 1), trial("x", 2)]
        for t in trials:
            scheduler.on_trial_add(None, t)
        actions = [
            scheduler.on_trial_result(None, t, {METRIC: v, TIME_ATTR: 1}) for t, v in zip(trials, (0.8, 0.9, 0.85, 0.1))
        ]
        return actions[-1]

    # outer fold 2's first candidate is compared with nobody of its own: it continues
    assert run(UnitScheduler((1, 2), lambda: asha("epochs", 4))) == "CONTINUE"
    # one bracket for every outer fold would stop it on scores of other outer folds' inner folds
    assert run(asha("epochs", 4)) == "STOP"
