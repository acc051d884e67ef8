"""``harness audit --pairs PAIR --fold K [benchmark options]``: the label-permutation leak probe.

Permutes the labels of test fold K's utterances (renames its classes cyclically, or ``--permutation
shuffle``), runs fold K's selection (search) and final stage again on
the original and on the permuted labels, with the design of a benchmark (the same options as
``harness benchmark``: protocol, budget, ``--set`` ...; or ``--from-run RUN`` to take them from a stored
run), and prints a one-paragraph verdict: PASS (exit 0) when no prediction on fold K moved while a control
fold, one that trains on those utterances, did; otherwise FAIL (exit 1). Runs go to ``--storage`` (default
RESULTS/audit, apart from the benchmark's runs): ``PAIR_SOURCE[_PROTOCOL]_NAME_audit<K>_original``,
``..._permuted`` and their ``_final`` (deleted and run afresh by the next audit of the same design).
One seed, one trial at a time (so that both runs' searchers see results in the same order).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.cli.common import run_command
from harness.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    from harness.cli.benchmark import build_parser as benchmark_parser

    parser = benchmark_parser()
    parser.prog, parser.description = "harness audit", __doc__
    parser.add_argument("--fold", type=int, default=None, help="test fold whose labels are permuted (default: first)")
    parser.add_argument("--control", type=int, default=None, help="control fold (default: the next that trains on K)")
    parser.add_argument("--permutation-seed", type=int, default=0, help="seed of the label shuffle")
    parser.add_argument(
        "--permutation",
        choices=("rotate", "shuffle"),
        default="rotate",
        help="rotate: rename the fold's classes cyclically (every label changes; the stronger probe); shuffle: "
        "shuffle the labels among the fold's utterances",
    )
    parser.add_argument(
        "--from-run",
        metavar="RUN",
        help="take the design (protocol, folds, budget, fixed values, corpus) from a stored search run (a run "
        "folder of --design-storage, or PAIR_*_RUN for a benchmark named RUN)",
    )
    parser.add_argument("--design-storage", help="where --from-run is stored (default: RESULTS/ray)")
    return parser


def design_from_run(args: argparse.Namespace) -> None:
    """Fill ``args`` from a stored search run's books (``run.json``): corpus, protocol, class set, labels,
    subset, folds, trials, seed, ASHA clock, inner folds, objectives and every fixed config value."""
    from harness.books import FINAL_BOOK, RUN_BOOK, FinalConfigs, RunIdentity, read_book
    from harness.store import Storage

    storage = Storage(args.design_storage or Path(args.results).resolve() / "ray")
    pair = args.pairs[0] if args.pairs else ""
    names = [args.from_run] + [r.name for r in storage.runs() if r.name.startswith(f"{pair}_")]
    names = [n for n in names if n == args.from_run or n.endswith(f"_{args.from_run}")]
    identity = None
    for name in names:
        identity = read_book(storage.run(name), RUN_BOOK, RunIdentity)
        if identity is not None:
            store = storage.run(name)
            break
    if identity is None:
        raise UserError(f"--from-run {args.from_run}: no such run in {storage.uri}")
    if identity.stage == "final":
        book = read_book(store, FINAL_BOOK, FinalConfigs)
        if book is None:
            raise UserError(f"{store.uri}: a final stage without {FINAL_BOOK}")
        identity = read_book(storage.run(book.search_run), RUN_BOOK, RunIdentity)
        if identity is None:
            raise UserError(f"--from-run {args.from_run}: its search run {book.search_run} is not in {storage.uri}")
    args.pairs = [identity.pair]
    args.data = None if identity.data_source == "demo" else identity.data_source
    args.protocol, args.classes, args.labels = identity.protocol, identity.classes, identity.labels
    args.subset, args.fidelity, args.objectives = identity.subset, identity.fidelity, ",".join(identity.objectives)
    args.folds, args.num_samples, args.seed = list(identity.test_sessions), identity.num_samples, identity.seed
    args.inner_folds = identity.inner_folds or None
    fixed = identity.space.get("fixed", {})
    args.overrides = [f"{k}={json.dumps(v)}" for k, v in fixed.items() if k != "seed" and v is not None]
    args.seeds = args.seeds or 1


def audit(args: argparse.Namespace) -> int:
    from harness.benchmark.audit import run_audit
    from harness.benchmark.plan import load_data
    from harness.benchmark.spec import BenchmarkSpec, RunOptions
    from harness.benchmark.stage import stop_ray
    from harness.logs import start_run_log
    from harness.paths import writable_dir
    from harness.store import Storage

    if args.from_run:
        design_from_run(args)
    if not args.pairs or len(args.pairs) != 1:
        raise UserError("--pairs: the audit probes one pair (e.g. --pairs bilstm)")
    data = load_data(RunOptions.from_args(args, num_samples=args.num_samples or 1))
    spec = BenchmarkSpec.from_args(args, data.source)
    results = writable_dir(spec.run.results, "--results")
    storage = Storage(args.storage or results.resolve() / "audit")
    storage.fs.create_dir(storage.path, recursive=True)
    fold = args.fold if args.fold is not None else spec.run.folds[0]
    start_run_log(storage.uri, results, "audit", spec.pairs[0])
    try:
        result = run_audit(
            spec, spec.pairs[0], data, storage, fold, args.control, args.permutation_seed, args.permutation
        )
    finally:
        stop_ray()
    print(result.paragraph())
    return 0 if result.passed else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: audit(args))


if __name__ == "__main__":
    sys.exit(main())
