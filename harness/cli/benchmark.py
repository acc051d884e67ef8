"""``python -m harness.benchmark``: every pair at the same search budget, then the final stage.

1. Search: each pair (``--pairs``, default all registered pairs and unimodal baselines) gets the same
   number of Optuna trials (``--num-samples``) over the same folds, through the same code path as
   ``python -m harness.search``.
2. Final stage: the top-k configs of each pair (``--top-k``, chosen on mean validation weighted F1 over the
   trials of that run that finished every fold) are re-trained with ``--seeds`` seeds on every fold, with
   explanations and per-utterance predictions (in each trial's checkpoint in the storage).
3. Report: the headline tables (comparison, per_emotion, pairwise, fusion_gain) come from the final stage.

On the demo corpus with no budget flags it uses a demo-sized budget (stated in the report). Pretrained
checkpoints that are neither cached nor downloadable are replaced by real-size random-init stand-ins
(loudly labelled); a checkpoint named with ``--set audio.model=...`` is never replaced.
"""

from __future__ import annotations

import argparse
import logging
import sys

from harness.benchmark.plan import load_data
from harness.benchmark.spec import DEMO_BUDGET, FULL_BUDGET, BenchmarkSpec, RunOptions
from harness.benchmark.stage import Interrupts, plan_benchmark, run_benchmark, stop_ray
from harness.cli.common import run_command
from harness.cli.progress import BenchmarkProgress
from harness.cli.run import add_run_arguments, report_results
from harness.logs import start_run_log
from harness.paths import writable_dir
from harness.tune.objectives import COSTS
from harness.tune.selection import DEFAULT_MARGIN, SELECTIONS

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness.benchmark", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pairs",
        nargs="+",
        default=None,
        help="pairs to compare (default: every registered pair; with the demo budget, the 2x2 grid)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help=f"seeds per final config (default {FULL_BUDGET.seeds}; demo {DEMO_BUDGET.seeds})",
    )
    parser.add_argument(
        "--top-k", type=int, default=1, help="configs per pair re-trained in the final stage (default: %(default)s)"
    )
    parser.add_argument(
        "--select",
        choices=SELECTIONS,
        default="best",
        help="per test fold, the config with the best validation weighted F1, or the cheapest (by --cost) whose "
        "validation weighted F1 is within --margin of the best (default: %(default)s)",
    )
    parser.add_argument(
        "--margin", type=float, default=DEFAULT_MARGIN, help="weighted-F1 margin of --select (default: %(default)s)"
    )
    parser.add_argument(
        "--cost", choices=COSTS, default="latency_4s_ms", help="the cost --select minimises (default: %(default)s)"
    )
    parser.add_argument(
        "--grid",
        nargs="+",
        metavar="MODALITY=ENC[,ENC]",
        help="compose the pairs from encoders instead of --pairs: every audio x text pair and each encoder's "
        "unimodal baseline, e.g. --grid audio=cnn_bilstm,wav2vec2 text=bilstm,albert",
    )
    parser.add_argument(
        "--name",
        default="bench",
        help="benchmark name: runs are PAIR_SOURCE_NAME and _NAME_final (default: %(default)s)",
    )
    add_run_arguments(parser)
    parser.add_argument(
        "--protocol-gap",
        nargs="+",
        metavar="PRESET",
        default=None,
        help="run the benchmark under nested loso and under each toolkit preset (speaker-dependent, random-val, "
        "test-selected) and report each preset's optimism per pair with its session-level interval "
        "(protocol_gap.md); presets are never ranked with honest runs",
    )
    parser.set_defaults(num_samples=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: benchmark(args))


def benchmark(args: argparse.Namespace) -> int:
    """Parse, build the spec, plan every run (all before Ray), run the stage, print where it ended."""
    if getattr(args, "protocol_gap", None):  # the same benchmark under loso and each preset (issue 28)
        from harness.cli.protocol_gap import protocol_gap

        return protocol_gap(args, benchmark)
    data = load_data(RunOptions.from_args(args, num_samples=args.num_samples or 1))
    spec = BenchmarkSpec.from_args(args, data.source)
    results = writable_dir(spec.run.results, "--results")
    plans = plan_benchmark(spec, data)
    start_run_log(plans.storage.uri, results, "benchmark", spec.name)  # Ray's and Optuna's own lines go there
    interrupts = Interrupts()
    try:
        with BenchmarkProgress.for_benchmark(list(spec.pairs), spec) as progress:
            stopped = run_benchmark(spec, data, plans, interrupts, progress)
    finally:
        stop_ray()
    if stopped is not None:
        print(
            f"interrupted during the {stopped.stage} of {stopped.pair}; run the same command again to resume",
            file=sys.stderr,
        )
        return interrupts.exit_code
    if not spec.run.no_report:
        report_results(results, plans.storage)
    print(f"done: {len(spec.pairs)} pairs benchmarked ({spec.describe()}). Report: {results / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
