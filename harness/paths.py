"""Where the harness keeps what it builds once (the demo corpus, features, tiny and stand-in checkpoints),
and the check that a folder the user named can be written."""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import UserError


def default_cache_dir() -> Path:
    return Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness"))


def usable_cache_dir() -> Path:
    """The cache folder, checked writable before anything is built there (a one-line ``UserError``)."""
    return writable_dir(default_cache_dir(), "HARNESS_CACHE")


def writable_dir(path: str | Path, flag: str) -> Path:
    """``path`` as an existing, writable directory (created if missing), or a one-line ``UserError``."""
    path = Path(path).resolve()
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write_test_{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(f"{flag} {path}: not writable ({err.strerror})") from None
    return path
