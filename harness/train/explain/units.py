"""Common units of explanation and their in-distribution replacement, per encoder.

Every audio encoder is explained over **100 ms bins of the input waveform** and every text encoder over
**the words of the transcript** (``harness.features.frontends.words_of``'s words: subwords of one word
merged, special tokens and punctuation left out and never removed), so a top-20% removal takes the same
share of the same utterance for a CNN-BiLSTM and for wav2vec2, for a word BiLSTM and for ALBERT.

Per encoder, the explained input ``x`` (what attributions are computed over) and the replacement that
stands for a removed unit (also the Integrated-Gradients baseline, so completeness reads "attributions
sum to the drop when every unit is replaced"):

===================== ============================== ======================================================
encoder               ``x`` (end to end)              replacement
===================== ============================== ======================================================
CNN-BiLSTM            normalised log-mel frames       the fold's training-mean spectrum (0 after normalising)
speech SSL models     20 ms waveform chunks           silence (0 after the checkpoint's normalisation)
word BiLSTM           word embeddings                 the ``<unk>`` embedding (what an unseen word reads)
pretrained text       subword input embeddings        the checkpoint's mask token (else unk, else pad)
===================== ============================== ======================================================

A frozen pretrained branch can instead be explained at **head level** (``explain_level: head_level``):
``x`` is the frozen backbone's hidden states at every position and layer, the head reads their mean,
and a removed position takes the fold's training-mean layer means. Its units are the same 100 ms bins
(20 ms SSL frames, five to a bin) or words, but the explained object is the head over a frozen
representation, not the model from its input: those figures are reported apart (``level``).

Audio may be cut to one crop in seconds shared by all pairs (``explain_crop_s``; 0: as scored). Text is
never cut (no word timing).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from harness.config import TrialConfig
from harness.features import Features
from harness.features.frontends import _WORD, clean_text
from harness.models.data import PairData
from harness.models.encoders.base import Embedded, Encoder
from harness.models.encoders.bilstm import UNK, WordBiLstm
from harness.models.encoders.cnn_bilstm import CnnBiLstm
from harness.models.encoders.pretrained import CHUNK, AudioEncoder, PretrainedEncoder, TextEncoder
from harness.train.batching import to_device

BIN_S = 0.1  # audio unit: 100 ms of the input waveform
SAMPLE_RATE = 16_000
END_TO_END, HEAD_LEVEL = "end_to_end", "head_level"


@dataclass
class Units:
    """One branch's explained input for one utterance, its units and their replacement."""

    modality: str
    level: str  # END_TO_END or HEAD_LEVEL
    x: torch.Tensor  # [1, T, F]
    baseline: torch.Tensor  # [1, T, F]: the replacement at every position (x itself outside units)
    unit_of: np.ndarray  # [T]: unit index of each position, -1 outside every unit
    n_units: int
    embed: Callable[[torch.Tensor], Embedded]  # [n, T, F] -> what the branch's encoder reads
    replacement: str

    def unit_scores(self, attribution: torch.Tensor) -> np.ndarray:
        """Per-unit attribution: the sum over a unit's positions and features."""
        per_position = attribution.detach().float().sum(-1)[0].cpu().numpy()
        inside = self.unit_of >= 0
        return np.bincount(self.unit_of[inside], weights=per_position[inside], minlength=self.n_units)

    def with_kept(self, keep: np.ndarray) -> torch.Tensor:
        """[n, T, F] inputs in which the units where ``keep`` [n, n_units] is False are replaced."""
        keep = np.atleast_2d(keep)
        positions = np.ones((len(keep), len(self.unit_of)), dtype=bool)
        inside = self.unit_of >= 0
        positions[:, inside] = keep[:, self.unit_of[inside]]
        where = torch.as_tensor(positions, device=self.x.device)[..., None]
        n = len(keep)
        return torch.where(where, self.x.expand(n, -1, -1), self.baseline.expand(n, -1, -1))


def branch_level(encoder: Encoder, cfg: TrialConfig) -> str:
    """Head level only where asked and the branch is a frozen pretrained one; everything else end to end."""
    frozen = isinstance(encoder, PretrainedEncoder) and encoder.frozen
    return HEAD_LEVEL if cfg.explain_level == HEAD_LEVEL and frozen else END_TO_END


def training_layer_means(features: Features, train_rows: np.ndarray) -> torch.Tensor:
    """[layers, hidden]: the mean of a frozen branch's cached layer means over the fold's training rows."""
    total = np.zeros(np.asarray(features[int(train_rows[0])]).shape, dtype=np.float64)
    for row in train_rows:
        total += np.asarray(features[int(row)], dtype=np.float64)
    return torch.as_tensor(total / len(train_rows), dtype=torch.float32)


def branch_units(
    encoder: Encoder,
    data: PairData,
    row: int,
    modality: str,
    cfg: TrialConfig,
    device: torch.device,
    head_baseline: torch.Tensor | None = None,
) -> Units:
    """The units of ``row``'s ``modality`` branch (see the module docstring); ``head_baseline``: the training
    mean layer means a head-level branch replaces positions with."""
    features = data.features[modality]
    batch = to_device(encoder.collate(features, np.array([row]), live=True), device)
    with torch.no_grad():
        embedded = encoder.embed(batch)
    level = branch_level(encoder, cfg)
    if isinstance(encoder, CnnBiLstm):
        hop_s = features["frames"].spec["hop_ms"] / 1000
        x = _crop(embedded.x, cfg.explain_crop_s, hop_s)
        per_bin = max(1, round(BIN_S / hop_s))
        return _live(modality, x, torch.zeros_like(x), np.arange(x.shape[1]) // per_bin, "training-mean spectrum")
    if isinstance(encoder, AudioEncoder):
        x = _crop(embedded.x, cfg.explain_crop_s, CHUNK / SAMPLE_RATE)
        assert embedded.lengths is not None
        lengths = embedded.lengths.clamp(max=x.shape[1] * CHUNK)
        positions = np.arange(x.shape[1]) * CHUNK // round(BIN_S * SAMPLE_RATE)
        if level == HEAD_LEVEL:
            live = Embedded(x, embedded.mask[:, : x.shape[1]], lengths=lengths)
            return _head(modality, encoder, live, head_baseline, lambda t: np.arange(t) * 20 // 100, None)
        mask = embedded.mask[:, : x.shape[1]]

        def audio(z: torch.Tensor) -> Embedded:
            return Embedded(z, mask.expand(z.shape[0], -1), lengths=lengths.expand(z.shape[0]))

        return Units(
            modality, END_TO_END, x, torch.zeros_like(x), positions, int(positions.max()) + 1, audio, "silence"
        )
    if isinstance(encoder, WordBiLstm):
        real = embedded.mask[0].cpu().numpy()
        positions = np.where(real, np.cumsum(real) - 1, -1)
        with torch.no_grad():
            unk = encoder.embedding(torch.tensor([UNK], device=device)).float()
        return _live(modality, embedded.x.float(), unk.expand_as(embedded.x).clone(), positions, "<unk> word")
    if isinstance(encoder, TextEncoder):
        spec = features["subwords"].spec
        word_of = subword_words(
            spec["model"], spec["max_tokens"], data.manifest.text.iloc[row], features["subwords"][row]
        )
        if level == HEAD_LEVEL:
            return _head(modality, encoder, embedded, head_baseline, None, word_of)
        token, name = replacement_token(spec["model"])
        with torch.no_grad():
            fill = encoder.backbone.get_input_embeddings()(torch.tensor([[token]], device=device)).float()
        x = embedded.x.float()
        baseline = torch.where(torch.as_tensor(word_of >= 0, device=device)[None, :, None], fill, x)
        return _live(modality, x, baseline, word_of, f"{name} token")
    raise ValueError(f"no explanation units defined for encoder {type(encoder).__name__}")


def _crop(x: torch.Tensor, crop_s: float, position_s: float) -> torch.Tensor:
    return x if crop_s <= 0 else x[:, : max(1, round(crop_s / position_s))]


def _live(modality: str, x: torch.Tensor, baseline: torch.Tensor, unit_of: np.ndarray, replacement: str) -> Units:
    mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)

    def embed(z: torch.Tensor) -> Embedded:
        return Embedded(z, mask.expand(z.shape[0], -1))

    n_units = int(unit_of.max()) + 1 if (unit_of >= 0).any() else 0
    return Units(modality, END_TO_END, x.detach(), baseline.detach(), unit_of, n_units, embed, replacement)


def _head(
    modality: str,
    encoder: PretrainedEncoder,
    live: Embedded,
    head_baseline: torch.Tensor | None,
    frame_units: Callable[[int], np.ndarray] | None,
    word_of: np.ndarray | None,
) -> Units:
    """Head level: the frozen backbone's states at every position and layer; the head reads their mean."""
    assert head_baseline is not None, "a head-level branch needs the training-mean layer means"
    with torch.no_grad():
        states, mask = encoder.hidden_states(live)
    stacked = torch.stack(states, dim=2).float()  # [1, T, layers, hidden]
    _, t, layers, hidden = stacked.shape
    x = stacked.flatten(2)
    weights = mask.to(x.dtype)[:, :, None]
    unit_of = frame_units(t) if frame_units is not None else np.asarray(word_of)
    unit_of = np.where(mask[0].cpu().numpy(), unit_of, -1)
    fill = head_baseline.to(x.device).flatten()[None, None, :].expand_as(x)
    baseline = torch.where(torch.as_tensor(unit_of >= 0, device=x.device)[None, :, None], fill, x)

    def embed(z: torch.Tensor) -> Embedded:
        means = (z * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        means = means.view(z.shape[0], layers, hidden)
        return Embedded(means, torch.ones(means.shape[:2], dtype=torch.bool, device=z.device), pooled_layers=True)

    n_units = int(unit_of.max()) + 1 if (unit_of >= 0).any() else 0
    return Units(modality, HEAD_LEVEL, x, baseline, unit_of, n_units, embed, "training-mean layer means")


@functools.lru_cache(maxsize=8)
def _tokenizer(model: str):  # a transformers fast tokenizer
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)


def replacement_token(model: str) -> tuple[int, str]:
    """The token a removed word becomes: mask (what pre-training replaced words with), else unk, else pad."""
    tokenizer = _tokenizer(model)
    for name in ("mask", "unk", "pad"):
        token = getattr(tokenizer, f"{name}_token_id", None)
        if token is not None:
            return int(token), name
    raise ValueError(f"{model}: its tokenizer has no mask, unk or pad token to replace words with")


def words(text: str) -> list[tuple[int, int]]:
    """Character spans (in ``clean_text(text)``) of the transcript's words, as the word BiLSTM reads them."""
    return [m.span() for m in _WORD.finditer(clean_text(text).lower())]


def subword_words(model: str, max_tokens: int, text: str, ids: np.ndarray) -> np.ndarray:
    """Per subword of ``ids`` (the cached tokenisation of ``text``), the index of the transcript word it
    belongs to; -1 for special tokens and subwords outside every word (punctuation)."""
    encoding = _tokenizer(model)(
        clean_text(text),
        truncation=True,
        max_length=max_tokens,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    if list(encoding["input_ids"]) != [int(i) for i in ids]:
        raise ValueError(f"{model}: re-tokenising the transcript does not give the cached subword ids")
    spans = words(text)
    out = np.full(len(ids), -1, dtype=np.int64)
    for i, ((start, end), special) in enumerate(zip(encoding["offset_mapping"], encoding["special_tokens_mask"])):
        if special or end <= start:
            continue
        for w, (a, b) in enumerate(spans):
            if start < b and end > a:
                out[i] = w
                break
    # renumber the words that kept a subword (truncation may drop the last ones) 0..n-1 in order
    kept = np.unique(out[out >= 0])
    out[out >= 0] = np.searchsorted(kept, out[out >= 0])
    return out
