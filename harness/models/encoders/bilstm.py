"""BiLSTM over learned word embeddings: the small text model. The vocabulary comes from each fold's
training sessions only, so test words never shape the model."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from torch import nn

from harness.config import TrialConfig
from harness.features import Features, FeatureSpec
from harness.models.encoders.base import Embedded, Encoded, Encoder, EncoderVariant, MaskedBiLstm, pad

PAD, UNK = 0, 1


class WordBiLstm(Encoder):
    modality = "text"

    def __init__(self, cfg: TrialConfig, vocabulary: dict[str, int]):
        super().__init__()
        self.vocabulary = vocabulary
        self.max_tokens = cfg.text.max_tokens
        self.embedding = nn.Embedding(len(vocabulary) + 2, cfg.text.embed_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(cfg.dropout)
        self.lstm = MaskedBiLstm(cfg.text.embed_dim, cfg.text.hidden)
        self.out_dim = 2 * cfg.text.hidden

    @classmethod
    def feature_specs(cls, variant: EncoderVariant, cfg: TrialConfig) -> dict[str, FeatureSpec]:
        return {"words": FeatureSpec.make("words")}

    @classmethod
    def build(
        cls, variant: EncoderVariant, cfg: TrialConfig, features: dict[str, Features], train_rows: np.ndarray
    ) -> WordBiLstm:
        counts = Counter(word for row in train_rows for word in features["words"][row])
        kept = sorted(w for w, c in counts.items() if c >= cfg.text.min_count)
        return cls(cfg, {word: i + 2 for i, word in enumerate(kept)})

    def collate(self, features: dict[str, Features], rows: np.ndarray, live: bool) -> dict[str, torch.Tensor]:
        ids = [
            np.array([self.vocabulary.get(w, UNK) for w in features["words"][r][: self.max_tokens]], dtype=np.int64)
            for r in rows
        ]
        tokens, mask = pad(ids, torch.long)
        return {"tokens": tokens, "mask": mask}

    def embed(self, batch: dict[str, torch.Tensor]) -> Embedded:
        return Embedded(self.embedding(batch["tokens"]), batch["mask"])

    def encode(self, embedded: Embedded) -> Encoded:
        lengths = embedded.mask.sum(1).clamp(min=1)
        return Encoded(self.lstm(self.dropout(embedded.x), lengths), embedded.mask)
