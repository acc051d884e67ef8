"""Fault injection, corpus side (issue 30): an id that would read a file outside the corpus, and each class
of case that used to be accepted silently, is a one-line exit-2 error naming file and line, or a documented
acceptance that ``harness data inspect`` lists (docs/input.md)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from harness.cli.data import main as data_main
from harness.corpus import CorpusError, load_corpus
from tests.fixtures.iemocap import QUIRKY_SUMMARY, QUIRKY_TRANSCRIPT, QUIRKY_WAVS, write_dialog, write_wav

DIALOG = "Ses03M_impro05a"
EMO = "Session3/dialog/EmoEvaluation/Ses03M_impro05a.txt"
TRANS = "Session3/dialog/transcriptions/Ses03M_impro05a.txt"
TRAVERSAL = "Ses01F_x/../../../../../../outside/evil_F000"


def _session3(root: Path, summary: str = QUIRKY_SUMMARY, transcript: str = QUIRKY_TRANSCRIPT) -> Path:
    write_dialog(root, 3, DIALOG, summary, transcript, QUIRKY_WAVS)
    return root


def _load(root: Path, skip_bad: bool = False):  # noqa: ANN202
    return load_corpus(root, skip_bad=skip_bad, sessions=(3,))


def test_traversal_in_an_utterance_id_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b" / "IEMOCAP_full_release"
    utt = TRAVERSAL.replace("Ses01F", "Ses03M")
    # the file the id points at exists, outside the corpus, and is as long as the label: it must never be read
    outside = Path(os.path.normpath(root / "Session3" / "sentences" / "wav" / DIALOG / f"{utt}.wav"))
    assert not outside.is_relative_to(root)
    write_wav(outside, 1.0)
    _session3(root, summary=QUIRKY_SUMMARY + f"[1.0000 - 2.0000]\t{utt}\tang\t[2.0000, 4.0000, 4.0000]\n")
    with pytest.raises(CorpusError, match=rf"{EMO}:13: malformed utterance id") as caught:
        _load(root)
    assert "\n" not in str(caught.value)
    corpus = _load(root, skip_bad=True)
    assert all("outside" not in u.wav_path for u in corpus.utterances)
    assert corpus.n_skipped_label_lines == 1


def test_traversal_on_a_copy_of_the_demo_is_exit_2_one_line(
    demo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "IEMOCAP_full_release"
    shutil.copytree(demo_root, root)
    summary = sorted((root / "Session1" / "dialog" / "EmoEvaluation").glob("Ses01*.txt"))[0]
    write_wav(tmp_path / "outside" / "evil_F000.wav", 1.0)
    with summary.open("a") as f:
        f.write(f"[1.0000 - 2.0000]\t{TRAVERSAL}\tang\t[2.0000, 4.0000, 4.0000]\n")
    assert data_main(["inspect", "--data", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    expected = rf"error: {re.escape(str(summary))}:\d+: malformed utterance id '{re.escape(TRAVERSAL)}'.*"
    assert re.fullmatch(expected, err)


# Each silent class of the issue, as a change to the quirky Session 3, and the error it must raise.
SILENT = {
    "another session's speaker": (
        lambda s, t: (s.replace("Ses03M_impro05a_M001\tneu", "Ses02M_impro05a_M001\tneu"), t),
        rf"{EMO}:10: utterance Ses02M_impro05a_M001 is not a turn of dialog {DIALOG}",
    ),
    "zero-length label interval": (
        lambda s, t: (s.replace("[5.0000 - 6.0000]", "[5.0000 - 5.0000]"), t),
        rf"{EMO}:10: empty label interval \[5.0000 - 5.0000\]",
    ),
    "NUL byte in a transcript": (
        lambda s, t: (s, t.replace("It's fine.", "It's\x00 fine.")),
        rf"{TRANS}:4: control character U\+0000 in the transcription of Ses03M_impro05a_M001",
    ),
    "transcript 100 s off the label": (
        lambda s, t: (s, t.replace("[005.0000-006.0000]", "[105.0000-106.0000]")),
        rf"{TRANS}:4: Ses03M_impro05a_M001 is transcribed at \[105.0000-106.0000\] but labelled at "
        r"\[5.0000 - 6.0000\]",
    ),
}


@pytest.mark.parametrize("case", list(SILENT))
def test_silent_corpus_case_is_an_error_naming_file_and_line(tmp_path: Path, case: str) -> None:
    change, expected = SILENT[case]
    summary, transcript = change(QUIRKY_SUMMARY, QUIRKY_TRANSCRIPT)
    root = _session3(tmp_path, summary, transcript)
    with pytest.raises(CorpusError, match=expected) as caught:
        _load(root)
    assert "\n" not in str(caught.value)
    corpus = _load(root, skip_bad=True)  # --skip-bad drops the line and lists it
    assert corpus.n_skipped_label_lines == 1 and corpus.skipped  # the line dropped, and why listed


def test_a_dialog_file_of_another_session_is_refused(tmp_path: Path) -> None:
    write_dialog(tmp_path, 3, "Ses02F_impro01", "", "", [])
    _session3(tmp_path)
    with pytest.raises(CorpusError, match=r"Ses02F_impro01.txt: 'Ses02F_impro01' is not a Session3 dialog name"):
        _load(tmp_path)


def _rewrite_wav(path: Path, rate: int, channels: int, subtype: str) -> None:
    seconds = soundfile.info(str(path)).duration
    t = np.arange(int(rate * seconds)) / rate
    mono = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    soundfile.write(str(path), np.stack([mono] * channels, axis=1), rate, subtype=subtype)


def test_wav_formats_are_accepted_and_listed_by_inspect(
    demo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "IEMOCAP_full_release"
    shutil.copytree(demo_root, root)
    wavs = sorted((root / "Session1" / "sentences" / "wav").rglob("Ses01*_[FM]0*.wav"))
    for wav, fmt in zip(wavs, [(8000, 1, "PCM_16"), (44100, 1, "PCM_16"), (16000, 2, "PCM_16"), (16000, 1, "PCM_U8")]):
        _rewrite_wav(wav, *fmt)
    assert data_main(["inspect", "--data", str(root)]) == 0
    out = capsys.readouterr().out
    for listed in ("8000 Hz, 1 channel, PCM_16", "44100 Hz, 1 channel, PCM_16", "16000 Hz, 2 channels, PCM_16"):
        assert f"1 x {listed}" in out
    assert "1 x 16000 Hz, 1 channel, PCM_U8" in out
    assert "averages the channels of a multi-channel wav to mono and resamples any rate" in out
    assert out.count("the extractor decodes every wav") == 1


def test_a_folder_without_read_permission_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _session3(tmp_path)
    locked = root / "Session3" / "sentences" / "wav" / DIALOG
    real_glob = Path.glob

    def glob(self: Path, pattern: str):  # noqa: ANN202
        if self == locked:  # root reads everything, so chmod 000 cannot stand in for this in a test run as root
            raise PermissionError(13, "Permission denied", str(self))
        return real_glob(self, pattern)

    monkeypatch.setattr(Path, "glob", glob)
    with pytest.raises(CorpusError, match=rf"{locked}: permission denied; the corpus must be readable"):
        _load(root)
