"""``python -m harness.data``: inspect a corpus, write its manifest, build the demo corpus.

python -m harness.data inspect --data /path/to/IEMOCAP_full_release --out manifest.csv
python -m harness.data inspect                # the built-in demo corpus
python -m harness.data demo --out DIR         # write the demo corpus to DIR
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from harness.cli.common import run_command
from harness.corpus import counts_table, resolve_corpus
from harness.corpus.demo import write_demo_corpus
from harness.corpus.iemocap import DEMO_MARKER, EXTRACTOR_NOTE
from harness.corpus.manifest import write_manifest
from harness.errors import UserError
from harness.paths import usable_cache_dir, writable_dir

log = logging.getLogger(__name__)


def _print_list(what: str, items: list[str]) -> None:
    print(f"{len(items)} {what}{':' if items else ''}")
    for item in items:
        print(f"  {item}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="print per-session/per-label counts and write the manifest")
    inspect.add_argument(
        "--data",
        help="IEMOCAP_full_release folder, CREMA-D release folder or manifest CSV "
        "(docs/corpora.md; default: the built-in demo corpus)",
    )
    inspect.add_argument("--out", help="write the six-class manifest CSV here")
    inspect.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip and list bad label lines (malformed or duplicated lines, missing or empty "
        "transcripts, missing, unreadable or mis-sized wavs) instead of failing",
    )
    demo = commands.add_parser("demo", help="write the demo corpus (IEMOCAP layout) to a directory")
    demo.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    return run_command(lambda: data(args))


def data(args: argparse.Namespace) -> int:
    usable_cache_dir()
    if args.command == "demo":
        root = write_demo_corpus(writable_dir(args.out, "--out"))
        print(f"demo corpus written to {root}")
        return 0
    if args.out:  # checked before the corpus is read, not after
        out = Path(args.out).resolve()
        if out.is_dir():
            raise UserError(f"--out {out}: a directory; name the manifest CSV file")
        writable_dir(out.parent, "--out")
    corpus, source = resolve_corpus(args.data, skip_bad=args.skip_bad)
    demo_note = f", marked by {DEMO_MARKER}" if source == "demo" and corpus.demo is not None else ""
    print(f"corpus: {source} ({corpus.root}{demo_note})")
    print(counts_table(corpus).to_string())
    print(
        f"{len(corpus.utterances)} utterances in the six classes, {corpus.n_labelled} labelled in all; "
        f"{corpus.unnamed_transcript_lines} transcription lines without an id ignored"
    )
    print(f"{corpus.n_skipped_label_lines} label lines skipped (--skip-bad, counted in the table's skipped column)")
    print(f"{corpus.xx_wavs} wavs of unlabelled XX turns (expected, not used)")
    _print_list("wavs without a label line (orphans, not used)", corpus.orphan_wavs)
    _print_list(f"unknown entries in {corpus.root} (not read)", corpus.unknown_entries)
    _print_list("lines with bytes that are not UTF-8 (replaced by U+FFFD)", [str(w) for w in corpus.decode_warnings])
    _print_list("wav formats (six-class wavs)", [f"{n} x {fmt}" for fmt, n in corpus.wav_formats.items()])
    print(f"  ({EXTRACTOR_NOTE})")
    _print_list("problems skipped (--skip-bad)", [str(p) for p in corpus.skipped])
    if args.out:
        write_manifest(corpus, args.out)  # readable back with --data (harness.corpus.manifest)
        print(f"manifest written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
