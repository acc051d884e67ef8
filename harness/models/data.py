"""Everything a pair trains on: the manifest, integer labels and its encoders' cached features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.config import TrialConfig
from harness.corpus import EMOTIONS
from harness.features import FeatureCache, Features, FeatureSpec, corpus_fingerprint
from harness.models.pairs import PairSpec


@dataclass
class PairData:
    manifest: pd.DataFrame
    labels: np.ndarray  # index into EMOTIONS, one per manifest row
    features: dict[str, dict[str, Features]]  # modality -> role -> features


def feature_specs(pair: PairSpec, cfg: TrialConfig) -> dict[str, dict[str, FeatureSpec]]:
    return {m: variant.feature_specs(cfg) for m, variant in pair.variants.items()}


def load_pair_data(
    pair: PairSpec,
    cfg: TrialConfig,
    manifest: pd.DataFrame,
    cache: FeatureCache,
    fingerprint: str | None = None,
    progress: bool = True,
) -> PairData:
    fingerprint = fingerprint or corpus_fingerprint(manifest)
    features = {
        m: {
            role: cache.get(spec, manifest, variant.compute(spec), fingerprint, progress)
            for role, spec in variant.feature_specs(cfg).items()
        }
        for m, variant in pair.variants.items()
    }
    labels = manifest["label"].map({e: i for i, e in enumerate(EMOTIONS)}).to_numpy()
    return PairData(manifest.reset_index(drop=True), labels.astype(np.int64), features)
