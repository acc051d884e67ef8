"""Generated corpora in other layouts than IEMOCAP's, for tests and demos: a manifest corpus and CREMA-D.

Both are cut from the demo corpus (``harness.corpus.demo``, its audio and its speakers), so that they
carry the same learnable audio cues and no second generator has to be kept in step with it:

* ``write_manifest_corpus``: ``wav/<utterance_id>.wav`` copies, ``manifest.csv`` with the issue's columns
  (labels spelt out in English: ``neutral``, ``angry`` ...) and ``manifest.yaml`` mapping them back to
  IEMOCAP's names, with ``calm`` (the demo's ``xxx``) mapped to null. Groups are the demo's sessions.
* ``write_msp_podcast``: ``Labels/labels_consensus.csv``, ``Audios/MSP-PODCAST_*.wav`` and
  ``Transcripts/*.txt`` for the demo's turns, Sessions 1-3 as Train, 4 Development and 5 Test1.
* ``write_crema_d``: ``AudioWAV/<ActorID>_<Sentence>_<Emotion>_<Level>.wav`` for the demo's neu ang hap
  sad (and its fea and dis) turns; the ten demo speakers become actors 1001-1010, which the CREMA-D reader
  puts in five groups of two. The text is the file name's sentence, as in CREMA-D.

Each root carries ``HARNESS_SYNTHETIC_CORPUS`` (JSON), so the source label of every report says the data
is generated, never the real corpus.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from harness.corpus.crema_d import AUDIO_DIR, LABELS, SENTENCES
from harness.corpus.demo import ensure_demo_corpus
from harness.corpus.iemocap import Corpus, load_corpus
from harness.paths import default_cache_dir

log = logging.getLogger(__name__)

SYNTHETIC_MARKER = "HARNESS_SYNTHETIC_CORPUS"
SYNTHETIC_VERSION = 1
ENGLISH: dict[str, str] = {
    "neu": "neutral",
    "ang": "angry",
    "hap": "happy",
    "sad": "sad",
    "fru": "frustrated",
    "exc": "excited",
    "xxx": "calm",
}
_CREMA_LEVELS = ("LO", "MD", "HI", "XX")


def _demo(cache_dir: str | Path | None) -> Corpus:
    return load_corpus(ensure_demo_corpus(cache_dir))


def _mark(root: Path, layout: str) -> None:
    marker = {"corpus": "harness synthetic corpus, cut from the demo corpus; not real data", "layout": layout}
    (root / SYNTHETIC_MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


def read_marker(root: Path) -> str | None:
    """The layout a synthetic corpus at ``root`` imitates, or None for any other folder."""
    path = root / SYNTHETIC_MARKER
    if not path.is_file():
        return None
    try:
        return str(json.loads(path.read_text(encoding="utf-8")).get("layout", "unknown"))
    except (OSError, ValueError, AttributeError):
        return "unknown"


def write_manifest_corpus(out: str | Path, cache_dir: str | Path | None = None) -> Path:
    """Write the manifest corpus to folder ``out``; returns the manifest's path."""
    out = Path(out)
    (out / "wav").mkdir(parents=True, exist_ok=True)
    demo = _demo(cache_dir)
    rows = sorted(demo.utterances + [u for u in demo.excluded if u.label == "xxx"], key=lambda u: u.utterance_id)
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["utterance_id", "wav_path", "text", "label", "speaker", "group", "dialog", "start", "end"])
        for u in rows:
            shutil.copyfile(u.wav_path, out / "wav" / f"{u.utterance_id}.wav")
            group = f"group{u.session}"
            writer.writerow(
                [u.utterance_id, f"wav/{u.utterance_id}.wav", u.text, ENGLISH[u.label], u.speaker, group]
                + [u.dialog, f"{u.start:.4f}", f"{u.end:.4f}"]
            )
    labels = "\n".join(f"  {name}: {'null' if code == 'xxx' else code}" for code, name in ENGLISH.items())
    (out / "manifest.yaml").write_text(f"# the English names of manifest.csv -> IEMOCAP's\nlabels:\n{labels}\n")
    _mark(out, "manifest")
    return out / "manifest.csv"


def write_crema_d(out: str | Path, cache_dir: str | Path | None = None) -> Path:
    """Write the CREMA-D-layout corpus under folder ``out``; returns the release root (holding AudioWAV)."""
    out = Path(out)
    audio = out / AUDIO_DIR
    audio.mkdir(parents=True, exist_ok=True)
    demo = _demo(cache_dir)
    actors = {s: 1001 + k for k, s in enumerate(sorted({u.speaker for u in demo.utterances}))}
    emotion = {code: name for name, code in LABELS.items()}
    taken: Counter[tuple[int, str]] = Counter()
    for u in demo.utterances + demo.excluded:
        if u.label not in emotion or u.speaker not in actors:
            continue
        actor = actors[u.speaker]
        k = taken[actor, u.label]  # a distinct (sentence, level) per actor and emotion, as in the release
        taken[actor, u.label] += 1
        sentence = list(SENTENCES)[k % len(SENTENCES)]
        level = _CREMA_LEVELS[(k // len(SENTENCES)) % len(_CREMA_LEVELS)]
        shutil.copyfile(u.wav_path, audio / f"{actor}_{sentence}_{emotion[u.label]}_{level}.wav")
    with open(out / "VideoDemographics.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["ActorID", "Age", "Sex", "Race", "Ethnicity"])
        for speaker, actor in actors.items():
            sex = "Female" if speaker.endswith("F") else "Male"
            writer.writerow([actor, 30, sex, "Unknown", "Not Hispanic"])
    _mark(out, "CREMA-D")
    return out


def write_msp_podcast(out: str | Path, cache_dir: str | Path | None = None) -> Path:
    """Write the MSP-Podcast-layout corpus under folder ``out``; returns the release root. The ten demo
    speakers become SpkrID 1-10 (five groups of two), Sessions 1-3 Train, 4 Development, 5 Test1; the
    demo's xxx turns become X (no agreement) and two turns per session have an unknown speaker."""
    out = Path(out)
    for folder in ("Labels", "Audios", "Transcripts"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    demo = _demo(cache_dir)
    speakers = {s: k + 1 for k, s in enumerate(sorted({u.speaker for u in demo.utterances}))}
    codes = {"neu": "N", "ang": "A", "hap": "H", "sad": "S", "xxx": "X", "sur": "U", "fea": "F", "dis": "D"}
    split = {1: "Train", 2: "Train", 3: "Train", 4: "Development", 5: "Test1"}
    unknown: Counter[int] = Counter()
    with open(out / "Labels" / "labels_consensus.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set"])
        for k, u in enumerate(sorted(demo.utterances + demo.excluded, key=lambda u: u.utterance_id)):
            if u.label not in codes:
                continue
            name = f"MSP-PODCAST_{u.session:04d}_{k:04d}.wav"
            shutil.copyfile(u.wav_path, out / "Audios" / name)
            (out / "Transcripts" / f"{Path(name).stem}.txt").write_text(u.text + "\n", encoding="utf-8")
            speaker = str(speakers[u.speaker]) if unknown[u.session] >= 2 else "Unknown"
            unknown[u.session] += 1
            gender = "Female" if u.speaker.endswith("F") else "Male"
            writer.writerow([name, codes[u.label], 4.0, 4.0, 4.0, speaker, gender, split[u.session]])
    _mark(out, "MSP-Podcast")
    return out


def _ensure(name: str, write: Callable[[Path, str | Path | None], Path], cache_dir: str | Path | None) -> Path:
    key = hashlib.sha1(f"{name}-{SYNTHETIC_VERSION}".encode()).hexdigest()[:10]
    base = Path(cache_dir or default_cache_dir()) / f"synthetic_{name}_{key}"
    base.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(base) + ".lock"):
        done = base / "COMPLETE"
        if not done.exists():
            log.info("generating the synthetic %s corpus in %s", name, base)
            tmp = base.with_name(base.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            write(tmp / "corpus", cache_dir)
            shutil.rmtree(base, ignore_errors=True)
            tmp.rename(base)
            done.write_text("ok\n")
    return base / "corpus"


def ensure_manifest_corpus(cache_dir: str | Path | None = None) -> Path:
    """The synthetic manifest corpus, built once in the cache; returns the manifest's path."""
    return _ensure("manifest", write_manifest_corpus, cache_dir) / "manifest.csv"


def ensure_msp_podcast(cache_dir: str | Path | None = None) -> Path:
    """The synthetic MSP-Podcast release, built once in the cache; returns its root."""
    return _ensure("msp_podcast", write_msp_podcast, cache_dir)


def ensure_crema_d(cache_dir: str | Path | None = None) -> Path:
    """The synthetic CREMA-D release, built once in the cache; returns its root."""
    return _ensure("crema_d", write_crema_d, cache_dir)
