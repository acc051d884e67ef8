"""``python -m harness.report [--results DIR] [--storage PATH_OR_URI] [--equivalence-margin M]``: tables and
plots from stored runs (never reruns anything). Runs are read from ``--storage`` (the searches' storage;
default RESULTS/ray)."""

from __future__ import annotations

import argparse

from harness.cli.common import run_command
from harness.errors import UserError
from harness.paths import writable_dir
from harness.report.multiplicity import EQUIVALENCE_MARGIN
from harness.report.tables import write_reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.report", description=__doc__)
    parser.add_argument("--results", default="results", help="where tables and plots are written")
    parser.add_argument("--storage", help="where the runs are stored: a path or URI (default: RESULTS/ray)")
    parser.add_argument(
        "--equivalence-margin",
        type=float,
        default=EQUIVALENCE_MARGIN,
        help=f"weighted-F1 margin of the 'equivalent' verdicts (TOST; default {EQUIVALENCE_MARGIN})",
    )
    args = parser.parse_args(argv)
    return run_command(lambda: report(args))


def report(args: argparse.Namespace) -> int:
    if not args.equivalence_margin > 0:
        raise UserError(f"--equivalence-margin must be a positive weighted-F1 margin, got {args.equivalence_margin}")
    try:
        path = write_reports(writable_dir(args.results, "--results"), args.storage, args.equivalence_margin)
    except FileNotFoundError as err:  # no runs there yet
        raise UserError(str(err)) from None
    except (OSError, ValueError) as err:  # pyarrow: a bad --storage URI or an unreachable store
        raise UserError(f"--storage {args.storage}: {str(err).splitlines()[0]}") from None
    print(f"report written: {path}")
    return 0
