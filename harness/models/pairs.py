"""The registry of model pairs. A pair names its audio and text encoders and its search space.

Adding a pair is one line here plus one YAML file in ``harness/search_spaces/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.config import did_you_mean
from harness.errors import UserError
from harness.models.encoders.registry import get_encoder
from harness.models.variants import EncoderVariant

SEARCH_SPACES = Path(__file__).resolve().parent.parent / "search_spaces"


@dataclass(frozen=True)
class PairSpec:
    name: str
    audio: str | None  # registered encoder name, or None for a text-only model
    text: str | None
    space: str  # YAML file in search_spaces/

    def __post_init__(self) -> None:
        if self.audio is None and self.text is None:
            raise ValueError(f"pair {self.name!r} has no encoder")
        for modality in ("audio", "text"):
            name = getattr(self, modality)
            if name is not None and get_encoder(name).modality != modality:
                raise ValueError(
                    f"pair {self.name!r}: {name!r} is a {get_encoder(name).modality} encoder, not a {modality} one"
                )

    @property
    def encoders(self) -> dict[str, str]:
        return {m: e for m, e in (("audio", self.audio), ("text", self.text)) if e is not None}

    @property
    def variants(self) -> dict[str, EncoderVariant]:
        return {m: get_encoder(e) for m, e in self.encoders.items()}

    @property
    def space_path(self) -> Path:
        return SEARCH_SPACES / self.space

    @property
    def is_fused(self) -> bool:
        return len(self.encoders) == 2


PAIRS: dict[str, PairSpec] = {}


def register_pair(pair: PairSpec) -> PairSpec:
    PAIRS[pair.name] = pair
    return pair


for _pair in [
    PairSpec("cnnbilstm_bilstm", audio="cnn_bilstm", text="bilstm", space="cnnbilstm_bilstm.yaml"),
    PairSpec("cnnbilstm_albert", audio="cnn_bilstm", text="albert", space="cnnbilstm_albert.yaml"),
    PairSpec("wav2vec_bilstm", audio="wav2vec2", text="bilstm", space="wav2vec_bilstm.yaml"),
    PairSpec("wav2vec_albert", audio="wav2vec2", text="albert", space="wav2vec_albert.yaml"),
    PairSpec("wavlm_roberta", audio="wavlm", text="roberta", space="wavlm_roberta.yaml"),
    PairSpec("hubert_bilstm", audio="hubert", text="bilstm", space="hubert_bilstm.yaml"),
    # unimodal baselines: the gain from fusion is measured against these
    PairSpec("cnnbilstm", audio="cnn_bilstm", text=None, space="cnnbilstm.yaml"),
    PairSpec("wav2vec", audio="wav2vec2", text=None, space="wav2vec.yaml"),
    PairSpec("wavlm", audio="wavlm", text=None, space="wavlm.yaml"),
    PairSpec("hubert", audio="hubert", text=None, space="hubert.yaml"),
    PairSpec("bilstm", audio=None, text="bilstm", space="bilstm.yaml"),
    PairSpec("albert", audio=None, text="albert", space="albert.yaml"),
    PairSpec("roberta", audio=None, text="roberta", space="roberta.yaml"),
]:
    register_pair(_pair)


# The original study's 2x2 small/large grid and its unimodal baselines (the demo benchmark's default).
GRID = (
    "cnnbilstm_bilstm",
    "cnnbilstm_albert",
    "wav2vec_bilstm",
    "wav2vec_albert",
    "cnnbilstm",
    "wav2vec",
    "bilstm",
    "albert",
)


class UnknownPairError(UserError):
    pass


def get_pair(name: str) -> PairSpec:
    if name not in PAIRS:
        raise UnknownPairError(
            f"unknown pair {name!r}{did_you_mean(name, list(PAIRS))}; known pairs: {', '.join(PAIRS)}"
        )
    return PAIRS[name]


def unimodal_baseline(pair: PairSpec, modality: str) -> PairSpec | None:
    """The registered single-encoder pair using ``pair``'s encoder of ``modality`` (fusion-gain baseline)."""
    encoder = pair.encoders.get(modality)
    return next((p for p in PAIRS.values() if not p.is_fused and p.encoders == {modality: encoder}), None)
