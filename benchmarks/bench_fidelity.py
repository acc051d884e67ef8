"""ASHA's rungs in epochs vs in folds: the same nested search, twice.

Runs ``python -m harness.benchmark`` for one pair on a generated corpus (demo scale 2 by default: twice the
demo's dialogs per session) with ``--fidelity folds`` and then ``--fidelity epochs`` (same pair, trials,
seed, folds and budget), and prints per schedule: the trial-epochs the search trained (finished folds and
the partial fold of a config stopped within its first fold), its wall time, the selected configs' mean
inner validation weighted F1 (averaged over the outer folds) and the nested test weighted F1 of the final
stage (each seed's predictions pooled over the test folds). Target: >= 3x fewer trial-epochs with the best
validation F1 within 0.01 of the fold schedule's.

    python benchmarks/bench_fidelity.py [--pair bilstm] [--num-samples 8] [--scale 2] [--folds 1 2 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.corpus.demo import DemoConfig, write_demo_corpus  # noqa: E402
from harness.store import Storage  # noqa: E402
from harness.tune.selection import select_configs  # noqa: E402


def run(schedule: str, corpus: Path, work: Path, args: argparse.Namespace) -> dict[str, float]:
    results = work / schedule
    command = [sys.executable, "-m", "harness.benchmark", "--pairs", args.pair, "--data", str(corpus)]
    command += ["--num-samples", str(args.num_samples), "--seeds", str(args.seeds), "--fidelity", schedule]
    command += ["--folds", *map(str, args.folds), "--results", str(results), "--name", "fid", "--no-report"]
    command += ["--set", f"epochs={args.epochs}", "--set", f"patience={args.patience}", "--set", "explain_samples=0"]
    if args.max_concurrent:
        command += ["--max-concurrent", str(args.max_concurrent)]
    env = os.environ | {"RAY_TMPDIR": tempfile.mkdtemp(prefix="hf", dir="/tmp")}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{schedule}: benchmark failed\n{done.stderr[-3000:]}")
    storage = Storage(results / "ray")
    search = storage.run(f"{args.pair}_demo_fid")
    records = search.records()
    meta = records[0].meta
    chosen = select_configs(records, meta, 1)
    predictions = storage.run(f"{args.pair}_demo_fid_final").predictions()
    test_f1 = np.mean(
        [f1_score(g.label, g.pred, average="weighted", zero_division=0) for _, g in predictions.groupby("seed")]
    )
    return {
        "trials": len(records),
        "stopped": sum(r.status == "stopped_early" for r in records),
        "trial_epochs": sum(r.epochs_trained for r in records),
        "wall_s": float((search.read("search.json") or {}).get("wall_s", float("nan"))),
        "best_val_wf1": float(np.mean([c[0].mean_val_weighted_f1 for c in chosen.values()])),
        "nested_test_wf1": float(test_f1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", default="bilstm")
    parser.add_argument("--num-samples", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument("--max-concurrent", type=int, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_fidelity_"))
    corpus = write_demo_corpus(work / "corpus", DemoConfig(scale=args.scale))
    rows = {schedule: run(schedule, corpus, work, args) for schedule in ("folds", "epochs")}
    print(
        f"{args.pair}, {args.num_samples} configs per test fold x test folds {args.folds}, demo scale {args.scale}, "
        f"epochs<={args.epochs}, patience {args.patience}\n"
    )
    print("| schedule | trials | stopped early | trial-epochs | wall s | best mean inner val wF1 | nested test wF1 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for schedule, r in rows.items():
        print(
            f"| {schedule} | {r['trials']} | {r['stopped']} | {r['trial_epochs']} | {r['wall_s']:.0f} | "
            f"{r['best_val_wf1']:.3f} | {r['nested_test_wf1']:.3f} |"
        )
    ratio = rows["folds"]["trial_epochs"] / max(rows["epochs"]["trial_epochs"], 1)
    gap = rows["folds"]["best_val_wf1"] - rows["epochs"]["best_val_wf1"]
    print(
        f"\ntrial-epochs folds / epochs: {ratio:.1f}x (target >= 3x); best val wF1 folds - epochs: {gap:+.3f} "
        f"(target <= 0.01)"
    )


if __name__ == "__main__":
    main()
