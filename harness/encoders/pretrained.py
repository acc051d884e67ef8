"""Shared machinery of the pretrained upstreams (wav2vec2, ALBERT), s3prl style.

The downstream sees a learned softmax-weighted sum over all hidden layers, mean-pooled over real
(unpadded) positions. Frozen: the per-layer means are cached once (see ``features.batched_layer_means``)
and trials train on them. Fine-tuned: the top layers train on raw inputs. Either way the backbone is
loaded, so parameter counts, latency and attributions describe the model one would deploy.
"""
from __future__ import annotations

from typing import Callable, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from harness.cache import Features
from harness.config import ConfigError, TrialConfig
from harness.encoders.base import Embedded, Encoded, Encoder, masked_mean, pad
from harness.features import FeatureSpec


def load_pretrained(name: str) -> nn.Module:
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        return AutoModel.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"cannot load pretrained model {name!r}: {str(err).splitlines()[0]}. Without network access, "
            f"download it once or pass a local directory (e.g. --set audio.model=/path/to/wav2vec2-base)."
        ) from None


class LayerMeanExtractor:
    """Callable over manifest rows returning one [layers, hidden] array per row (cache builder)."""

    def __init__(self, encoder: PretrainedEncoder, read: Callable[[pd.Series], np.ndarray], batch_size: int):
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.encoder = encoder.to(self.device).eval()
        self.read = read
        self.batch_size = batch_size

    def __call__(self, rows: pd.DataFrame) -> list[np.ndarray]:
        batch = self.encoder.collate_live([self.read(row) for row in rows.itertuples(index=False)])
        batch = {k: v.to(self.device) for k, v in batch.items()}
        means = self.encoder.layer_means(self.encoder.embed(batch))
        return [m.float().cpu().numpy() for m in means]


class PretrainedEncoder(Encoder):
    live_role: ClassVar[str]  # feature role holding the raw input: "waveform" or "subwords"
    extraction_batch_size: ClassVar[int] = 1

    def __init__(self, model_name: str, finetune_layers: int):
        super().__init__()
        self.backbone = load_pretrained(model_name)
        self.backbone.requires_grad_(False)
        self.frozen = finetune_layers == 0
        if not self.frozen:
            self.unfreeze_top(finetune_layers)
        self.layer_weights = nn.Parameter(torch.zeros(self.backbone.config.num_hidden_layers + 1))
        self.out_dim = self.backbone.config.hidden_size

    # -- subclass hooks ---------------------------------------------------------------------------------
    def unfreeze_top(self, layers: int) -> None:
        raise NotImplementedError

    def collate_live(self, items: list[np.ndarray]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def embed_live(self, batch: dict[str, torch.Tensor]) -> Embedded:
        raise NotImplementedError

    def hidden_states(self, embedded: Embedded) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """All hidden states (embeddings output first) and the mask of their positions."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------------------
    def collate(self, features: dict[str, Features], rows: np.ndarray, live: bool) -> dict[str, torch.Tensor]:
        if self.frozen and not live and "layers" in features:
            layers, _ = pad([np.asarray(features["layers"][r]) for r in rows], torch.float32)
            return {"layers": layers}
        return self.collate_live([features[self.live_role][r] for r in rows])

    def embed(self, batch: dict[str, torch.Tensor]) -> Embedded:
        if "layers" in batch:
            layers = batch["layers"]
            return Embedded(layers, torch.ones(layers.shape[:2], dtype=torch.bool, device=layers.device), True)
        return self.embed_live(batch)

    def layer_means(self, embedded: Embedded) -> torch.Tensor:
        """[B, layers, hidden]: each hidden layer mean-pooled over real positions."""
        if embedded.pooled_layers:
            return embedded.x
        states, mask = self.hidden_states(embedded)
        return torch.stack([masked_mean(h, mask) for h in states], dim=1)

    def encode(self, embedded: Embedded) -> Encoded:
        means = self.layer_means(embedded)
        pooled = (torch.softmax(self.layer_weights, 0)[None, :, None] * means.to(self.layer_weights.dtype)).sum(1)
        # One pooled vector per utterance: exact for cached frozen features and identical on the live path.
        return Encoded(pooled[:, None, :], torch.ones(pooled.shape[0], 1, dtype=torch.bool, device=pooled.device))

    def pretrained_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.backbone.parameters() if p.requires_grad]

    def train(self, mode: bool = True) -> PretrainedEncoder:
        super().train(mode)
        if self.frozen:
            self.backbone.eval()  # a frozen backbone never runs dropout or SpecAugment
        return self

    @classmethod
    def layer_feature_spec(cls, name: str, model: str, cfg: TrialConfig) -> FeatureSpec:
        return FeatureSpec("layer_means", model=model, encoder=name, max_seconds=cfg.audio.max_seconds,
                           max_tokens=cfg.text.max_tokens)
