"""Reader for MSP-Podcast in its release layout (v1.9 and later).

Layout read::

    Labels/labels_consensus.csv     FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set
    Audios/<FileName>               MSP-PODCAST_0001_0008.wav (16 kHz mono)
    Transcripts/<stem>.txt          the segment's transcript, one line

Labels: the consensus class ``EmoClass``; N A H S become IEMOCAP's neu ang hap sad. The others (U
surprise, F fear, D disgust, C contempt, O other, X no agreement) are counted and excluded. Use
``--classes 4``. The dimensional scores and the per-annotator files are not read.

Protocol: speaker-independent groups. Segments with a known speaker (``SpkrID``) fall in five groups,
``SpkrID mod 5 + 1``, each held out in turn (leave-one-group-out). Segments of unknown speakers cannot be
placed speaker-independently: they are counted and left out. The official partition (``Split_Set``:
Train, Development, Test1, Test2, Test3) is checked and logged per group, but it is not (yet) a protocol
of its own here: results are not comparable with Test1 numbers from the literature.

Every line of the labels file is checked: a file name off the pattern, an unknown class or partition, a
wav or transcript that is missing, empty or resolves outside the corpus root is one error naming
``labels_consensus.csv:LINE`` (``skip_bad`` lists and skips it).
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from pathlib import Path

from harness.corpus.iemocap import EMOTIONS, Corpus, CorpusError, Problem, Utterance
from harness.corpus.manifest import is_inside
from harness.corpus.reading import label_table, wav_header

log = logging.getLogger(__name__)

LABELS_FILE = Path("Labels") / "labels_consensus.csv"
AUDIO_DIR, TRANSCRIPT_DIR = "Audios", "Transcripts"
COLUMNS: tuple[str, ...] = ("FileName", "EmoClass", "SpkrID", "Split_Set")
CLASSES: dict[str, str] = {
    "N": "neu",
    "A": "ang",
    "H": "hap",
    "S": "sad",
    "U": "sur",
    "F": "fea",
    "D": "dis",
    "C": "con",
    "O": "oth",
    "X": "xxx",
}
SPLITS: tuple[str, ...] = ("Train", "Development", "Test1", "Test2", "Test3")
N_GROUPS = 5
_NAME = re.compile(r"^MSP-PODCAST_\d{4}_\d{4}(?:_\d{4})?\.wav$")
PROTOCOL = (
    f"speaker-independent: {N_GROUPS} groups of speakers, SpkrID mod 5 + 1, each held out in turn; "
    "unknown speakers left out; NOT the official Test1 partition"
)


def is_msp_podcast(root: Path) -> bool:
    return (root / LABELS_FILE).is_file()


def load_msp_podcast(root: str | Path, skip_bad: bool = False) -> Corpus:
    """Read an MSP-Podcast release folder (the one holding ``Labels``, ``Audios`` and ``Transcripts``)."""
    root = Path(root)
    labels_path = root / LABELS_FILE
    skipped: list[Problem] = []
    skipped_groups: Counter[int] = Counter()

    def problem(line: int | None, reason: str, group: int | None = None) -> None:
        found = Problem(str(labels_path), line, reason)
        if not skip_bad:
            raise CorpusError(str(found))
        log.warning("skipped %s", found)
        skipped.append(found)
        if group is not None:
            skipped_groups[group] += 1

    try:
        text = labels_path.read_bytes().decode("utf-8-sig")
    except OSError as err:
        raise CorpusError(f"{labels_path}: cannot read ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise CorpusError(f"{labels_path}: bytes that are not UTF-8 at byte {err.start + 1}") from None
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise CorpusError(f"{labels_path}:1: missing column(s) {missing}")
    utterances: list[Utterance] = []
    excluded: list[Utterance] = []
    counts: dict[int, Counter[str]] = {g: Counter() for g in range(1, N_GROUPS + 1)}
    splits: dict[int, Counter[str]] = {g: Counter() for g in counts}
    unknown_speakers = 0
    seen: dict[str, int] = {}
    for number, row in enumerate(reader, start=2):
        name, code = (row.get("FileName") or "").strip(), (row.get("EmoClass") or "").strip()
        speaker, split = (row.get("SpkrID") or "").strip(), (row.get("Split_Set") or "").strip()
        if not _NAME.match(name):
            problem(number, f"malformed FileName {name[:80]!r} (MSP-PODCAST_NNNN_NNNN.wav)")
            continue
        if name in seen:
            problem(number, f"{name} listed twice (first at line {seen[name]})")
            continue
        seen[name] = number
        if code not in CLASSES:
            problem(number, f"{name}: unknown EmoClass {code!r} (one of {' '.join(CLASSES)})")
            continue
        if split not in SPLITS:
            problem(number, f"{name}: unknown Split_Set {split!r} (one of {', '.join(SPLITS)})")
            continue
        if not speaker.isdigit():
            unknown_speakers += 1  # "Unknown": no speaker-independent group for it
            continue
        group = int(speaker) % N_GROUPS + 1
        wav = root / AUDIO_DIR / name
        transcript = root / TRANSCRIPT_DIR / f"{Path(name).stem}.txt"
        outside = [p for p in (wav, transcript) if p.exists() and not is_inside(p, root)]
        if outside:
            problem(number, f"{name}: {outside[0]} resolves outside the corpus root {root}", group)
            continue
        if not transcript.is_file():
            problem(number, f"{name}: missing transcript {transcript}", group)
            continue
        words = transcript.read_text(encoding="utf-8", errors="replace").strip()
        if not words:
            problem(number, f"{name}: empty transcript {transcript}", group)
            continue
        info = wav_header(wav)
        if isinstance(info, str):
            problem(number, f"{name}: {info}: {wav}", group)
            continue
        duration = round(info.frames / info.samplerate, 4)
        label = CLASSES[code]
        utterance = Utterance(
            Path(name).stem, group, speaker, Path(name).stem, label, words, str(wav), duration, 0.0, duration
        )
        (utterances if label in EMOTIONS else excluded).append(utterance)
        counts[group][label] += 1
        splits[group][split] += 1
    if not utterances:
        raise CorpusError(f"{labels_path}: no segment of a known speaker in the four classes N A H S")
    if unknown_speakers:
        log.warning(
            "%d MSP-Podcast segments of unknown speakers left out (no speaker-independent group)", unknown_speakers
        )
    for group, found in splits.items():
        log.info("MSP-Podcast group %d: official partitions %s", group, dict(found))
    return Corpus(
        root,
        utterances,
        label_table(counts, EMOTIONS),
        skipped,
        skipped_label_lines={g: skipped_groups[g] for g in counts},
        excluded=excluded,
    )
