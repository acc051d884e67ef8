"""harness.corpus.folds"""

from __future__ import annotations

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
