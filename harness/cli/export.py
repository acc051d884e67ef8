"""``harness export --run RUN --pair PAIR --fold K --format torchscript|onnx [--out FILE]``: write a kept
model (``harness.train.keep``) as TorchScript or ONNX, check that its outputs equal the stored model's
(<= 1e-4, on a short and a long synthetic utterance), and print its measured latency beside the
report's (the fold record's ``latency_4s_ms``).

What is exported is the network from its input tensors to class probabilities (batch size 1); the front
ends (log-mel, word look-up, tokenisation) are not tensor programs and stay outside: ``FILE.json`` beside
the model names the inputs in order, the class set, the vocabularies and the feature specs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.common import run_command
from harness.store import Storage


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, help="benchmark name (e.g. bench) or run folder name")
    parser.add_argument("--pair", required=True, help="model pair, e.g. cnnbilstm_bilstm")
    parser.add_argument("--fold", type=int, required=True, help="test fold (session) whose model to export")
    parser.add_argument("--format", choices=("torchscript", "onnx"), required=True)
    parser.add_argument("--out", help="output file (default: RESULTS/export/PAIR_foldK.pt or .onnx)")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls of the latency figure (median)")
    parser.add_argument("--results", default="results", help="reports folder (default storage: RESULTS/ray)")
    parser.add_argument("--storage", help="where runs are stored: a path or URI (default: RESULTS/ray)")
    return parser


def export(args: argparse.Namespace) -> int:
    from harness.train.export import export_and_check
    from harness.train.keep import find_kept_run, load_kept

    storage = Storage(args.storage or Path(args.results).resolve() / "ray")
    kept = load_kept(find_kept_run(storage, args.run, args.pair), args.fold)
    suffix = ".pt" if args.format == "torchscript" else ".onnx"
    out = Path(args.out or Path(args.results) / "export" / f"{args.pair}_fold{args.fold}{suffix}")
    done = export_and_check(kept, out, args.format, max(1, args.repeats))
    report = f"{done.report_latency_4s_ms:.1f} ms" if done.report_latency_4s_ms is not None else "n/a"
    print(f"exported {args.pair} fold {args.fold} ({args.format}) to {done.path} (inputs: {done.path}.json)")
    print(f"parity: max |exported - stored| = {done.max_abs_diff:.2e} (tolerance 1e-4)")
    print(
        f"latency, 4-s utterance incl. front ends, batch 1, median of {done.repeats}: exported "
        f"{done.latency_4s_ms:.1f} ms; stored model now {done.stored_latency_4s_ms:.1f} ms; report {report}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: export(args))


if __name__ == "__main__":
    sys.exit(main())
