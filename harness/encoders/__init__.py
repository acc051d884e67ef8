"""Upstream encoders, registered by name (importing this package registers all of them)."""
from harness.encoders import albert, bilstm, cnn_bilstm, wav2vec2  # noqa: F401  (registration)
from harness.encoders.base import ENCODERS, Embedded, Encoded, Encoder, encoder_class, masked_mean

__all__ = ["ENCODERS", "Embedded", "Encoded", "Encoder", "encoder_class", "masked_mean"]
