"""ALBERT (transformers ``AlbertModel``) on subword tokens."""
from __future__ import annotations

import numpy as np
import torch

from harness.cache import Features
from harness.config import TrialConfig
from harness.encoders.base import Embedded, pad, register_encoder
from harness.encoders.pretrained import LayerMeanExtractor, PretrainedEncoder
from harness.features import FeatureSpec, per_utterance_extractor


@register_encoder("albert")
class AlbertEncoder(PretrainedEncoder):
    modality = "text"
    live_role = "subwords"

    def __init__(self, model_name: str, finetune_layers: int):
        super().__init__(model_name, finetune_layers)
        self.pad_id = self.backbone.config.pad_token_id or 0

    @staticmethod
    def feature_specs(cfg: TrialConfig) -> dict[str, FeatureSpec]:
        specs = {"subwords": FeatureSpec("subwords", model=cfg.text.model, max_tokens=cfg.text.max_tokens)}
        if cfg.text.finetune_layers == 0:
            specs["layers"] = AlbertEncoder.layer_feature_spec("albert", cfg.text.model, cfg)
        return specs

    @classmethod
    def build(cls, cfg: TrialConfig, features: dict[str, Features], train_rows: np.ndarray) -> AlbertEncoder:
        return cls(cfg.text.model, cfg.text.finetune_layers)

    @classmethod
    def layer_mean_extractor(cls, spec: FeatureSpec) -> LayerMeanExtractor:
        tokenize = per_utterance_extractor(FeatureSpec("subwords", model=spec.model, max_tokens=spec.max_tokens))
        # ALBERT takes an attention mask, so batching with padding gives exactly the unbatched result.
        return LayerMeanExtractor(cls(spec.model, 0), tokenize, batch_size=32)

    def unfreeze_top(self, layers: int) -> None:
        # ALBERT shares one transformer layer's weights across depth: fine-tuning is all layers or none.
        self.backbone.encoder.requires_grad_(True)

    def collate_live(self, items: list[np.ndarray]) -> dict[str, torch.Tensor]:
        ids, mask = pad([np.asarray(i, dtype=np.int64) for i in items], torch.long)
        ids[~mask] = self.pad_id
        return {"ids": ids, "mask": mask}

    def embed_live(self, batch: dict[str, torch.Tensor]) -> Embedded:
        return Embedded(self.backbone.embeddings.word_embeddings(batch["ids"]), batch["mask"])

    def hidden_states(self, embedded: Embedded) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        out = self.backbone(inputs_embeds=embedded.x, attention_mask=embedded.mask.long(), output_hidden_states=True)
        return out.hidden_states, embedded.mask
