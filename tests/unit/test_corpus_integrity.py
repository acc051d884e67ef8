"""Corpus integrity (issue 13): the reader never changes, drops or ignores data without saying so."""

from __future__ import annotations

import codecs
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.corpus import CorpusError, counts_table, load_corpus, resolve_corpus
from harness.corpus.demo import DEMO_VERSION
from harness.corpus.iemocap import DEMO_MARKER, duration_tolerance
from tests.fixtures.iemocap import QUIRKY_SUMMARY, QUIRKY_TRANSCRIPT, write_dialog, write_quirky_session, write_wav

DIALOG = "Ses03M_impro05a"
M001 = "Ses03M_impro05a_M001"  # neu, label line 10, transcription line 4, [5.0000 - 6.0000]
M001_TRANSCRIPT = "Ses03M_impro05a_M001 [005.0000-006.0000]: It's fine.\n"
EMO = r"EmoEvaluation/Ses03M_impro05a\.txt"
TRANS = r"transcriptions/Ses03M_impro05a\.txt"


def _wav(root: Path, utt: str = M001) -> Path:
    return root / "Session3" / "sentences" / "wav" / DIALOG / f"{utt}.wav"


def _rewrite(root: Path, summary: str = QUIRKY_SUMMARY, transcript: str = QUIRKY_TRANSCRIPT) -> None:
    write_dialog(root, 3, DIALOG, summary, transcript, [])


def _malformed(root: Path) -> None:
    _rewrite(root, summary=QUIRKY_SUMMARY.replace(f"[5.0000 - 6.0000]\t{M001}", f"[5.0000 6.0000] {M001}"))


def _unknown_label(root: Path) -> None:
    _rewrite(root, summary=QUIRKY_SUMMARY.replace("\tneu\t", "\thappy\t"))


def _no_transcript_line(root: Path) -> None:
    _rewrite(root, transcript=QUIRKY_TRANSCRIPT.replace(M001_TRANSCRIPT, ""))


def _empty_text(root: Path) -> None:
    _rewrite(root, transcript=QUIRKY_TRANSCRIPT.replace(": It's fine.", ":"))


def _transcribed_twice(root: Path) -> None:
    _rewrite(root, transcript=QUIRKY_TRANSCRIPT + M001_TRANSCRIPT.replace("It's fine.", "It is fine."))


def _labelled_twice(root: Path) -> None:  # the second copy is an excluded label: still an error
    _rewrite(root, summary=QUIRKY_SUMMARY + f"[5.0000 - 6.0000]\t{M001}\txxx\t[2.5000, 2.5000, 2.5000]\n")


def _missing_wav(root: Path) -> None:
    _wav(root).unlink()


def _corrupt_wav(root: Path) -> None:
    _wav(root).write_bytes(b"RIFF????WAVEjunk")


def _short_wav(root: Path) -> None:
    write_wav(_wav(root), 0.5)  # the label interval is 1.0 s


# (breakage of M001's entry, the error it raises, label lines in the summary file)
BREAKAGES: dict[str, tuple[Callable[[Path], None], str, int]] = {
    "malformed line": (_malformed, rf"{EMO}:10: malformed EmoEvaluation line", 4),
    "unknown label": (_unknown_label, rf"{EMO}:10: unknown emotion label 'happy'", 4),
    "no transcription line": (_no_transcript_line, rf"{EMO}:10: {M001} has no line in .*{TRANS}$", 4),
    "empty transcription": (
        _empty_text,
        rf"{TRANS}:4: empty transcription for {M001} \(labelled neu at .*{EMO}:10\)",
        4,
    ),
    "transcribed twice": (_transcribed_twice, rf"{TRANS}:7: {M001} transcribed twice \(first at line 4\)", 4),
    "labelled twice": (_labelled_twice, rf"{EMO}:13: {M001} labelled twice: here and at .*{EMO}:10$", 5),
    "missing wav": (_missing_wav, rf"{M001}\.wav: missing wav for {M001} \(.*{EMO}:10\)", 4),
    "corrupt wav": (_corrupt_wav, rf"{M001}\.wav: unreadable wav", 4),
    "wav shorter than its interval": (
        _short_wav,
        (
            rf"{EMO}:10: .*{M001}\.wav lasts 0\.500 s but its label interval \[5\.0000 - 6\.0000\] "
            r"lasts 1\.000 s \(tolerance 0\.250 s\)"
        ),
        4,
    ),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_every_problem_names_its_line_and_every_skip_is_listed_and_counted(tmp_path, breakage):
    breakit, error, label_lines = BREAKAGES[breakage]
    write_quirky_session(tmp_path)
    breakit(tmp_path)
    with pytest.raises(CorpusError, match=error):
        load_corpus(tmp_path, sessions=(3,))
    corpus = load_corpus(tmp_path, sessions=(3,), skip_bad=True)
    assert [u.utterance_id for u in corpus.utterances] == ["Ses03M_impro05a_F000"]
    assert any(":10:" in str(p) or M001 in str(p) for p in corpus.skipped), corpus.skipped
    table = counts_table(corpus)
    assert table.loc["total", "six_class"] == len(corpus.utterances)  # skipped utterances are not counted as used
    assert table.loc[3, "all_labelled"] + table.loc[3, "skipped"] == label_lines
    assert corpus.n_labelled == table.loc["total", "all_labelled"]
    if "neu" in table.columns:
        assert table.loc[3, "neu"] == 0


def test_a_duplicate_loses_both_copies_and_lists_both_lines(tmp_path):
    write_quirky_session(tmp_path)
    _labelled_twice(tmp_path)
    corpus = load_corpus(tmp_path, sessions=(3,), skip_bad=True)
    assert sorted(p.line for p in corpus.skipped) == [10, 13]
    assert corpus.skipped_label_lines == {3: 2}
    assert corpus.label_counts.loc[3].to_dict() == {"neu": 0, "ang": 1, "sur": 1, "xxx": 1}


def test_a_missing_transcription_skips_and_counts_every_label_line_of_its_dialog(tmp_path):
    write_quirky_session(tmp_path)
    (tmp_path / "Session3" / "dialog" / "transcriptions" / f"{DIALOG}.txt").unlink()
    corpus = load_corpus(tmp_path, sessions=(3,), skip_bad=True)
    assert corpus.utterances == [] and corpus.n_labelled == 0
    assert counts_table(corpus).loc[3, "skipped"] == 4 and len(corpus.skipped) == 1


def test_wav_duration_tolerance(tmp_path):
    assert duration_tolerance(1.0) == 0.25 and duration_tolerance(10.0) == pytest.approx(1.0)
    write_quirky_session(tmp_path)
    write_wav(_wav(tmp_path), 1.2)  # 0.2 s off a 1.0 s interval: within what real cuts differ by
    corpus = load_corpus(tmp_path, sessions=(3,))
    assert corpus.utterances[1].utterance_id == M001 and corpus.utterances[1].duration == 1.2
    write_wav(_wav(tmp_path), 1.3)
    with pytest.raises(CorpusError, match=rf"{EMO}:10: .*lasts 1\.300 s"):
        load_corpus(tmp_path, sessions=(3,))


def test_undecodable_bytes_are_replaced_on_their_line_only(tmp_path, caplog):
    write_quirky_session(tmp_path)
    transcript = QUIRKY_TRANSCRIPT.replace("Get out [LAUGHTER] now.", "Café, get out.").encode("utf-8")
    transcript = transcript.replace(b"It's fine.", b"It\x92s fine.")  # a cp1252 apostrophe on line 4
    path = tmp_path / "Session3" / "dialog" / "transcriptions" / f"{DIALOG}.txt"
    path.write_bytes(transcript)
    with caplog.at_level(logging.WARNING):
        corpus = load_corpus(tmp_path, sessions=(3,))
    first, second = corpus.utterances
    assert first.text == "Café, get out."  # valid UTF-8 stays as it is
    assert second.text == "It\ufffds fine."
    assert [(w.path, w.line) for w in corpus.decode_warnings] == [(str(path), 4)]
    assert f"{path}:4: bytes that are not UTF-8" in caplog.text


def test_a_byte_order_mark_is_accepted(tmp_path):
    write_quirky_session(tmp_path)
    for folder, text in (("EmoEvaluation", QUIRKY_SUMMARY), ("transcriptions", QUIRKY_TRANSCRIPT)):
        (tmp_path / "Session3" / "dialog" / folder / f"{DIALOG}.txt").write_bytes(codecs.BOM_UTF8 + text.encode())
    corpus = load_corpus(tmp_path, sessions=(3,))
    assert [u.utterance_id for u in corpus.utterances] == ["Ses03M_impro05a_F000", M001]
    assert corpus.utterances[0].text == "Get out [LAUGHTER] now."
    # a BOM directly before a summary line (no "%" header)
    summary = QUIRKY_SUMMARY.split("\n", 2)[2]
    (tmp_path / "Session3" / "dialog" / "EmoEvaluation" / f"{DIALOG}.txt").write_bytes(
        codecs.BOM_UTF8 + summary.encode()
    )
    assert len(load_corpus(tmp_path, sessions=(3,)).utterances) == 2


def test_orphan_wavs_and_unknown_root_entries_are_listed_not_errors(tmp_path):
    write_quirky_session(tmp_path)
    write_wav(_wav(tmp_path, "Ses03M_impro05a_F009"), 1.0)  # a wav with no label line
    write_wav(_wav(tmp_path, "._Ses03M_impro05a_F000"), 0.1)  # macOS junk: known, not an orphan
    (tmp_path / "Session6").mkdir()
    (tmp_path / "Documentation").mkdir()  # part of the real release
    (tmp_path / "README.txt").write_text("IEMOCAP\n")
    (tmp_path / ".DS_Store").write_bytes(b"\x00")
    (tmp_path / "notes.txt").write_text("mine\n")
    corpus = load_corpus(tmp_path, sessions=(3,))
    assert corpus.orphan_wavs == ["Session3/sentences/wav/Ses03M_impro05a/Ses03M_impro05a_F009.wav"]
    assert corpus.xx_wavs == 1  # Ses03M_impro05a_FXX0: an unlabelled turn, expected
    assert corpus.unknown_entries == ["Session6", "notes.txt"]
    assert len(corpus.utterances) == 2 and not corpus.skipped


def test_a_dialog_without_labels_is_an_error_not_a_quiet_loss(tmp_path):
    write_quirky_session(tmp_path)
    write_wav(tmp_path / "Session3" / "sentences" / "wav" / "Ses03F_impro99" / "Ses03F_impro99_M000.wav", 1.0)
    with pytest.raises(
        CorpusError, match=r"EmoEvaluation/Ses03F_impro99\.txt: missing: dialog Ses03F_impro99 has wavs"
    ):
        load_corpus(tmp_path, sessions=(3,))
    assert [p.reason for p in load_corpus(tmp_path, skip_bad=True, sessions=(3,)).skipped] == [
        "missing: dialog Ses03F_impro99 has wavs but no labels"
    ]
    (tmp_path / "Session3" / "sentences" / "wav" / "Ses03F_impro99" / "Ses03F_impro99_M000.wav").unlink()
    (tmp_path / "Session3" / "sentences" / "wav" / "Ses03F_impro99").rmdir()
    summary = next((tmp_path / "Session3" / "dialog" / "EmoEvaluation").glob("*.txt"))
    summary.write_text("")
    with pytest.raises(CorpusError, match=rf"{summary.name}: no label lines"):
        load_corpus(tmp_path, sessions=(3,))


def test_demo_corpus_is_clean_and_marked(demo_root, demo_corpus):
    assert demo_corpus.orphan_wavs == [] and demo_corpus.unknown_entries == []  # the marker is not unknown
    assert demo_corpus.xx_wavs == 30 and not demo_corpus.decode_warnings  # one per dialog
    assert demo_corpus.n_skipped_label_lines == 0
    marker = json.loads((demo_root / DEMO_MARKER).read_text())
    assert marker["demo_version"] == DEMO_VERSION and marker["config"]["seed"] == 0
    assert demo_corpus.demo == marker


def test_a_demo_corpus_passed_with_data_is_reported_as_the_demo(demo_root, tmp_path):
    corpus, source = resolve_corpus(str(demo_root))
    assert source == "demo" and corpus.root == demo_root
    write_quirky_session(tmp_path)
    for session in (1, 2, 4, 5):
        shutil.copytree(demo_root / f"Session{session}", tmp_path / f"Session{session}")
    corpus, source = resolve_corpus(str(tmp_path))
    assert source == str(tmp_path.resolve()) and corpus.demo is None


def _inspect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.data", "inspect", *args], check=False, capture_output=True, text=True
    )


def test_inspect_lists_orphans_unknown_entries_and_skips(demo_root, tmp_path):
    root = tmp_path / "IEMOCAP_full_release"
    shutil.copytree(demo_root, root)
    wav_dir = root / "Session1" / "sentences" / "wav" / "Ses01F_impro01"
    shutil.copy(wav_dir / "Ses01F_impro01_F000.wav", wav_dir / "Ses01F_impro01_F099.wav")
    (root / "Session6").mkdir()
    result = _inspect("--data", str(root))
    assert result.returncode == 0, result.stderr
    assert f"corpus: demo ({root}, marked by {DEMO_MARKER})" in result.stdout
    assert "30 wavs of unlabelled XX turns" in result.stdout
    assert (
        "1 wavs without a label line (orphans, not used):\n"
        "  Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F099.wav\n"
    ) in result.stdout
    assert f"1 unknown entries in {root} (not read):\n  Session6\n" in result.stdout

    label_file = root / "Session1" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt"
    lines = label_file.read_text().splitlines()
    number, line = next((n, x) for n, x in enumerate(lines, 1) if "\tneu\t" in x)
    label_file.write_text("\n".join(lines + [line]) + "\n")
    result = _inspect("--data", str(root))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    duplicate = f"error: {label_file}:{len(lines) + 1}: {line.split()[3]} labelled twice: here and at "
    assert errors == [f"{duplicate}{label_file}:{number}"]

    result = _inspect("--data", str(root), "--skip-bad")
    assert result.returncode == 0, result.stderr
    assert "449 utterances in the six classes, 541 labelled in all" in result.stdout
    assert "2 label lines skipped" in result.stdout
    assert f"  {label_file}:{number}: " in result.stdout and f"  {label_file}:{len(lines) + 1}: " in result.stdout
