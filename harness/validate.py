"""``python -m harness.validate``: load every pair's search space and build each pair with tiny encoders
(one forward pass on demo utterances), without training. Exit code 1 names what is broken."""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from harness.cache import FeatureCache
from harness.config import ConfigError
from harness.corpus import load_corpus
from harness.dataset import load_pair_data
from harness.demo import default_cache_dir, ensure_demo_corpus
from harness.logs import setup_logging
from harness.model import build_model
from harness.pairs import PAIRS
from harness.space import load_space
from harness.tiny_models import ensure_tiny_models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.validate", description=__doc__)
    parser.add_argument("--spaces-only", action="store_true", help="check the YAML files only")
    args = parser.parse_args(argv)
    setup_logging()
    failures = 0
    manifest = cache = tiny = None
    for name, pair in PAIRS.items():
        try:
            space = load_space(pair.space_path)
            message = f"{len(space.params)} searched parameters"
            if not args.spaces_only:
                if manifest is None:
                    manifest = load_corpus(ensure_demo_corpus()).manifest().iloc[::15].reset_index(drop=True)
                    cache = FeatureCache(default_cache_dir() / "features")
                    tiny = ensure_tiny_models(default_cache_dir())
                cfg = space.config(tiny)
                data = load_pair_data(pair, cfg, manifest, cache, progress=False)
                model = build_model(pair, cfg, data.features, np.arange(len(manifest))).eval()
                with torch.no_grad():
                    logits = model(model.collate(data.features, np.arange(4)))
                message += f", forward ok {tuple(logits.shape)}"
            print(f"ok    {name:<18} {message}")
        except (ConfigError, KeyError, ValueError, OSError) as err:
            failures += 1
            print(f"FAIL  {name:<18} {err}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
