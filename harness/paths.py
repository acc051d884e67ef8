"""Where the harness keeps what it builds once (the demo corpus, features, tiny and stand-in checkpoints),
the check that a folder the user named can be written, and how a full disk is told apart and reported."""

from __future__ import annotations

import errno
import os
import re
import shutil
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


# How a full disk shows itself: an OSError's errno, or only its text once a library has wrapped it (SQLite's
# "database or disk is full" through SQLAlchemy and Optuna, pyarrow's IOError, Ray's RuntimeError).
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_FULL_TEXTS = ("no space left on device", "database or disk is full", "disk quota exceeded")
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")  # numpy's tofile: a short write, errno lost


class DiskFullError(UserError):
    """A disk filled while the harness wrote to it: the message names the folder and says how to resume."""


def is_disk_full(err: BaseException | None) -> bool:
    """Whether ``err``, or any exception it was raised from or during, is a full disk."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _FULL_ERRNOS:
            return True
        text = str(err).lower()
        if any(full in text for full in _FULL_TEXTS) or _SHORT_WRITE.search(text):
            return True
        err = err.__cause__ or err.__context__
    return False


def disk_full_error(folder: str | Path, what: str, needed_bytes: int | None = None) -> DiskFullError:
    """The one line a user reads when ``folder``'s disk filled while ``what`` was written."""
    try:
        free = f"{shutil.disk_usage(folder).free / 1e6:,.1f} MB free"
    except OSError:
        free = "free space unknown"
    needed = f", about {needed_bytes / 1e6:,.1f} MB needed" if needed_bytes else ""
    return DiskFullError(
        f"{folder}: disk full while {what} ({free}{needed}); nothing finished was lost: free space on that "
        "disk and run the same command again to resume"
    )
