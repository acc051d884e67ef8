"""harness.train.metrics"""

from __future__ import annotations

import numpy as np
import pytest

from harness.train.metrics import compute_metrics


def test_metrics_against_hand_computed_case():
    # classes: 0 neu, 1 ang. true = [0,0,0,1], pred = [0,0,1,1]
    m = compute_metrics(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1]))
    f1_neu = 2 * 1.0 * (2 / 3) / (1.0 + 2 / 3)  # precision 1, recall 2/3 -> 0.8
    f1_ang = 2 * 0.5 * 1.0 / 1.5  # precision 1/2, recall 1 -> 2/3
    assert m.per_emotion_f1["neu"] == pytest.approx(0.8) == pytest.approx(f1_neu)
    assert m.per_emotion_f1["ang"] == pytest.approx(f1_ang)
    assert m.weighted_f1 == pytest.approx(0.75 * 0.8 + 0.25 * 2 / 3)
    assert m.macro_f1 == pytest.approx((0.8 + 2 / 3) / 2)  # over classes present in the truth only
    assert m.weighted_accuracy == pytest.approx(0.75)
    assert m.unweighted_accuracy == pytest.approx((2 / 3 + 1) / 2)
    assert m.confusion[0][:2] == [2, 1] and m.confusion[1][:2] == [0, 1]
    assert np.isnan(m.per_emotion_f1["exc"])  # no true "exc": no F1 of its own, as in the pooled report


def test_a_class_predicted_but_absent_from_the_truth_has_no_f1_and_tables_skip_it():
    from harness.report.tables import _stat

    m = compute_metrics(np.array([0, 0, 1]), np.array([0, 2, 1]))  # "hap" predicted once, never true
    assert np.isnan(m.per_emotion_f1["hap"]) and m.per_emotion_f1["ang"] == 1.0
    assert _stat("hap", [m.per_emotion_f1["hap"], 0.5, 0.7]) == {"hap": 0.6, "hap_std": pytest.approx(0.1414, abs=1e-4)}
