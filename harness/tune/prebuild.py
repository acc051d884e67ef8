"""Extract every feature the trials of a search space can ask for, once, before Ray starts."""

from __future__ import annotations

import logging

import pandas as pd

from harness.features import FeatureCache
from harness.features.cache import MeterFactory
from harness.models.data import feature_specs, load_pair_data
from harness.models.pairs import PairSpec
from harness.train.measure import ExtractionMeter
from harness.tune.space import SearchSpace

log = logging.getLogger(__name__)


def prebuild_features(
    pair: PairSpec,
    space: SearchSpace,
    manifest: pd.DataFrame,
    cache: FeatureCache,
    fingerprint: str,
    meter: MeterFactory = ExtractionMeter,
) -> dict[str, dict]:
    """Build the features of every config the space can produce; returns, per spec, what its extraction cost.

    Each modality's features depend on single keys (front end, mel bins, checkpoint, fine-tuning or
    not), so varying one searched value at a time finds them all; anything missed is built by the
    first trial that needs it, under the cache's lock.

    The cost of a spec is the one recorded in the cache when it was built (``meter`` measures what is built
    now), so it is returned whether this call or an earlier run (another pair) built it: every pair that
    uses a spec is charged its full extraction cost, whatever order the pairs ran in.
    """
    cache = cache.metered(meter)
    variants: list[dict] = [{}] + [{p.name: value} for p in space.params for value in space.possible_values(p.name)]
    seen: set[str] = set()
    built: dict[str, dict] = {}
    for values in variants:
        cfg = space.config(values)
        specs = repr(feature_specs(pair, cfg))
        if specs in seen:
            continue
        seen.add(specs)
        data = load_pair_data(pair, cfg, manifest, cache, fingerprint, progress=True)
        for roles in data.features.values():
            for features in roles.values():
                built[repr(features.spec.describe())] = features.spec.describe() | features.meta
    return built
