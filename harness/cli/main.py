"""``harness <command> ...``: one console script for the pipeline's commands.

harness search --pair wav2vec_bilstm      (= python -m harness.search)
harness benchmark                          (= python -m harness.benchmark)
harness report --results results          (= python -m harness.report)
harness data inspect --data DIR            (= python -m harness.data)
harness validate [--checkpoints]           (= python -m harness.validate)
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "search": "harness.cli.search",
    "benchmark": "harness.cli.benchmark",
    "report": "harness.cli.report",
    "data": "harness.cli.data",
    "validate": "harness.cli.validate",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(
            __doc__.strip()
            if not argv or argv[0] in ("-h", "--help")
            else f"error: unknown command {argv[0]!r}; one of {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return int(importlib.import_module(COMMANDS[argv[0]]).main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
