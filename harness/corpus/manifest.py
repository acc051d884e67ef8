"""Any corpus as a CSV manifest: one row per utterance, read into the same ``Corpus`` as IEMOCAP.

Columns (a header line, UTF-8, comma-separated; any order)::

    utterance_id  letters, digits and . _ - (at most 200 characters), unique
    wav_path      the utterance's wav, relative to the corpus root (or absolute, inside it)
    text          its (gold) transcript, not empty
    label         one of IEMOCAP's six names (neu ang hap sad fru exc), or a name the label map maps
    speaker       who speaks (a speaker must stay in one group)
    group         what leave-one-group-out folds hold out: fold k tests on the k-th group in sorted order
    dialog        optional: turns of one dialog form its context, ordered by ``start`` (default: each
                  utterance is a dialog of its own, so context models see no neighbours)
    start, end    optional: seconds, 0 <= start < end, the turn's place in its dialog
    split         optional: train, validation or test, kept in the manifest for the user's own protocol

``harness data inspect --out`` writes ``session``, ``dialog_type`` and ``duration`` columns too; they are
accepted and recomputed from the other columns, so an inspected IEMOCAP manifest reads back as it was.
Any other column is an error (a misspelt ``lable`` would otherwise be ignored).

The corpus root is the manifest's folder, unless the label map says otherwise. Every ``wav_path`` must
resolve (symbolic links followed) inside the root: ``../../etc/x.wav`` is an error naming the line.

The label map is an optional YAML file beside the manifest, with the manifest's name and ``.yaml``
(``manifest.csv`` -> ``manifest.yaml``). Its keys::

    labels: {angry: ang, happy: hap, excited: exc, calm: null}   # null: counted, never benchmark data
    root: ../audio                                              # the corpus root, relative to the YAML

Groups are numbered 1..N in sorted order (the fold code numbers sessions); the source label that every
report header carries names the groups behind the numbers.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness.corpus.iemocap import EMOTIONS, Corpus, CorpusError, Problem, Utterance
from harness.corpus.reading import label_table, wav_header

log = logging.getLogger(__name__)

REQUIRED_COLUMNS: tuple[str, ...] = ("utterance_id", "wav_path", "text", "label", "speaker", "group")
OPTIONAL_COLUMNS: tuple[str, ...] = ("dialog", "start", "end", "split")
# Written by ``harness data inspect --out``; recomputed here, never trusted.
DERIVED_COLUMNS: tuple[str, ...] = ("session", "dialog_type", "duration")
SPLITS: tuple[str, ...] = ("train", "validation", "test")
LABEL_MAP_KEYS: tuple[str, ...] = ("labels", "root")
MIN_GROUPS = 3  # a test group, a validation group and at least one group to train on
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


@dataclass(frozen=True)
class LabelMap:
    """How the manifest's labels become IEMOCAP's six names (``None``: excluded), and the corpus root."""

    labels: dict[str, str | None] = field(default_factory=dict)
    root: Path | None = None
    path: Path | None = None

    def to_six(self, label: str) -> tuple[bool, str | None]:
        """(known, six-class name or None when excluded)."""
        if label in self.labels:
            return True, self.labels[label]
        if label in EMOTIONS:
            return True, label
        return False, None


def label_map_path(manifest: Path) -> Path:
    return manifest.with_suffix(".yaml")


def read_label_map(manifest: Path) -> LabelMap:
    """The YAML beside ``manifest`` (``manifest.yaml``), or the identity map when there is none."""
    path = label_map_path(manifest)
    if not path.is_file():
        return LabelMap()
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise CorpusError(f"{path}: cannot read the label map ({str(err).splitlines()[0]})") from None
    if content is None:
        return LabelMap(path=path)
    if not isinstance(content, dict):
        raise CorpusError(f"{path}: the label map must be a mapping with keys {', '.join(LABEL_MAP_KEYS)}")
    unknown = sorted(set(map(str, content)) - set(LABEL_MAP_KEYS))
    if unknown:
        raise CorpusError(f"{path}: unknown key(s) {unknown}; the keys are {', '.join(LABEL_MAP_KEYS)}")
    labels = content.get("labels") or {}
    if not isinstance(labels, dict):
        raise CorpusError(f"{path}: labels must map a corpus label to one of {' '.join(EMOTIONS)} or null")
    mapped: dict[str, str | None] = {}
    for name, target in labels.items():
        if target is not None and target not in EMOTIONS:
            raise CorpusError(f"{path}: label {name!r} maps to {target!r}; use one of {' '.join(EMOTIONS)} or null")
        mapped[str(name)] = target
    root = content.get("root")
    if root is not None and not isinstance(root, str):
        raise CorpusError(f"{path}: root must be a folder path (a string)")
    return LabelMap(mapped, (path.parent / root).resolve() if root else None, path)


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` resolves (links followed) inside ``root`` (resolved)."""
    return path.resolve().is_relative_to(root.resolve())


@dataclass(frozen=True)
class _Row:
    line: int
    utterance_id: str
    wav: Path
    text: str
    label: str  # six-class name, or the corpus label when excluded
    six: bool
    speaker: str
    group: str
    dialog: str
    start: float | None
    end: float | None
    split: str | None


class _Reader:
    def __init__(self, path: Path, root: Path, label_map: LabelMap, skip_bad: bool):
        self.path, self.root, self.label_map, self.skip_bad = path, root, label_map, skip_bad
        self.skipped: list[Problem] = []
        self.skipped_groups: Counter[str] = Counter()

    def problem(self, line: int | None, reason: str, group: str | None = None) -> None:
        problem = Problem(str(self.path), line, reason)
        if not self.skip_bad:
            raise CorpusError(str(problem))
        log.warning("skipped %s", problem)
        self.skipped.append(problem)
        if group is not None:
            self.skipped_groups[group] += 1

    def header(self, columns: list[str]) -> None:
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        known = set(REQUIRED_COLUMNS + OPTIONAL_COLUMNS + DERIVED_COLUMNS)
        unknown = [c for c in columns if c not in known]
        repeated = sorted(c for c, n in Counter(columns).items() if n > 1)
        if missing or unknown or repeated:
            parts = [f"missing column(s) {missing}"] if missing else []
            parts += [f"unknown column(s) {unknown}"] if unknown else []
            parts += [f"repeated column(s) {repeated}"] if repeated else []
            raise CorpusError(
                f"{self.path}:1: {'; '.join(parts)} (columns: {', '.join(REQUIRED_COLUMNS)}; optional "
                f"{', '.join(OPTIONAL_COLUMNS)})"
            )

    def row(self, line: int, values: dict[str, str]) -> _Row | str:
        """The checked row, or the reason it is bad."""
        utt = values["utterance_id"].strip()
        if not _ID.match(utt):
            return f"malformed utterance_id {utt[:80]!r} (letters, digits and . _ - only)"
        for column in ("wav_path", "text", "label", "speaker", "group"):
            if not values[column].strip():
                return f"{utt}: empty {column}"
            if "\x00" in values[column]:
                return f"{utt}: a NUL byte in {column}"
        known, six = self.label_map.to_six(values["label"].strip())
        if not known:
            where = f" or in {self.label_map.path}" if self.label_map.path else ""
            return (
                f"{utt}: unknown label {values['label'].strip()!r} (not one of {' '.join(EMOTIONS)}{where}; "
                f"map other labels in {label_map_path(self.path).name})"
            )
        start = end = None
        if (values.get("start") or "").strip() or (values.get("end") or "").strip():
            try:
                start, end = float(values.get("start") or ""), float(values.get("end") or "")
            except ValueError:
                got = f"{values.get('start')!r}, {values.get('end')!r}"
                return f"{utt}: start and end must both be numbers of seconds, got {got}"
            if not 0 <= start < end < float("inf"):
                return f"{utt}: start {start} and end {end} do not make an interval (0 <= start < end)"
        split = (values.get("split") or "").strip() or None
        if split is not None and split not in SPLITS:
            return f"{utt}: split {split!r} is not one of {', '.join(SPLITS)}"
        wav = Path(values["wav_path"].strip())
        wav = wav if wav.is_absolute() else self.root / wav
        if not is_inside(wav, self.root):
            return f"{utt}: wav_path {values['wav_path'].strip()!r} resolves outside the corpus root {self.root}"
        return _Row(
            line,
            utt,
            wav,
            values["text"].strip(),
            six if six is not None else values["label"].strip(),
            six is not None,
            values["speaker"].strip(),
            values["group"].strip(),
            (values.get("dialog") or "").strip() or utt,
            start,
            end,
            split,
        )

    def rows(self) -> list[_Row]:
        try:
            raw = self.path.read_bytes()
        except OSError as err:
            raise CorpusError(f"{self.path}: cannot read ({err.strerror})") from None
        try:
            text = raw.removeprefix(codecs.BOM_UTF8).decode("utf-8")
        except UnicodeDecodeError as err:
            line = raw[: err.start].count(b"\n") + 1
            raise CorpusError(f"{self.path}:{line}: bytes that are not UTF-8 ({raw[err.start : err.end]!r})") from None
        reader = csv.reader(text.splitlines(keepends=True))
        try:
            columns = [c.strip() for c in next(reader)]
        except StopIteration:
            raise CorpusError(f"{self.path}: empty manifest (no header line)") from None
        self.header(columns)
        rows: list[_Row] = []
        first: dict[str, int] = {}
        line = reader.line_num
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                raise CorpusError(f"{self.path}:{reader.line_num}: {err}") from None
            start_line, line = line + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(columns):
                self.problem(start_line, f"{len(cells)} fields, the header has {len(columns)}")
                continue
            values = dict(zip(columns, cells))
            checked = self.row(start_line, values)
            if isinstance(checked, str):
                self.problem(start_line, checked, values["group"].strip() or None)
                continue
            if checked.utterance_id in first:
                self.problem(
                    start_line, f"{checked.utterance_id} listed twice (first at line {first[checked.utterance_id]})"
                )
                continue
            first[checked.utterance_id] = start_line
            rows.append(checked)
        return rows

    def speakers_in_one_group(self, rows: list[_Row]) -> list[_Row]:
        """A speaker in two groups would be tested on with their own voice in training: refused."""
        groups: dict[str, _Row] = {}
        kept = []
        for row in rows:
            other = groups.setdefault(row.speaker, row)
            if other.group != row.group:
                self.problem(
                    row.line,
                    f"speaker {row.speaker!r} is in group {row.group!r} here and in group {other.group!r} at line "
                    f"{other.line}: leave-one-group-out folds would not be speaker-independent",
                    row.group,
                )
                continue
            kept.append(row)
        return kept

    def duration(self, row: _Row) -> float | None:
        if not row.wav.is_file():
            self.problem(row.line, f"{row.utterance_id}: missing wav {row.wav}", row.group)
            return None
        info = wav_header(row.wav)
        if isinstance(info, str):
            self.problem(row.line, f"{row.utterance_id}: {info}: {row.wav}", row.group)
            return None
        return info.frames / info.samplerate


def utterance_of(row: _Row, session: int, duration: float) -> Utterance:
    start = row.start if row.start is not None else 0.0
    return Utterance(
        utterance_id=row.utterance_id,
        session=session,
        speaker=row.speaker,
        dialog=row.dialog,
        label=row.label,
        text=row.text,
        wav_path=str(row.wav),
        duration=round(duration, 4),
        start=start,
        end=row.end if row.end is not None else start + round(duration, 4),
    )


@dataclass(frozen=True)
class ManifestCorpus:
    """What ``read_manifest`` returns: the corpus, and the names behind its group numbers."""

    corpus: Corpus
    groups: dict[int, str]  # fold number -> group name
    splits: dict[str, str]  # utterance id -> split, where the manifest has a split column

    def describe(self) -> str:
        names = ", ".join(f"{k}={v}" for k, v in self.groups.items())
        return f"leave-one-group-out over {len(self.groups)} speaker groups ({names})"


def read_manifest(path: str | Path, skip_bad: bool = False) -> ManifestCorpus:
    """Read a manifest CSV (see the module docstring) into a ``Corpus``.

    Args:
        path: the manifest CSV; a label map ``<name>.yaml`` beside it is read too.
        skip_bad: skip (and list in ``Corpus.skipped``) bad rows instead of raising ``CorpusError``. A bad
            header, bad bytes or a bad label map are raised either way.
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: manifest file does not exist")
    label_map = read_label_map(path)
    root = label_map.root or path.parent.resolve()
    if not root.is_dir():
        raise CorpusError(f"{label_map.path}: root {root} is not a folder")
    reader = _Reader(path, root, label_map, skip_bad)
    rows = reader.speakers_in_one_group(reader.rows())
    names = sorted({row.group for row in rows})
    if len(names) < MIN_GROUPS:
        raise CorpusError(
            f"{path}: {len(names)} group(s) {names}; leave-one-group-out needs at least {MIN_GROUPS} "
            "(a test, a validation and a training group)"
        )
    number = {name: k for k, name in enumerate(names, start=1)}
    utterances: list[Utterance] = []
    excluded: list[Utterance] = []
    counts: dict[int, Counter[str]] = {k: Counter() for k in number.values()}
    for row in rows:
        duration = reader.duration(row)
        if duration is None:
            continue
        utterance = utterance_of(row, number[row.group], duration)
        (utterances if row.six else excluded).append(utterance)
        counts[number[row.group]][row.label] += 1
    corpus = Corpus(
        root,
        utterances,
        label_table(counts, EMOTIONS),
        reader.skipped,
        skipped_label_lines={number[g]: n for g, n in reader.skipped_groups.items() if g in number},
        excluded=excluded,
    )
    log.info("read %d utterances in six classes out of %d from %s", len(utterances), corpus.n_labelled, path)
    return ManifestCorpus(
        corpus,
        {k: name for name, k in number.items()},
        {row.utterance_id: row.split for row in rows if row.split is not None},
    )


def write_manifest(corpus: Corpus, out: str | Path, groups: dict[int, str] | None = None) -> Path:
    """Write ``corpus``'s six-class utterances as a manifest ``read_manifest`` reads back.

    Wav paths are written relative to the manifest's folder when they all lie inside it; otherwise relative
    to the corpus root, which a label map beside the manifest (``<name>.yaml``, ``root:``) then records."""
    out = Path(out)
    frame = corpus.manifest()
    wavs = [Path(w).resolve() for w in frame["wav_path"]]
    base = out.parent.resolve()
    if not all(w.is_relative_to(base) for w in wavs):
        base = corpus.root.resolve()
        label_map_path(out).write_text(
            f"# written with {out.name}: its wav paths are relative to this root\nroot: {json.dumps(str(base))}\n",
            encoding="utf-8",
        )
    frame["wav_path"] = [w.relative_to(base).as_posix() for w in wavs]
    frame["group"] = frame["session"].map(lambda s: (groups or {}).get(int(s), f"Session{int(s)}"))
    ordered = list(REQUIRED_COLUMNS) + ["dialog", "start", "end"]
    frame[ordered + [c for c in frame.columns if c in DERIVED_COLUMNS]].to_csv(out, index=False)
    return out
