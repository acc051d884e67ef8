"""``python -m harness.data``: inspect a corpus, write its manifest, build the demo corpus.

    python -m harness.data inspect --data /path/to/IEMOCAP_full_release --out manifest.csv
    python -m harness.data inspect                # the built-in demo corpus
    python -m harness.data demo --out DIR         # write the demo corpus to DIR
"""
from __future__ import annotations

import argparse
import logging
import sys

from harness.corpus import counts_table, resolve_corpus
from harness.corpus.demo import write_demo_corpus
from harness.errors import UserError
from harness.logs import setup_logging

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="print per-session/per-label counts and write the manifest")
    inspect.add_argument("--data", help="IEMOCAP_full_release directory (default: the built-in demo corpus)")
    inspect.add_argument("--out", help="write the six-class manifest CSV here")
    inspect.add_argument("--skip-bad", action="store_true",
                         help="skip and list malformed lines, missing or unreadable wavs instead of failing")
    demo = commands.add_parser("demo", help="write the demo corpus (IEMOCAP layout) to a directory")
    demo.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    setup_logging()
    try:
        if args.command == "demo":
            root = write_demo_corpus(args.out)
            print(f"demo corpus written to {root}")
            return 0
        corpus, source = resolve_corpus(args.data, skip_bad=args.skip_bad)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"corpus: {source} ({corpus.root})")
    print(counts_table(corpus).to_string())
    print(f"{len(corpus.utterances)} utterances in the six classes, {corpus.n_labelled} labelled in all; "
          f"{corpus.unnamed_transcript_lines} transcription lines without an id ignored")
    if corpus.skipped:
        print(f"{len(corpus.skipped)} problems skipped (--skip-bad):")
        for problem in corpus.skipped:
            print(f"  {problem}")
    if args.out:
        corpus.manifest().to_csv(args.out, index=False)
        print(f"manifest written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
