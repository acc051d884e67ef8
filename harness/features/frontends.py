"""Per-utterance front ends: log-mel, MFCC, waveform, words and subword ids, computed from the manifest.

``frontend(spec)`` returns the function the cache calls to compute a feature for every manifest row.
Pretrained encoders' layer means are not here: each such encoder says how they are computed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import soundfile

from harness.errors import UserError
from harness.features.spec import FeatureSpec

log = logging.getLogger(__name__)

_NOISE = re.compile(r"\[[A-Za-z_ ]+\]")  # [LAUGHTER], [BREATHING], [GARBAGE] ...
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
Compute = Callable[[pd.DataFrame], Iterator[Any]]


def clean_text(text: str) -> str:
    """Transcript text without IEMOCAP's bracketed noise tokens."""
    return " ".join(_NOISE.sub(" ", text).split())


def words_of(text: str) -> list[str]:
    return _WORD.findall(clean_text(text).lower())


def load_audio(path: str, sample_rate: int) -> np.ndarray:
    """Mono float32 waveform at ``sample_rate``; a file at another rate is resampled (and logged)."""
    try:
        audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as err:
        raise UserError(f"{path}: unreadable wav ({err})") from None
    if not np.isfinite(audio).all():  # a float wav can hold NaN or inf; every feature would be NaN
        raise UserError(f"{path}: wav samples that are not finite numbers (NaN or inf)")
    audio = audio.mean(axis=1)
    if rate != sample_rate:
        import librosa

        log.warning("resampling %s from %d Hz to %d Hz", path, rate, sample_rate)
        audio = librosa.resample(audio, orig_sr=rate, target_sr=sample_rate)
    return audio


def spectral(spec: FeatureSpec, path: str) -> np.ndarray:
    return spectral_of(spec, load_audio(path, spec["sample_rate"]))


def spectral_of(spec: FeatureSpec, audio: np.ndarray) -> np.ndarray:
    """Log-mel (or MFCC) frames of a mono float waveform at ``spec``'s sample rate."""
    import librosa

    rate = spec["sample_rate"]
    n_fft = int(round(spec["win_ms"] * rate / 1000))
    hop = int(round(spec["hop_ms"] * rate / 1000))
    mel = librosa.feature.melspectrogram(
        y=audio, sr=rate, n_fft=n_fft, hop_length=hop, n_mels=spec["n_mels"], center=True
    )
    log_mel = librosa.power_to_db(mel, ref=1.0, top_db=None)
    if spec.kind == "mfcc":
        return librosa.feature.mfcc(S=log_mel, n_mfcc=spec["n_mfcc"]).T.astype(np.float32)
    return log_mel.T.astype(np.float32)  # frames x mel bins


def waveform(path: str, sample_rate: int = 16_000) -> np.ndarray:
    return pcm16(load_audio(path, sample_rate))


def pcm16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16)  # half the memory of float32, lossless for PCM16


def subword_tokenizer(model: str, max_tokens: int) -> Callable[[str], np.ndarray]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    return lambda text: np.asarray(
        tokenizer(clean_text(text), truncation=True, max_length=max_tokens)["input_ids"], dtype=np.int32
    )


def per_utterance(spec: FeatureSpec) -> Callable[[Any], Any]:
    """The function computing one manifest row's feature (a row from ``DataFrame.itertuples``)."""
    if spec.kind in ("logmel", "mfcc"):
        return lambda row: spectral(spec, row.wav_path)
    if spec.kind == "waveform":
        return lambda row: waveform(row.wav_path, spec["sample_rate"])
    if spec.kind == "words":
        return lambda row: words_of(row.text)
    if spec.kind == "subwords":
        tokenize = subword_tokenizer(spec["model"], spec["max_tokens"])
        return lambda row: tokenize(row.text)
    raise ValueError(f"{spec.kind} features are computed by their encoder, not by a front end")


def from_raw(spec: FeatureSpec) -> Callable[[np.ndarray, str], Any]:
    """The feature of ``spec`` from a raw utterance (a float waveform at the spec's rate and its transcript),
    exactly as the cache computes it from a file: what a deployed model runs before the network (latency)."""
    if spec.kind in ("logmel", "mfcc"):
        return lambda audio, text: spectral_of(spec, audio)
    if spec.kind == "waveform":
        return lambda audio, text: pcm16(audio)
    if spec.kind == "words":
        return lambda audio, text: words_of(text)
    if spec.kind == "subwords":
        tokenize = subword_tokenizer(spec["model"], spec["max_tokens"])
        return lambda audio, text: tokenize(text)
    raise ValueError(f"{spec.kind} features are computed by their encoder, not by a front end")


def frontend(spec: FeatureSpec) -> Compute:
    """A compute function for the cache: yields one feature per manifest row, in order."""

    def compute(manifest: pd.DataFrame) -> Iterator[Any]:
        extract = per_utterance(spec)
        for row in manifest.itertuples(index=False):
            yield extract(row)

    return compute
