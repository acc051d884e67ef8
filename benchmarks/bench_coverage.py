"""Coverage of the 95% intervals of a difference a - b in a simulation with a known architecture-level
difference whose value varies from session to session (``harness.report.simulation``).

For each SD of the session-level random effect of the difference (0, 0.01, 0.02, 0.03 weighted F1) and
each metric (weighted F1, UA), it prints the share of simulated datasets whose interval covers the truth:
the speaker-level interval of ``harness.report.stats.primary_difference`` (per-session differences, t on
n_sessions - 1 df) and the old dialog bootstrap (``paired_bootstrap``), which holds the speakers fixed.
A simulation, so the machine's load does not change the figures; the seed fixes them.

The second table adds a **training-set effect** of the difference per fold (SD 0, 0.01, 0.02 weighted F1),
built from the real LOSO fold overlap (``harness.corpus.folds``: fold k trains on the three sessions other
than k and k+1) or, for comparison, independent per fold; it prints the coverage of the per-session t
interval and of the overlap-aware one (Nadeau-Bengio corrected t), and their widths.

    python benchmarks/bench_coverage.py [--datasets 2000] [--n-boot 1000] [--dialog-size 6 14] [--overlap-only]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import pandas as pd

from harness.corpus.folds import make_folds
from harness.corpus.iemocap import SESSIONS
from harness.report.simulation import Design, coverage

SDS = (0.0, 0.01, 0.02, 0.03)
TRAINING_SDS = (0.0, 0.01, 0.02)


def loso_training_sets() -> tuple[tuple[int, ...], ...]:
    """Each LOSO fold's training sessions (0-based), from the harness's own folds."""
    manifest = pd.DataFrame({"session": list(SESSIONS)})
    return tuple(tuple(sorted(int(manifest.session[i]) - 1 for i in fold.train)) for fold in make_folds(manifest))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=2000, help="simulated datasets per cell")
    parser.add_argument("--bootstrap-datasets", type=int, default=None, help="datasets the bootstrap runs on")
    parser.add_argument("--n-boot", type=int, default=1000, help="dialog-bootstrap resamples")
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--dialogs", type=int, default=30, help="dialogs per session")
    parser.add_argument("--dialog-size", type=int, nargs=2, default=(6, 14), help="utterances per dialog (min max)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per architecture")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--overlap-only", action="store_true", help="only the training-set-overlap table")
    args = parser.parse_args()

    start = time.perf_counter()
    print(
        f"# Interval coverage (simulation); {platform.machine()}, numpy {np.__version__}, "
        f"python {platform.python_version()}"
    )
    print()
    print(
        f"{args.sessions} sessions x {args.dialogs} dialogs x {args.dialog_size[0]}-{args.dialog_size[1]} utterances, "
        f"6 classes, {args.seeds} seeds per architecture; {args.datasets} datasets per cell "
        f"(Monte Carlo SE of a coverage near 0.95: {np.sqrt(0.95 * 0.05 / args.datasets):.3f}); "
        f"dialog bootstrap: {args.n_boot} resamples. Target of the speaker-level interval: 0.93-0.97."
    )
    print()
    if not args.overlap_only:
        speaker_level_table(args)
    overlap_table(args)
    print()
    print(f"({time.perf_counter() - start:.0f} s)")


def speaker_level_table(args: argparse.Namespace) -> None:
    print(
        "| metric | session SD | true difference | speaker-level (t) | dialog bootstrap | width t | width bootstrap |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for metric in ("weighted_f1", "ua"):
        for i, sd in enumerate(SDS):
            design = Design(
                session_sd=sd,
                n_sessions=args.sessions,
                n_dialogs=args.dialogs,
                sizes=tuple(args.dialog_size),
                n_seeds=args.seeds,
            )
            result = coverage(
                design,
                metric,
                args.datasets,
                seed=args.seed + i,
                bootstrap_datasets=args.bootstrap_datasets,
                n_boot=args.n_boot,
            )
            print(
                f"| {metric} | {sd:.2f} | {result.truth:.4f} | {result.session_t:.3f} | {result.dialog_bootstrap:.3f} "
                f"| {result.mean_width['session_t']:.3f} | {result.mean_width['dialog_bootstrap']:.3f} |",
                flush=True,
            )
    print()


def overlap_table(args: argparse.Namespace) -> None:
    sets = loso_training_sets()
    print(f"Training-set effect per fold; LOSO training sets (0-based sessions): {sets}")
    print()
    print(
        "| training sets | training SD | true difference | per-session t | overlap-aware t | width t | width overlap |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, training_sets in (("LOSO overlap", sets), ("independent", None)):
        for i, sd in enumerate(TRAINING_SDS):
            design = Design(
                n_sessions=args.sessions,
                n_dialogs=args.dialogs,
                sizes=tuple(args.dialog_size),
                n_seeds=args.seeds,
                training_sd=sd,
                training_sets=training_sets,
            )
            result = coverage(design, "weighted_f1", args.datasets, seed=args.seed + 100 + i, bootstrap_datasets=0)
            print(
                f"| {label} | {sd:.2f} | {result.truth:.4f} | {result.session_t:.3f} | {result.overlap_t:.3f} "
                f"| {result.mean_width['session_t']:.3f} | {result.mean_width['overlap_t']:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
