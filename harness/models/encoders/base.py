"""The encoder interface shared by every upstream (variants that name them: ``harness.models.variants``).

An encoder turns one modality of a batch into a sequence in two steps, so that attributions and
ablations work the same for all of them:

    embed(batch)   -> Embedded   the differentiable input (frames, word/token embeddings, 20 ms waveform chunks)
    encode(emb)    -> Encoded    a [B, T, out_dim] sequence and its mask

Frozen pretrained encoders may instead embed to cached per-layer means (``Embedded.pooled_layers``).
Each encoder class also says which features it reads (``feature_specs``) and how they are computed
(``compute``): the cache only stores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from harness.config import TrialConfig
from harness.features import Features, FeatureSpec, frontend
from harness.features.cache import Compute
from harness.models.variants import (
    MODALITIES,  # noqa: E402,F401
    EncoderVariant,
)


@dataclass
class Embedded:
    x: torch.Tensor  # [B, T, F]
    mask: torch.Tensor  # [B, T] bool, True on real positions
    pooled_layers: bool = False  # x holds cached per-layer means [B, layers, hidden] instead of positions
    lengths: torch.Tensor | None = None  # exact input lengths where positions are coarser (wav2vec2 samples)


@dataclass
class Encoded:
    seq: torch.Tensor  # [B, T, out_dim]
    mask: torch.Tensor  # [B, T] bool


class Encoder(nn.Module):
    """Base class; subclasses implement the methods below."""

    modality: ClassVar[str]
    out_dim: int

    @classmethod
    def feature_specs(cls, variant: EncoderVariant, cfg: TrialConfig) -> dict[str, FeatureSpec]:
        """Role -> feature spec this encoder reads (e.g. {"frames": logmel})."""
        raise NotImplementedError

    @classmethod
    def compute(cls, variant: EncoderVariant, spec: FeatureSpec) -> Compute:
        """How the features of ``spec`` are computed for the cache; per-utterance front ends by default."""
        return frontend(spec)

    @classmethod
    def build(
        cls, variant: EncoderVariant, cfg: TrialConfig, features: dict[str, Features], train_rows: np.ndarray
    ) -> Encoder:
        """Build the encoder for one fold; fold statistics (vocabulary, normalisation) come from train_rows only."""
        raise NotImplementedError

    def collate(self, features: dict[str, Features], rows: np.ndarray, live: bool) -> dict[str, torch.Tensor]:
        """Padded tensors for ``rows``. ``live`` forces raw inputs even where cached layer means exist."""
        raise NotImplementedError

    def embed(self, batch: dict[str, torch.Tensor]) -> Embedded:
        raise NotImplementedError

    def encode(self, embedded: Embedded) -> Encoded:
        raise NotImplementedError

    def pretrained_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters that belong to a pretrained backbone (they get ``encoder_lr``)."""
        return []


def pad(arrays: list[np.ndarray], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad a list of [T, ...] arrays to [B, T_max, ...]; returns the tensor and a [B, T_max] mask."""
    lengths = [max(len(a), 1) for a in arrays]
    out = torch.zeros((len(arrays), max(lengths), *arrays[0].shape[1:]), dtype=dtype)
    mask = torch.zeros((len(arrays), max(lengths)), dtype=torch.bool)
    for i, array in enumerate(arrays):
        if len(array):
            out[i, : len(array)] = torch.as_tensor(np.array(array), dtype=dtype)  # copy: mmap rows are read-only
        mask[i, : lengths[i]] = True
    return out, mask


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first ``lengths[i]`` steps of ``x`` [B, T, F]; padding stays at the end."""
    steps = torch.arange(x.shape[1], device=x.device)[None, :]
    lengths = lengths.to(x.device)[:, None]
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class MaskedBiLstm(nn.Module):
    """A bidirectional LSTM over right-padded sequences that never reads padding: the forward LSTM
    reaches padding only after every real step, and the backward LSTM runs over each sequence
    reversed within its own length. Same outputs as packed sequences, but 2-3x faster to train on
    CPU, where ``pack_padded_sequence`` falls back to one small kernel per time step and batch size.
    """

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.forward_lstm = nn.LSTM(input_size, hidden, batch_first=True)
        self.backward_lstm = nn.LSTM(input_size, hidden, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # The weights' precision (fp32) under autocast: autocast would run cuDNN LSTMs in fp16 (even inside
        # a bf16 region), with no loss scaling; the recurrence is a small share of the step's time.
        with torch.autocast(x.device.type, enabled=False):
            x = x.to(next(self.forward_lstm.parameters()).dtype)
            forward, _ = self.forward_lstm(x)
            backward, _ = self.backward_lstm(reverse_within_lengths(x, lengths))
        seq = torch.cat([forward, reverse_within_lengths(backward, lengths)], -1)
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]
        return seq * mask.unsqueeze(-1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over dim 1 of ``x`` [B, T, D] counting only positions where ``mask`` [B, T] is True."""
    weights = mask.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)
