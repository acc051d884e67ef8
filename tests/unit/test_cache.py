"""harness.features.cache and harness.features.spec"""

from __future__ import annotations

import os

import numpy as np
import pytest

from harness.features import FeatureCache, FeatureSpec, corpus_fingerprint, frontend


def test_cache_builds_once_and_rekeys_on_spec_change(demo_manifest, tmp_path):
    manifest = demo_manifest.iloc[:12]
    cache = FeatureCache(tmp_path)
    spec = FeatureSpec.make("logmel", n_mels=32)
    first = cache.get(spec, manifest, frontend(spec), progress=False)
    assert cache.last_build_seconds > 0
    assert len(first) == 12 and first[0].shape[1] == 32
    assert first.lengths()[0] == pytest.approx(demo_manifest.duration[0] * 100, abs=2)
    assert first.meta["audio_seconds_per_second"] > 0

    def fail(manifest):
        raise AssertionError("features were recomputed")

    second = cache.get(spec, manifest, fail, progress=False)
    assert cache.last_build_seconds == 0
    np.testing.assert_array_equal(first[5], second[5])
    with pytest.raises(AssertionError, match="recomputed"):
        cache.get(FeatureSpec.make("logmel", n_mels=40), manifest, fail, progress=False)


def test_a_spec_key_holds_only_its_kinds_options():
    assert FeatureSpec.make("logmel").describe() == {
        "kind": "logmel",
        "sample_rate": 16000,
        "win_ms": 25.0,
        "hop_ms": 10.0,
        "n_mels": 64,
    }
    audio = FeatureSpec.make("layer_means", model="m", encoder="wav2vec2", max_seconds=15.0)
    assert "max_tokens" not in audio.describe()  # changing text.max_tokens never re-extracts audio features
    text = FeatureSpec.make("layer_means", model="m", encoder="albert", max_tokens=128)
    assert "max_seconds" not in text.describe()
    with pytest.raises(ValueError, match="takes no option"):
        FeatureSpec.make("logmel", max_tokens=3)
    with pytest.raises(ValueError, match="needs"):
        FeatureSpec.make("subwords")


def test_fingerprint_follows_wav_files(demo_manifest):
    manifest = demo_manifest.iloc[:3].copy()
    before = corpus_fingerprint(manifest)
    stat = os.stat(manifest.wav_path.iloc[0])
    os.utime(manifest.wav_path.iloc[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert corpus_fingerprint(manifest) != before


def test_waveform_and_words(demo_manifest, tmp_path):
    manifest = demo_manifest.iloc[:4]
    cache = FeatureCache(tmp_path)
    spec = FeatureSpec.make("waveform")
    wave = cache.get(spec, manifest, frontend(spec), progress=False)
    assert wave[0].dtype == np.int16
    assert len(wave[0]) == pytest.approx(manifest.duration.iloc[0] * 16000, abs=2)
    spec = FeatureSpec.make("words")
    words = cache.get(spec, manifest, frontend(spec), progress=False)
    assert all(w == w.lower() and "[" not in w for w in words[0])


def test_a_wav_of_nan_samples_is_an_error_naming_it(tmp_path):
    import soundfile

    from harness.errors import UserError
    from harness.features.frontends import load_audio

    path = tmp_path / "Ses01F_impro01_F000.wav"
    samples = np.zeros(1600, dtype=np.float32)
    samples[10] = np.nan
    soundfile.write(path, samples, 16_000, subtype="FLOAT")
    with pytest.raises(UserError, match=r"Ses01F_impro01_F000\.wav: wav samples that are not finite"):
        load_audio(str(path), 16_000)
