"""Upstream encoders: the interface, the small models, the generic pretrained ones and their registry."""

from harness.models.encoders.registry import ENCODERS, get_encoder, register
from harness.models.variants import Arch, EncoderVariant

__all__ = ["ENCODERS", "Arch", "EncoderVariant", "get_encoder", "register"]
