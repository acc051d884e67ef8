"""``python -m harness.validate``: load every pair's search space and build each pair with tiny encoders
(one forward pass on demo utterances), without training. ``--checkpoints`` also checks that the real
checkpoints a search would load are available (local folder, or cached / downloadable hub name).
Exit code 1 names what is broken."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from harness.cli.common import parse_overrides, resolve_checkpoint, run_command
from harness.corpus import load_corpus
from harness.corpus.demo import ensure_demo_corpus
from harness.errors import UserError
from harness.features import FeatureCache
from harness.models.data import load_pair_data
from harness.models.fusion import build_model
from harness.models.pairs import PAIRS, get_pair
from harness.models.tiny import tiny_overrides
from harness.paths import default_cache_dir, usable_cache_dir
from harness.tune.space import load_space


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.validate", description=__doc__)
    parser.add_argument("--spaces-only", action="store_true", help="check the YAML files only")
    parser.add_argument(
        "--checkpoints", action="store_true", help="check the real checkpoints a search would load (no tiny stand-ins)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="as for search, e.g. --set audio.model=/models/wav2vec2-base",
    )
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS))
    args = parser.parse_args(argv)
    return run_command(lambda: validate(args))


def validate(args: argparse.Namespace) -> int:
    # what the command is asked is checked first (exit 2): an exit of 1 means a pair failed its checks
    usable_cache_dir()
    for name in args.pairs:
        get_pair(name)
    fixed = parse_overrides(args.overrides)  # exactly as search and benchmark read --set
    failures = 0
    manifest = None
    cache = FeatureCache(default_cache_dir() / "features")
    for name in args.pairs:
        try:
            pair = PAIRS[name]
            space = load_space(pair.space_path)
            # --set applied as a search applies it (a checkpoint key only where the pair loads one)
            uses = {f"{m}.model" for m, v in pair.variants.items() if v.pretrained}
            space = space.with_fixed({k: v for k, v in fixed.items() if not k.endswith(".model") or k in uses})
            message = f"{len(space.params)} searched parameters"
            if args.checkpoints:
                for modality, variant in pair.variants.items():
                    if variant.pretrained:
                        checkpoint = str(fixed.get(f"{modality}.model", variant.checkpoint))
                        message += f", {modality} checkpoint {resolve_checkpoint(variant, checkpoint)} ok"
            elif not args.spaces_only:
                if manifest is None:
                    manifest = load_corpus(ensure_demo_corpus()).manifest().iloc[::15].reset_index(drop=True)
                cfg = space.config(tiny_overrides(pair.variants))  # tiny checkpoints: the forward pass only
                data = load_pair_data(pair, cfg, manifest, cache, progress=False)
                model = build_model(pair, cfg, data.features, np.arange(len(manifest))).eval()
                with torch.no_grad():
                    logits = model(model.collate(data.features, np.arange(4)))
                message += f", forward ok {tuple(logits.shape)}"
            print(f"ok    {name:<18} {message}")
        except (UserError, KeyError, ValueError, OSError) as err:  # a broken pair: listed, the others still checked
            failures += 1
            print(f"FAIL  {name:<18} {err}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
