"""CNN-BiLSTM over log-mel (or MFCC) frames: the small audio model of the original study."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harness.config import TrialConfig
from harness.features import Features, FeatureSpec
from harness.models.encoders.base import Embedded, Encoded, Encoder, EncoderVariant, MaskedBiLstm, pad

POOL = 2  # each conv block halves time; two blocks -> 40 ms per BiLSTM step at a 10 ms hop


class CnnBiLstm(Encoder):
    mean: torch.Tensor  # per-feature normalisation from the fold's training utterances (buffers)
    std: torch.Tensor

    modality = "audio"

    def __init__(self, cfg: TrialConfig, n_features: int, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        channels, hidden = cfg.audio.channels, cfg.audio.hidden
        self.max_frames = int(cfg.audio.max_seconds * 100)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.conv_blocks = nn.ModuleList(
            nn.Sequential(nn.Conv1d(size, channels, kernel_size=5, padding=2), nn.GELU(), nn.MaxPool1d(POOL))
            for size in (n_features, channels)
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.lstm = MaskedBiLstm(channels, hidden)
        self.out_dim = 2 * hidden

    @classmethod
    def feature_specs(cls, variant: EncoderVariant, cfg: TrialConfig) -> dict[str, FeatureSpec]:
        return {"frames": FeatureSpec.make(cfg.audio.features, n_mels=cfg.audio.n_mels)}

    @classmethod
    def build(
        cls, variant: EncoderVariant, cfg: TrialConfig, features: dict[str, Features], train_rows: np.ndarray
    ) -> CnnBiLstm:
        frames = features["frames"]
        s, ss, n = np.zeros(frames[0].shape[1]), np.zeros(frames[0].shape[1]), 0
        for row in train_rows:  # normalisation statistics from the fold's training utterances only
            x = np.asarray(frames[row], dtype=np.float64)
            s, ss, n = s + x.sum(0), ss + (x * x).sum(0), n + len(x)
        mean = s / n
        std = np.sqrt(np.maximum(ss / n - mean**2, 1e-8))
        return cls(cfg, frames[0].shape[1], mean, std)

    def collate(self, features: dict[str, Features], rows: np.ndarray, live: bool) -> dict[str, torch.Tensor]:
        frames, mask = pad([features["frames"][r][: self.max_frames] for r in rows], torch.float32)
        return {"frames": frames, "mask": mask}

    def embed(self, batch: dict[str, torch.Tensor]) -> Embedded:
        x = (batch["frames"] - self.mean) / self.std
        return Embedded(x * batch["mask"].unsqueeze(-1), batch["mask"])

    def encode(self, embedded: Embedded) -> Encoded:
        x, lengths = embedded.x.transpose(1, 2), embedded.mask.sum(1)
        for block in self.conv_blocks:
            # Re-zero the padding after each block (GELU(bias) is not zero there), so that an utterance's
            # output does not depend on how much longer the others in its batch are.
            x = block(x)
            lengths = (lengths // POOL).clamp(min=1, max=x.shape[-1])
            mask = torch.arange(x.shape[-1], device=x.device)[None, :] < lengths[:, None].to(x.device)
            x = x * mask.unsqueeze(1)
        return Encoded(self.lstm(self.dropout(x.transpose(1, 2)), lengths), mask)
