"""Features: specs, per-utterance front ends, and the on-disk cache that stores them."""

from harness.features.cache import FeatureCache, Features, corpus_fingerprint
from harness.features.frontends import frontend
from harness.features.spec import FeatureSpec

__all__ = ["FeatureCache", "FeatureSpec", "Features", "corpus_fingerprint", "frontend"]
