"""``python -m harness.benchmark --protocol-gap PRESET [PRESET ...]``: the same benchmark (pairs, budget,
seeds, folds) under nested LOSO and under each toolkit preset (``harness.corpus.presets``), then the
optimism of each preset per pair with its speaker-level interval (``protocol_gap.md``/``.csv``, printed).

The presets' runs are their own protocol groups in every other table (never ranked with LOSO); this table
is where they meet, as differences.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable
from pathlib import Path

from harness.corpus.presets import PRESETS
from harness.errors import UserError


def protocol_gap(args: argparse.Namespace, benchmark: Callable[[argparse.Namespace], int]) -> int:
    """Run ``benchmark`` (``harness.cli.benchmark.benchmark``, passed in: no import cycle) on ``args`` under
    ``loso`` and each preset of ``args.protocol_gap``; print the table."""
    from harness.cli.run import report_results
    from harness.report.protocol_gap import write_protocol_gap
    from harness.store import Storage

    presets = tuple(dict.fromkeys(args.protocol_gap))
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise UserError(f"--protocol-gap {' '.join(unknown)}: not a preset; choose from {', '.join(PRESETS)}")
    if args.protocol != "loso":
        raise UserError("--protocol-gap compares presets with nested loso: leave --protocol out")
    for protocol in ("loso", *presets):
        run = copy.copy(args)
        run.protocol, run.protocol_gap, run.no_report = protocol, None, True
        run.inner_folds = args.inner_folds if protocol == "loso" else None
        code = benchmark(run)
        if code:
            return code
    storage = Storage(args.storage or Path(args.results).resolve() / "ray")
    if not args.no_report:
        report_results(Path(args.results), storage)
    print(write_protocol_gap(args.results, storage.uri, args.name, presets))
    return 0
