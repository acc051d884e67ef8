"""The leak probe's parts (harness.benchmark.audit): the control fold, the permutations, the comparison and
the verdict. The probe end to end: tests/integration/test_audit.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.benchmark.audit import (
    INCONCLUSIVE,
    LEAK,
    PASS,
    AuditError,
    AuditResult,
    Movement,
    control_fold,
    movement,
    permute_labels,
)
from harness.corpus.folds import make_folds


def test_the_control_fold_trains_on_the_audited_fold(demo_manifest):
    assert control_fold(demo_manifest, "loso", (1, 2, 3, 4, 5), 1) == 2  # fold 2 trains on 1, 4, 5
    assert control_fold(demo_manifest, "loso", (1, 2, 3, 4, 5), 5) == 1
    assert control_fold(demo_manifest, "test-selected", (1, 2, 3, 4, 5), 3) == 4
    assert control_fold(demo_manifest, "speaker-dependent", (1, 2, 3, 4, 5), 2) == 3
    with pytest.raises(AuditError, match="no other fold trains"):
        control_fold(demo_manifest, "loso", (1, 5), 1)  # fold 5 validates on Session 1: never trains on it
    with pytest.raises(AuditError, match="not a test fold"):
        control_fold(demo_manifest, "loso", (1, 2, 3), 4)


def test_rotation_changes_every_label_and_shuffle_keeps_the_class_shares(demo_manifest):
    rows = make_folds(demo_manifest, (1,))[0].test
    rotated, changed = permute_labels(demo_manifest, rows, how="rotate")
    assert changed == len(rows)
    assert (rotated.label.drop(index=rows) == demo_manifest.label.drop(index=rows)).all()  # other folds untouched
    shuffled, changed = permute_labels(demo_manifest, rows, seed=0, how="shuffle")
    assert 0 < changed < len(rows)
    assert sorted(shuffled.label.iloc[rows]) == sorted(demo_manifest.label.iloc[rows])
    with pytest.raises(AuditError, match="--permutation"):
        permute_labels(demo_manifest, rows, how="reverse")


def _predictions(values: np.ndarray, fold: int = 1) -> pd.DataFrame:
    frame = pd.DataFrame({"seed": 1, "fold": fold, "utterance_id": [f"u{i}" for i in range(len(values))]})
    frame["p_a"], frame["p_b"] = values, 1 - values
    return frame


def test_movement_counts_predictions_that_changed():
    original = _predictions(np.array([0.1, 0.5, 0.9]))
    assert movement(original, original.copy(), 1) == Movement(1, 3, 0, 0.0)
    moved = movement(original, _predictions(np.array([0.1, 0.6, 0.9])), 1)
    assert moved.moved == 1 and moved.max_abs_diff == pytest.approx(0.1)
    with pytest.raises(AuditError, match="same utterances"):
        movement(original, _predictions(np.array([0.1, 0.5])), 1)


@pytest.mark.parametrize(("test_moved", "control_moved", "verdict"), [(0, 5, PASS), (3, 5, LEAK), (0, 0, INCONCLUSIVE)])
def test_verdicts(test_moved, control_moved, verdict):
    result = AuditResult(
        "bilstm", "loso", 1, 2, 45, "rotate", Movement(1, 45, test_moved, 0.1), Movement(2, 45, control_moved, 0.1)
    )
    assert result.verdict == verdict and result.passed == (verdict == PASS)
    assert ("PASS" if verdict == PASS else "FAIL") in result.paragraph()
    assert "\n" not in result.paragraph()
