"""One overall progress bar for a command: ``harness search`` (one pair) and ``harness benchmark`` (pairs x
stages); trials done / total, an ETA.

Trials are counted as Ray Tune ends them (``harness.tune.tracking.TrialCounter`` tells the bar). The total
is exact from the first line: a search stage runs ``--num-samples`` trials per selection unit (each outer
test fold when nested, else one), a final stage ``--top-k`` x ``--seeds`` trials (each trains every test
fold with that fold's config), the same counts ``harness.cli.run.execute`` and
``harness.cli.benchmark.seeded`` hand Ray. Each experiment's own count is checked against it when it
starts (a difference is logged and taken, never hidden), and a final stage that does not run (no config
finished every fold) is taken out of it. The rate behind the ETA is the mean over the trials ended in this
command (``smoothing=0``; trials a resumed run had ended before are counted as done, not in the rate).
Log lines are printed above the bar; the per-extraction bars appear below it.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

log = logging.getLogger(__name__)


@dataclass
class Stage:
    pair: str
    stage: str  # "search" or "final"
    estimate: int
    entered: bool = False
    started: bool = False


class BenchmarkProgress:
    """A context: while open, the bar is shown and receives the trial counts of every experiment."""

    def __init__(self, stages: list[Stage], disable: bool = False, desc: str = "benchmark"):
        self.stages = stages
        self.desc = desc
        self.current: Stage | None = None
        self.failed = 0
        self.disable = disable
        self._exit = ExitStack()
        self.bar: Any = None

    @staticmethod
    def for_benchmark(pairs: list[str], spec: Any) -> BenchmarkProgress:
        """``spec``: a ``harness.benchmark.spec.BenchmarkSpec`` (its ``run`` options) or the parsed arguments."""
        options = getattr(spec, "run", spec)
        stages = [Stage(p, "search", search_trials(options)) for p in pairs]
        stages += [Stage(p, "final", spec.top_k * spec.seeds) for p in pairs]
        return BenchmarkProgress(stages, desc="benchmark")

    @staticmethod
    def for_search(pair: str, options: Any) -> BenchmarkProgress:
        """``options``: a ``harness.benchmark.spec.RunOptions`` or the parsed arguments."""
        return BenchmarkProgress([Stage(pair, "search", search_trials(options))], desc="search")

    def __enter__(self) -> BenchmarkProgress:
        self.bar = tqdm(
            total=sum(s.estimate for s in self.stages),
            desc=self.desc,
            unit="trial",
            smoothing=0,
            dynamic_ncols=True,
            disable=self.disable,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} trials [{elapsed}<{remaining}{postfix}]",
        )
        self._exit.enter_context(logging_redirect_tqdm())  # log lines above the bar, not through it
        from harness.tune import tracking  # imports Ray: not before the benchmark's checks are done

        tracking.set_listener(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        from harness.tune import tracking

        tracking.set_listener(None)
        self._exit.close()
        self.bar.close()

    def enter(self, pair: str, stage: str) -> None:
        """The benchmark starts ``stage`` of ``pair``; stages before it that never started are dropped."""
        index = next(i for i, s in enumerate(self.stages) if s.pair == pair and s.stage == stage)
        for skipped in self.stages[:index]:
            if not skipped.entered:
                skipped.entered = True
                self._retotal(skipped, 0)
        self.current = self.stages[index]
        self.current.entered = True
        position = sum(s.stage == stage for s in self.stages[: index + 1])
        of = sum(s.stage == stage for s in self.stages)
        self.bar.set_description_str(f"{stage} {position}/{of} {pair}")

    def _retotal(self, stage: Stage, count: int) -> None:
        self.bar.total += count - stage.estimate
        stage.estimate = count
        self.bar.refresh()

    # the listener of harness.tune.tracking.TrialCounter
    def experiment_started(self, total: int) -> None:
        if self.current is not None and not self.current.started and total > 0:
            self.current.started = True
            if total != self.current.estimate:  # the counts above and Ray's disagree: say so, show Ray's
                log.info(
                    "%s %s: %d trials, not the %d expected",
                    self.current.stage,
                    self.current.pair,
                    total,
                    self.current.estimate,
                )
                self._retotal(self.current, total)

    def ended_before(self, trials: int) -> None:
        """Trials a resumed run had ended: done, but not part of this command's rate."""
        if trials:
            self.bar.initial += trials
            self.bar.update(trials)

    def trial_ended(self, failed: bool) -> None:
        self.failed += failed
        if self.failed:
            self.bar.set_postfix_str(f"{self.failed} failed", refresh=False)
        self.bar.update(1)


def search_trials(options: Any) -> int:
    """The trials a pair's search runs: ``--num-samples`` per selection unit."""
    return options.num_samples * outer_folds(options)


def outer_folds(args: Any) -> int:
    """How many separate selections a pair's search makes (one per outer test fold when nested)."""
    try:
        from harness.corpus.protocols import selection_units

        return max(1, len(selection_units(args.protocol, tuple(args.folds))))
    except (ImportError, TypeError, ValueError):
        return 1
