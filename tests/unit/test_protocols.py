"""harness.corpus.protocols: label policies, class sets, protocols; and the published-results data file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.config import TrialConfig
from harness.corpus.demo import SIX_CLASS_PER_SESSION
from harness.corpus.folds import make_folds
from harness.corpus.protocols import (
    ERC_RELABEL_PATH,
    RELABEL_COLUMNS,
    ProtocolError,
    apply_labels,
    benchmark_manifest,
    class_set,
    make_protocol_folds,
    read_relabel_list,
)
from harness.errors import UserError
from harness.features import FeatureCache
from harness.models.data import load_pair_data
from harness.models.pairs import get_pair
from harness.train.fit import fit_fold

PUBLISHED = Path(__file__).resolve().parents[2] / "harness" / "report" / "published.csv"


def test_four_class_set_merges_excited_into_happy_and_drops_frustration(demo_corpus):
    assert class_set(6) == ("neu", "ang", "hap", "sad", "fru", "exc")
    assert class_set(4) == ("neu", "ang", "hap", "sad")
    four = benchmark_manifest(demo_corpus, classes=4)
    per_session = {k: 2 * n for k, n in {"neu": 10, "ang": 6, "hap": 5 + 7, "sad": 7}.items()}  # demo scale 2
    for session, group in four.groupby("session"):
        assert group["label"].value_counts().to_dict() == per_session, session
    assert len(four) == 5 * sum(per_session.values()) == 350
    six = demo_corpus.manifest()
    assert len(six) == 5 * 2 * sum(SIX_CLASS_PER_SESSION.values())
    # exc rows keep their utterances and become hap; fru rows are gone
    excited = set(six.loc[six["label"] == "exc", "utterance_id"])
    assert excited <= set(four.loc[four["label"] == "hap", "utterance_id"])
    assert not set(six.loc[six["label"] == "fru", "utterance_id"]) & set(four["utterance_id"])
    assert list(four.index) == list(range(len(four)))
    pd.testing.assert_frame_equal(benchmark_manifest(demo_corpus), six)  # the defaults are today's manifest


def test_four_classes_flow_through_training(demo_corpus, tmp_path):
    manifest = benchmark_manifest(demo_corpus, classes=4)
    pair = get_pair("bilstm")
    cfg = TrialConfig.from_flat(
        {"epochs": 1, "batch_size": 32, "fusion_dim": 16, "text.embed_dim": 8, "text.hidden": 8}
    )
    data = load_pair_data(pair, cfg, manifest, FeatureCache(tmp_path), progress=False, classes=class_set(4))
    assert data.classes == class_set(4) and set(data.labels) == {0, 1, 2, 3}
    outcome = fit_fold(cfg, pair, data, make_folds(manifest, (5,))[0], lambda r: None)
    assert outcome.test_probabilities.shape == (70, 4)
    assert set(outcome.record.test.per_emotion_f1) == set(class_set(4))
    assert np.array(outcome.record.test.confusion).shape == (4, 4)
    with pytest.raises(UserError, match="not in the class set"):
        load_pair_data(pair, cfg, demo_corpus.manifest(), FeatureCache(tmp_path), progress=False, classes=class_set(4))


def test_session5_trains_on_sessions_1_to_4_and_never_validates_on_session_5(demo_manifest):
    (fold,) = make_protocol_folds(demo_manifest, "session5")
    train, val, test = (demo_manifest.iloc[rows] for rows in (fold.train, fold.validation, fold.test))
    assert set(test["session"]) == {5} and len(test) == (demo_manifest["session"] == 5).sum()
    assert 5 not in set(train["session"]) | set(val["session"])
    assert set(train["session"]) == {1, 2, 3, 4}
    # validation is whole dialogs, one per training session on the demo corpus (3 dialogs each)
    assert set(val["dialog"]) == set(fold.validation_dialogs)
    assert sorted(val.groupby("dialog")["session"].first()) == [1, 2, 3, 4]
    assert not set(val["dialog"]) & set(train["dialog"])
    assert len(train) + len(val) + len(test) == len(demo_manifest)
    # deterministic, whatever the row order
    shuffled = demo_manifest.sample(frac=1.0, random_state=0).reset_index(drop=True)
    assert make_protocol_folds(shuffled, "session5")[0].validation_dialogs == fold.validation_dialogs
    assert [f.test_session for f in make_protocol_folds(demo_manifest, "loso")] == [1, 2, 3, 4, 5]
    with pytest.raises(ProtocolError, match="do not include it"):
        make_protocol_folds(demo_manifest, "session5", (1, 2))
    with pytest.raises(ProtocolError, match="unknown protocol 'lopo'"):
        make_protocol_folds(demo_manifest, "lopo")
    with pytest.raises(ProtocolError, match="unknown class set 5"):
        class_set(5)


def _relabel_list(path: Path, ids: list[str]) -> Path:
    rows = [{"utterance_id": u, "from_label": "xxx", "to_label": "hap", "source": "test"} for u in ids]
    pd.DataFrame(rows, columns=list(RELABEL_COLUMNS)).to_csv(path, index=False)
    return path


def test_erc_relabel_applies_exactly_the_listed_ids(demo_corpus, tmp_path):
    everything = demo_corpus.manifest(excluded=True)
    xxx = everything.loc[everything["label"] == "xxx", "utterance_id"].tolist()
    assert len(xxx) == 60  # 12 per session, kept aside by the loader
    listed = [xxx[0], xxx[7], xxx[-1]]
    relabelled = apply_labels(everything, "erc", _relabel_list(tmp_path / "list.csv", listed))
    release = apply_labels(everything, "release")
    pd.testing.assert_frame_equal(release, demo_corpus.manifest())
    assert len(relabelled) == len(release) + 3
    changed = relabelled[~relabelled["utterance_id"].isin(release["utterance_id"])]
    assert sorted(changed["utterance_id"]) == sorted(listed) and set(changed["label"]) == {"hap"}
    same = relabelled.merge(release, on="utterance_id", suffixes=("", "_release"))
    assert (same["label"] == same["label_release"]).all()
    manifest = benchmark_manifest(demo_corpus, "erc", relabel_path=tmp_path / "list.csv")
    pd.testing.assert_frame_equal(manifest, relabelled)


def test_relabel_lists_that_do_not_fit_are_refused(demo_corpus, tmp_path):
    everything = demo_corpus.manifest(excluded=True)
    shipped = read_relabel_list()
    assert list(shipped.columns) == list(RELABEL_COLUMNS)
    assert "DialogueRNN" in ERC_RELABEL_PATH.read_text()  # provenance travels with the list
    if len(shipped) != 53:  # the shipped list is empty until someone with the corpus fills it in
        with pytest.raises(ProtocolError, match=r"lists \d+ of the 53 utterances"):
            apply_labels(everything, "erc")
    neutral = everything.loc[everything["label"] == "neu", "utterance_id"].iloc[0]
    with pytest.raises(ProtocolError, match=f"{neutral} is not labelled 'xxx'"):
        apply_labels(everything, "erc", _relabel_list(tmp_path / "bad.csv", [neutral]))
    xxx = everything.loc[everything["label"] == "xxx", "utterance_id"].iloc[0]
    with pytest.raises(ProtocolError, match="Corpus.manifest\\(excluded=True\\)"):
        apply_labels(demo_corpus.manifest(), "erc", _relabel_list(tmp_path / "one.csv", [xxx]))
    with pytest.raises(ProtocolError, match="empty"):
        apply_labels(everything, "erc", _relabel_list(tmp_path / "empty.csv", []))
    with pytest.raises(ProtocolError, match="unknown label policy"):
        apply_labels(everything, "iemocap")


def test_published_results_file_is_well_formed():
    table = pd.read_csv(PUBLISHED, comment="#")
    assert list(table.columns[:7]) == ["model", "modalities", "context", "protocol", "class_set", "metric", "value"]
    assert table["source"].str.len().gt(10).all()  # every number has a source
    assert set(table["protocol"]) <= {"loso", "session5"} and set(table["class_set"]) <= {4, 6}
    assert set(table["metric"]) <= {"weighted_f1", "weighted_accuracy", "unweighted_accuracy", "macro_f1"}
    assert table["value"].between(0, 100).all()
    erc = table[(table["protocol"] == "session5") & (table["class_set"] == 6)]
    values = erc.set_index("model")["value"]
    assert values["DialogueRNN"] == 62.75 and len(erc) == 12 and erc["model"].is_unique
    # the 2023-2024 ERC rows issue 25 asked for, each with its source
    assert values[["DAG-ERC", "SACL-LSTM", "TelME", "InstructERC"]].tolist() == [68.03, 69.22, 70.48, 71.39]
