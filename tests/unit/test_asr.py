"""ASR transcripts (a tiny random-init Whisper), their cache, and WER on known strings."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from harness.features import FeatureCache
from harness.features.asr import (
    NO_SPEECH,
    apply_text_source,
    ensure_tiny_whisper,
    normalise,
    transcribe,
    wer_counts,
    wer_of,
    word_errors,
)
from harness.records import RunMeta
from harness.report.wer import text_source_table, wer_table


def test_normalise():
    assert normalise("[LAUGHTER] Don't, you   SEE?  'Yes'.") == "don't you see yes"


@pytest.mark.parametrize(
    "reference, hypothesis, errors, words",
    [
        ("the cat sat on the mat", "the cat sat on the mat", 0, 6),
        ("the cat sat on the mat", "the cat sit on mat today", 3, 6),  # S sat->sit, S the->mat, S mat->today
        ("the cat sat", "", 3, 3),  # every word deleted
        ("a b", "a x b c", 2, 2),  # two insertions: WER above 1 is possible
        ("Hello, world! [LAUGHTER]", "hello world", 0, 2),  # normalised before scoring
        ("the cat sat", NO_SPEECH, 3, 3),  # the marker is an empty hypothesis
    ],
)
def test_word_errors_on_known_strings(reference, hypothesis, errors, words):
    found = word_errors([reference], [hypothesis])
    assert (found.errors, found.words) == (errors, words)


def test_wer_is_pooled_over_words_not_averaged_over_utterances():
    found = word_errors(["a", "b c d e f g h i j k", "[LAUGHTER]"], ["x", "b c d e f g h i j k", "ha"])
    assert found.wer == pytest.approx(1 / 11)  # a mean of per-utterance rates would say 0.5
    assert found.empty_references == 1 and found.utterances == 2


def test_wer_counts_per_session():
    manifest = pd.DataFrame({"session": [1, 1, 2], "gold_text": ["a b", "c d", "e f g h"], "text": ["a b", "c x", "e"]})
    counts = wer_counts(manifest)
    assert counts == {"errors_1": 1.0, "words_1": 4.0, "errors_2": 3.0, "words_2": 4.0}
    assert wer_of(counts, [1]) == 0.25 and wer_of(counts, [1, 2]) == 0.5


def _run(text_source: str, f1: dict[int, float]) -> SimpleNamespace:
    meta = RunMeta(
        "p",
        "r",
        "demo",
        "g",
        {},
        tuple(f1),
        0,
        True,
        text_source=text_source,
        asr_model="tiny" if text_source == "asr" else "",
        wer={"errors_1": 1.0, "words_1": 4.0, "errors_2": 3.0, "words_2": 4.0} if text_source == "asr" else {},
    )
    folds = [SimpleNamespace(fold=s, test=1, tested=SimpleNamespace(weighted_f1=v)) for s, v in f1.items()]
    return SimpleNamespace(meta=meta, stage="final", records=[SimpleNamespace(complete=True, folds=folds)])


def test_gold_vs_asr_table():
    gold, asr = _run("gold", {1: 0.6, 2: 0.5}), _run("asr", {1: 0.5, 2: 0.3})
    assert gold.meta.group != asr.meta.group  # never ranked in one table
    table = text_source_table([gold, asr])
    row = table.iloc[0]
    assert row["asr_minus_gold"] == pytest.approx(-0.15) and row["wer"] == 0.5 and row["sessions"] == 2
    assert row["ci_low"] < -0.15 < row["ci_high"]
    assert wer_table([gold, asr])[["pair", "wer", "wer_s1", "wer_s2"]].values.tolist() == [["p", 0.5, 0.25, 0.75]]


def test_transcribe_once_into_the_cache(demo_manifest, tmp_path, monkeypatch):
    model = str(ensure_tiny_whisper(tmp_path))
    rows = demo_manifest.iloc[:3]
    cache = FeatureCache(tmp_path / "features")
    first = transcribe(rows, model, cache)
    assert set(first.text) == set(rows["utterance_id"]) and all(isinstance(t, str) for t in first.text.values())
    import harness.features.asr as asr

    monkeypatch.setattr(asr, "_Whisper", None)  # a second call must not load the model: it reads the cache
    again = transcribe(rows.assign(text="changed gold"), model, cache)
    assert again.text == first.text
    out = apply_text_source(rows, again)
    assert out["gold_text"].tolist() == rows["text"].tolist()
    assert out["text"].tolist() == [first.text[u] or NO_SPEECH for u in rows["utterance_id"]]
