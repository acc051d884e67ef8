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
from typing import Any

from harness.cli.progress import BenchmarkProgress
from harness.cli.run import (
    Interrupts,
    PairPlan,
    RunData,
    add_run_arguments,
    check_arguments,
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
from harness.models.pairs import GRID, PAIRS, get_pair
from harness.paths import writable_dir
from harness.records import TrialRecord
from harness.tune.objectives import COSTS
from harness.tune.selection import (
    DEFAULT_MARGIN,
    MEASURE_COSTS,
    PER_FOLD,
    SELECTIONS,
    select_configs,
    validation_sessions,
)

log = logging.getLogger(__name__)
# Demo-sized budget: <= 10 minutes for the 2x2 grid and its baselines on 2 CPU cores. Frozen pretrained
# encoders (fine-tuning a 94 M-parameter model on CPU takes hours), fewer epochs, short explanations; nested
# selection compares each outer fold's configs on two of its four inner folds (the full benchmark uses four).
DEMO_SAMPLES, DEMO_SEEDS, DEMO_INNER_FOLDS = 2, 2, 2
DEMO_OVERRIDES = [
    "epochs=8",
    "patience=3",
    "audio.finetune_layers=0",
    "text.finetune_layers=0",
    "explain_samples=6",  # the same 6 utterances per fold for every pair (60 on IEMOCAP)
    "explain_steps=8",
    "explain_level=head_level",  # frozen backbones explained at the head; end to end would take minutes on CPU
    "latency_repeats=3",  # the latency step times 1, 4 and 10 s inputs; 30 repeats would double the demo
]


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
    parser.add_argument("--seeds", type=int, default=None, help="seeds per final config (default 5; demo 2)")
    parser.add_argument("--top-k", type=int, default=1, help="configs per pair re-trained in the final stage")
    parser.add_argument(
        "--select",
        choices=SELECTIONS,
        default="best",
        help="per test fold, the config with the best validation weighted F1, or the cheapest (by --cost) whose "
        "validation weighted F1 is within --margin of the best",
    )
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN, help="weighted-F1 margin of --select")
    parser.add_argument("--cost", choices=COSTS, default="latency_4s_ms", help="the cost --select minimises")
    parser.add_argument("--name", default="bench", help="benchmark name: runs are PAIR_SOURCE_NAME and _NAME_final")
    add_run_arguments(parser)
    parser.set_defaults(num_samples=None)
    return parser


def apply_budget(args: argparse.Namespace, demo: bool) -> bool:
    """Fill unset budget flags (demo-sized on the demo corpus, not for a smoke test, whose own tiny budget
    would be overridden); returns whether the demo budget applies."""
    demo_budget = demo and args.num_samples is None and args.seeds is None and not args.smoke_test
    if demo_budget:
        args.overrides = DEMO_OVERRIDES + args.overrides
    if args.num_samples is None:
        args.num_samples = DEMO_SAMPLES if demo_budget else 8
    if args.seeds is None:
        args.seeds = DEMO_SEEDS if demo_budget else 5
    if demo_budget and args.inner_folds is None and args.protocol == "loso":
        args.inner_folds = DEMO_INNER_FOLDS
    return demo_budget


def describe_budget(args: argparse.Namespace, demo_budget: bool) -> str:
    """The budget for the report, as run (after ``check_arguments``: a smoke test has fewer trials and folds)."""
    if args.protocol == "loso":
        inner = f"{args.inner_folds} of 4" if args.inner_folds else "4"
        search = f"{args.num_samples} trials per pair and test fold, each on {inner} inner folds (nested)"
    else:
        search = (
            f"{args.num_samples} trials per pair, on every fold (non-nested)"
            if args.protocol == "loso-flat"
            else (f"{args.num_samples} trials per pair")
        )
    rule = "" if args.select == "best" else f" (the cheapest by {args.cost} within {args.margin:g} wF1 of the best)"
    objectives = "" if len(args.objectives) == 1 else f", objectives {','.join(args.objectives)}"
    return (
        f"{search}, Optuna TPE + ASHA on {args.fidelity}{objectives}, test folds {args.folds}; final stage: top "
        f"{args.top_k} config(s){rule} per test fold x {args.seeds} seeds"
        + (f"; demo budget: {' '.join(DEMO_OVERRIDES)}, {DEMO_INNER_FOLDS} inner folds" if demo_budget else "")
    )


def seeded(selected: dict[int, list[TrialRecord]], seeds: int, search_seed: int) -> list[dict]:
    """The final stage's trials: for each rank r (the r-th best config of every test fold) and seed, one
    trial over every test fold, each fold with its own chosen config (``per_fold``). Seeds are
    search_seed+1.. onwards (search_seed+1..+S for the best configs, the next S for the next rank), never
    a search trial's seed, so no final model is a search run itself; every trial has its own seed, the key
    of its predictions."""
    ranks = min(len(records) for records in selected.values())
    return [
        {
            "seed": search_seed + 1 + rank * seeds + s,
            MEASURE_COSTS: s == 0,  # latency and FLOPs depend on the configs, not on the seed
            PER_FOLD: {
                str(fold): records[rank].config | {"seed": search_seed + 1 + rank * seeds + s}
                for fold, records in selected.items()
            },
        }
        for rank in range(ranks)
        for s in range(seeds)
    ]


def selection_rows(pair: str, selected: dict[int, list[TrialRecord]]) -> list[dict]:
    """What chose each test fold's config, for ``final_configs.json`` (and the report's selected_configs)."""
    return [
        {
            "pair": pair,
            "test_session": fold,
            "rank": rank + 1,
            "trial_id": record.trial_id,
            "selected_on_sessions": " ".join(str(s) for s in validation_sessions(record)),
            "val_weighted_f1": record.mean_val_weighted_f1,
        }
        for fold, records in selected.items()
        for rank, record in enumerate(records)
    ]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    interrupts = Interrupts()
    try:
        data: RunData = load_data(args)
        demo_default = data.source == "demo" and args.pairs is None and args.num_samples is None and args.seeds is None
        pairs = [get_pair(p).name for p in (args.pairs or (list(GRID) if demo_default else list(PAIRS)))]
        demo_budget = apply_budget(args, data.source == "demo")
        check_arguments(args)
        budget = describe_budget(args, demo_budget)
        check_run_name(args.name)
        if args.seeds <= 0 or args.top_k <= 0:
            raise UserError(f"--seeds and --top-k must be > 0, got {args.seeds} and {args.top_k}")
        if args.top_k > args.num_samples:
            raise UserError(f"--top-k {args.top_k} is more than the {args.num_samples} trials searched per pair")
        results = writable_dir(args.results, "--results")
        storage = open_storage(args)
        start_run_log(storage.uri, results, "benchmark", args.name)  # Ray's and Optuna's own lines go there

        def plan(pair: str, stage: str, final: dict[str, Any] | None = None) -> PairPlan:
            suffix = f"_{args.name}" + ("_final" if stage == "final" else "")
            name = default_run_name(pair, data.source, args, suffix)
            return plan_pair(args, pair, data, storage, name, stage=stage, stand_ins=True, final=final)

        plans = {p: plan(p, "search") for p in pairs}
        # The final stages too, before Ray starts: a rerun with other --seeds or --top-k is refused here.
        final = {"seeds": args.seeds, "top_k": args.top_k} | (
            {"select": f"{args.select} {args.margin:g} {args.cost}"} if args.select != "best" else {}
        )
        finals = {p: plan(p, "final", final) for p in pairs}
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        code = run_benchmark(args, data, plans, finals, budget, interrupts)
    except UserError as err:  # found while extracting a pair's features (a wav that decodes to NaN)
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        stop_ray()
    if code:
        return code
    if not args.no_report:
        report_results(results, storage)
    print(f"done: {len(pairs)} pairs benchmarked ({budget}). Report: {results / 'report.md'}")
    return 0


def run_benchmark(
    args: argparse.Namespace,
    data: RunData,
    plans: dict[str, PairPlan],
    finals: dict[str, PairPlan],
    budget: str,
    interrupts: Interrupts,
) -> int:
    """The search of every pair, then the final stage of every pair; returns 0 or the interrupt's exit code."""
    with interrupts, BenchmarkProgress.for_benchmark(list(plans), args) as progress:
        for pair, plan in plans.items():
            log.info("search: %s (%s)", pair, budget)
            progress.enter(pair, "search")
            summary = execute(plan, data, args, interrupts)
            if summary["interrupted"]:
                print(f"interrupted during the search of {pair}; run the same command again to resume", file=sys.stderr)
                return interrupts.exit_code
        for pair, plan in plans.items():
            selected = select_configs(plan.store.records(), plan.meta, args.top_k, args.select, args.margin, args.cost)
            missing = [f for f, records in selected.items() if len(records) < args.top_k]
            if missing:
                log.warning(
                    "%s: fewer than %d config(s) ran every fold for test fold(s) %s; no final stage for it",
                    pair,
                    args.top_k,
                    " ".join(str(f) for f in missing),
                )
                continue
            final_configs = seeded(selected, args.seeds, args.seed)
            final = finals[pair]
            final.store.write(
                "final_configs.json",
                {
                    "budget": budget,
                    "search_run": plan.meta.run,
                    "configs": final_configs,
                    "selected": selection_rows(pair, selected),
                },
            )
            log.info("final stage: %s, %d config(s) per fold x %d seeds", pair, args.top_k, args.seeds)
            progress.enter(pair, "final")
            summary = execute(final, data, args, interrupts, final_configs=final_configs)
            if summary["interrupted"]:
                print(
                    f"interrupted during the final stage of {pair}; run the same command again to resume",
                    file=sys.stderr,
                )
                return interrupts.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
