"""Typed configs. A trial's config is ``TrialConfig``; YAML and search-space keys are its (dotted) field names.

``TrialConfig.from_flat({"lr": 1e-3, "audio.hidden": 128})`` is the one place where untyped values
become a config: unknown keys fail with a "did you mean" hint and values are checked against field types.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field, fields
from typing import Any, get_type_hints

from harness.errors import UserError

FUSIONS = ("concat", "gated", "attention")
CONTEXT_LAYERS = ("lstm", "transformer")
EXPLAIN_LEVELS = ("end_to_end", "head_level")


class ConfigError(UserError):
    """A config or search-space problem, reported before anything runs."""


@dataclass(frozen=True)
class AudioConfig:
    model: str = ""  # pretrained audio encoder: hub name or local path; "" = the encoder's default checkpoint
    finetune_layers: int = 0  # pretrained: 0 = frozen (trains on cached layer means); k = fine-tune the top k layers
    features: str = "logmel"  # cnn_bilstm front end: logmel or mfcc
    n_mels: int = 64
    channels: int = 64  # cnn_bilstm conv channels
    hidden: int = 128  # cnn_bilstm BiLSTM hidden size per direction
    max_seconds: float = 15.0  # longer utterances are cropped (IEMOCAP has a few > 30 s)


@dataclass(frozen=True)
class TextConfig:
    model: str = ""  # pretrained text encoder: hub name or local path; "" = the encoder's default checkpoint
    finetune_layers: int = 0  # pretrained: 0 = frozen; k fine-tunes the top k layers (ALBERT: its shared layer)
    embed_dim: int = 128  # bilstm word embedding size
    hidden: int = 128  # bilstm hidden size per direction
    min_count: int = 1  # bilstm: words seen fewer times in the fold's training sessions map to <unk>
    max_tokens: int = 128


@dataclass(frozen=True)
class ContextConfig:
    """Dialogue context: how many neighbouring turns of the same dialog (both speakers) the model reads."""

    past_turns: int = 0  # previous turns read with the current one; 0 (and no future) = the utterance-level model
    future_turns: int = 0  # following turns (the ERC papers' bidirectional models read them; a live system cannot)
    layer: str = "lstm"  # turn-level reader: lstm (the original study) or a one-layer transformer
    speaker_marker: bool = True  # tell the turn reader which turns the current speaker said

    @property
    def enabled(self) -> bool:
        return self.past_turns > 0 or self.future_turns > 0


@dataclass(frozen=True)
class TrialConfig:
    seed: int = 0
    epochs: int = 30
    patience: int = 6  # early stopping on validation weighted F1
    batch_size: int = 32
    group_by_length: bool = True  # training batches of similar-length utterances: less padding, same epochs
    # > 0: a fold's training and validation inputs are collated once, on the trial's device, in length-sorted
    # buckets of this many utterances (at most a sixteenth of the rows, rounded up to whole batches); batches
    # are drawn inside a bucket, so a bucket's batches share one shape. Smaller pads less, larger regroups
    # more. 0: each batch is collated when its step runs (group_by_length applies). Context models always
    # collate per step.
    bucket_size: int = 128
    lr: float = 1e-3  # heads, fusion and small encoders
    encoder_lr: float = 3e-5  # fine-tuned pretrained layers
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    class_weighted: bool = True
    dropout: float = 0.3
    fusion: str = "concat"
    fusion_dim: int = 128
    mixed_precision: bool = True  # bf16 autocast on GPU; ignored on CPU
    # Explanations (final stage; harness.train.explain): a class-stratified set of this many test utterances
    # per fold, the same for every pair (0 disables); Integrated Gradients starts at explain_steps and doubles
    # them until complete within tolerance.
    explain_samples: int = 60
    explain_steps: int = 16
    explain_batch: int = 4  # IG interpolation steps per forward/backward: bounds the explanation's memory
    explain_crop_s: float = 0.0  # explained audio cut to this many seconds, the same for every pair (0: as scored)
    # end_to_end: every branch from its input units; head_level: frozen pretrained branches over their frozen
    # states (reported apart), everything else end to end.
    explain_level: str = "end_to_end"
    # Explanation time as a fraction of the trial's train+score+measure time (0: no bound). It lowers IG
    # steps, never the utterances explained; a fold over it says so.
    explain_budget: float = 0.1
    # Timed calls per input length in the latency step after training (after warm-up; harness.train.costs).
    latency_repeats: int = 30
    audio: AudioConfig = field(default_factory=AudioConfig)
    text: TextConfig = field(default_factory=TextConfig)
    context: ContextConfig = field(default_factory=ContextConfig)

    def __post_init__(self) -> None:
        checks = [
            (self.fusion in FUSIONS, f"fusion must be one of {FUSIONS}, got {self.fusion!r}"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.bucket_size >= 0, "bucket_size must be >= 0 (0: batches collated per step)"),
            (
                self.bucket_size == 0 or self.group_by_length,
                "group_by_length: false needs bucket_size: 0 (buckets group by length)",
            ),
            (self.lr > 0 and self.encoder_lr > 0, "learning rates must be > 0"),
            (0 <= self.dropout < 1, "dropout must be in [0, 1)"),
            (self.explain_budget >= 0, "explain_budget must be >= 0 (0: no bound)"),
            (self.explain_level in EXPLAIN_LEVELS, f"explain_level must be one of {EXPLAIN_LEVELS}"),
            (self.explain_steps >= 2 and self.explain_crop_s >= 0, "explain_steps must be >= 2, explain_crop_s >= 0"),
            (self.latency_repeats >= 1, "latency_repeats must be >= 1"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.audio.features in ("logmel", "mfcc"), "audio.features must be logmel or mfcc"),
            (self.audio.finetune_layers >= 0 and self.text.finetune_layers >= 0, "finetune_layers must be >= 0"),
            (self.context.past_turns >= 0 and self.context.future_turns >= 0, "context turns must be >= 0"),
            (self.context.layer in CONTEXT_LAYERS, f"context.layer must be one of {CONTEXT_LAYERS}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @classmethod
    def from_flat(cls, values: dict[str, Any], where: str = "config") -> TrialConfig:
        nested: dict[str, Any] = {}
        for key, value in values.items():
            section, _, name = key.rpartition(".")
            target = {"": cls, **SECTIONS}.get(section)
            if target is None or name not in {f.name for f in fields(target)} or name in SECTIONS:
                raise ConfigError(f"{where}: unknown key {key!r}{did_you_mean(key, flat_keys())}")
            nested.setdefault(section, {})[name] = _coerce(value, get_type_hints(target)[name], f"{where}: {key}")
        try:
            audio = AudioConfig(**nested.get("audio", {}))
            text = TextConfig(**nested.get("text", {}))
            context = ContextConfig(**nested.get("context", {}))
            return cls(**nested.get("", {}), audio=audio, text=text, context=context)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None

    def flat(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if isinstance(value, dict):
                out.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                out[key] = value
        return out


SECTIONS: dict[str, type] = {"audio": AudioConfig, "text": TextConfig, "context": ContextConfig}


def flat_keys() -> list[str]:
    return list(TrialConfig().flat())


def did_you_mean(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _coerce(value: Any, kind: type, where: str) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {kind}")
