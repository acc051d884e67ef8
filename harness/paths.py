"""Where the harness keeps what it builds once: the demo corpus, features, tiny and stand-in checkpoints."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    return Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness"))
