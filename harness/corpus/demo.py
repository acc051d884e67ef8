"""A small synthetic corpus written in the exact ``IEMOCAP_full_release`` layout and file formats.

It exists so that the demo, the tests and CI run the very loader code path a real IEMOCAP copy goes
through, including the real corpus's quirks: per-annotator subfolders in EmoEvaluation, macOS ``._*``
files, transcription lines without an id (``M: sorry``), ``...XX0`` ids with no label, noise tokens such as
``[LAUGHTER]``, CRLF line endings, odd dialog names (``Ses03M_impro05a``, ``Ses05M_script01_1b``) and
transcription lines out of time order (the scripted dialogs list one speaker's lines, then the other's).

Learnable cues are planted so that each modality alone is only partly informative and fusion helps:
every class is a distinct (audio style, word group) pair, and each audio style and each word group is
shared by two classes. Audio alone or text alone can separate at most two of six classes per cue, fusion
all six. A ``flat_turns`` share of turns carries no cue at all (a plain voice, filler words only) and each
remaining cue is replaced by a random one with probability ``cue_noise``, so that no turn's label is
certain from the turn alone and a flat turn's label is a guess.

Dialogs have emotional persistence, as real ones do: with probability ``persistence`` a turn keeps the
previous turn's label (either speaker's), else its label is drawn from the session's remaining labels,
so the per-session label counts stay exact. A flat turn can then be recognised from its neighbours:
dialogue context helps here, as it does on IEMOCAP.

The defaults are sized so that the demo's ten minutes decide its fusion contrasts (issue 26): an ideal
observer that knows the generator gets about 90% of six-class turns right from the turn alone and about
55% from one modality alone (65.6% and 43.7% at the earlier ``flat_turns=0.4, cue_noise=0.05``), and each
session holds 90 six-class turns of 0.5-1 s (``scale=2``), enough test turns that a session's weighted F1
is not mostly sampling noise, at the audio length (and so the feature cost) of 45 turns of 1-2 s.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile
from filelock import FileLock

from harness.corpus.iemocap import DEMO_MARKER, EMOTION_NAMES
from harness.paths import default_cache_dir

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
DEMO_VERSION = 3

# class -> (audio style, word group); each style and each group covers exactly two classes.
CUES: dict[str, tuple[int, int]] = {
    "neu": (0, 0),
    "sad": (0, 1),
    "ang": (1, 1),
    "exc": (1, 2),
    "hap": (2, 2),
    "fru": (2, 0),
}
WORD_GROUPS: tuple[tuple[str, ...], ...] = (
    ("okay", "schedule", "office", "form", "line", "paper", "number", "address"),
    ("hate", "awful", "lost", "never", "terrible", "stupid", "gone", "worst"),
    ("love", "wonderful", "amazing", "great", "yes", "beautiful", "wow", "fantastic"),
)
FILLERS = ("i", "you", "the", "it", "was", "just", "really", "that", "we", "so", "know", "think", "and", "my")
NOISE_TOKENS = ("[LAUGHTER]", "[BREATHING]", "[GARBAGE]")
EXCLUDED_PER_SESSION = {"xxx": 6, "oth": 1, "sur": 1, "fea": 1}
SIX_CLASS_PER_SESSION = {"neu": 10, "ang": 6, "hap": 5, "sad": 7, "fru": 10, "exc": 7}
# The release's category names (its annotator lines spell them out)
CATEGORY_NAMES = EMOTION_NAMES | {"xxx": "Other", "oth": "Other", "sur": "Surprise", "fea": "Fear", "dis": "Disgust"}


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 0
    flat_turns: float = 0.1  # probability that a turn carries no cue in either modality
    cue_noise: float = 0.02  # probability that a modality's cue is replaced by a random one
    persistence: float = 0.95  # probability that a turn keeps the previous turn's label in its dialog
    scale: int = 2  # multiplies every per-session count (at scale 1: 45 six-class turns) and the dialogs
    min_seconds: float = 0.5
    max_seconds: float = 1.0


def dialogs_of(session: int, scale: int = 1) -> list[str]:
    """Three dialogs per session (times ``scale``); sessions 3 and 5 carry the real corpus's odd dialog names."""
    s = f"Ses0{session}"
    names = [f"{s}F_impro01", f"{s}M_impro02", f"{s}F_script01_1"]
    if session == 3:
        names[1] = "Ses03M_impro05a"
    if session == 5:
        names[2] = "Ses05M_script01_1b"
    return names + [f"{s}{'FM'[k % 2]}_impro{10 + k}" for k in range(3 * (scale - 1))]


def expected_counts(scale: int | None = None) -> dict[int, dict[str, int]]:
    """Per-session label counts the generator writes at ``scale`` (default: the demo's); Session 2 also
    holds one ``dis`` per unit of scale."""
    scale = DemoConfig.scale if scale is None else scale
    counts = {}
    for session in range(1, 6):
        c = dict(SIX_CLASS_PER_SESSION) | dict(EXCLUDED_PER_SESSION)
        if session == 2:
            c["dis"] = 1
        counts[session] = {label: n * scale for label, n in c.items()}
    return counts


def _synth_audio(rng: np.random.Generator, style: int | None, base_pitch: float, seconds: float) -> np.ndarray:
    """A voiced tone in one of three styles; ``None`` is a plain voice that carries no cue."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    harmonics: tuple[float, ...]
    if style is None:  # plain: the speaker's own pitch, steady, two harmonics
        pitch = base_pitch * np.ones_like(t)
        harmonics, amplitude = (1.0, 0.4), 0.2
        envelope = np.ones_like(t)
    elif style == 0:  # soft, low and slow: low arousal
        pitch = base_pitch * 0.8 * (1 - 0.05 * t / seconds)
        harmonics, amplitude = (1.0, 0.3), 0.12
        envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 2.0 * t) ** 2
    elif style == 1:  # loud and harsh: rich harmonics and noise bursts
        pitch = base_pitch * 1.25 * np.ones_like(t)
        harmonics, amplitude = (1.0, 0.8, 0.6, 0.5, 0.4), 0.45
        envelope = 0.7 + 0.3 * (rng.random(len(t) // 800 + 1).repeat(800)[: len(t)])
    else:  # bright with vibrato
        pitch = base_pitch * 1.5 * (1 + 0.05 * np.sin(2 * np.pi * 6.0 * t))
        harmonics, amplitude = (1.0, 0.5, 0.2), 0.3
        envelope = np.ones_like(t)
    pitch = pitch * rng.uniform(0.93, 1.07)
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    wave = sum(weight * np.sin((k + 1) * phase) for k, weight in enumerate(harmonics))
    wave = amplitude * envelope * wave / sum(harmonics)
    if style == 1:
        wave += 0.08 * rng.standard_normal(len(t)) * (rng.random(len(t)) < 0.3)
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.05)  # 50 ms fades: no clicks at the edges
    wave = wave * fade + rng.uniform(0.005, 0.03) * rng.standard_normal(len(t))
    return np.clip(wave, -1, 1).astype(np.float32)


def _synth_text(rng: np.random.Generator, group: int | None) -> str:
    cues = [] if group is None else list(rng.choice(WORD_GROUPS[group], size=rng.integers(2, 4), replace=False))
    words = cues + list(rng.choice(FILLERS, size=rng.integers(2, 5)))
    rng.shuffle(words)
    if rng.random() < 0.15:
        words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(NOISE_TOKENS)))
    sentence = " ".join(words)
    return sentence[0].upper() + sentence[1:] + "."


def _cue(rng: np.random.Generator, cue: int, flat: bool, noise: float) -> int | None:
    if flat:
        return None
    return int(rng.integers(0, 3)) if rng.random() < noise else cue


def _dialog_labels(
    rng: np.random.Generator, counts: dict[str, int], n_dialogs: int, persistence: float
) -> list[list[str]]:
    """The session's labels (exactly ``counts``) cut into consecutive dialogs, each a persistent chain."""
    remaining = dict(counts)
    total = sum(counts.values())
    dialogs = []
    for d in range(n_dialogs):
        chain: list[str] = []
        for _ in range(total // n_dialogs + (d < total % n_dialogs)):
            if chain and remaining[chain[-1]] > 0 and rng.random() < persistence:
                label = chain[-1]
            else:
                options = [label for label, n in remaining.items() if n > 0]
                weights = np.array([remaining[label] for label in options], dtype=float)
                label = options[int(rng.choice(len(options), p=weights / weights.sum()))]
            remaining[label] -= 1
            chain.append(label)
        dialogs.append(chain)
    return dialogs


def _vad(rng: np.random.Generator) -> str:
    return ", ".join(f"{v:.4f}" for v in rng.uniform(1.5, 4.5, size=3).round(1))


def _write_text(path: Path, lines: list[str], crlf: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    newline = "\r\n" if crlf else "\n"
    path.write_bytes(newline.join(lines).encode("utf-8") + newline.encode())


def _write_session(root: Path, session: int, config: DemoConfig) -> None:
    rng = np.random.default_rng([config.seed, session])
    base_pitch = {"F": rng.uniform(195, 235), "M": rng.uniform(105, 135)}
    dialogs = dialogs_of(session, config.scale)
    chains = _dialog_labels(rng, expected_counts(config.scale)[session], len(dialogs), config.persistence)
    crlf = session == 2  # part of the real corpus has Windows line endings
    session_dir = root / f"Session{session}"
    emo_dir = session_dir / "dialog" / "EmoEvaluation"
    for dialog, chunk in zip(dialogs, chains):
        summary = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        transcript: list[str] = []
        clock = 2.0 + rng.uniform(0, 3)
        turns: Counter[str] = Counter()
        prefix = f"{dialog}_"
        for i, label in enumerate(chunk):
            gender = "FM"[i % 2]
            utt = f"{prefix}{gender}{turns[gender]:03d}"
            turns[gender] += 1
            seconds = rng.uniform(config.min_seconds, config.max_seconds)
            start, end = clock, clock + seconds
            clock = end + rng.uniform(0.3, 2.0)
            audio_cue, text_cue = CUES.get(label, (int(rng.integers(0, 3)), int(rng.integers(0, 3))))
            flat = bool(rng.random() < config.flat_turns)
            audio = _synth_audio(rng, _cue(rng, audio_cue, flat, config.cue_noise), base_pitch[gender], seconds)
            wav = session_dir / "sentences" / "wav" / dialog / f"{utt}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(str(wav), audio, SAMPLE_RATE, subtype="PCM_16")
            text = _synth_text(rng, _cue(rng, text_cue, flat, config.cue_noise))
            summary += [f"[{start:.4f} - {end:.4f}]\t{utt}\t{label}\t[{_vad(rng)}]"]
            summary += [f"C-E{k}:\t{CATEGORY_NAMES[label]};\t()" for k in (1, 2, 3)]
            summary += [
                f"A-E{k}:\tval {rng.integers(1, 6)}; act {rng.integers(1, 6)}; dom  {rng.integers(1, 6)};\t()"
                for k in (1, 2)
            ]
            summary += [""]
            transcript.append(f"{utt} [{start:08.4f}-{end:08.4f}]: {text}")
            if i == 2:  # transcribers left some turns without an id
                transcript.append("M: sorry")
        # An "XX" turn: transcribed, wav present, never rated, so it has no label.
        xx = f"{prefix}FXX0"
        transcript.append(f"{xx} [{clock:08.4f}-{clock + 1:08.4f}]: [GARBAGE] um")
        if "script" in dialog:  # one speaker's lines, then the other's: file order is not time order
            transcript.sort(key=lambda line: line.split(" ")[0][-4:-3] if line.startswith("Ses") else "~")
        wav = session_dir / "sentences" / "wav" / dialog / f"{xx}.wav"
        soundfile.write(str(wav), _synth_audio(rng, 0, base_pitch["F"], 1.0), SAMPLE_RATE, subtype="PCM_16")
        _write_text(emo_dir / f"{dialog}.txt", summary, crlf)
        _write_text(session_dir / "dialog" / "transcriptions" / f"{dialog}.txt", transcript, crlf)
        for sub, suffix in (("Categorical", "e1_cat"), ("Attribute", "e1_atr"), ("Self-evaluation", "self")):
            _write_text(emo_dir / sub / f"{dialog}_{suffix}.txt", [f"{utt} :Neutral; ()"], crlf=False)
    # macOS AppleDouble junk, as found in copies of the corpus made on a Mac.
    junk = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "
    (emo_dir / f"._{dialogs[0]}.txt").write_bytes(junk)
    (session_dir / "dialog" / "transcriptions" / f"._{dialogs[0]}.txt").write_bytes(junk)
    (session_dir / "sentences" / "wav" / dialogs[0] / f"._{dialogs[0]}_F000.wav").write_bytes(junk)


def write_demo_corpus(root: str | Path, config: DemoConfig = DemoConfig()) -> Path:
    """Write the demo corpus under ``root/IEMOCAP_full_release`` (with its marker file) and return that directory."""
    out = Path(root) / "IEMOCAP_full_release"
    for session in range(1, 6):
        _write_session(out, session, config)
    # Lets the reader report a copy passed with --data as the demo, not as IEMOCAP.
    marker = {"corpus": "harness demo corpus, not IEMOCAP", "demo_version": DEMO_VERSION, "config": asdict(config)}
    (out / DEMO_MARKER).write_text(json.dumps(marker, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    return out


def ensure_demo_corpus(cache_dir: str | Path | None = None, config: DemoConfig = DemoConfig()) -> Path:
    """Build the demo corpus once (deterministically) in the cache and return its root."""
    key = hashlib.sha1(json.dumps([DEMO_VERSION, asdict(config)], sort_keys=True).encode()).hexdigest()[:10]
    base = Path(cache_dir or default_cache_dir()) / f"demo_corpus_{key}"
    done = base / "COMPLETE"
    base.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(base) + ".lock"):
        if not done.exists():
            log.info("generating the demo corpus in %s", base)
            tmp = base.with_name(base.name + ".tmp")
            if tmp.exists():
                shutil.rmtree(tmp)
            write_demo_corpus(tmp, config)
            if base.exists():
                shutil.rmtree(base)
            tmp.rename(base)
            done.write_text("ok\n")
    return base / "IEMOCAP_full_release"
