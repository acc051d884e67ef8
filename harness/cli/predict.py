"""``harness predict --run RUN --pair PAIR --fold K audio.wav --text "..."``: class probabilities from a
kept model (the final stage keeps each fold's selected model: ``harness.train.keep``).

``--run`` is a benchmark name (its final-stage run ``PAIR_SOURCE_RUN_final`` is found) or a run folder.
One utterance (a wav and its transcript) prints one line per class; ``--manifest FILE.csv`` (columns
``wav_path`` and ``text``, optional ``utterance_id``) predicts every row and writes a CSV (``--out``, default
stdout) with the predicted label and one ``p_<class>`` column per class. A dialogue-context model reads each
utterance's neighbouring turns among the manifest's rows (columns ``dialog``, ``start``, ``end``,
``speaker``; give whole dialogs); without them, or for one wav, each utterance is a dialog of its own.
Audio is read and resampled to 16 kHz, and every feature computed, exactly as the feature cache does, so
a corpus utterance gets the probabilities the final stage stored for it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from harness.cli.common import run_command
from harness.errors import UserError
from harness.store import Storage

SAMPLE_RATE = 16_000
log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness predict", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, help="benchmark name (e.g. bench) or run folder name")
    parser.add_argument("--pair", required=True, help="model pair, e.g. cnnbilstm_bilstm")
    parser.add_argument("--fold", type=int, required=True, help="test fold (session) whose model to use")
    parser.add_argument("audio", nargs="?", help="a wav file (any rate; resampled to 16 kHz)")
    parser.add_argument("--text", default="", help="the utterance's transcript (text and fused pairs read it)")
    parser.add_argument("--manifest", help="CSV with wav_path and text columns (optional utterance_id)")
    parser.add_argument("--out", help="--manifest: write the predictions CSV here (default: stdout)")
    parser.add_argument("--results", default="results", help="reports folder (default storage: RESULTS/ray)")
    parser.add_argument("--storage", help="where runs are stored: a path or URI (default: RESULTS/ray)")
    return parser


def read_inputs(args: argparse.Namespace) -> pd.DataFrame:
    """The utterances to predict: one from the command line, or a manifest's rows."""
    if (args.audio is None) == (args.manifest is None):
        raise UserError("give either one wav (with --text) or --manifest FILE.csv")
    if args.audio is not None:
        if not Path(args.audio).is_file():
            raise UserError(f"{args.audio}: no such wav file")
        return pd.DataFrame({"utterance_id": [Path(args.audio).stem], "wav_path": [args.audio], "text": [args.text]})
    try:
        table = pd.read_csv(args.manifest, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UserError(f"{args.manifest}: not a readable CSV ({str(err).splitlines()[0]})") from None
    missing = [c for c in ("wav_path", "text") if c not in table.columns]
    if missing:
        raise UserError(f"{args.manifest}: missing column(s) {', '.join(missing)} (needs wav_path, text)")
    base = Path(args.manifest).resolve().parent
    for line, path in enumerate(table["wav_path"], start=2):  # line 1 is the header
        if not (Path(path) if Path(path).is_absolute() else base / path).is_file():
            raise UserError(f"{args.manifest}:{line}: no such wav file {path}")
    table["wav_path"] = [str(p if Path(p).is_absolute() else base / p) for p in table["wav_path"]]
    if "utterance_id" not in table.columns:
        table["utterance_id"] = [Path(p).stem for p in table["wav_path"]]
    return table


def predict(args: argparse.Namespace) -> int:
    from harness.features.frontends import load_audio
    from harness.train.keep import DIALOG_COLUMNS, find_kept_run, load_kept, predict_table

    inputs = read_inputs(args)
    storage = Storage(args.storage or Path(args.results).resolve() / "ray")
    kept = load_kept(find_kept_run(storage, args.run, args.pair), args.fold)
    if kept.model.context is not None and not set(DIALOG_COLUMNS) <= set(inputs.columns):
        log.warning(
            "%s fold %d reads dialogue context: without the columns %s each utterance is read as a dialog of "
            "its own (no neighbouring turns)",
            kept.info.pair,
            kept.info.fold,
            ", ".join(DIALOG_COLUMNS),
        )
    probs = predict_table(kept, inputs, [load_audio(p, SAMPLE_RATE) for p in inputs["wav_path"]])
    frame = pd.DataFrame({"utterance_id": inputs["utterance_id"], "pred": [kept.classes[i] for i in probs.argmax(1)]})
    for i, emotion in enumerate(kept.classes):
        frame[f"p_{emotion}"] = probs[:, i]
    source = f"{kept.info.pair} fold {kept.info.fold} seed {kept.info.seed} ({kept.info.run})"
    if args.manifest is None:
        print(f"{inputs.utterance_id[0]}: {frame.pred[0]}  [{source}]")
        for i, emotion in enumerate(kept.classes):
            print(f"  {emotion}  {probs[0, i]:.4f}")
        return 0
    if args.out:
        frame.to_csv(args.out, index=False)
        print(f"{len(frame)} predictions written to {args.out} [{source}]")
    else:
        frame.to_csv(sys.stdout, index=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: predict(args))


if __name__ == "__main__":
    sys.exit(main())
