"""The benchmark's overall bar: totals corrected as stages start, skipped stages dropped, resumed trials
counted as done but not in the rate behind the ETA."""

from __future__ import annotations

import argparse

from harness.cli.progress import BenchmarkProgress, Stage
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
