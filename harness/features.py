"""Feature extractors: what each encoder reads, computed per utterance from the manifest.

Each encoder declares the ``FeatureSpec`` it needs (like timm's pretrained cfg); the cache keys stored
features by that spec plus the corpus fingerprint, so nothing here runs twice for the same corpus.
"""
from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import soundfile

log = logging.getLogger(__name__)

FEATURE_KINDS = ("logmel", "mfcc", "waveform", "words", "subwords", "layer_means")
_NOISE = re.compile(r"\[[A-Za-z_ ]+\]")  # [LAUGHTER], [BREATHING], [GARBAGE] ...
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


@dataclass(frozen=True)
class FeatureSpec:
    """What to compute for every utterance. Only fields relevant to ``kind`` matter; all enter the key."""

    kind: str
    sample_rate: int = 16_000
    n_mels: int = 64
    n_mfcc: int = 40
    win_ms: float = 25.0
    hop_ms: float = 10.0
    model: str = ""  # tokenizer or pretrained encoder (hub name or local path) for subwords / layer_means
    encoder: str = ""  # registered encoder that computes layer_means
    max_tokens: int = 128
    max_seconds: float = 15.0  # pretrained audio encoders see at most this much of an utterance

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"unknown feature kind {self.kind!r}; expected one of {FEATURE_KINDS}")
        if self.kind in ("subwords", "layer_means") and not self.model:
            raise ValueError(f"feature kind {self.kind!r} needs a model name or path")

    def describe(self) -> dict:
        return asdict(self)


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
        raise ValueError(f"{path}: unreadable wav ({err})") from None
    audio = audio.mean(axis=1)
    if rate != sample_rate:
        import librosa

        log.debug("resampling %s from %d Hz to %d Hz", path, rate, sample_rate)
        audio = librosa.resample(audio, orig_sr=rate, target_sr=sample_rate)
    return audio


def _spectral(spec: FeatureSpec, path: str) -> np.ndarray:
    import librosa

    audio = load_audio(path, spec.sample_rate)
    n_fft = int(round(spec.win_ms * spec.sample_rate / 1000))
    hop = int(round(spec.hop_ms * spec.sample_rate / 1000))
    mel = librosa.feature.melspectrogram(y=audio, sr=spec.sample_rate, n_fft=n_fft, hop_length=hop,
                                         n_mels=spec.n_mels, center=True)
    log_mel = librosa.power_to_db(mel, ref=1.0, top_db=None)
    if spec.kind == "mfcc":
        return librosa.feature.mfcc(S=log_mel, n_mfcc=spec.n_mfcc).T.astype(np.float32)
    return log_mel.T.astype(np.float32)  # frames x mel bins


def _waveform(spec: FeatureSpec, path: str) -> np.ndarray:
    audio = load_audio(path, spec.sample_rate)
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16)  # half the memory of float32, lossless for PCM16


def per_utterance_extractor(spec: FeatureSpec) -> Callable[[pd.Series], np.ndarray | list[str]]:
    """The function computing one utterance's feature for the per-utterance kinds."""
    if spec.kind in ("logmel", "mfcc"):
        return lambda row: _spectral(spec, row.wav_path)
    if spec.kind == "waveform":
        return lambda row: _waveform(spec, row.wav_path)
    if spec.kind == "words":
        return lambda row: words_of(row.text)
    if spec.kind == "subwords":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(spec.model)
        return lambda row: np.asarray(
            tokenizer(clean_text(row.text), truncation=True, max_length=spec.max_tokens)["input_ids"], dtype=np.int32)
    raise ValueError(f"{spec.kind} is computed in batches, not per utterance")


def batched_layer_means(spec: FeatureSpec, manifest: pd.DataFrame) -> Iterator[np.ndarray]:
    """Frozen pretrained encoder: per-layer masked means, one ``[layers+1, hidden]`` array per utterance.

    Because a learned weighted sum over layers followed by masked mean pooling is linear, pooling each
    layer first and weighting later gives the same vector: this cache makes frozen-encoder trials train
    on a few KB per utterance instead of re-running the encoder every epoch.
    """
    import torch

    from harness.encoders import encoder_class

    extractor = encoder_class(spec.encoder).layer_mean_extractor(spec)
    for start in range(0, len(manifest), extractor.batch_size):
        rows = manifest.iloc[start:start + extractor.batch_size]
        with torch.inference_mode():
            means = extractor(rows)
        yield from (m.astype(np.float16) for m in means)
