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
    import librosa

    rate = spec["sample_rate"]
    audio = load_audio(path, rate)
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
    audio = load_audio(path, sample_rate)
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


def frontend(spec: FeatureSpec) -> Compute:
    """A compute function for the cache: yields one feature per manifest row, in order."""

    def compute(manifest: pd.DataFrame) -> Iterator[Any]:
        extract = per_utterance(spec)
        for row in manifest.itertuples(index=False):
            yield extract(row)

    return compute
