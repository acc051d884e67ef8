"""Nested LOSO as a black box: the labels of a test session choose, train, stop and prune nothing of its
fold. Permuting the six-class labels within Session 1 must leave every final-stage prediction on Session 1
identical (CPU, one thread per trial, one trial at a time), while it does change fold 2, whose final
training reads Session 1."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest

from harness.corpus.demo import write_demo_corpus
from harness.corpus.iemocap import EMOTIONS
from harness.store import Storage
from tests.integration.conftest import harness

pytestmark = pytest.mark.slow
_LABEL_LINE = re.compile(r"^(\[[^\]]+\]\t\S+\t)(\w+)(\t.*)$")


def permute_session_labels(root, session: int, seed: int = 0) -> int:
    """Shuffle the six-class labels of one session's EmoEvaluation summary lines (in place); returns how
    many utterances changed label."""
    folder = root / f"Session{session}" / "dialog" / "EmoEvaluation"
    files = sorted(folder.glob("*.txt"))
    lines = {path: path.read_bytes().decode().split("\n") for path in files}
    slots = [(p, i) for p, text in lines.items() for i, line in enumerate(text) if _LABEL_LINE.match(line.rstrip("\r"))]
    slots = [(p, i) for p, i in slots if _LABEL_LINE.match(lines[p][i].rstrip("\r"))[2] in EMOTIONS]
    labels = [_LABEL_LINE.match(lines[p][i].rstrip("\r"))[2] for p, i in slots]
    shuffled = list(np.random.default_rng(seed).permutation(labels))
    for (path, i), label in zip(slots, shuffled):
        cr = "\r" if lines[path][i].endswith("\r") else ""
        head, _, tail = _LABEL_LINE.match(lines[path][i].rstrip("\r")).groups()
        lines[path][i] = f"{head}{label}{tail}{cr}"
    for path, text in lines.items():
        path.write_bytes("\n".join(text).encode())
    return sum(a != b for a, b in zip(labels, shuffled))


@pytest.mark.timeout(1500)
def test_permuting_a_test_sessions_labels_leaves_its_predictions_unchanged(tmp_path, env):
    original = write_demo_corpus(tmp_path / "original")  # .../IEMOCAP_full_release
    permuted = tmp_path / "permuted" / original.name
    shutil.copytree(original, permuted)
    assert permute_session_labels(permuted, 1) > 10

    args = ["--pairs", "bilstm", "--num-samples", "2", "--seeds", "1", "--folds", "1", "2", "--max-concurrent", "1"]
    args += ["--inner-folds", "2", "--set", "epochs=2", "--set", "explain_samples=0", "--no-report"]
    predictions = {}
    for name, corpus in (("original", original), ("permuted", permuted)):
        results = tmp_path / f"results_{name}"
        result = harness("benchmark", *args, "--data", str(corpus), "--results", str(results), env=env)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        predictions[name] = (
            Storage(results / "ray").run("bilstm_demo_bench_final").predictions().sort_values(["fold", "utterance_id"])
        )
        search = Storage(results / "ray").run("bilstm_demo_bench").records()
        for record in search:  # each candidate for outer fold k ran k's inner folds, none validating on k
            assert record.outer_fold in (1, 2)
            assert f"Ses0{record.outer_fold}" not in {f.validation_speaker for f in record.folds}
        assert sorted(predictions[name].seed.unique()) == [1]  # never the search trials' seed 0

    probabilities = [c for c in predictions["original"] if c.startswith("p_")]
    fold1 = {name: frame[frame.fold == 1].reset_index(drop=True) for name, frame in predictions.items()}
    pd.testing.assert_frame_equal(
        fold1["original"][["utterance_id", "pred", *probabilities]],
        fold1["permuted"][["utterance_id", "pred", *probabilities]],
    )
    assert (fold1["original"].label != fold1["permuted"].label).any()  # the labels did change
    fold2 = {name: frame[frame.fold == 2].reset_index(drop=True) for name, frame in predictions.items()}
    assert not np.allclose(fold2["original"][probabilities], fold2["permuted"][probabilities])


@pytest.mark.timeout(900)
def test_subset_improvised_trains_selects_and_tests_on_improvised_dialogs_only(tmp_path, env):
    results = tmp_path / "results"
    args = ["--pairs", "bilstm", "--subset", "improvised", "--num-samples", "1", "--seeds", "1", "--folds", "5"]
    args += ["--inner-folds", "1", "--set", "epochs=2", "--set", "explain_samples=0", "--results", str(results)]
    result = harness("benchmark", *args, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    predictions = Storage(results / "ray").run("bilstm_demo_improvised_bench_final").predictions()
    assert len(predictions) and predictions.dialog.str.contains("_impro").all()
    subsets = pd.read_csv(results / "subsets.csv")
    assert set(subsets.subset) <= {"all", "improvised", "scripted"}
    assert (subsets[subsets.subset == "scripted"].n_utterances.fillna(0) == 0).all()
    comparison = (results / "comparison_full.md") if (results / "comparison_full.md").exists() else None
    text = (comparison or results / "comparison.md").read_text()
    assert "loso (improvised only)" in text and "Subset: improvised" in text
