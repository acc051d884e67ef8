"""The manifest and CREMA-D readers: what they read back, and the one-line errors for what they refuse."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness.cli.data import main as data_main
from harness.corpus import make_folds, resolve_corpus
from harness.corpus.crema_d import group_of, load_crema_d
from harness.corpus.iemocap import CorpusError
from harness.corpus.manifest import read_manifest, write_manifest
from harness.corpus.source import corpus_kind
from harness.corpus.synthetic import write_crema_d, write_manifest_corpus
from tests.fixtures.iemocap import write_wav

HEADER = "utterance_id,wav_path,text,label,speaker,group\n"


@pytest.fixture(scope="module")
def manifest_corpus(tmp_path_factory) -> Path:
    return write_manifest_corpus(tmp_path_factory.mktemp("manifest"))


@pytest.fixture(scope="module")
def crema_root(tmp_path_factory) -> Path:
    return write_crema_d(tmp_path_factory.mktemp("crema"))


def _small(tmp_path: Path, lines: list[str], yaml: str | None = None) -> Path:
    for k in range(3):
        write_wav(tmp_path / "wav" / f"u{k}.wav")
    path = tmp_path / "manifest.csv"
    path.write_text(HEADER + "".join(line + "\n" for line in lines))
    if yaml is not None:
        path.with_suffix(".yaml").write_text(yaml)
    return path


GOOD = [f"u{k},wav/u{k}.wav,some words,neu,s{k},g{k}" for k in range(3)]


def test_iemocap_manifest_reads_back_the_same_utterances_and_labels(demo_root, demo_corpus, tmp_path):
    """``inspect --out`` of an IEMOCAP-layout corpus, read back with --data, gives the IEMOCAP reader's rows."""
    copy = tmp_path / "IEMOCAP_full_release"
    shutil.copytree(demo_root, copy)
    out = copy / "manifest.csv"
    assert data_main(["inspect", "--data", str(copy), "--out", str(out)]) == 0
    corpus, source = resolve_corpus(str(out))
    assert corpus_kind(source) == "manifest" and "leave-one-group-out over 5" in source
    assert source.startswith("SYNTHETIC manifest")  # a manifest of the demo corpus is still generated data
    ours = corpus.manifest().drop(columns=["wav_path"])
    theirs = load_corpus_rows(copy).drop(columns=["wav_path"])
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)
    assert [Path(p).name for p in corpus.manifest()["wav_path"]] == [
        Path(p).name for p in demo_corpus.manifest()["wav_path"]
    ]
    folds = make_folds(corpus.manifest())
    assert [f.test_session for f in folds] == [1, 2, 3, 4, 5]


def load_corpus_rows(root: Path) -> pd.DataFrame:
    from harness.corpus import load_corpus

    return load_corpus(root).manifest()


def test_label_map_and_groups(manifest_corpus):
    read = read_manifest(manifest_corpus)
    assert read.groups == {k: f"group{k}" for k in range(1, 6)}
    labels = set(read.corpus.manifest()["label"])
    assert labels == {"neu", "ang", "hap", "sad", "fru", "exc"}
    assert {u.label for u in read.corpus.excluded} == {"calm"}  # mapped to null: counted, not scored
    assert read.corpus.label_counts["calm"].sum() == len(read.corpus.excluded)


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("u9,wav/u0.wav,words,happiness,s0,g0", "unknown label 'happiness'"),
        ("u9,../../../../etc/evil.wav,words,neu,s0,g0", "resolves outside the corpus root"),
        ("u9,/etc/passwd,words,neu,s0,g0", "resolves outside the corpus root"),
        ("../u9,wav/u0.wav,words,neu,s0,g0", "malformed utterance_id"),
        ("u9,wav/u0.wav,,neu,s0,g0", "empty text"),
        ("u0,wav/u0.wav,words,neu,s0,g0", "u0 listed twice (first at line 2)"),
        ("u9,wav/u0.wav,words,neu,s1,g0", "speaker 's1' is in group 'g0' here"),
        ("u9,wav/missing.wav,words,neu,s0,g0", "missing wav"),
        ("u9,wav/u0.wav,words,neu,s0", "5 fields, the header has 6"),
    ],
)
def test_a_bad_line_is_one_error_naming_file_and_line(tmp_path, bad, reason):
    path = _small(tmp_path, GOOD + [bad])
    with pytest.raises(CorpusError) as err:
        read_manifest(path)
    assert str(err.value).startswith(f"{path}:5: ") and reason in str(err.value)
    assert len(read_manifest(path, skip_bad=True).corpus.skipped) == 1


def test_malformed_manifest_exits_2_with_one_line(tmp_path, capsys):
    path = _small(tmp_path, GOOD + ["u9,wav/u0.wav,words,happiness,s0,g0"])
    assert data_main(["inspect", "--data", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {path}:5: u9: unknown label")


def test_header_and_label_map_errors(tmp_path):
    path = _small(tmp_path, GOOD)
    path.write_text("utterance_id,wav_path,text,lable,speaker,group\n")
    with pytest.raises(CorpusError, match=r":1: missing column\(s\) \['label'\]; unknown column\(s\) \['lable'\]"):
        read_manifest(path)
    path = _small(tmp_path, GOOD, yaml="labels: {happy: joy}\n")
    with pytest.raises(CorpusError, match="maps to 'joy'"):
        read_manifest(path)
    path = _small(tmp_path, GOOD, yaml="lables: {}\n")
    with pytest.raises(CorpusError, match=r"unknown key\(s\) \['lables'\]"):
        read_manifest(path)
    path.with_suffix(".yaml").unlink()
    path = _small(tmp_path, GOOD[:2])
    with pytest.raises(CorpusError, match="leave-one-group-out needs at least 3"):
        read_manifest(path)


def test_a_link_out_of_the_root_is_refused(tmp_path):
    outside = tmp_path / "outside"
    write_wav(outside / "evil.wav")
    root = tmp_path / "corpus"
    path = _small(root, GOOD + ["u9,wav/link.wav,words,neu,s0,g0"])
    (root / "wav" / "link.wav").symlink_to(outside / "evil.wav")
    with pytest.raises(CorpusError, match=r"manifest.csv:5: u9: wav_path 'wav/link.wav' resolves outside"):
        read_manifest(path)


def test_write_manifest_round_trip(manifest_corpus, tmp_path):
    read = read_manifest(manifest_corpus)
    out = write_manifest(read.corpus, manifest_corpus.parent / "again.csv", read.groups)
    again = read_manifest(out)
    pd.testing.assert_frame_equal(again.corpus.manifest(), read.corpus.manifest())


def test_crema_d_reader(crema_root, demo_corpus):
    corpus, source = resolve_corpus(str(crema_root))
    assert corpus_kind(source) == "crema-d" and source.startswith("SYNTHETIC crema-d") and "groups of actors" in source
    frame = corpus.manifest()
    assert set(frame["label"]) == {"neu", "ang", "hap", "sad"}
    expected = sum(1 for u in demo_corpus.utterances if u.label in ("neu", "ang", "hap", "sad"))
    assert len(frame) == expected
    assert {u.label for u in corpus.excluded} <= {"fea", "dis"} and corpus.excluded
    # speaker-independent: every actor in exactly one group, five groups of two actors
    assert frame.groupby("speaker")["session"].nunique().max() == 1
    assert frame.groupby("session")["speaker"].nunique().tolist() == [2] * 5
    assert all(int(s) and group_of(int(s)) == g for s, g in zip(frame["speaker"], frame["session"]))
    assert frame.loc[frame["utterance_id"].str.contains("_DFA_"), "text"].eq("Don't forget a jacket").all()


@pytest.mark.parametrize(
    "name, reason",
    [
        ("1001_DFA_ANG.wav", "not a CREMA-D file name"),
        ("0999_DFA_ANG_XX.wav", "actor 999 is outside"),
        ("1001_XYZ_ANG_XX.wav", "unknown sentence code 'XYZ'"),
        ("1001_DFA_CAL_XX.wav", "unknown emotion 'CAL'"),
        ("1001_DFA_ANG_ZZ.wav", "unknown intensity level 'ZZ'"),
    ],
)
def test_crema_d_bad_names(tmp_path, name, reason):
    write_wav(tmp_path / "AudioWAV" / "1001_IEO_NEU_XX.wav")
    write_wav(tmp_path / "AudioWAV" / name)
    with pytest.raises(CorpusError, match=f"AudioWAV/{name}: {reason}"):
        load_crema_d(tmp_path)
    assert len(load_crema_d(tmp_path, skip_bad=True).utterances) == 1


def test_crema_d_link_outside_and_empty_wav(tmp_path):
    write_wav(tmp_path / "outside.wav")
    root = tmp_path / "crema"
    write_wav(root / "AudioWAV" / "1001_IEO_NEU_XX.wav")
    (root / "AudioWAV" / "1002_IEO_NEU_XX.wav").symlink_to(tmp_path / "outside.wav")
    with pytest.raises(CorpusError, match="1002_IEO_NEU_XX.wav: resolves outside the corpus root"):
        load_crema_d(root)
    (root / "AudioWAV" / "1002_IEO_NEU_XX.wav").unlink()
    write_wav(root / "AudioWAV" / "1003_IEO_NEU_XX.wav", seconds=0.0)
    with pytest.raises(CorpusError, match="1003_IEO_NEU_XX.wav: empty wav"):
        load_crema_d(root)


def test_msp_podcast_reader(tmp_path, demo_corpus):
    from harness.corpus.synthetic import write_msp_podcast

    root = write_msp_podcast(tmp_path / "msp")
    corpus, source = resolve_corpus(str(root))
    assert corpus_kind(source) == "msp-podcast" and "NOT the official Test1 partition" in source
    frame = corpus.manifest()
    assert set(frame["label"]) == {"neu", "ang", "hap", "sad"}
    assert frame.groupby("speaker")["session"].nunique().max() == 1  # speaker-independent groups
    assert (frame["speaker"].astype(int) % 5 + 1 == frame["session"]).all()
    known = sum(1 for u in demo_corpus.utterances if u.label in ("neu", "ang", "hap", "sad"))
    assert known - 10 <= len(frame) < known  # two segments per session have an unknown speaker
    assert {u.label for u in corpus.excluded} <= {"xxx", "sur", "fea", "dis"}
    labels = root / "Labels" / "labels_consensus.csv"
    lines = labels.read_text().splitlines()
    lines[3] = lines[3].replace(",N,", ",Q,").replace(",A,", ",Q,").replace(",H,", ",Q,").replace(",S,", ",Q,")
    lines[3] = lines[3].replace(",X,", ",Q,")
    labels.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusError, match=r"labels_consensus.csv:4: MSP-PODCAST_\S+: unknown EmoClass 'Q'"):
        resolve_corpus(str(root))
    lines[3] = lines[3].replace("MSP-PODCAST_", "../../x_")
    labels.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusError, match=r"labels_consensus.csv:4: malformed FileName"):
        resolve_corpus(str(root))
