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

from harness.cli.progress import BenchmarkProgress
from harness.cli.run import (
    Interrupts,
    add_run_arguments,
    check_arguments,
    check_model_overrides,
    check_run_name,
    default_run_name,
    execute,
    load_data,
    open_storage,
    plan_pair,
    report_results,
    stop_ray,
)
from harness.errors import UserError
from harness.logs import setup_logging, start_run_log
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


def finish_message(summary: dict, store: RunStore, results: Path, interrupts: Interrupts) -> int:
    """The last line a user reads, and the exit code: 130/143 interrupted, 1 all failed, 0 otherwise."""
    if summary["interrupted"]:
        print(
            f"interrupted: {summary['trials'] or 0} trials started, records in {store.uri}; run the same "
            f"command again to resume",
            file=sys.stderr,
        )
        return interrupts.exit_code
    trials, failed = summary["trials"], summary["errors"]
    if trials and failed == trials:
        print(
            f"error: all {trials} trials failed; their reasons are in {store.uri}/*/record.json "
            f'("reason") and {store.uri}/*/error.txt',
            file=sys.stderr,
        )
        return 1
    note = f", {failed} failed (reasons in {store.uri}/*/record.json)" if failed else ""
    print(
        f"done: {trials} trials{note} in {summary['wall_s']:.0f}s. Trial records: {store.uri}; "
        f"report: {results / 'report.md'}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    try:
        # Everything that can be wrong with the inputs is checked here, before Ray starts.
        check_arguments(args)
        results = writable_dir(args.results, "--results")
        storage = open_storage(args)
        start_run_log(storage.uri, results, "search", args.pair)  # Ray's and Optuna's own lines go there
        data = load_data(args)
        name = check_run_name(args.name) or default_run_name(args.pair, data.source, args)
        plan = plan_pair(args, args.pair, data, storage, name, stage="search", space_path=args.space)
        check_model_overrides(plan.pair, args.overrides)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        with Interrupts() as interrupts, BenchmarkProgress.for_search(plan.pair.name, args) as progress:
            progress.enter(plan.pair.name, "search")
            summary = execute(plan, data, args, interrupts)
    except UserError as err:  # found while extracting features (a wav that decodes to NaN), before Ray
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        stop_ray()
    if not args.no_report and not summary["interrupted"]:
        report_results(results, storage)
    return finish_message(summary, plan.store, results, interrupts)


if __name__ == "__main__":
    sys.exit(main())
