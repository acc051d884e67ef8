"""Where a search's trial-slot time goes (issue 11 item 3): training and validation versus worker start-up,
imports, data loading and bookkeeping. Target: >= 85% inside training and validation.

    python benchmarks/bench_trials.py [--pair cnnbilstm_bilstm] [--num-samples 6] [--folds 4 5]
                                      [--results DIR] [--keep] [-- extra harness.search arguments]

It runs a small real search on the demo corpus as a subprocess (``python -m harness.search ... --no-report``)
and then reads what the search stored, never its log:

* per trial, the slot: Ray's trial start to its last result (``start_time`` and ``last_result_time`` of the
  trial's run metadata in the experiment state; the start is set when the trial is marked running);
  and the slot capacity: ``max_concurrent`` (search.json) x the time from the first trial's start to the
  last trial's last result, which also counts the gaps between trials;
* inside the trainable (``time_total_s`` of the trial's last result): each fold record's ``seconds``
  (``train`` = model build + the epoch loop, ``score``, ``measure``) and ``resources.train_wall_s`` (the
  epoch loop: training steps + validation);

and prints per trial and in total: training + validation, model build, scoring + measuring, the rest of
the trainable (reading cached features, records, checkpoints, reports) and what lies outside it (actor
start-up, imports before the trainable runs, scheduling).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.store import RunStore, Storage

PARTS = ("train+val", "model build", "score+measure", "trainable rest", "outside trainable")


def run_search(args: argparse.Namespace, results: Path, extra: list[str]) -> tuple[float, float]:
    command = [
        sys.executable,
        "-m",
        "harness.search",
        "--pair",
        args.pair,
        "--num-samples",
        str(args.num_samples),
        "--folds",
        *map(str, args.folds),
        "--results",
        str(results),
        "--no-report",
        *extra,
    ]
    print("running:", " ".join(command), flush=True)
    started = time.time()
    result = subprocess.run(
        command, check=False, capture_output=True, text=True, env=os.environ | {"PYTHONUNBUFFERED": "1"}
    )
    if result.returncode != 0:
        sys.exit(f"the search failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return started, time.time()


def ray_trials(storage: Path) -> dict[str, dict[str, float]]:
    """trial_id -> Ray's start time, last result time and ``time_total_s``, from the newest experiment
    state file (the search turns Ray's per-trial result.json loggers off)."""
    state = json.loads(max(storage.glob("*/experiment_state-*.json")).read_text())
    out = {}
    for trial_json, metadata_json in state["trial_data"]:
        trial, metadata = json.loads(trial_json), json.loads(metadata_json)
        last = metadata.get("last_result") or {}
        if metadata.get("start_time") and "time_total_s" in last:
            out[trial["trial_id"]] = {
                "start": float(metadata["start_time"]),
                "end": float(metadata["last_result_time"]),
                "time_total_s": float(last["time_total_s"]),
                "pid": last.get("pid"),
            }
    return out


def runs_of(results: Path, pair: str) -> list[RunStore]:
    """The pair's runs in the search's storage (the default, RESULTS/ray)."""
    return [store for store in Storage(results / "ray").runs() if store.read("run.json")["pair"] == pair]


def breakdown(results: Path, pair: str) -> list[dict]:
    trials = ray_trials(results / "ray")
    rows = []
    for record in (r.to_dict() for store in runs_of(results, pair) for r in store.records()):
        ray_trial = trials.get(record["trial_id"])
        if ray_trial is None:
            continue
        folds = record["folds"]
        train_val = sum(f["resources"]["train_wall_s"] for f in folds)
        build = sum(f["seconds"]["train"] for f in folds) - train_val
        score_measure = sum(f["seconds"].get("score", 0) + f["seconds"].get("measure", 0) for f in folds)
        inside = ray_trial["time_total_s"]
        slot = ray_trial["end"] - ray_trial["start"]
        rows.append(
            {
                "trial": record["trial_id"],
                "status": record["status"],
                "folds": len(folds),
                "pid": ray_trial["pid"],
                "slot_s": slot,
                "train+val": train_val,
                "model build": build,
                "score+measure": score_measure,
                "trainable rest": inside - train_val - build - score_measure,
                "outside trainable": slot - inside,
            }
        )
    return rows


def capacity(results: Path, pair: str, rows: list[dict], started: float, ended: float) -> dict:
    """The slots Ray had while trials ran: ``max_concurrent`` x (first trial start to last trial result).
    Unlike per-trial slots this also counts the gaps between trials (scheduling, actor start-up before a
    trial is marked running). Also: the command's time before the first trial and after the last result."""
    summary = max((store.read("search.json") for store in runs_of(results, pair)), key=lambda s: s["wall_s"])
    trials = ray_trials(results / "ray")
    first, last = min(t["start"] for t in trials.values()), max(t["end"] for t in trials.values())
    slots = int(summary["max_concurrent"])
    extraction = sum(float(e.get("extract_seconds", 0)) for e in summary.get("extraction", []))
    return {
        "slots": slots,
        "window_s": last - first,
        "capacity_s": slots * (last - first),
        "train+val": sum(r["train+val"] for r in rows),
        "before_first_trial_s": first - started,
        "feature_extraction_s": extraction,
        "after_last_result_s": ended - last,
        "command_s": ended - started,
    }


def print_breakdown(rows: list[dict]) -> None:
    print(f"\n{'trial':<9} {'pid':>6} {'status':<14} {'folds':>5} {'slot s':>8} " + " ".join(f"{p:>17}" for p in PARTS))
    for r in rows:
        print(
            f"{r['trial']:<9} {r['pid'] or '':>6} {r['status']:<14} {r['folds']:>5} {r['slot_s']:>8.1f} "
            + " ".join(f"{r[p]:>9.1f} ({r[p] / r['slot_s']:>4.0%})" for p in PARTS)
        )
    total = sum(r["slot_s"] for r in rows)
    sums = {p: sum(r[p] for r in rows) for p in PARTS}
    print(
        f"{'all':<9} {'':>6} {'':<14} {sum(r['folds'] for r in rows):>5} {total:>8.1f} "
        + " ".join(f"{sums[p]:>9.1f} ({sums[p] / total:>4.0%})" for p in PARTS)
    )
    share = sums["train+val"] / total
    print(f"\ntraining + validation: {share:.1%} of {total:.0f} trial-slot seconds (target >= 85%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", default="cnnbilstm_bilstm")
    parser.add_argument("--num-samples", type=int, default=6)
    parser.add_argument("--folds", type=int, nargs="+", default=[4, 5])
    parser.add_argument("--results", help="results folder (default: a temporary one, deleted at exit)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary results folder")
    parser.add_argument("--json", help="write the per-trial rows as JSON")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    results = Path(args.results or tempfile.mkdtemp(prefix="bench_trials_"))
    try:
        started, ended = run_search(args, results, extra)
        rows = breakdown(results, args.pair)
        print_breakdown(rows)
        c = capacity(results, args.pair, rows, started, ended)
        print(
            f"slot capacity: {c['slots']} slots x {c['window_s']:.0f} s from the first trial's start to the last "
            f"result = {c['capacity_s']:.0f} slot-seconds, {c['train+val'] / c['capacity_s']:.1%} of them in "
            f"training + validation"
        )
        print(
            f"the command: {c['command_s']:.0f} s = {c['before_first_trial_s']:.0f} s before the first trial "
            f"(interpreter and imports, corpus, features: loaded from the cache or extracted (a first extraction "
            f"took {c['feature_extraction_s']:.0f} s), Ray's start) "
            f"+ {c['window_s']:.0f} s of trials + {c['after_last_result_s']:.0f} s after the last result "
            f"(Ray's shutdown); training + validation = {c['train+val'] / (c['slots'] * c['command_s']):.1%} of "
            f"{c['slots']} x the command's time"
        )
        if args.json:
            Path(args.json).write_text(json.dumps({"trials": rows, "capacity": c}, indent=1))
    finally:
        if not args.results and not args.keep:
            shutil.rmtree(results, ignore_errors=True)


if __name__ == "__main__":
    main()
