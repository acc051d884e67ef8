"""wav2vec2 (transformers ``Wav2Vec2Model``) on raw 16 kHz audio."""
from __future__ import annotations

import numpy as np
import torch
from transformers import AutoFeatureExtractor

from harness.cache import Features
from harness.config import TrialConfig
from harness.encoders.base import Embedded, register_encoder
from harness.encoders.pretrained import LayerMeanExtractor, PretrainedEncoder
from harness.features import FeatureSpec, _waveform

CHUNK = 320  # 20 ms at 16 kHz: the model's frame rate, and the unit of audio attributions


@register_encoder("wav2vec2")
class Wav2Vec2Encoder(PretrainedEncoder):
    modality = "audio"
    live_role = "waveform"

    def __init__(self, model_name: str, finetune_layers: int, max_seconds: float):
        super().__init__(model_name, finetune_layers)
        self.max_samples = int(max_seconds * 16_000)
        try:
            self.normalize = bool(AutoFeatureExtractor.from_pretrained(model_name).do_normalize)
        except (OSError, ValueError):
            self.normalize = True  # wav2vec2-base's preprocessing
        # Models trained with group norm (wav2vec2-base) must not get an attention mask: they saw padding.
        self.use_attention_mask = getattr(self.backbone.config, "feat_extract_norm", "layer") == "layer"

    @staticmethod
    def feature_specs(cfg: TrialConfig) -> dict[str, FeatureSpec]:
        specs = {"waveform": FeatureSpec("waveform")}
        if cfg.audio.finetune_layers == 0:
            specs["layers"] = Wav2Vec2Encoder.layer_feature_spec("wav2vec2", cfg.audio.model, cfg)
        return specs

    @classmethod
    def build(cls, cfg: TrialConfig, features: dict[str, Features], train_rows: np.ndarray) -> Wav2Vec2Encoder:
        return cls(cfg.audio.model, cfg.audio.finetune_layers, cfg.audio.max_seconds)

    @classmethod
    def layer_mean_extractor(cls, spec: FeatureSpec) -> LayerMeanExtractor:
        encoder = cls(spec.model, 0, spec.max_seconds)
        wave_spec = FeatureSpec("waveform")
        # One utterance at a time: with group norm, padding would change the real frames' outputs.
        return LayerMeanExtractor(encoder, lambda row: _waveform(wave_spec, row.wav_path), batch_size=1)

    def unfreeze_top(self, layers: int) -> None:
        for layer in self.backbone.encoder.layers[-layers:]:
            layer.requires_grad_(True)

    def collate_live(self, items: list[np.ndarray]) -> dict[str, torch.Tensor]:
        waves = []
        for item in items:
            wave = np.asarray(item[: self.max_samples], dtype=np.float32) / 32768.0
            if self.normalize:
                wave = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)
            waves.append(wave)
        n_chunks = max(-(-len(w) // CHUNK) for w in waves)
        chunks = torch.zeros(len(waves), n_chunks * CHUNK)
        lengths = torch.tensor([len(w) for w in waves])
        for i, wave in enumerate(waves):
            chunks[i, : len(wave)] = torch.from_numpy(wave)
        mask = torch.arange(n_chunks)[None, :] * CHUNK < lengths[:, None]
        return {"chunks": chunks.view(len(waves), n_chunks, CHUNK), "mask": mask, "lengths": lengths}

    def embed_live(self, batch: dict[str, torch.Tensor]) -> Embedded:
        return Embedded(batch["chunks"], batch["mask"], lengths=batch["lengths"])

    def hidden_states(self, embedded: Embedded) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        wave = embedded.x.reshape(embedded.x.shape[0], -1)
        lengths = (embedded.lengths if embedded.lengths is not None else embedded.mask.sum(1) * CHUNK).to(wave.device)
        sample_mask = torch.arange(wave.shape[1], device=wave.device)[None, :] < lengths[:, None]
        out = self.backbone(wave, attention_mask=sample_mask.long() if self.use_attention_mask else None,
                            output_hidden_states=True)
        frames = self.backbone._get_feat_extract_output_lengths(lengths)
        n_frames = out.hidden_states[0].shape[1]
        frame_mask = torch.arange(n_frames, device=wave.device)[None, :] < frames[:, None].clamp(min=1)
        return out.hidden_states, frame_mask
