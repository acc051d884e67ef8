"""Reader for CREMA-D in its release layout (github.com/CheyneyComputerScience/CREMA-D).

Layout read::

    AudioWAV/<ActorID>_<Sentence>_<Emotion>_<Level>.wav     e.g. 1001_DFA_ANG_XX.wav, 16 kHz mono

91 actors (1001-1091) each speak 12 fixed sentences in six emotions (ANG DIS FEA HAP NEU SAD), at one of
four intensity levels (LO MD HI, XX unspecified; the release has one file with level ``X``). The file
name is the label (the intended emotion); the crowd ratings under ``processedResults`` are not read. The
other release folders (AudioMP3, VideoFlash, ...) and files are not read either.

The text of an utterance is its sentence: the 12 sentences carry no emotion, so a text-only model can do
no better than chance, which the report should show.

Labels: NEU ANG HAP SAD become IEMOCAP's neu ang hap sad; DIS and FEA are counted and excluded, as
IEMOCAP's ``dis`` and ``fea`` are. Use ``--classes 4`` (IEMOCAP's fru and exc do not occur).

Protocol: CREMA-D has no official partition. Folds are speaker-independent: five groups of actors,
actor ``(ActorID - 1001) mod 5 + 1``, each held out in turn (leave-one-group-out; every actor in exactly
one group). A wav whose name does not follow the pattern, or that resolves outside the corpus root (a
link), is an error naming the file; an unreadable or empty wav too (``skip_bad`` lists and skips them).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

from harness.corpus.iemocap import EMOTIONS, Corpus, CorpusError, Problem, Utterance
from harness.corpus.manifest import is_inside
from harness.corpus.reading import label_table, wav_header

log = logging.getLogger(__name__)

AUDIO_DIR = "AudioWAV"
SENTENCES: dict[str, str] = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
LABELS: dict[str, str] = {"NEU": "neu", "ANG": "ang", "HAP": "hap", "SAD": "sad", "DIS": "dis", "FEA": "fea"}
LEVELS: tuple[str, ...] = ("LO", "MD", "HI", "XX", "X")
FIRST_ACTOR, LAST_ACTOR = 1001, 1091
N_GROUPS = 5
_NAME = re.compile(
    r"^(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_(?P<level>[A-Z]{1,2})\.wav$",
)
PROTOCOL = f"speaker-independent: {N_GROUPS} groups of actors, (ActorID - 1001) mod 5 + 1, each held out in turn"


def group_of(actor: int) -> int:
    return (actor - FIRST_ACTOR) % N_GROUPS + 1


def is_crema_d(root: Path) -> bool:
    return (root / AUDIO_DIR).is_dir()


def _check_name(name: str) -> tuple[int, str, str] | str:
    """(actor, sentence code, label) of a wav name, or why it is not a CREMA-D name."""
    match = _NAME.match(name)
    if not match:
        return "not a CREMA-D file name (ActorID_Sentence_Emotion_Level.wav, e.g. 1001_DFA_ANG_XX.wav)"
    actor = int(match["actor"])
    if not FIRST_ACTOR <= actor <= LAST_ACTOR:
        return f"actor {actor} is outside {FIRST_ACTOR}-{LAST_ACTOR}"
    if match["sentence"] not in SENTENCES:
        return f"unknown sentence code {match['sentence']!r} (one of {' '.join(SENTENCES)})"
    if match["emotion"] not in LABELS:
        return f"unknown emotion {match['emotion']!r} (one of {' '.join(LABELS)})"
    if match["level"] not in LEVELS:
        return f"unknown intensity level {match['level']!r} (one of {' '.join(LEVELS)})"
    return actor, match["sentence"], LABELS[match["emotion"]]


def load_crema_d(root: str | Path, skip_bad: bool = False) -> Corpus:
    """Read a CREMA-D release folder (the one holding ``AudioWAV``).

    Args:
        root: the release folder.
        skip_bad: skip (and list in ``Corpus.skipped``) bad wavs instead of raising ``CorpusError``.
    """
    root = Path(root)
    audio = root / AUDIO_DIR
    if not audio.is_dir():
        raise CorpusError(f"{audio}: missing folder (is {root} a CREMA-D release?)")
    skipped: list[Problem] = []
    skipped_groups: Counter[int] = Counter()

    def problem(path: Path, reason: str, group: int | None = None) -> None:
        found = Problem(str(path), None, reason)
        if not skip_bad:
            raise CorpusError(str(found))
        log.warning("skipped %s", found)
        skipped.append(found)
        if group is not None:
            skipped_groups[group] += 1

    utterances: list[Utterance] = []
    excluded: list[Utterance] = []
    counts: dict[int, Counter[str]] = {g: Counter() for g in range(1, N_GROUPS + 1)}
    for wav in sorted(p for p in audio.iterdir() if not p.name.startswith(".")):
        if wav.suffix.lower() != ".wav":
            continue  # the release has none; another file is not audio the benchmark could use
        parsed = _check_name(wav.name)
        if isinstance(parsed, str):
            problem(wav, parsed)
            continue
        actor, sentence, label = parsed
        group = group_of(actor)
        if not is_inside(wav, root):
            problem(wav, f"resolves outside the corpus root {root} ({wav.resolve()})", group)
            continue
        info = wav_header(wav)
        if isinstance(info, str):
            problem(wav, info, group)
            continue
        duration = round(info.frames / info.samplerate, 4)
        utterance = Utterance(
            utterance_id=wav.stem,
            session=group,
            speaker=str(actor),
            dialog=wav.stem,  # no dialogs: every utterance stands alone
            label=label,
            text=SENTENCES[sentence],
            wav_path=str(wav),
            duration=duration,
            start=0.0,
            end=duration,
        )
        (utterances if label in EMOTIONS else excluded).append(utterance)
        counts[group][label] += 1
    if not utterances:
        raise CorpusError(f"{audio}: no CREMA-D wav in the four classes neu ang hap sad")
    corpus = Corpus(
        root,
        utterances,
        label_table(counts, EMOTIONS),
        skipped,
        skipped_label_lines={g: skipped_groups[g] for g in counts},
        excluded=excluded,
    )
    log.info("read %d CREMA-D utterances in four classes out of %d from %s", len(utterances), corpus.n_labelled, root)
    return corpus
