"""harness.tune.prebuild"""

from __future__ import annotations

from harness.features import FeatureCache, corpus_fingerprint
from harness.models.pairs import get_pair
from harness.tune.prebuild import prebuild_features
from harness.tune.space import load_space


def test_prebuild_extracts_every_feature_config_the_space_can_ask_for(demo_manifest, tmp_path, monkeypatch):
    space_file = tmp_path / "space.yaml"
    space_file.write_text(
        "search:\n  audio.features: {type: categorical, choices: [logmel, mfcc]}\n"
        "  audio.n_mels: {type: categorical, choices: [32, 40]}\n"
        "  audio.hidden: {type: int, low: 16, high: 32, step: 16}\n"
    )
    manifest = demo_manifest.iloc[:6]
    cache = FeatureCache(tmp_path / "features")
    built = []
    original = FeatureCache._build

    def record(self, spec, *args):
        built.append((spec.kind, spec["n_mels"]))
        return original(self, spec, *args)

    monkeypatch.setattr(FeatureCache, "_build", record)
    prebuild_features(get_pair("cnnbilstm"), load_space(space_file), manifest, cache, corpus_fingerprint(manifest))
    # each searched front-end value once; audio.hidden does not change the features
    assert sorted(built) == [("logmel", 32), ("logmel", 40), ("logmel", 64), ("mfcc", 64)]
