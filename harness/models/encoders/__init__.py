"""Upstream encoders: the interface, the small models, the generic pretrained ones and their registry."""
from harness.models.encoders.base import Arch, Embedded, Encoded, Encoder, EncoderVariant, masked_mean
from harness.models.encoders.registry import ENCODERS, get_encoder, register

__all__ = ["ENCODERS", "Arch", "Embedded", "Encoded", "Encoder", "EncoderVariant", "get_encoder", "masked_mean",
           "register"]
