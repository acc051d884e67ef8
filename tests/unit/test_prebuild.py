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


class FixedMeter:
    """A meter whose figures depend only on the spec it measures (what a real meter would measure, without
    the noise): the attribution logic is then checked exactly."""

    COST = {"logmel": 7.0, "mfcc": 5.0, "words": 0.5}
    built: list[str] = []

    def __init__(self, spec):
        self.seconds = self.COST[spec.kind]
        FixedMeter.built.append(spec.kind)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def figures(self):
        return {
            "extract_seconds": self.seconds,
            "cpu_seconds": self.seconds,
            "device": "cpu",
            "device_seconds": self.seconds,
            "energy_j": None,
            "energy_basis": None,
        }


def test_every_pair_is_charged_the_full_extraction_of_its_features_whatever_order_the_pairs_ran_in(
    demo_manifest, tmp_path
):
    """cnnbilstm_bilstm, cnnbilstm and bilstm share log-mel and word features. Run in two orders on fresh
    caches, each pair's extraction cost is the same; charging only what a pair built itself (the old
    wall-time accounting) would give the pair that runs second nothing."""
    from harness.report.costs import extraction_cost

    space_file = tmp_path / "space.yaml"
    space_file.write_text("search:\n  dropout: {type: float, low: 0.1, high: 0.3}\n")
    manifest = demo_manifest.iloc[:4]
    fingerprint = corpus_fingerprint(manifest)
    pairs = ["cnnbilstm_bilstm", "cnnbilstm", "bilstm"]
    charged = {}
    for name, order in (("forward", pairs), ("backward", pairs[::-1])):
        cache = FeatureCache(tmp_path / name)
        built_here = {}
        for pair in order:
            FixedMeter.built = []
            entries = prebuild_features(
                get_pair(pair), load_space(space_file), manifest, cache, fingerprint, meter=FixedMeter
            )
            charged[name, pair] = extraction_cost([{"extraction": list(entries.values())}]).seconds
            built_here[pair] = FixedMeter.built
        assert built_here[order[0]] and not built_here[order[-1]]  # the last pair found everything cached
    for pair in pairs:
        assert charged["forward", pair] == charged["backward", pair]
    assert charged["forward", "cnnbilstm_bilstm"] == 7.5 and charged["forward", "bilstm"] == 0.5


def test_the_cache_records_what_a_real_extraction_cost(demo_manifest, tmp_path):
    from harness.features import FeatureSpec, frontend

    manifest = demo_manifest.iloc[:3]
    spec = FeatureSpec.make("logmel")
    features = FeatureCache(tmp_path / "features").get(spec, manifest, frontend(spec), progress=False)
    built = features.meta
    assert built["extract_seconds"] > 0 and built["cpu_seconds"] > 0 and built["device"] == "cpu"
    assert built["device_seconds"] == built["cpu_seconds"] and built["energy_j"] is None
    again = FeatureCache(tmp_path / "features").get(spec, manifest, frontend(spec), progress=False)
    assert again.meta == built  # a later user reads the cost recorded when it was built
