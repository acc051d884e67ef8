from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from harness.corpus import EMOTIONS, CorpusError, load_corpus, speaker_of
from harness.corpus.demo import expected_counts
from harness.features.frontends import words_of
from tests.fixtures.iemocap import QUIRKY_SUMMARY, QUIRKY_TRANSCRIPT, write_dialog, write_quirky_session


def test_demo_counts_are_exact(demo_corpus):
    table = demo_corpus.label_counts
    for session, counts in expected_counts().items():
        for label, n in counts.items():
            assert table.loc[session, label] == n, (session, label)
    assert len(demo_corpus.utterances) == 450  # 90 six-class turns per session (DemoConfig.scale = 2)
    assert demo_corpus.n_labelled == 542
    assert demo_corpus.unnamed_transcript_lines == 30  # one per dialog, 6 dialogs per session
    assert {u.label for u in demo_corpus.utterances} == set(EMOTIONS)
    assert not demo_corpus.skipped


def test_demo_manifest_columns_and_speakers(demo_manifest):
    for column in ("utterance_id", "session", "speaker", "dialog", "label", "text", "wav_path", "duration"):
        assert column in demo_manifest.columns
    assert sorted(demo_manifest["speaker"].unique()) == [f"Ses0{s}{g}" for s in range(1, 6) for g in "FM"]
    # the odd dialog names of the real corpus are read
    assert {"Ses03M_impro05a", "Ses05M_script01_1b"} <= set(demo_manifest["dialog"])
    assert (demo_manifest["duration"] > 0.45).all()  # turns of 0.5-1 s


def test_speaker_comes_from_the_utterance_suffix():
    assert speaker_of("Ses03F_impro06_M012") == "Ses03M"
    assert speaker_of("Ses05M_script01_1b_F003") == "Ses05F"
    assert speaker_of("Ses03F_impro06_FXX0") == "Ses03F"


def test_quirky_session_is_read_exactly(tmp_path):
    corpus = load_corpus(write_quirky_session(tmp_path), sessions=(3,))
    ids = [u.utterance_id for u in corpus.utterances]
    assert ids == ["Ses03M_impro05a_F000", "Ses03M_impro05a_M001"]
    first, second = corpus.utterances
    assert (first.label, first.speaker, first.dialog) == ("ang", "Ses03F", "Ses03M_impro05a")
    assert second.speaker == "Ses03M" and second.text == "It's fine."
    assert first.text == "Get out [LAUGHTER] now."  # kept verbatim in the manifest ...
    assert words_of(first.text) == ["get", "out", "now"]  # ... and dropped from model inputs
    assert corpus.label_counts.loc[3].to_dict() == {"neu": 1, "ang": 1, "sur": 1, "xxx": 1}
    assert corpus.unnamed_transcript_lines == 1
    assert (first.start, first.end) == (1.0, 2.5)


def test_malformed_summary_line_names_file_and_line(tmp_path):
    write_quirky_session(tmp_path)
    bad = QUIRKY_SUMMARY.replace("[5.0000 - 6.0000]\tSes03M_impro05a_M001", "[5.0000 6.0000] Ses03M_impro05a_M001")
    write_dialog(tmp_path, 3, "Ses03M_impro05a", bad, QUIRKY_TRANSCRIPT, [])
    with pytest.raises(CorpusError, match=r"EmoEvaluation/Ses03M_impro05a\.txt:10: malformed EmoEvaluation line"):
        load_corpus(tmp_path, sessions=(3,))
    corpus = load_corpus(tmp_path, sessions=(3,), skip_bad=True)
    assert [u.utterance_id for u in corpus.utterances] == ["Ses03M_impro05a_F000"]
    assert len(corpus.skipped) == 1 and corpus.skipped[0].line == 10


def test_unknown_label_and_bad_transcript_line(tmp_path):
    write_quirky_session(tmp_path)
    write_dialog(tmp_path, 3, "Ses03M_impro05a", QUIRKY_SUMMARY.replace("\tneu\t", "\thappy\t"), QUIRKY_TRANSCRIPT, [])
    with pytest.raises(CorpusError, match=r"Ses03M_impro05a\.txt:10: unknown emotion label 'happy'"):
        load_corpus(tmp_path, sessions=(3,))
    write_dialog(tmp_path, 3, "Ses03M_impro05a", QUIRKY_SUMMARY, QUIRKY_TRANSCRIPT + "garbled line here\n", [])
    with pytest.raises(CorpusError, match=r"transcriptions/Ses03M_impro05a\.txt:7: malformed transcription"):
        load_corpus(tmp_path, sessions=(3,))


def test_missing_and_corrupt_wavs_name_the_file(tmp_path):
    write_quirky_session(tmp_path)
    wav_dir = tmp_path / "Session3" / "sentences" / "wav" / "Ses03M_impro05a"
    (wav_dir / "Ses03M_impro05a_M001.wav").unlink()
    with pytest.raises(CorpusError, match=r"Ses03M_impro05a_M001\.wav: missing wav"):
        load_corpus(tmp_path, sessions=(3,))
    (wav_dir / "Ses03M_impro05a_M001.wav").write_bytes(b"RIFF????WAVEjunk")
    with pytest.raises(CorpusError, match=r"Ses03M_impro05a_M001\.wav: unreadable wav"):
        load_corpus(tmp_path, sessions=(3,))
    corpus = load_corpus(tmp_path, sessions=(3,), skip_bad=True)
    assert [u.utterance_id for u in corpus.utterances] == ["Ses03M_impro05a_F000"]
    assert corpus.label_counts.loc[3, "neu"] == 0  # the skipped utterance is not counted as benchmark data


def test_missing_transcription_and_wrong_root(tmp_path):
    write_quirky_session(tmp_path)
    (tmp_path / "Session3" / "dialog" / "transcriptions" / "Ses03M_impro05a.txt").unlink()
    with pytest.raises(CorpusError, match=r"transcriptions/Ses03M_impro05a\.txt: missing transcription"):
        load_corpus(tmp_path, sessions=(3,))
    with pytest.raises(CorpusError, match=r"does-not-exist: corpus directory does not exist"):
        load_corpus(tmp_path / "does-not-exist")
    with pytest.raises(CorpusError, match=r"Session1/dialog/EmoEvaluation: missing EmoEvaluation folder"):
        load_corpus(tmp_path)


def test_inspect_cli_writes_manifest(demo_root, tmp_path):
    out = tmp_path / "manifest.csv"
    result = subprocess.run(
        [sys.executable, "-m", "harness.data", "inspect", "--data", str(demo_root), "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "450 utterances in the six classes, 542 labelled" in result.stdout
    manifest = pd.read_csv(out)
    assert len(manifest) == 450 and manifest["label"].value_counts()["neu"] == 100


def test_inspect_cli_bad_path_is_a_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "harness.data", "inspect", "--data", str(tmp_path / "nope")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "nope: corpus directory does not exist" in result.stderr and "Traceback" not in result.stderr
