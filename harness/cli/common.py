"""What every command shares: the one error wrapper (``run_command``: a ``UserError`` is one line and exit 2),
and re-exports of what the commands check before Ray starts (``--set`` parsing, checkpoints, the run's
identity) from the stages below, where they live."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from harness.benchmark.plan import git_hash as git_hash
from harness.benchmark.plan import versions as versions
from harness.benchmark.spec import parse_overrides as parse_overrides
from harness.books import EXPERIMENT_STATE as EXPERIMENT_STATE
from harness.books import TUNER_STATE as TUNER_STATE
from harness.books import RunIdentity as RunIdentity
from harness.books import check_resumable as check_resumable
from harness.errors import UserError
from harness.logs import setup_logging
from harness.models.hub import (  # resolved once per process there; re-exported for the commands importing them here
    checkpoint_available as checkpoint_available,
)
from harness.models.hub import local_checkpoint_problem as local_checkpoint_problem
from harness.models.hub import resolve_checkpoint as resolve_checkpoint
from harness.paths import disk_full_error, is_disk_full
from harness.redact import mask_secrets

log = logging.getLogger(__name__)


def run_command(body: Callable[[], int]) -> int:
    """Run a command's ``body`` (after ``setup_logging``): a ``UserError`` (bad input, found before or while
    running) is printed as ``error: <message>`` and exits 2; anything else is a bug and keeps its traceback."""
    setup_logging()
    try:
        return int(body() or 0)
    except UserError as err:
        print(f"error: {mask_secrets(str(err))}", file=sys.stderr)
        return 2
    except Exception as err:  # a disk that filled where no stage named it (issue 30): still one line
        if not is_disk_full(err):
            raise
        filename = getattr(err, "filename", None)
        folder = Path(str(filename)).parent if filename else Path.cwd()
        print(f"error: {disk_full_error(folder, f'writing {filename or type(err).__name__}')}", file=sys.stderr)
        return 2
