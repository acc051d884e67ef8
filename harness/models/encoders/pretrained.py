"""Pretrained upstreams from Hugging Face transformers, s3prl style: one generic audio encoder (any
``AutoModel`` speech SSL model: wav2vec2, HuBERT, WavLM, data2vec-audio; Whisper's encoder in ``whisper.py``)
and one generic text encoder (ALBERT, BERT, RoBERTa, DeBERTa-v2/v3, and decoder LLMs such as Qwen2.5 and
Llama 3.2 through ``AutoModel``). Variants are registered as data in ``registry.py``.

The downstream sees a learned softmax-weighted sum over all hidden layers, mean-pooled over real
(unpadded) positions. Frozen: the per-layer means are computed once by ``compute`` and cached; trials
train on them. Fine-tuned: the top k layers train on raw inputs while everything below stays in eval
mode (no dropout, no SpecAugment masking, no LayerDrop). Either way the backbone is loaded, so
parameter counts, latency and attributions describe the model one would deploy. A third way to train is
LoRA (``finetune: lora``, ``lora.py``): low-rank adapters on every layer, the backbone's own weights frozen.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from harness.config import ConfigError, TrialConfig
from harness.features import Features, FeatureSpec, frontend
from harness.features.cache import Compute
from harness.features.threads import extraction_threads, torch_threads
from harness.models.encoders.base import Embedded, Encoded, Encoder, EncoderVariant, masked_mean, pad

CHUNK = 320  # 20 ms at 16 kHz: the speech models' frame rate, and the unit of audio attributions
EXTRACTION_BATCH = 16


def load_pretrained(name: str, key: str = "", model_type: str = "") -> Any:  # a transformers PreTrainedModel
    """``AutoModel.from_pretrained`` with a one-line error that names the checkpoint and the key to set;
    a checkpoint of another architecture than ``model_type`` (a wav2vec2 folder for HuBERT) is refused."""
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        found = AutoConfig.from_pretrained(name).model_type
        if model_type and found != model_type:
            raise ConfigError(
                checkpoint_problem(name, key, f"it is a {found} checkpoint, this encoder is {model_type}")
            )
        model = AutoModel.from_pretrained(name)
    except ConfigError:
        raise
    except Exception as err:  # OSError, ValueError, SafetensorError...: a one-line error, not a library's traceback
        raise ConfigError(checkpoint_problem(name, key, f"{type(err).__name__}: {str(err).splitlines()[0]}")) from None
    if hasattr(model.config, "layerdrop"):
        # LayerDrop skips whole layers in training mode, and a skipped layer leaves no hidden state: the
        # layer-weighted sum needs all of them.
        model.config.layerdrop = 0.0
    return model


def checkpoint_problem(name: str, key: str, detail: str) -> str:
    looks_local = name.startswith(("/", ".", "~")) or Path(name).expanduser().exists()
    if looks_local and not Path(name).expanduser().exists():
        detail = "the folder does not exist"
    setting = f" --set {key}=/path/to/checkpoint" if key else " a local checkpoint folder"
    what = f"cannot load pretrained checkpoint {name!r}{f' ({key})' if key else ''}: {detail}."
    if looks_local:
        return f"{what} Pass{setting} holding a complete checkpoint (config.json and weights)."
    return f"{what} Without network access, download it once (hf download {name}) or pass{setting}."


@dataclass(frozen=True)
class Tuning:
    """How a pretrained backbone trains: frozen (``layers`` with 0), its top ``layers`` layers, or LoRA."""

    mode: str = "layers"  # "layers" or "lora"
    layers: int = 0
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_targets: str = "attention"
    checkpointing: bool = False  # gradient checkpointing of the backbone (fine-tuned or LoRA only)

    @classmethod
    def of(cls, cfg: TrialConfig, modality: str) -> Tuning:
        section = getattr(cfg, modality)
        return cls(
            section.finetune,
            section.finetune_layers,
            section.lora_rank,
            section.lora_alpha,
            section.lora_targets,
            cfg.gradient_checkpointing,
        )

    @property
    def frozen(self) -> bool:
        return self.mode == "layers" and self.layers == 0

    @property
    def label(self) -> str:
        """What a table calls it: frozen, top-k, or lora-r."""
        if self.mode == "lora":
            return f"lora-r{self.lora_rank}"
        return "frozen" if self.layers == 0 else f"top-{self.layers}"


FROZEN = Tuning()


class PretrainedEncoder(Encoder):
    backbone: Any  # a transformers PreTrainedModel (typed loosely: its config and submodules vary by family)
    live_role: ClassVar[str]  # feature role holding the raw input: "waveform" or "subwords"

    def __init__(self, variant: EncoderVariant, checkpoint: str, tuning: Tuning):
        super().__init__()
        self.variant = variant
        self.backbone = self.load_backbone(variant, checkpoint)
        self.backbone.requires_grad_(False)
        self.tuning = tuning
        self.frozen = tuning.frozen
        self.pooling = str(variant.option("pooling", "mean"))
        self.tuned: list[nn.Module] = []
        if tuning.mode == "lora":
            from harness.models.encoders.lora import add_lora

            add_lora(self.backbone, tuning)  # adapters trainable, everything else stays frozen
        elif not self.frozen:
            self.tuned = self.top_layers(tuning.layers)
            for module in self.tuned:
                module.requires_grad_(True)
        if tuning.checkpointing and not self.frozen:
            self.enable_checkpointing()
        self.layer_weights = nn.Parameter(torch.zeros(self.backbone.config.num_hidden_layers + 1))
        self.out_dim = self.backbone.config.hidden_size

    @classmethod
    def load_backbone(cls, variant: EncoderVariant, checkpoint: str) -> Any:
        model_type = variant.arch.model_type if variant.arch else ""
        return load_pretrained(checkpoint, f"{variant.modality}.model", model_type)

    def layers(self) -> nn.ModuleList | None:
        """The backbone's stack of transformer layers (None where they share weights: ALBERT)."""
        for owner in (getattr(self.backbone, "encoder", None), self.backbone):
            for attribute in ("layers", "layer"):
                stack = getattr(owner, attribute, None)
                if isinstance(stack, nn.ModuleList):
                    return stack
        return None

    def enable_checkpointing(self) -> None:
        """Recompute each layer's activations in backward instead of keeping them (``torch.utils.checkpoint``).
        Transformers' own switch acts only in training mode, and the backbone always runs in eval mode here."""
        layers = self.layers()
        for layer in layers if layers is not None else [self.backbone.encoder]:
            layer.forward = _checkpointed(layer.forward)

    # -- subclass hooks ---------------------------------------------------------------------------------
    def top_layers(self, k: int) -> list[nn.Module]:
        """The modules that train when the top ``k`` layers are fine-tuned."""
        raise NotImplementedError

    def collate_live(self, items: list[np.ndarray]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def embed_live(self, batch: dict[str, torch.Tensor]) -> Embedded:
        raise NotImplementedError

    def hidden_states(self, embedded: Embedded) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """All hidden states (embeddings output first) and the mask of their positions."""
        raise NotImplementedError

    @classmethod
    def exact_in_batches(cls, encoder: PretrainedEncoder) -> bool:
        """Whether padding leaves real positions' outputs unchanged (then extraction batches by length)."""
        raise NotImplementedError

    @classmethod
    def live_spec(cls, variant: EncoderVariant, cfg: TrialConfig) -> FeatureSpec:
        raise NotImplementedError

    @classmethod
    def layer_spec(cls, variant: EncoderVariant, cfg: TrialConfig) -> FeatureSpec:
        raise NotImplementedError

    @classmethod
    def from_spec(cls, variant: EncoderVariant, spec: FeatureSpec) -> PretrainedEncoder:
        """The frozen encoder that computes a ``layer_means`` spec."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------------------
    @classmethod
    def feature_specs(cls, variant: EncoderVariant, cfg: TrialConfig) -> dict[str, FeatureSpec]:
        specs = {cls.live_role: cls.live_spec(variant, cfg)}
        if Tuning.of(cfg, variant.modality).frozen:
            specs["layers"] = cls.layer_spec(variant, cfg)
        return specs

    @classmethod
    def compute(cls, variant: EncoderVariant, spec: FeatureSpec) -> Compute:
        if spec.kind != "layer_means":
            return frontend(spec)

        def compute(manifest: pd.DataFrame) -> Iterator[np.ndarray]:
            encoder = cls.from_spec(variant, spec)
            live = frontend(cls.live_spec_of(spec))
            yield from LayerMeanExtractor(encoder).run(list(live(manifest)))

        return compute

    @classmethod
    def live_spec_of(cls, layer_spec: FeatureSpec) -> FeatureSpec:
        raise NotImplementedError

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
        if self.pooling == "last":  # decoder LLMs: the last real token has read the whole utterance
            last = (mask.long().sum(1) - 1).clamp(min=0)
            rows = torch.arange(mask.shape[0], device=mask.device)
            return torch.stack([h[rows, last] for h in states], dim=1)
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
        # The backbone below the fine-tuned layers never runs dropout, SpecAugment masking or LayerDrop:
        # it behaves as the frozen feature extractor it is.
        self.backbone.eval()
        for module in self.tuned:
            module.train(mode)
        return self


def _checkpointed(forward: Any) -> Any:
    from torch.utils.checkpoint import checkpoint

    def run(*args: Any, **kwargs: Any) -> Any:
        if not torch.is_grad_enabled():
            return forward(*args, **kwargs)
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)

    return run


class LayerMeanExtractor:
    """Per-layer means of a frozen encoder for a list of raw inputs, in their order.

    Where padding is exact (attention masks, per-position norms) inputs are batched in length order;
    models whose feature extractor normalises over time (group norm, wav2vec2-base) or whose stacked
    positional convolutions carry padding into real frames (data2vec-audio) run one at a time.
    On a CPU it runs on the cores not busy with other work (``harness.features.threads``).
    """

    def __init__(
        self, encoder: PretrainedEncoder, device: torch.device | None = None, batch_size: int = EXTRACTION_BATCH
    ):
        self.device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.encoder = encoder.to(self.device).eval()
        self.batch_size = batch_size if type(encoder).exact_in_batches(encoder) else 1

    def means(self, items: list[np.ndarray]) -> list[np.ndarray]:
        batch = {k: v.to(self.device) for k, v in self.encoder.collate_live(items).items()}
        with torch.inference_mode():
            means = self.encoder.layer_means(self.encoder.embed(batch))
        return [m.float().cpu().numpy().astype(np.float16) for m in means]

    def run(self, items: list[np.ndarray]) -> Iterator[np.ndarray]:
        if self.device.type == "cpu":
            with torch_threads(extraction_threads()):
                yield from self._run(items)
        else:
            yield from self._run(items)

    def _run(self, items: list[np.ndarray]) -> Iterator[np.ndarray]:
        order = np.argsort([len(i) for i in items], kind="stable")
        done: dict[int, np.ndarray] = {}
        next_out = 0
        for start in range(0, len(items), self.batch_size):
            rows = order[start : start + self.batch_size]
            for row, value in zip(rows, self.means([items[r] for r in rows])):
                done[int(row)] = value
            while next_out in done:  # yield in manifest order as soon as possible (progress bar)
                yield done.pop(next_out)
                next_out += 1


class AudioEncoder(PretrainedEncoder):
    """Any transformers speech SSL model on raw 16 kHz audio (wav2vec2, HuBERT, WavLM, data2vec-audio)."""

    modality = "audio"
    live_role = "waveform"

    def __init__(self, variant: EncoderVariant, checkpoint: str, tuning: Tuning, max_seconds: float):
        super().__init__(variant, checkpoint, tuning)
        self.max_samples = int(max_seconds * 16_000)
        self.normalize = _do_normalize(checkpoint)
        # Models whose feature extractor uses group norm (wav2vec2-base, HuBERT-base) saw padding in
        # pre-training and must not get an attention mask; layer-norm models (large, data2vec) take one.
        self.use_attention_mask = getattr(self.backbone.config, "feat_extract_norm", "layer") == "layer"

    @classmethod
    def live_spec(cls, variant: EncoderVariant, cfg: TrialConfig) -> FeatureSpec:
        return FeatureSpec.make("waveform")

    @classmethod
    def layer_spec(cls, variant: EncoderVariant, cfg: TrialConfig) -> FeatureSpec:
        return FeatureSpec.make(
            "layer_means", model=variant.checkpoint_for(cfg), encoder=variant.name, max_seconds=cfg.audio.max_seconds
        )

    @classmethod
    def live_spec_of(cls, layer_spec: FeatureSpec) -> FeatureSpec:
        return FeatureSpec.make("waveform")

    @classmethod
    def from_spec(cls, variant: EncoderVariant, spec: FeatureSpec) -> AudioEncoder:
        return cls(variant, spec["model"], FROZEN, spec["max_seconds"])

    @classmethod
    def build(
        cls, variant: EncoderVariant, cfg: TrialConfig, features: dict[str, Features], train_rows: np.ndarray
    ) -> AudioEncoder:
        return cls(variant, variant.checkpoint_for(cfg), Tuning.of(cfg, "audio"), cfg.audio.max_seconds)

    @classmethod
    def exact_in_batches(cls, encoder: PretrainedEncoder) -> bool:
        # The attention mask zeroes padded frames only at the input of the positional convolution: one conv
        # layer (wav2vec2, HuBERT, WavLM) then sees the zeros an utterance alone is padded with, but a stack
        # of them (data2vec-audio: 5 layers) feeds padded frames' nonzero outputs into the last real frames.
        pos_conv = getattr(encoder.backbone.encoder, "pos_conv_embed", None)
        stacked = len(getattr(pos_conv, "layers", ())) > 1
        return bool(getattr(encoder, "use_attention_mask", False)) and not stacked

    def top_layers(self, k: int) -> list[nn.Module]:
        layers = self.layers()
        assert layers is not None
        return list(layers[-k:])

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
        out = self.backbone(
            wave, attention_mask=sample_mask.long() if self.use_attention_mask else None, output_hidden_states=True
        )
        frames = self.backbone._get_feat_extract_output_lengths(lengths)
        n_frames = out.hidden_states[0].shape[1]
        frame_mask = torch.arange(n_frames, device=wave.device)[None, :] < frames[:, None].clamp(min=1)
        return out.hidden_states, frame_mask


def _do_normalize(checkpoint: str) -> bool:
    from transformers import AutoFeatureExtractor

    try:
        return bool(AutoFeatureExtractor.from_pretrained(checkpoint).do_normalize)
    except (OSError, ValueError, AttributeError):
        return True  # the base models' preprocessing


class TextEncoder(PretrainedEncoder):
    """Any transformers text encoder on subword ids (ALBERT, BERT, RoBERTa, DeBERTa-v2/v3) or decoder LLM
    (Qwen2, Llama: right padding under a causal mask, so real tokens never read a pad)."""

    modality = "text"
    live_role = "subwords"

    def __init__(self, variant: EncoderVariant, checkpoint: str, tuning: Tuning):
        super().__init__(variant, checkpoint, tuning)
        self.pad_id = self.backbone.config.pad_token_id or 0

    @classmethod
    def live_spec(cls, variant: EncoderVariant, cfg: TrialConfig) -> FeatureSpec:
        return FeatureSpec.make("subwords", model=variant.checkpoint_for(cfg), max_tokens=cfg.text.max_tokens)

    @classmethod
    def layer_spec(cls, variant: EncoderVariant, cfg: TrialConfig) -> FeatureSpec:
        return FeatureSpec.make(
            "layer_means", model=variant.checkpoint_for(cfg), encoder=variant.name, max_tokens=cfg.text.max_tokens
        )

    @classmethod
    def live_spec_of(cls, layer_spec: FeatureSpec) -> FeatureSpec:
        return FeatureSpec.make("subwords", model=layer_spec["model"], max_tokens=layer_spec["max_tokens"])

    @classmethod
    def from_spec(cls, variant: EncoderVariant, spec: FeatureSpec) -> TextEncoder:
        return cls(variant, spec["model"], FROZEN)

    @classmethod
    def build(
        cls, variant: EncoderVariant, cfg: TrialConfig, features: dict[str, Features], train_rows: np.ndarray
    ) -> TextEncoder:
        return cls(variant, variant.checkpoint_for(cfg), Tuning.of(cfg, "text"))

    @classmethod
    def exact_in_batches(cls, encoder: PretrainedEncoder) -> bool:
        return True  # attention masks (and causal masks with right padding): padding never reaches real tokens

    def top_layers(self, k: int) -> list[nn.Module]:
        layers = self.layers()
        if layers is None:
            # ALBERT shares one transformer layer's weights across depth: fine-tuning is all layers or none.
            return [self.backbone.encoder]
        return list(layers[-k:])

    def collate_live(self, items: list[np.ndarray]) -> dict[str, torch.Tensor]:
        ids, mask = pad([np.asarray(i, dtype=np.int64) for i in items], torch.long)
        ids[~mask] = self.pad_id
        return {"ids": ids, "mask": mask}

    def embed_live(self, batch: dict[str, torch.Tensor]) -> Embedded:
        return Embedded(self.backbone.get_input_embeddings()(batch["ids"]), batch["mask"])

    def hidden_states(self, embedded: Embedded) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        out = self.backbone(inputs_embeds=embedded.x, attention_mask=embedded.mask.long(), output_hidden_states=True)
        return out.hidden_states, embedded.mask
