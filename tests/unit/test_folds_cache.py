from __future__ import annotations

import os

import numpy as np
import pytest

from harness import cache as cache_module
from harness.features import FeatureCache, corpus_fingerprint
from harness.features import FeatureSpec
from harness.corpus.folds import make_folds


def test_leave_one_session_out_folds(demo_manifest):
    folds = make_folds(demo_manifest)
    assert [f.test_session for f in folds] == [1, 2, 3, 4, 5]
    for fold in folds:
        train, val, test = (demo_manifest.iloc[idx] for idx in (fold.train, fold.validation, fold.test))
        assert set(test["session"]) == {fold.test_session}
        assert fold.test_session not in set(train["session"]) | set(val["session"])
        assert set(val["speaker"]) == {fold.validation_speaker}
        assert fold.validation_speaker not in set(train["speaker"])
        assert len(train) + len(val) + len(test) == len(demo_manifest)
    assert len({f.validation_speaker for f in folds}) == 5


def test_cache_builds_once_and_rekeys_on_spec_change(demo_manifest, tmp_path, monkeypatch):
    manifest = demo_manifest.iloc[:12]
    cache = FeatureCache(tmp_path)
    spec = FeatureSpec("logmel", n_mels=32)
    first = cache.get(spec, manifest, progress=False)
    assert cache.last_build_seconds > 0
    assert len(first) == 12 and first[0].shape[1] == 32
    assert first.lengths()[0] == pytest.approx(demo_manifest.duration[0] * 100, abs=2)

    def fail(spec):
        raise AssertionError("features were recomputed")

    monkeypatch.setattr(cache_module, "per_utterance_extractor", fail)
    second = cache.get(spec, manifest, progress=False)
    assert cache.last_build_seconds == 0
    np.testing.assert_array_equal(first[5], second[5])
    with pytest.raises(AssertionError, match="recomputed"):
        cache.get(FeatureSpec("logmel", n_mels=40), manifest, progress=False)


def test_fingerprint_follows_wav_files(demo_manifest):
    manifest = demo_manifest.iloc[:3].copy()
    before = corpus_fingerprint(manifest)
    stat = os.stat(manifest.wav_path.iloc[0])
    os.utime(manifest.wav_path.iloc[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert corpus_fingerprint(manifest) != before


def test_waveform_and_words(demo_manifest, tmp_path):
    manifest = demo_manifest.iloc[:4]
    cache = FeatureCache(tmp_path)
    wave = cache.get(FeatureSpec("waveform"), manifest, progress=False)
    assert wave[0].dtype == np.int16
    assert len(wave[0]) == pytest.approx(manifest.duration.iloc[0] * 16000, abs=2)
    words = cache.get(FeatureSpec("words"), manifest, progress=False)
    assert all(w == w.lower() and "[" not in w for w in words[0])


def test_prebuild_extracts_every_feature_config_the_space_can_ask_for(demo_manifest, tmp_path, monkeypatch):
    from harness.search import prebuild_features
    from harness.tune.space import load_space

    space_file = tmp_path / "space.yaml"
    space_file.write_text("search:\n  audio.features: {type: categorical, choices: [logmel, mfcc]}\n"
                          "  audio.n_mels: {type: categorical, choices: [32, 40]}\n"
                          "  audio.hidden: {type: int, low: 16, high: 32, step: 16}\n")
    manifest = demo_manifest.iloc[:6]
    cache = FeatureCache(tmp_path / "features")
    built = []
    original = FeatureCache._build

    def record(self, spec, *args):
        built.append((spec.kind, spec.n_mels))
        return original(self, spec, *args)

    monkeypatch.setattr(FeatureCache, "_build", record)
    prebuild_features("cnnbilstm", load_space(space_file), manifest, cache, corpus_fingerprint(manifest))
    # each searched front-end value once; audio.hidden does not change the features
    assert sorted(built) == [("logmel", 32), ("logmel", 40), ("logmel", 64), ("mfcc", 64)]
