"""Reader for an ``IEMOCAP_full_release`` directory (or the generated demo corpus in the same layout).

Layout read, per ``SessionN`` (N = 1..5)::

    SessionN/dialog/EmoEvaluation/<dialog>.txt      summary lines: [start - end]<TAB>utt_id<TAB>label<TAB>[V, A, D]
    SessionN/dialog/transcriptions/<dialog>.txt     lines: utt_id [sss.ssss-eee.eeee]: text
    SessionN/sentences/wav/<dialog>/<utt_id>.wav    16 kHz mono PCM

Everything that is not one of those (per-annotator subfolders, macOS ``._*`` files) is ignored on purpose.
A line that cannot be parsed is an error naming file and line; ``skip_bad=True`` turns such problems into
a listed skip instead. The data is never changed silently.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import soundfile

from harness.errors import UserError

log = logging.getLogger(__name__)

EMOTIONS: tuple[str, ...] = ("neu", "ang", "hap", "sad", "fru", "exc")
EMOTION_NAMES: dict[str, str] = {
    "neu": "Neutral",
    "ang": "Anger",
    "hap": "Happiness",
    "sad": "Sadness",
    "fru": "Frustration",
    "exc": "Excited",
}
# Every summary label IEMOCAP uses; the ones outside EMOTIONS are counted and excluded from the benchmark.
KNOWN_LABELS: frozenset[str] = frozenset(EMOTIONS + ("xxx", "oth", "sur", "fea", "dis"))
SESSIONS: tuple[int, ...] = (1, 2, 3, 4, 5)
MANIFEST_COLUMNS: tuple[str, ...] = (
    "utterance_id",
    "session",
    "speaker",
    "dialog",
    "label",
    "text",
    "wav_path",
    "duration",
    "start",
    "end",
)

_SUMMARY = re.compile(
    r"^\[(?P<start>\d+(?:\.\d+)?) - (?P<end>\d+(?:\.\d+)?)\]\t(?P<utt>\S+)\t(?P<label>\S+)\t\[(?P<vad>[^\]]*)\]\s*$"
)
# Annotator detail lines (categorical "C-E1:", attribute "A-F2:") and the "%" header carry no summary.
_ANNOTATOR = re.compile(r"^[CA]-[A-Za-z]+\d*:")
_TRANSCRIPT = re.compile(r"^(?P<utt>Ses\d\d[FM]_\S+) \[(?P<start>[\d.]+)-(?P<end>[\d.]+)\]:\s?(?P<text>.*)$")
# Lines the transcribers left without an utterance id, e.g. "M: sorry" or "F: [LAUGHTER]".
_UNNAMED_TRANSCRIPT = re.compile(r"^[A-Za-z]{1,3}\s*:")
_UTTERANCE_ID = re.compile(r"^Ses(?P<session>\d\d)[FM]_.+_(?P<gender>[FM])[A-Z]*\d+$")


class CorpusError(UserError):
    """A problem in the corpus files; the message names the file (and line)."""


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class Utterance:
    utterance_id: str
    session: int
    speaker: str
    dialog: str
    label: str
    text: str
    wav_path: str
    duration: float
    start: float
    end: float


@dataclass
class Corpus:
    """The benchmark utterances (six classes) plus counts of everything that was read."""

    root: Path
    utterances: list[Utterance]
    label_counts: pd.DataFrame  # rows = session, columns = every label seen (six classes and excluded ones)
    skipped: list[Problem] = field(default_factory=list)
    unnamed_transcript_lines: int = 0
    # Rated utterances outside the six classes (xxx, oth, ...) whose transcript and wav are readable: never
    # benchmark data as read, but a label policy (``labels="erc"``) may relabel some of them.
    excluded: list[Utterance] = field(default_factory=list)

    @property
    def n_labelled(self) -> int:
        return int(self.label_counts.to_numpy().sum())

    def manifest(self, excluded: bool = False) -> pd.DataFrame:
        """The six-class utterances; ``excluded=True`` appends the rows labelled outside them, for
        ``harness.corpus.protocols.apply_labels`` to relabel or drop."""
        rows = [u.__dict__ for u in self.utterances + (self.excluded if excluded else [])]
        return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))


def speaker_of(utterance_id: str) -> str:
    """``Ses03F_impro06_M012`` -> ``Ses03M``: the speaker is the utterance suffix's gender, not the dialog's."""
    match = _UTTERANCE_ID.match(utterance_id)
    if not match:
        raise ValueError(f"not an IEMOCAP utterance id: {utterance_id!r}")
    return f"Ses{match['session']}{match['gender']}"


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".")  # macOS AppleDouble "._x.txt" and other dot files


def _read_lines(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise CorpusError(f"{path}: cannot read ({err.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # a few IEMOCAP transcripts are not valid UTF-8
    return text.splitlines()  # handles CRLF


class _Reader:
    def __init__(self, root: Path, skip_bad: bool):
        self.root = root
        self.skip_bad = skip_bad
        self.skipped: list[Problem] = []
        self.unnamed = 0

    def problem(self, path: Path, line: int | None, reason: str) -> None:
        problem = Problem(str(path), line, reason)
        if not self.skip_bad:
            raise CorpusError(str(problem))
        log.warning("skipped %s", problem)
        self.skipped.append(problem)

    def summaries(self, path: Path) -> list[tuple[int, re.Match[str]]]:
        found = []
        for number, line in enumerate(_read_lines(path), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("%") or _ANNOTATOR.match(stripped):
                continue
            match = _SUMMARY.match(line.rstrip("\r\n"))
            if not match:
                self.problem(path, number, f"malformed EmoEvaluation line: {stripped[:80]!r}")
            elif match["label"] not in KNOWN_LABELS:
                self.problem(path, number, f"unknown emotion label {match['label']!r}")
            elif not _UTTERANCE_ID.match(match["utt"]):
                self.problem(path, number, f"malformed utterance id {match['utt']!r}")
            else:
                found.append((number, match))
        return found

    def transcripts(self, path: Path) -> dict[str, str]:
        texts: dict[str, str] = {}
        for number, line in enumerate(_read_lines(path), start=1):
            stripped = line.strip()
            if not stripped:
                continue
            match = _TRANSCRIPT.match(stripped)
            if match:
                texts[match["utt"]] = match["text"].strip()
            elif _UNNAMED_TRANSCRIPT.match(stripped):
                self.unnamed += 1
            else:
                self.problem(path, number, f"malformed transcription line: {stripped[:80]!r}")
        return texts

    def duration(self, wav: Path) -> float | None:
        try:
            info = soundfile.info(str(wav))
        except Exception as err:  # soundfile raises LibsndfileError / RuntimeError on corrupt headers
            self.problem(wav, None, f"unreadable wav ({err})")
            return None
        if info.frames == 0:
            self.problem(wav, None, "empty wav")
            return None
        return info.frames / info.samplerate

    def session(self, session: int) -> tuple[list[Utterance], Counter[str], list[Utterance]]:
        session_dir = self.root / f"Session{session}"
        emo_dir = session_dir / "dialog" / "EmoEvaluation"
        if not emo_dir.is_dir():
            raise CorpusError(f"{emo_dir}: missing EmoEvaluation folder (is {self.root} an IEMOCAP_full_release?)")
        utterances: list[Utterance] = []
        excluded: list[Utterance] = []
        counts: Counter[str] = Counter()
        summary_files = sorted(p for p in emo_dir.glob("*.txt") if p.is_file() and not _is_hidden(p))
        if not summary_files:
            raise CorpusError(f"{emo_dir}: no EmoEvaluation summary files")
        for summary_file in summary_files:
            dialog = summary_file.stem
            transcript_file = session_dir / "dialog" / "transcriptions" / f"{dialog}.txt"
            if not transcript_file.is_file():
                self.problem(transcript_file, None, f"missing transcription for dialog {dialog}")
                continue
            texts = self.transcripts(transcript_file)
            for number, match in self.summaries(summary_file):
                utt, label = match["utt"], match["label"]
                counts[label] += 1
                wav = session_dir / "sentences" / "wav" / dialog / f"{utt}.wav"
                if label not in EMOTIONS:
                    # Kept only where complete, and never a problem: these rows are not benchmark data.
                    duration = _quiet_duration(wav) if utt in texts else None
                    if duration is not None:
                        excluded.append(
                            Utterance(
                                utterance_id=utt,
                                session=session,
                                speaker=speaker_of(utt),
                                dialog=dialog,
                                label=label,
                                text=texts[utt],
                                wav_path=str(wav),
                                duration=round(duration, 4),
                                start=float(match["start"]),
                                end=float(match["end"]),
                            )
                        )
                    continue
                if utt not in texts:
                    self.problem(summary_file, number, f"{utt} has no line in {transcript_file}")
                    counts[label] -= 1
                    continue
                if not wav.is_file():
                    self.problem(wav, None, f"missing wav for {utt} ({summary_file}:{number})")
                    counts[label] -= 1
                    continue
                duration = self.duration(wav)
                if duration is None:
                    counts[label] -= 1
                    continue
                utterances.append(
                    Utterance(
                        utterance_id=utt,
                        session=session,
                        speaker=speaker_of(utt),
                        dialog=dialog,
                        label=label,
                        text=texts[utt],
                        wav_path=str(wav),
                        duration=round(duration, 4),
                        start=float(match["start"]),
                        end=float(match["end"]),
                    )
                )
        return utterances, counts, excluded


def _quiet_duration(wav: Path) -> float | None:
    try:
        info = soundfile.info(str(wav))
    except (RuntimeError, OSError, ValueError):  # missing or corrupt (LibsndfileError): the row is not kept
        return None
    return info.frames / info.samplerate if info.frames else None


def load_corpus(root: str | Path, skip_bad: bool = False, sessions: tuple[int, ...] = SESSIONS) -> Corpus:
    """Read an IEMOCAP_full_release tree.

    Args:
        root: the ``IEMOCAP_full_release`` directory.
        skip_bad: skip (and list in ``Corpus.skipped``) malformed lines, missing transcripts and unreadable
            wavs instead of raising ``CorpusError``.
        sessions: which sessions to read.
    """
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: corpus directory does not exist")
    reader = _Reader(root, skip_bad)
    utterances: list[Utterance] = []
    excluded: list[Utterance] = []
    per_session: dict[int, Counter[str]] = {}
    for session in sessions:
        found, counts, unscored = reader.session(session)
        utterances.extend(found)
        excluded.extend(unscored)
        per_session[session] = counts
    labels = sorted(
        {label for c in per_session.values() for label in c},
        key=lambda x: (x not in EMOTIONS, EMOTIONS.index(x) if x in EMOTIONS else 0, x),
    )
    table = pd.DataFrame(
        [[per_session[s].get(label, 0) for label in labels] for s in sessions],
        index=pd.Index(sessions, name="session"),
        columns=labels,
    )
    seen: dict[str, int] = {}
    for u in utterances + excluded:
        if u.utterance_id in seen:
            raise CorpusError(f"{u.wav_path}: utterance id {u.utterance_id} appears twice")
        seen[u.utterance_id] = 1
    corpus = Corpus(root, utterances, table, reader.skipped, reader.unnamed, excluded)
    log.info(
        "read %d utterances in six classes out of %d labelled (%d skipped) from %s",
        len(utterances),
        corpus.n_labelled,
        len(reader.skipped),
        root,
    )
    return corpus


def counts_table(corpus: Corpus) -> pd.DataFrame:
    """Per-session x per-label counts with the six-class and all-label totals, for display."""
    table = corpus.label_counts.copy()
    six = [label for label in EMOTIONS if label in table.columns]
    table["six_class"] = table[six].sum(axis=1)
    table["all_labelled"] = corpus.label_counts.sum(axis=1)
    table.loc["total"] = table.sum(axis=0)
    return table
