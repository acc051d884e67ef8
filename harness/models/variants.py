"""``EncoderVariant``: the data that names one upstream encoder (torch-free, so that the registries, the
report and the CLI's checks can read it without importing a model)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.config import TrialConfig

if TYPE_CHECKING:
    import numpy as np

    from harness.features import Features, FeatureSpec
    from harness.features.cache import Compute
    from harness.models.encoders.base import Encoder

MODALITIES = ("audio", "text")


@dataclass(frozen=True)
class Arch:
    """How to build a random-init checkpoint of a pretrained variant offline (transformers config class).

    ``real`` holds the values of the published checkpoint's config that differ from the class defaults,
    so ``config_class(**real)`` is the real architecture (used for size, memory and latency figures when
    the weights are not available). ``tiny`` may only shrink sizes (tests check it): every
    behaviour-changing default (layerdrop, masking, norm type, dropout) stays that of the real config.
    """

    config_class: str
    real: dict[str, Any] = field(default_factory=dict)
    tiny: dict[str, Any] = field(default_factory=dict)
    # Applied to the real config for a random-init stand-in only, for parts the encoder never loads (Whisper's
    # decoder): a 6 GB stand-in of which the encoder reads 2.5 GB would be built for nothing.
    stand_in: dict[str, Any] = field(default_factory=dict)

    @property
    def model_type(self) -> str:
        """The ``model_type`` a checkpoint's config.json must name to be this architecture."""
        import transformers

        return str(getattr(transformers, self.config_class).model_type)


@dataclass(frozen=True)
class EncoderVariant:
    """One registered upstream: a name, its modality, the class that implements it and, for pretrained
    ones, the default checkpoint and the recipe of its offline checkpoints."""

    name: str
    modality: str  # "audio" or "text"
    implementation: str  # "module:Class" of the encoder class, imported on first use (keeps registries torch-free)
    checkpoint: str = ""  # default hub name; "" for encoders trained from scratch
    arch: Arch | None = None
    # Family options the implementation reads (``option``): e.g. pooling "mean" / "last" for a decoder LLM.
    options: tuple[tuple[str, Any], ...] = ()
    note: str = ""  # one line for ``harness list`` (what the default checkpoint is, what a variant changes)

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)

    @property
    def cls(self) -> type[Encoder]:
        module, _, name = self.implementation.partition(":")
        return getattr(importlib.import_module(module), name)

    @property
    def pretrained(self) -> bool:
        return bool(self.checkpoint)

    def checkpoint_for(self, cfg: TrialConfig) -> str:
        """The checkpoint a config asks for: ``audio.model`` / ``text.model``, or this variant's default.
        (A per-encoder key, ``--set whisper.model=DIR``, reaches here as ``audio.model``: harness.models.hub.)"""
        return getattr(cfg, self.modality).model or self.checkpoint

    def feature_specs(self, cfg: TrialConfig) -> dict[str, FeatureSpec]:
        return self.cls.feature_specs(self, cfg)

    def compute(self, spec: FeatureSpec) -> Compute:
        return self.cls.compute(self, spec)

    def build(self, cfg: TrialConfig, features: dict[str, Features], train_rows: np.ndarray) -> Encoder:
        return self.cls.build(self, cfg, features, train_rows)
