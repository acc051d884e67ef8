"""The options ``harness search`` and ``harness benchmark`` share (``add_run_arguments``), parsed into a
frozen ``harness.benchmark.spec.RunOptions`` (checked there, before anything runs), and the report at the
end. What runs lives below the CLI: ``harness.benchmark`` (plan, stage)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from harness.corpus import CLASS_SETS, LABEL_POLICIES, PROTOCOLS, SESSIONS
from harness.corpus.protocols import SUBSETS
from harness.store import Storage
from harness.tune.fidelity import FIDELITIES
from harness.tune.objectives import OBJECTIVES

log = logging.getLogger(__name__)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        help="IEMOCAP_full_release folder, CREMA-D release folder or manifest CSV "
        "(docs/corpora.md; default: the built-in demo corpus)",
    )
    parser.add_argument(
        "--num-samples",
        type=int,
        default=8,
        help="trials (configs) per pair and test fold: a nested search (loso) samples this many for each test "
        "fold, loso-flat and session5 this many in all (default: 8; harness benchmark on the demo corpus: 2)",
    )
    parser.add_argument(
        "--gpus-per-trial",
        type=float,
        default=None,
        help="GPU share per trial, e.g. 0.25 runs four trials per GPU (default: 0.25 if a GPU)",
    )
    parser.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPU cores per trial (default: %(default)s)")
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        help="trials at once (default: what the resources hold, e.g. 4 per GPU at 0.25)",
    )
    parser.add_argument(
        "--storage",
        help="where runs are kept: Ray Tune's storage, a path or a URI such as s3://bucket/runs, read "
        "and written through pyarrow (default: RESULTS/ray)",
    )
    parser.add_argument("--results", default="results", help="reports folder (tables and plots; default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="the search's seed (default: %(default)s)")
    parser.add_argument(
        "--folds", type=int, nargs="+", default=list(SESSIONS), help="test sessions to run (default: 1 2 3 4 5)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fix a config value, e.g. --set audio.model=/models/wav2vec2-base",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="Ray cluster to join ('auto' for one started with `ray start`; default: $RAY_ADDRESS, "
        "which `ray job submit` sets, else a new local Ray instance)",
    )
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="loso",
        help="loso: five speaker-independent folds, each fold's config chosen on the other four sessions only "
        "(nested); loso-flat: one config chosen on all five folds' validation sessions (non-nested, optimistic); "
        "session5: train 1-4, test 5 (the ERC split); presets reproducing toolkits, never ranked with honest runs "
        "(docs/protocols.md): speaker-dependent (random utterance split), random-val (validation: a random 20%% of "
        "the training sessions' utterances), test-selected (epoch and config chosen on the test fold) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--subset",
        choices=SUBSETS,
        default="all",
        help="dialogs to train, select and test on: all, or improvised (or scripted) only; the scripts repeat "
        "across sessions, so scripted test lines often occur verbatim in training (default: %(default)s)",
    )
    parser.add_argument(
        "--objectives",
        default="weighted_f1",
        help="what the search optimises: weighted_f1 (default), or accuracy first then costs for Optuna's "
        f"multi-objective TPE, e.g. weighted_f1,latency_4s_ms (from {', '.join(OBJECTIVES)})",
    )
    parser.add_argument(
        "--inner-folds",
        type=int,
        default=None,
        metavar="N",
        help="nested loso: compare configs on the first N inner folds of each outer fold (default: all four, each "
        "other session validated on in turn; fewer is cheaper and noisier)",
    )
    parser.add_argument(
        "--fidelity",
        choices=FIDELITIES,
        default="epochs",
        help="what ASHA's rungs count: epochs (1, 3, 9 epochs of the first fold, then folds) or folds (1, 2, 4) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--optuna-storage",
        default=None,
        metavar="URL",
        help="an Optuna RDB storage (postgresql://..., mysql://...) for the studies; default: SQLite in the "
        "run's books, STORAGE/RUN/harness/optuna.db",
    )
    parser.add_argument(
        "--classes",
        type=int,
        choices=sorted(CLASS_SETS),
        default=6,
        help="6 (neu ang hap sad fru exc) or 4 (neu ang sad hap+exc) (default: %(default)s)",
    )
    parser.add_argument(
        "--labels",
        choices=LABEL_POLICIES,
        default="release",
        help="release: labels as read; erc: apply the ERC relabel list (harness/corpus/erc_relabel.csv) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--text-source",
        choices=("gold", "asr"),
        default="gold",
        help="the text encoder reads the gold transcripts, or ASR ones: Whisper (--set text.asr_model=..., "
        "default openai/whisper-small), each utterance transcribed once into the feature cache; WER in "
        "wer.md (docs/asr.md; default: %(default)s)",
    )
    parser.add_argument("--skip-bad", action="store_true", help="skip and list malformed corpus entries")
    parser.add_argument("--smoke-test", action="store_true", help="1 fold, 2 trials, 1 epoch, tiny models")
    parser.add_argument(
        "--allow-stand-ins",
        action="store_true",
        help="replace published checkpoints that cannot load by real-size random-init stand-ins (scores mean "
        "nothing; flagged in every header). Default: only on the built-in demo corpus; elsewhere the run refuses",
    )
    parser.add_argument("--no-report", action="store_true", help="do not rebuild the reports at the end")
    parser.add_argument(
        "--no-keep-models",
        dest="keep_models",
        action="store_false",
        help="final stage: do not keep each fold's trained model (by default the selected config's first seed is "
        "kept in STORAGE/RUN/harness/models for harness predict and harness export; search trials never keep one)",
    )
    parser.add_argument(
        "--mlflow",
        metavar="URI",
        help="also track each trial (config, per-fold and final metrics) to MLflow: a tracking server "
        "(http://host:5000), sqlite:////path/mlflow.db or a folder; needs pip install 'harness[mlflow]'",
    )


def report_results(results: Path, storage: Storage) -> None:
    from harness.report.tables import write_reports

    try:
        write_reports(results, storage.uri)
    except FileNotFoundError as err:  # e.g. every trial failed: the trial records say why
        log.warning("no report: %s", err)
