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
        assert set(val["session"]) == {fold.test_session % 5 + 1}  # the next session, both speakers
        assert set(val["speaker"]) == {fold.validation_speaker + "F", fold.validation_speaker + "M"}
        assert not set(val["speaker"]) & set(train["speaker"]) and not set(val["dialog"]) & set(train["dialog"])
        assert len(train) + len(val) + len(test) == len(demo_manifest)
    assert len({f.validation_speaker for f in folds}) == 5


def test_no_validation_or_test_window_reads_a_training_turn(demo_manifest):
    from harness.corpus.dialogs import DialogTurns

    turns = DialogTurns.from_manifest(demo_manifest)
    for fold in make_folds(demo_manifest):
        for rows in (fold.validation, fold.test):  # the model is fitted on training turns and their labels
            windows = turns.windows(rows, past=4, future=4)
            assert not set(windows.rows[windows.mask].tolist()) & set(fold.train.tolist())
