"""The registry of model pairs. A pair names its audio and text encoders and its search space.

Adding a pair is one line here plus one YAML file in ``search_spaces/``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.config import did_you_mean

SEARCH_SPACES = Path(__file__).resolve().parent.parent / "search_spaces"


@dataclass(frozen=True)
class PairSpec:
    name: str
    audio: str | None  # registered encoder name, or None for a text-only baseline
    text: str | None
    space: str  # YAML file in search_spaces/

    @property
    def encoders(self) -> dict[str, str]:
        return {m: e for m, e in (("audio", self.audio), ("text", self.text)) if e is not None}

    @property
    def space_path(self) -> Path:
        return SEARCH_SPACES / self.space

    @property
    def is_fused(self) -> bool:
        return len(self.encoders) == 2


PAIRS: dict[str, PairSpec] = {p.name: p for p in [
    PairSpec("cnnbilstm_bilstm", audio="cnn_bilstm", text="bilstm", space="cnnbilstm_bilstm.yaml"),
    PairSpec("cnnbilstm_albert", audio="cnn_bilstm", text="albert", space="cnnbilstm_albert.yaml"),
    PairSpec("wav2vec_bilstm", audio="wav2vec2", text="bilstm", space="wav2vec_bilstm.yaml"),
    PairSpec("wav2vec_albert", audio="wav2vec2", text="albert", space="wav2vec_albert.yaml"),
    # unimodal baselines: the gain from fusion is measured against these
    PairSpec("cnnbilstm", audio="cnn_bilstm", text=None, space="cnnbilstm.yaml"),
    PairSpec("wav2vec", audio="wav2vec2", text=None, space="wav2vec.yaml"),
    PairSpec("bilstm", audio=None, text="bilstm", space="bilstm.yaml"),
    PairSpec("albert", audio=None, text="albert", space="albert.yaml"),
]}


class UnknownPairError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def get_pair(name: str) -> PairSpec:
    if name not in PAIRS:
        raise UnknownPairError(f"unknown pair {name!r}{did_you_mean(name, list(PAIRS))}; known pairs: "
                               f"{', '.join(PAIRS)}")
    return PAIRS[name]
