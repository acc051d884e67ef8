"""Everything a pair trains on: the manifest, integer labels into its class set, its encoders' cached
features, and the manifest's dialogue structure."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from harness.config import TrialConfig
from harness.corpus import EMOTIONS
from harness.corpus.dialogs import DialogTurns
from harness.errors import UserError
from harness.features import FeatureCache, Features, FeatureSpec, corpus_fingerprint
from harness.models.pairs import PairSpec


@dataclass
class PairData:
    manifest: pd.DataFrame
    labels: np.ndarray  # index into classes, one per manifest row
    features: dict[str, dict[str, Features]]  # modality -> role -> features
    classes: tuple[str, ...] = EMOTIONS  # the class set: model outputs and metrics follow this order

    @cached_property
    def dialogs(self) -> DialogTurns:
        """Each dialog's turns in time order (what context models read)."""
        return DialogTurns.from_manifest(self.manifest)


def feature_specs(pair: PairSpec, cfg: TrialConfig) -> dict[str, dict[str, FeatureSpec]]:
    return {m: variant.feature_specs(cfg) for m, variant in pair.variants.items()}


def load_pair_data(
    pair: PairSpec,
    cfg: TrialConfig,
    manifest: pd.DataFrame,
    cache: FeatureCache,
    fingerprint: str | None = None,
    progress: bool = True,
    classes: tuple[str, ...] = EMOTIONS,
) -> PairData:
    """Features from the cache (computed once) and labels as indices into ``classes`` (see
    ``harness.corpus.protocols.class_set``); every manifest label must be one of ``classes``."""
    unknown = sorted(set(manifest["label"]) - set(classes))
    if unknown:
        raise UserError(
            f"manifest labels {unknown} are not in the class set {classes}; "
            f"apply the class set to the manifest first (harness.corpus.protocols.apply_class_set)"
        )
    fingerprint = fingerprint or corpus_fingerprint(manifest)
    features = {
        m: {
            role: cache.get(spec, manifest, variant.compute(spec), fingerprint, progress)
            for role, spec in variant.feature_specs(cfg).items()
        }
        for m, variant in pair.variants.items()
    }
    labels = manifest["label"].map({e: i for i, e in enumerate(classes)}).to_numpy()
    return PairData(manifest.reset_index(drop=True), labels.astype(np.int64), features, tuple(classes))
