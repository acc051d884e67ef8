"""``harness <command> ...``: one console script for the pipeline's commands.

harness search --pair wav2vec_bilstm      (= python -m harness.search)
harness benchmark                          (= python -m harness.benchmark)
harness report --results results          (= python -m harness.report)
harness data inspect --data DIR            (= python -m harness.data)
harness validate [--checkpoints]           (= python -m harness.validate)
harness list [--grid audio=A,B text=C,D]  encoders, pairs and the checkpoints each needs
harness audit --pairs P --fold K [benchmark options | --from-run RUN]   (label-permutation leak probe)
harness predict --run RUN --pair P --fold K audio.wav --text "..."   (class probabilities of a kept model)
harness export --run RUN --pair P --fold K --format torchscript|onnx

harness --version                          the installed version
harness -v COMMAND ... / harness -q COMMAND ...
                                           more (debug lines, Ray's and Optuna's own, Python warnings) or
                                           less (warnings and errors only) on the console; the run's log
                                           file always has everything
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys

COMMANDS = {
    "search": "harness.cli.search",
    "benchmark": "harness.cli.benchmark",
    "report": "harness.cli.report",
    "data": "harness.cli.data",
    "validate": "harness.cli.validate",
    "list": "harness.cli.list",
    "audit": "harness.cli.audit",
    "predict": "harness.cli.predict",
    "export": "harness.cli.export",
}


def version() -> str:
    """The installed distribution's version (the package's own where it is not installed)."""
    try:
        return importlib.metadata.version("harness")
    except importlib.metadata.PackageNotFoundError:
        from harness import __version__

        return __version__


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--version":
        print(f"harness {version()}")
        return 0
    while argv and argv[0] in ("-v", "--verbose", "-q", "--quiet"):  # before the command: its logging
        from harness.logs import set_verbosity

        set_verbosity(1 if argv.pop(0) in ("-v", "--verbose") else -1)
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
