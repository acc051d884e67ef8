"""``python -m harness.report [--results DIR]``: tables and plots from stored runs (never reruns anything)."""

from __future__ import annotations

import argparse
import sys

from harness.logs import setup_logging
from harness.report.tables import write_reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.report", description=__doc__)
    parser.add_argument("--results", default="results")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        path = write_reports(args.results)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"report written: {path}")
    return 0
