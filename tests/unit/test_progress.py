"""The benchmark's overall bar: totals corrected as stages start, skipped stages dropped, resumed trials
counted as done but not in the rate behind the ETA."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import pytest

from harness.benchmark.stage import seeded
from harness.cli.progress import BenchmarkProgress, Stage
from harness.corpus.protocols import selection_units
from harness.tune import tracking


def test_the_bar_counts_trials_across_pairs_and_stages():
    stages = [Stage("a", "search", 4), Stage("b", "search", 4), Stage("a", "final", 2), Stage("b", "final", 2)]
    with BenchmarkProgress(stages, disable=False) as progress:
        assert tracking._listener is progress and progress.bar.total == 12
        progress.enter("a", "search")
        assert progress.bar.desc.startswith("search 1/2 a")
        progress.experiment_started(6)  # the experiment's own count (e.g. trials x outer folds)
        assert progress.bar.total == 14
        for failed in (False, False, True, False, False, False):
            progress.trial_ended(failed)
        progress.enter("b", "search")
        progress.experiment_started(4)
        progress.ended_before(3)  # a resumed run: three trials had ended before this command
        assert progress.bar.n == 9 and progress.bar.initial == 3
        progress.trial_ended(False)
        progress.enter("b", "final")  # a's final stage never ran: no config finished every fold
        assert progress.bar.total == 12 and progress.bar.desc.startswith("final 2/2 b")
        assert "1 failed" in str(progress.bar)
    assert tracking._listener is None


def test_the_estimates_follow_the_budget():
    args = argparse.Namespace(num_samples=3, top_k=1, seeds=2, protocol="loso-flat", folds=[1, 2, 3, 4, 5])
    progress = BenchmarkProgress.for_benchmark(["a", "b"], args)
    assert [s.estimate for s in progress.stages] == [3, 3, 2, 2]


@pytest.mark.parametrize("protocol", ["loso", "loso-flat"])
def test_the_benchmark_total_is_exact_from_the_first_line_to_the_last(protocol):
    """The bar's first total is the number of trials the benchmark hands Ray, counted by the production
    code (execute's num_samples x selection units; seeded's final trials), and it never moves."""
    folds = [1, 2, 3, 4, 5]
    args = argparse.Namespace(num_samples=2, top_k=2, seeds=3, protocol=protocol, folds=folds, seed=0)
    units = len(selection_units(protocol, tuple(folds)))
    search = args.num_samples * units  # what harness.cli.run.execute passes run_tuner
    chosen = {f: [SimpleNamespace(config={"lr": 0.1 * r}) for r in range(args.top_k)] for f in folds}
    final = len(seeded(chosen, args.seeds, args.seed))  # the final stage's grid
    assert final == args.top_k * args.seeds  # one trial per config rank and seed, every fold inside it
    pairs = ["a", "b", "c"]
    with BenchmarkProgress.for_benchmark(pairs, args) as progress:
        first = progress.bar.total
        totals = [first]
        for stage, count in (("search", search), ("final", final)):
            for pair in pairs:
                progress.enter(pair, stage)
                progress.experiment_started(count)  # TrialCounter.setup: Ray's total_num_samples
                for _ in range(count):
                    progress.trial_ended(False)
                    totals.append(progress.bar.total)
        assert first == len(pairs) * (search + final) and set(totals) == {first}
        assert progress.bar.n == first


def test_the_search_bar_counts_one_pairs_trials():
    args = argparse.Namespace(num_samples=4, protocol="loso", folds=[4, 5])
    with BenchmarkProgress.for_search("bilstm", args) as progress:
        progress.enter("bilstm", "search")
        assert progress.bar.total == 8 and progress.bar.desc.startswith("search 1/1 bilstm")
