"""``python -m harness.search --pair PAIR``: Optuna (TPE) search with ASHA over one pair's space.

With no ``--data`` it runs on the built-in demo corpus. Running the same command again after a kill or
Ctrl-C resumes the experiment; a rerun with different options is refused (use ``--name``).
``--smoke-test``: one fold, two trials, one epoch, tiny random-init pretrained models (CI runs this).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from harness.benchmark.plan import check_model_overrides, default_run_name, load_data, open_storage, plan_pair
from harness.benchmark.spec import RunOptions, check_run_name
from harness.benchmark.stage import Interrupts, execute, stop_ray
from harness.books import SearchSummary
from harness.cli.common import run_command
from harness.cli.progress import BenchmarkProgress
from harness.cli.run import add_run_arguments, report_results
from harness.logs import start_run_log
from harness.paths import writable_dir
from harness.store import RunStore

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness.search", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pair", required=True, help="model pair, e.g. wav2vec_bilstm")
    parser.add_argument("--name", help="run name (default: PAIR_demo or PAIR_iemocap); the same name resumes")
    parser.add_argument("--space", help="search space YAML (default: harness/search_spaces/PAIR.yaml)")
    add_run_arguments(parser)
    return parser


def finish_message(summary: SearchSummary, store: RunStore, results: Path, interrupts: Interrupts) -> int:
    """The last line a user reads, and the exit code: 130/143 interrupted, 1 all failed, 0 otherwise."""
    if summary.interrupted:
        print(
            f"interrupted: {summary.trials or 0} trials started, records in {store.uri}; run the same "
            f"command again to resume",
            file=sys.stderr,
        )
        return interrupts.exit_code
    trials, failed = summary.trials, summary.errors
    if trials and failed == trials:
        print(
            f"error: all {trials} trials failed; their reasons are in {store.uri}/*/record.json "
            f'("reason") and {store.uri}/*/error.txt',
            file=sys.stderr,
        )
        return 1
    note = f", {failed} failed (reasons in {store.uri}/*/record.json)" if failed else ""
    print(
        f"done: {trials} trials{note} in {summary.wall_s:.0f}s. Trial records: {store.uri}; "
        f"report: {results / 'report.md'}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: search(args))


def search(args: argparse.Namespace) -> int:
    # Everything that can be wrong with the inputs is checked here, before Ray starts.
    options = RunOptions.from_args(args)
    name = check_run_name(args.name)
    results = writable_dir(options.results, "--results")
    storage = open_storage(options)
    start_run_log(storage.uri, results, "search", args.pair)  # Ray's and Optuna's own lines go there
    data = load_data(options)
    name = name or default_run_name(args.pair, data.source, options)
    plan = plan_pair(options, args.pair, data, storage, name, stage="search", space_path=args.space)
    check_model_overrides(plan.pair, options)
    try:
        with Interrupts() as interrupts, BenchmarkProgress.for_search(plan.pair.name, options) as progress:
            progress.enter(plan.pair.name, "search")
            summary = execute(plan, data, options, interrupts)
    finally:
        stop_ray()
    if not options.no_report and not summary.interrupted:
        report_results(results, storage)
    return finish_message(summary, plan.store, results, interrupts)


if __name__ == "__main__":
    sys.exit(main())
