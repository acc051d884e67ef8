"""Everything a pair trains on: the manifest, integer labels and its encoders' cached features."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.cache import FeatureCache, Features, corpus_fingerprint
from harness.config import TrialConfig
from harness.corpus import EMOTIONS
from harness.encoders import encoder_class
from harness.features import FeatureSpec
from harness.pairs import PairSpec


@dataclass
class PairData:
    manifest: pd.DataFrame
    labels: np.ndarray  # index into EMOTIONS, one per manifest row
    features: dict[str, dict[str, Features]]  # modality -> role -> features


def feature_specs(pair: PairSpec, cfg: TrialConfig) -> dict[str, dict[str, FeatureSpec]]:
    return {m: encoder_class(name).feature_specs(cfg) for m, name in pair.encoders.items()}


def load_pair_data(pair: PairSpec, cfg: TrialConfig, manifest: pd.DataFrame, cache: FeatureCache,
                   fingerprint: str | None = None, progress: bool = True) -> PairData:
    fingerprint = fingerprint or corpus_fingerprint(manifest)
    features = {m: {role: cache.get(spec, manifest, fingerprint, progress) for role, spec in specs.items()}
                for m, specs in feature_specs(pair, cfg).items()}
    labels = manifest["label"].map({e: i for i, e in enumerate(EMOTIONS)}).to_numpy()
    return PairData(manifest.reset_index(drop=True), labels.astype(np.int64), features)
