"""Typed configs. A trial's config is ``TrialConfig``; YAML and search-space keys are its (dotted) field names.

``TrialConfig.from_flat({"lr": 1e-3, "audio.hidden": 128})`` is the one place where untyped values
become a config: unknown keys fail with a "did you mean" hint and values are checked against field types.
Every number is then checked against ``RANGES`` (finite, inside the key's valid range) in
``TrialConfig.__post_init__``, so ``--set``, search-space bounds (``check_value``) and stored configs all
pass the same check, and an error names the key and the range.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, get_type_hints

from harness.errors import UserError

FUSIONS = ("concat", "gated", "attention")
CONTEXT_LAYERS = ("lstm", "transformer")
EXPLAIN_LEVELS = ("end_to_end", "head_level")
FINETUNE_MODES = ("layers", "lora")
LORA_TARGETS = ("attention", "attention_full", "all_linear")


class ConfigError(UserError):
    """A config or search-space problem, reported before anything runs."""


@dataclass(frozen=True)
class Range:
    """The values a number may take: finite, between ``low`` and ``high`` (each excluded where open)."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return math.isfinite(value) and above and below

    def describe(self, integer: bool) -> str:
        if integer:
            return f"an integer in {int(self.low)}..{int(self.high)}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"a finite number in {left}{self.low:g}, {self.high:g}{right}"


_SIZE = Range(1, 65536)  # layer widths: 0 is no layer, and past 64k a CPU or GPU runs out of memory first
# The valid range of every numeric config key. A bound is where a value stops making sense (or breaks a
# library below), not a taste: a new numeric field must be listed here (tests/unit/test_faults_config.py).
RANGES: dict[str, Range] = {
    "seed": Range(0, 2**32 - 1),  # numpy and torch take seeds below 2^32
    "epochs": Range(1, 10_000),
    "patience": Range(0, 10_000),  # 0: stop at the first epoch that does not improve
    "batch_size": Range(1, 65536),
    "bucket_size": Range(0, 1_000_000),
    # Any positive finite rate: a huge one is how the tests make training diverge (NonFiniteLossError).
    "lr": Range(0, math.inf, low_open=True, high_open=True),
    "encoder_lr": Range(0, math.inf, low_open=True, high_open=True),
    "weight_decay": Range(0, 10),
    "warmup_ratio": Range(0, 1, high_open=True),
    "grad_clip": Range(0, math.inf, low_open=True, high_open=True),  # always applied: 0 zeroes every gradient
    "dropout": Range(0, 1, high_open=True),
    "fusion_dim": _SIZE,
    "explain_samples": Range(0, 100_000),
    "explain_steps": Range(2, 100_000),
    "explain_batch": Range(1, 100_000),
    "explain_crop_s": Range(0, 3600),
    "explain_budget": Range(0, 100),
    "latency_repeats": Range(1, 100_000),
    "audio.finetune_layers": Range(0, 1000),
    "audio.lora_rank": Range(1, 4096),
    "audio.lora_alpha": Range(0, 1e6, low_open=True),
    "audio.n_mels": Range(1, 256),  # a 25 ms window at 16 kHz has 201 frequency bins
    "audio.channels": _SIZE,
    "audio.hidden": _SIZE,
    "audio.max_seconds": Range(0, 3600, low_open=True),
    "text.finetune_layers": Range(0, 1000),
    "text.lora_rank": Range(1, 4096),
    "text.lora_alpha": Range(0, 1e6, low_open=True),
    "text.embed_dim": _SIZE,
    "text.hidden": _SIZE,
    "text.min_count": Range(1, 1_000_000),
    "text.max_tokens": Range(1, 4096),
    "context.past_turns": Range(0, 500),  # an IEMOCAP dialog has at most ~110 turns
    "context.future_turns": Range(0, 500),
}


def check_value(key: str, value: Any, where: str = "config") -> None:
    """A ``ConfigError`` naming ``key`` and its valid range when a number is non-finite or outside it."""
    limits = RANGES.get(key)
    if limits is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if value not in limits:
        raise ConfigError(f"{where}: {key} = {value!r} is out of range; valid: {_valid(key)}")


def _valid(key: str) -> str:
    """What ``key`` takes, in words: its range where it has one, else its type."""
    kind = _KINDS.get(key)
    if key in RANGES:
        return RANGES[key].describe(kind is int)
    names: dict[type | None, str] = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    return names.get(kind, "a value")


@dataclass(frozen=True)
class AudioConfig:
    model: str = ""  # pretrained audio encoder: hub name or local path; "" = the encoder's default checkpoint
    finetune_layers: int = 0  # pretrained: 0 = frozen (trains on cached layer means); k = fine-tune the top k layers
    # pretrained: how the backbone trains. layers: the top finetune_layers layers (0 = frozen, cached layer
    # means); lora: low-rank adapters (peft) on every layer's lora_targets, the backbone itself frozen
    finetune: str = "layers"
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_targets: str = "attention"  # attention (query, value) | attention_full (q, k, v, out) | all_linear
    features: str = "logmel"  # cnn_bilstm front end: logmel or mfcc
    n_mels: int = 64
    channels: int = 64  # cnn_bilstm conv channels
    hidden: int = 128  # cnn_bilstm BiLSTM hidden size per direction
    max_seconds: float = 15.0  # longer utterances are cropped (IEMOCAP has a few > 30 s)


@dataclass(frozen=True)
class TextConfig:
    model: str = ""  # pretrained text encoder: hub name or local path; "" = the encoder's default checkpoint
    finetune_layers: int = 0  # pretrained: 0 = frozen; k fine-tunes the top k layers (ALBERT: its shared layer)
    finetune: str = "layers"  # layers | lora (as for audio)
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_targets: str = "attention"
    embed_dim: int = 128  # bilstm word embedding size
    hidden: int = 128  # bilstm hidden size per direction
    min_count: int = 1  # bilstm: words seen fewer times in the fold's training sessions map to <unk>
    max_tokens: int = 128
    # --text-source asr: the Whisper checkpoint that writes the text (harness.features.asr; "" = its default);
    # read once before the search, never searched (the transcripts are data, not a hyperparameter)
    asr_model: str = ""


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
    gradient_checkpointing: bool = False  # fine-tuned pretrained backbones recompute activations in backward
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
    # Also time the 1-s and 10-s inputs (the 4-s one, the headline's, is always timed). The demo budget turns
    # this off: on CPU a 94 M-parameter backbone's 10-s calls were most of its final stage.
    latency_all_lengths: bool = True
    audio: AudioConfig = field(default_factory=AudioConfig)
    text: TextConfig = field(default_factory=TextConfig)
    context: ContextConfig = field(default_factory=ContextConfig)

    def __post_init__(self) -> None:
        for key, value in self.flat().items():
            check_value(key, value, "config")
        checks = [
            (self.fusion in FUSIONS, f"fusion must be one of {FUSIONS}, got {self.fusion!r}"),
            (
                self.bucket_size == 0 or self.group_by_length,
                "group_by_length: false needs bucket_size: 0 (buckets group by length)",
            ),
            (self.explain_level in EXPLAIN_LEVELS, f"explain_level must be one of {EXPLAIN_LEVELS}"),
            (self.audio.features in ("logmel", "mfcc"), "audio.features must be logmel or mfcc"),
            (
                {self.audio.finetune, self.text.finetune} <= set(FINETUNE_MODES)
                and {self.audio.lora_targets, self.text.lora_targets} <= set(LORA_TARGETS),
                f"finetune must be one of {FINETUNE_MODES}, lora_targets one of {LORA_TARGETS}",
            ),
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
            nested.setdefault(section, {})[name] = _coerce(value, _KINDS[key], where, key)
        try:
            audio = AudioConfig(**nested.get("audio", {}))
            text = TextConfig(**nested.get("text", {}))
            context = ContextConfig(**nested.get("context", {}))
            return cls(**nested.get("", {}), audio=audio, text=text, context=context)
        except ConfigError as err:
            raise ConfigError(f"{where}: {str(err).removeprefix('config: ')}") from None

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


def key_type(key: str) -> type | None:
    """The Python type of a flat config key (``int``, ``float``, ``bool``, ``str``), None if unknown."""
    return _KINDS.get(key)


_KINDS: dict[str, type] = {
    **{f.name: get_type_hints(TrialConfig)[f.name] for f in fields(TrialConfig) if f.name not in SECTIONS},
    **{f"{section}.{f.name}": get_type_hints(kind)[f.name] for section, kind in SECTIONS.items() for f in fields(kind)},
}


def did_you_mean(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _coerce(value: Any, kind: type, where: str, key: str) -> Any:
    """``value`` as ``kind``, or a ``ConfigError`` naming the key and what it takes."""
    wrong = ConfigError(f"{where}: {key} = {value!r} is not valid; expected {_valid(key)}")
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise wrong
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong
        if isinstance(value, float) and not value.is_integer():
            raise wrong  # nan, inf and 2.5 alike
        return int(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise wrong
        return value
    raise ConfigError(f"{where}: {key}: unsupported type {kind}")
