"""``FeatureSpec``: what to compute for every utterance, keyed only on the options its kind uses.

Each kind lists its options and their defaults; a spec holds exactly those, so the cache key of a
log-mel spec never changes when, say, ``text.max_tokens`` does. ``None`` as a default means the option
is optional and left out of the key unless given (a pretrained audio encoder's layer means depend on
``max_seconds``, a text encoder's on ``max_tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REQUIRED = object()
_SPECTRAL = {"sample_rate": 16_000, "win_ms": 25.0, "hop_ms": 10.0}
KINDS: dict[str, dict[str, Any]] = {
    "logmel": _SPECTRAL | {"n_mels": 64},
    "mfcc": _SPECTRAL | {"n_mels": 64, "n_mfcc": 40},
    "waveform": {"sample_rate": 16_000},
    "words": {},
    "subwords": {"model": REQUIRED, "max_tokens": 128},
    # per-layer means of a frozen pretrained encoder (computed by that encoder, see models.encoders)
    "layer_means": {"model": REQUIRED, "encoder": REQUIRED, "max_seconds": None, "max_tokens": None},
    # ASR transcripts of the audio (harness.features.asr), stored as words
    "asr": {"model": REQUIRED, "language": "en"},
}


@dataclass(frozen=True)
class FeatureSpec:
    kind: str
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def make(cls, kind: str, **options: Any) -> FeatureSpec:
        """A spec of ``kind`` with the kind's defaults; unknown or missing options raise ``ValueError``."""
        if kind not in KINDS:
            raise ValueError(f"unknown feature kind {kind!r}; expected one of {tuple(KINDS)}")
        allowed = KINDS[kind]
        unknown = set(options) - set(allowed)
        if unknown:
            raise ValueError(f"feature kind {kind!r} takes no option(s) {sorted(unknown)}")
        values = {k: options.get(k, default) for k, default in allowed.items()}
        missing = [k for k, v in values.items() if v is REQUIRED or (allowed[k] is REQUIRED and not v)]
        if missing:
            raise ValueError(f"feature kind {kind!r} needs {missing}")
        return cls(kind, tuple(sorted((k, v) for k, v in values.items() if v is not None)))

    def __getitem__(self, key: str) -> Any:
        return dict(self.options)[key]

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, **dict(self.options)}
