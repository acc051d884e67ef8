"""``python -m harness.report [--results DIR] [--storage PATH_OR_URI]``: tables and plots from stored runs
(never reruns anything). Runs are read from ``--storage`` (the searches' storage; default RESULTS/ray)."""

from __future__ import annotations

import argparse
import sys

from harness.errors import UserError
from harness.logs import setup_logging
from harness.paths import writable_dir
from harness.report.tables import write_reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.report", description=__doc__)
    parser.add_argument("--results", default="results", help="where tables and plots are written")
    parser.add_argument("--storage", help="where the runs are stored: a path or URI (default: RESULTS/ray)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        path = write_reports(writable_dir(args.results, "--results"), args.storage)
    except (UserError, OSError, ValueError) as err:  # FileNotFoundError: no runs; pyarrow: a bad --storage
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"report written: {path}")
    return 0
