"""``harness list``: the registered encoders, the pairs, and the checkpoint each needs (and whether it is here).

    harness list                       every encoder and pair
    harness list --grid audio=cnn_bilstm,whisper text=bilstm,qwen2_5    the pairs that grid composes

Nothing is loaded or downloaded: "here" means the checkpoint is in the local Hugging Face cache (or is a
folder), so a run on a real corpus will not refuse it (``harness.models.hub.require_checkpoints``).
"""

from __future__ import annotations

import argparse

from harness.cli.common import run_command
from harness.models.encoders.registry import ENCODERS
from harness.models.hub import checkpoint_available
from harness.models.pairs import GRID, PAIRS, compose_grid, parse_grid


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness list", description=__doc__.splitlines()[0])
    parser.add_argument("--grid", nargs=2, metavar=("audio=ENC,..", "text=ENC,.."), help="compose this grid")
    return parser


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def encoder_rows() -> list[list[str]]:
    rows = []
    for name, v in ENCODERS.items():
        here = ("yes" if checkpoint_available(v.checkpoint) else "no") if v.pretrained else "-"
        rows.append([name, v.modality, v.checkpoint or "(trained from scratch)", here, v.note])
    return rows


def pair_rows(names: list[str]) -> list[list[str]]:
    rows = []
    for name in names:
        pair = PAIRS[name]
        needs = [v.checkpoint for v in pair.variants.values() if v.pretrained]
        grid = "default grid" if name in GRID else ""
        rows.append([name, pair.audio or "-", pair.text or "-", ", ".join(needs) or "-", grid])
    return rows


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        names = list(PAIRS)
        if args.grid:
            grid = parse_grid(args.grid)
            names = list(compose_grid(grid["audio"], grid["text"]))
        print(table(encoder_rows(), ["encoder", "modality", "default checkpoint", "here", "note"]))
        print()
        print(table(pair_rows(names), ["pair", "audio", "text", "checkpoints it needs", ""]))
        print(
            "\nFetch a checkpoint with `hf download <checkpoint>`, or point one encoder at a folder with "
            "--set <encoder>.model=DIR."
        )
        return 0

    return run_command(body)


if __name__ == "__main__":
    raise SystemExit(main())
