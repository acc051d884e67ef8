"""Reader for an ``IEMOCAP_full_release`` directory (or the generated demo corpus in the same layout).

Layout read, per ``SessionN`` (N = 1..5)::

    SessionN/dialog/EmoEvaluation/<dialog>.txt      summary lines: [start - end]<TAB>utt_id<TAB>label<TAB>[V, A, D]
    SessionN/dialog/transcriptions/<dialog>.txt     lines: utt_id [sss.ssss-eee.eeee]: text
    SessionN/sentences/wav/<dialog>/<utt_id>.wav    16 kHz mono PCM

Per-annotator subfolders and macOS ``._*`` files are ignored on purpose. What else is found is reported,
never silently dropped: wavs with no label line (``orphan_wavs``; the unlabelled ``..._FXX0`` turns are
expected and only counted), unknown entries at the release root, lines whose bytes are not UTF-8.

A problem (malformed or duplicated line, missing or empty transcript, unreadable wav, wav length that
does not match its label interval) is an error naming file and line; ``skip_bad=True`` drops the affected
label lines instead and lists each problem in ``Corpus.skipped``. The data is never changed silently.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.corpus.dialogs import dialog_type
from harness.corpus.reading import label_table, wav_header
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
# Written by harness.corpus.demo at the release root: a corpus carrying it is the demo, wherever it lies.
DEMO_MARKER = "HARNESS_DEMO_CORPUS"
# Root entries of a real IEMOCAP_full_release besides SessionN (README* files are matched by prefix).
KNOWN_ROOT_ENTRIES: frozenset[str] = frozenset({"Documentation", DEMO_MARKER})
# The sentence wavs were cut from the dialog recordings at boundaries a few tens of ms away from the
# EmoEvaluation interval. A quarter second is about ten times that, so honest cuts pass, while the
# failures worth stopping for are far larger: a wav of another turn, a truncated copy, a wrong sample
# rate in the header (x2 or x3). The 10% term keeps long turns (up to ~35 s) from failing on cut slack alone.
DURATION_TOLERANCE_S = 0.25
DURATION_TOLERANCE_FRACTION = 0.10

_SUMMARY = re.compile(
    r"^\[(?P<start>\d+(?:\.\d+)?) - (?P<end>\d+(?:\.\d+)?)\]\t(?P<utt>\S+)\t(?P<label>\S+)\t\[(?P<vad>[^\]]*)\]\s*$"
)
# Annotator detail lines (categorical "C-E1:", attribute "A-F2:") and the "%" header carry no summary.
_ANNOTATOR = re.compile(r"^[CA]-[A-Za-z]+\d*:")
_TRANSCRIPT = re.compile(
    r"^(?P<utt>Ses\d\d[FM]_\S+) \[(?P<start>\d+(?:\.\d+)?)-(?P<end>\d+(?:\.\d+)?)\]:\s?(?P<text>.*)$"
)
# Lines the transcribers left without an utterance id, e.g. "M: sorry" or "F: [LAUGHTER]".
_UNNAMED_TRANSCRIPT = re.compile(r"^[A-Za-z]{1,3}\s*:")
# The release's names. Letters, digits and underscores only: an id or dialog name becomes a path, so a
# "/" or ".." in one would read a file outside the corpus (issue 30).
_UTTERANCE_ID = re.compile(r"^Ses(?P<session>\d\d)[FM]_[A-Za-z0-9_]+_(?P<gender>[FM])[A-Z]*\d+$")
_DIALOG = re.compile(r"^Ses(?P<session>\d\d)[FM]_[A-Za-z0-9_]+$")
# Control characters (a NUL, a form feed) in a transcription: a damaged file, not speech (tab is allowed).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# What the extractor reads a wav as (harness.features.frontends.load_audio); other formats are converted.
STANDARD_WAV = (16000, 1)  # sample rate, channels (16-bit PCM in the release)
EXTRACTOR_NOTE = (
    "the extractor decodes every wav to float32, averages the channels of a multi-channel wav to mono and "
    "resamples any rate other than 16 kHz to 16 kHz (librosa); 8-bit PCM keeps its 8-bit resolution; the "
    "files on disk are never changed"
)
# Transcribed turns that were never rated ("Ses01F_impro01_FXX0"): a wav with no label line, as expected.
_XX_TURN = re.compile(r"_[FM]XX\d*$")


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
    """The benchmark utterances (six classes) plus counts of everything that was read (see ``counts_table``)."""

    root: Path
    utterances: list[Utterance]
    label_counts: pd.DataFrame  # rows = session, columns = every label seen; values = label lines kept
    skipped: list[Problem] = field(default_factory=list)
    unnamed_transcript_lines: int = 0
    skipped_label_lines: dict[int, int] = field(default_factory=dict)  # per session, dropped by skip_bad
    decode_warnings: list[Problem] = field(default_factory=list)  # lines whose non-UTF-8 bytes were replaced
    # "16000 Hz, 1 channel, PCM_16" -> number of six-class wavs in that format (see EXTRACTOR_NOTE)
    wav_formats: dict[str, int] = field(default_factory=dict)
    orphan_wavs: list[str] = field(default_factory=list)  # relative to root; a wav with no label line
    xx_wavs: int = 0  # wavs of unlabelled ``..._XX0`` turns: expected, not orphans
    unknown_entries: list[str] = field(default_factory=list)  # names at the root that are not IEMOCAP's
    demo: dict[str, Any] | None = None  # the demo marker's content; None for any other corpus
    # Rated utterances outside the six classes (xxx, oth, ...) whose transcript and wav are readable: never
    # benchmark data as read, but a label policy (``labels="erc"``) may relabel some of them.
    excluded: list[Utterance] = field(default_factory=list)

    @property
    def n_labelled(self) -> int:
        return int(self.label_counts.to_numpy().sum())

    @property
    def n_skipped_label_lines(self) -> int:
        return sum(self.skipped_label_lines.values())

    def manifest(self, excluded: bool = False) -> pd.DataFrame:
        """The six-class utterances; ``excluded=True`` appends the rows labelled outside them, for
        ``harness.corpus.protocols.apply_labels`` to relabel or drop."""
        rows = [u.__dict__ for u in self.utterances + (self.excluded if excluded else [])]
        frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
        frame.insert(frame.columns.get_loc("dialog") + 1, "dialog_type", frame["dialog"].map(dialog_type))
        return frame


def speaker_of(utterance_id: str) -> str:
    """``Ses03F_impro06_M012`` -> ``Ses03M``: the speaker is the utterance suffix's gender, not the dialog's."""
    match = _UTTERANCE_ID.match(utterance_id)
    if not match:
        raise ValueError(f"not an IEMOCAP utterance id: {utterance_id!r}")
    return f"Ses{match['session']}{match['gender']}"


def duration_tolerance(interval: float) -> float:
    """How far (seconds) a wav's length may be from its label interval's: max(0.25 s, 10% of the interval)."""
    return max(DURATION_TOLERANCE_S, DURATION_TOLERANCE_FRACTION * interval)


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".")  # macOS AppleDouble "._x.txt" and other dot files


@dataclass(frozen=True)
class _Label:
    """One well-formed summary line."""

    session: int
    dialog: str
    path: Path
    line: int
    utt: str
    label: str
    start: float
    end: float


@dataclass(frozen=True)
class _Text:
    text: str
    line: int
    start: float
    end: float


@dataclass(frozen=True)
class _Kept:
    label: _Label
    utterance: Utterance | None  # None for the excluded labels, whose transcript and wav are never used


class _Reader:
    def __init__(self, root: Path, skip_bad: bool):
        self.root = root
        self.skip_bad = skip_bad
        self.skipped: list[Problem] = []
        self.skipped_lines: Counter[int] = Counter()
        self.decode_warnings: list[Problem] = []
        self.unnamed = 0
        self.kept: list[_Kept] = []
        self.unscored: dict[str, Utterance] = {}  # rated outside the six classes, complete (see Corpus.excluded)
        self.labels_seen: set[str] = set()
        self.first: dict[str, _Label] = {}  # utterance id -> its first label line
        self.repeated: dict[str, _Label] = {}  # utterance id -> its second label line
        self.ambiguous_text: set[str] = set()  # ids transcribed twice (only reached with skip_bad)
        self.expected_wavs: set[Path] = set()
        self.formats: Counter[str] = Counter()

    def problem(self, path: Path, line: int | None, reason: str) -> None:
        problem = Problem(str(path), line, reason)
        if not self.skip_bad:
            raise CorpusError(str(problem))
        log.warning("skipped %s", problem)
        self.skipped.append(problem)

    def drop(self, label: _Label, path: Path, line: int | None, reason: str) -> None:
        """A problem that costs a label line: raised, or (skip_bad) listed and counted as skipped."""
        self.problem(path, line, reason)
        self.skipped_lines[label.session] += 1

    def read_lines(self, path: Path) -> list[str]:
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise CorpusError(f"{path}: cannot read ({err.strerror})") from None
        raw = raw.removeprefix(codecs.BOM_UTF8)  # Windows editors write one; it is not part of the first line
        lines = []
        # Split bytes, not text, so that line numbers match an editor's (\n, \r\n or \r only).
        for number, chunk in enumerate(raw.splitlines(), start=1):
            try:
                lines.append(chunk.decode("utf-8"))
            except UnicodeDecodeError as err:
                # Replacement rather than latin-1: it guesses no encoding, leaves the line's valid UTF-8
                # untouched, and the U+FFFD stays visible in the manifest.
                lines.append(chunk.decode("utf-8", errors="replace"))
                warning = Problem(
                    str(path),
                    number,
                    f"bytes that are not UTF-8 ({chunk[err.start : err.end]!r} "
                    f"at byte {err.start + 1}) replaced by U+FFFD",
                )
                log.warning("%s", warning)
                self.decode_warnings.append(warning)
        return lines

    def summaries(self, path: Path, session: int, dialog: str) -> list[_Label]:
        found = []
        for number, line in enumerate(self.read_lines(path), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("%") or _ANNOTATOR.match(stripped):
                continue
            match = _SUMMARY.match(line.rstrip("\r\n"))
            reason = None
            if not match:
                reason = f"malformed EmoEvaluation line: {stripped[:80]!r}"
            elif match["label"] not in KNOWN_LABELS:
                reason = f"unknown emotion label {match['label']!r}"
            elif not _UTTERANCE_ID.match(match["utt"]):
                reason = (
                    f"malformed utterance id {match['utt']!r}: the release's ids are SesNN[FM]_<dialog>_<F|M>NNN, "
                    "letters, digits and underscores"
                )
            elif not match["utt"].startswith(f"{dialog}_"):
                reason = f"utterance {match['utt']} is not a turn of dialog {dialog} (its id must start {dialog}_)"
            elif float(match["end"]) <= float(match["start"]):
                reason = f"empty label interval [{match['start']} - {match['end']}] for {match['utt']}"
            if reason or match is None:
                self.problem(path, number, reason or "malformed EmoEvaluation line")
                self.skipped_lines[session] += 1
                continue
            label = _Label(
                session, dialog, path, number, match["utt"], match["label"], float(match["start"]), float(match["end"])
            )
            self.labels_seen.add(label.label)
            self.expected_wavs.add(self.wav_of(label))
            found.append(label)
        return found

    def transcripts(self, path: Path) -> dict[str, _Text]:
        texts: dict[str, _Text] = {}
        for number, line in enumerate(self.read_lines(path), start=1):
            stripped = line.strip()
            if not stripped:
                continue
            match = _TRANSCRIPT.match(stripped)
            if match:
                utt = match["utt"]
                if utt in texts:
                    self.problem(path, number, f"{utt} transcribed twice (first at line {texts[utt].line})")
                    self.ambiguous_text.add(utt)
                    continue
                control = _CONTROL.search(match["text"])
                if control:
                    self.problem(
                        path, number, f"control character U+{ord(control[0]):04X} in the transcription of {utt}"
                    )
                    continue
                texts[utt] = _Text(match["text"].strip(), number, float(match["start"]), float(match["end"]))
            elif _UNNAMED_TRANSCRIPT.match(stripped):
                self.unnamed += 1
            else:
                self.problem(path, number, f"malformed transcription line: {stripped[:80]!r}")
        return texts

    def wav_of(self, label: _Label) -> Path:
        """The label's wav: its names were matched against the release's patterns, so it lies in the root."""
        if not (_DIALOG.match(label.dialog) and _UTTERANCE_ID.match(label.utt)):
            raise CorpusError(f"{label.path}:{label.line}: {label.utt!r} cannot name a file in the corpus")
        return self.root / f"Session{label.session}" / "sentences" / "wav" / label.dialog / f"{label.utt}.wav"

    def duration(self, label: _Label, wav: Path) -> float | None:
        info = wav_header(wav)
        if isinstance(info, str):
            self.drop(label, wav, None, info)
            return None
        channels = f"{info.channels} channel{'s' if info.channels != 1 else ''}"
        self.formats[f"{info.samplerate} Hz, {channels}, {info.subtype}"] += 1
        return info.frames / info.samplerate

    def is_first(self, label: _Label) -> bool:
        first = self.first.setdefault(label.utt, label)
        if first is label:
            return True
        self.repeated.setdefault(label.utt, label)
        self.drop(label, label.path, label.line, f"{label.utt} labelled twice: here and at {first.path}:{first.line}")
        return False

    def utterance(self, label: _Label, texts: dict[str, _Text], transcript_file: Path) -> Utterance | None:
        """The six-class utterance of a label line, or None (after a problem) when it cannot be used."""
        utt = label.utt
        if utt in self.ambiguous_text:
            self.drop(label, label.path, label.line, f"{utt} is transcribed more than once in {transcript_file}")
            return None
        text = texts.get(utt)
        if text is None:
            self.drop(label, label.path, label.line, f"{utt} has no line in {transcript_file}")
            return None
        if not text.text:
            self.drop(
                label,
                transcript_file,
                text.line,
                f"empty transcription for {utt} (labelled {label.label} at {label.path}:{label.line})",
            )
            return None
        wav = self.wav_of(label)
        if not wav.is_file():
            self.drop(label, wav, None, f"missing wav for {utt} ({label.path}:{label.line})")
            return None
        tolerance = duration_tolerance(label.end - label.start)
        if abs(text.start - label.start) > tolerance or abs(text.end - label.end) > tolerance:
            self.drop(
                label,
                transcript_file,
                text.line,
                f"{utt} is transcribed at [{text.start:.4f}-{text.end:.4f}] but labelled at "
                f"[{label.start:.4f} - {label.end:.4f}] ({label.path}:{label.line}; tolerance {tolerance:.3f} s)",
            )
            return None
        duration = self.duration(label, wav)
        if duration is None:
            return None
        interval = label.end - label.start
        if abs(duration - interval) > duration_tolerance(interval):
            self.drop(
                label,
                label.path,
                label.line,
                f"{wav} lasts {duration:.3f} s but its label interval [{label.start:.4f} - {label.end:.4f}] "
                f"lasts {interval:.3f} s (tolerance {duration_tolerance(interval):.3f} s)",
            )
            return None
        return Utterance(
            utterance_id=utt,
            session=label.session,
            speaker=speaker_of(utt),
            dialog=label.dialog,
            label=label.label,
            text=text.text,
            wav_path=str(wav),
            duration=round(duration, 4),
            start=label.start,
            end=label.end,
        )

    def session(self, session: int) -> None:
        session_dir = self.root / f"Session{session}"
        emo_dir = session_dir / "dialog" / "EmoEvaluation"
        if not emo_dir.is_dir():
            raise CorpusError(f"{emo_dir}: missing EmoEvaluation folder (is {self.root} an IEMOCAP_full_release?)")
        summary_files = sorted(p for p in emo_dir.glob("*.txt") if p.is_file() and not _is_hidden(p))
        if not summary_files:
            raise CorpusError(f"{emo_dir}: no EmoEvaluation summary files")
        wav_root = session_dir / "sentences" / "wav"
        summarized = {p.stem for p in summary_files}
        for wav_dir in sorted(wav_root.iterdir() if wav_root.is_dir() else []):
            if wav_dir.is_dir() and not _is_hidden(wav_dir) and wav_dir.name not in summarized:
                # the dialog's utterances would vanish from the benchmark without a word
                self.problem(
                    emo_dir / f"{wav_dir.name}.txt", None, f"missing: dialog {wav_dir.name} has wavs but no labels"
                )
        for summary_file in summary_files:
            dialog = summary_file.stem
            named = _DIALOG.match(dialog)
            if not named or int(named["session"]) != session:
                # a dialog name becomes a path, and a Session-2 dialog filed in Session1 is a misplaced copy
                self.problem(
                    summary_file, None, f"{dialog!r} is not a Session{session} dialog name (Ses{session:02d}[FM]_...)"
                )
                continue
            transcript_file = session_dir / "dialog" / "transcriptions" / f"{dialog}.txt"
            texts = None
            if transcript_file.is_file():
                texts = self.transcripts(transcript_file)
            else:
                self.problem(transcript_file, None, f"missing transcription for dialog {dialog}")
            labels = list(self.summaries(summary_file, session, dialog))
            if not labels:
                self.problem(summary_file, None, "no label lines (an empty or cut-off EmoEvaluation file)")
            for label in labels:
                if not self.is_first(label):
                    continue
                if texts is None:
                    self.skipped_lines[session] += 1  # listed once, as the missing transcription
                    continue
                if label.label not in EMOTIONS:
                    self.kept.append(_Kept(label, None))
                    self.unscored_row(label, texts, session_dir)
                    continue
                utterance = self.utterance(label, texts, transcript_file)
                if utterance is not None:
                    self.kept.append(_Kept(label, utterance))

    def unscored_row(self, label: _Label, texts: dict[str, _Text], session_dir: Path) -> None:
        """Keep a rated utterance outside the six classes where it is complete, quietly: not benchmark data."""
        wav = session_dir / "sentences" / "wav" / label.dialog / f"{label.utt}.wav"
        text = texts[label.utt].text if label.utt in texts else ""
        duration = _quiet_duration(wav) if text else None
        if duration is not None:
            self.unscored[label.utt] = Utterance(
                utterance_id=label.utt,
                session=label.session,
                speaker=speaker_of(label.utt),
                dialog=label.dialog,
                label=label.label,
                text=text,
                wav_path=str(wav),
                duration=round(duration, 4),
                start=label.start,
                end=label.end,
            )

    def finish(self) -> list[_Kept]:
        """Drop the first occurrence of every duplicated id too: no copy is more trustworthy than another."""
        kept = []
        for k in self.kept:
            again = self.repeated.get(k.label.utt)
            if again is None:
                kept.append(k)
            else:
                self.drop(
                    k.label,
                    k.label.path,
                    k.label.line,
                    f"{k.label.utt} labelled twice: here and at {again.path}:{again.line}",
                )
        return kept

    def scan_wavs(self, session: int) -> tuple[list[str], int]:
        """Wavs no label line points to: (orphans, relative to root; the number of unlabelled XX turns)."""
        wav_root = self.root / f"Session{session}" / "sentences" / "wav"
        orphans: list[str] = []
        xx = 0
        if not wav_root.is_dir():
            return orphans, xx
        for folder in sorted(p for p in wav_root.iterdir() if p.is_dir() and not _is_hidden(p)):
            for wav in sorted(folder.glob("*.wav")):
                if _is_hidden(wav) or wav in self.expected_wavs:
                    continue
                if _XX_TURN.search(wav.stem):
                    xx += 1
                else:
                    orphans.append(wav.relative_to(self.root).as_posix())
        return orphans, xx


def _quiet_duration(wav: Path) -> float | None:
    info = wav_header(wav)  # missing, corrupt or empty: the row is simply not kept
    return None if isinstance(info, str) else info.frames / info.samplerate


def _unknown_entries(root: Path) -> list[str]:
    known = KNOWN_ROOT_ENTRIES | {f"Session{s}" for s in SESSIONS}
    return sorted(
        p.name
        for p in root.iterdir()
        if p.name not in known and not _is_hidden(p) and not p.name.upper().startswith("README")
    )


def _demo_marker(root: Path) -> dict[str, Any] | None:
    path = root / DEMO_MARKER
    if not path.is_file():
        return None
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.warning("%s: unreadable demo marker (%s); the corpus is still reported as the demo", path, err)
        return {}
    return content if isinstance(content, dict) else {}


def load_corpus(root: str | Path, skip_bad: bool = False, sessions: tuple[int, ...] = SESSIONS) -> Corpus:
    """Read an IEMOCAP_full_release tree.

    Args:
        root: the ``IEMOCAP_full_release`` directory.
        skip_bad: skip (and list in ``Corpus.skipped``) malformed or duplicated lines, missing or empty
            transcripts, unreadable wavs and wavs whose length does not match their label interval, instead
            of raising ``CorpusError``. A duplicated utterance id loses every occurrence.
        sessions: which sessions to read.
    """
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: corpus directory does not exist")
    reader = _Reader(root, skip_bad)
    try:
        for session in sessions:
            reader.session(session)
        kept = reader.finish()
        orphans, xx = [], 0
        for session in sessions:
            found, n_xx = reader.scan_wavs(session)
            orphans += found
            xx += n_xx
        unknown = _unknown_entries(root)
    except PermissionError as err:  # a folder (or file) this user may not read: one line, with what to do
        where = err.filename or root
        raise CorpusError(
            f"{where}: permission denied; the corpus must be readable by this user (e.g. chmod -R u+rX {root})"
        ) from None
    utterances = [k.utterance for k in kept if k.utterance is not None]
    per_session: dict[int, Counter[str]] = {s: Counter() for s in sessions}
    for k in kept:
        per_session[k.label.session][k.label.label] += 1
    corpus = Corpus(
        root,
        utterances,
        label_table(per_session, EMOTIONS, reader.labels_seen),
        reader.skipped,
        reader.unnamed,
        skipped_label_lines={s: reader.skipped_lines[s] for s in sessions},
        decode_warnings=reader.decode_warnings,
        wav_formats=dict(sorted(reader.formats.items())),
        orphan_wavs=orphans,
        xx_wavs=xx,
        unknown_entries=unknown,
        demo=_demo_marker(root),
        excluded=[reader.unscored[k.label.utt] for k in kept if k.utterance is None and k.label.utt in reader.unscored],
    )
    log.info(
        "read %d utterances in six classes out of %d labelled (%d label lines skipped) from %s",
        len(utterances),
        corpus.n_labelled,
        corpus.n_skipped_label_lines,
        root,
    )
    other = sum(n for f, n in reader.formats.items() if not f.startswith(f"{STANDARD_WAV[0]} Hz, 1 channel,"))
    if other:
        log.warning("%d wavs are not 16 kHz mono (listed by `harness data inspect`): %s", other, EXTRACTOR_NOTE)
    if orphans or corpus.unknown_entries:
        log.warning(
            "%d wavs without a label line and %d unknown entries at %s (listed by `harness.data inspect`)",
            len(orphans),
            len(corpus.unknown_entries),
            root,
        )
    return corpus


def counts_table(corpus: Corpus) -> pd.DataFrame:
    """Per session: label lines kept per label, the six-class and all-label totals, and the lines skipped.

    A label column counts the label lines that were read and kept. For the six classes that is exactly
    the utterances in ``corpus.utterances`` (transcript, wav and duration checked); for the excluded labels
    it is the well-formed, unduplicated lines (their transcripts and wavs are never used, so not checked).
    ``skipped`` counts the label lines ``skip_bad`` dropped, whatever their label (malformed, duplicated,
    missing or empty transcript, missing, unreadable or mis-sized wav), so ``all_labelled + skipped`` is
    every summary line in the EmoEvaluation files read.
    """
    table = corpus.label_counts.copy()
    six = [label for label in EMOTIONS if label in table.columns]
    table["six_class"] = table[six].sum(axis=1)
    table["all_labelled"] = corpus.label_counts.sum(axis=1)
    table["skipped"] = [corpus.skipped_label_lines.get(s, 0) for s in table.index]
    table.loc["total"] = table.sum(axis=0)
    return table
