"""harness.report.inference and multiplicity: the primary difference and contrasts (per-session t interval
and the t test of the same statistic), the single-session fallback, TOST, Holm / Benjamini-Hochberg."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import balanced_accuracy_score, f1_score

from harness.report.bootstrap import contrast_bootstrap
from harness.report.inference import per_session_contrast
from harness.report.multiplicity import format_p, verdict
from harness.report.simulation import Design, simulate
from harness.report.stats import (
    ONE_SESSION_BOOTSTRAP,
    SESSION_T,
    benjamini_hochberg,
    holm,
    paired_bootstrap,
    primary_difference,
    session_contrast,
    t_interval,
)
from tests.fixtures.predictions import random_runs


def per_session(frame: pd.DataFrame, metric: str) -> pd.Series:
    """Seed-averaged per-session metric, computed by scikit-learn."""

    def score(g: pd.DataFrame) -> float:
        if metric == "ua":
            return balanced_accuracy_score(g.label, g.pred)
        return f1_score(g.label, g.pred, labels=range(6), average="weighted", zero_division=0)

    return frame.groupby(["fold", "seed"]).apply(score).groupby("fold").mean()


@pytest.fixture(scope="module")
def models() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(11)
    return random_runs(rng, "a", 0.62, [0, 1, 2]), random_runs(rng, "b", 0.55, [0, 1, 2])


@pytest.mark.parametrize("metric", ["weighted_f1", "ua"])
def test_primary_difference_is_the_t_interval_and_t_test_of_per_session_differences(models, metric):
    a, b = models
    result = primary_difference(a, b, metric=metric)
    d = (per_session(a, metric) - per_session(b, metric)).to_numpy()
    assert result.estimate == pytest.approx(d.mean(), abs=1e-12)
    assert result.per_session == pytest.approx(d.tolist(), abs=1e-12)
    low, high = stats.t.interval(0.95, df=4, loc=d.mean(), scale=stats.sem(d))
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high))
    assert result.p_value == pytest.approx(stats.ttest_1samp(d, 0.0).pvalue)  # the same statistic
    assert (result.n_sessions, result.n_dialogs, result.n_seeds, result.df) == (5, 40, 3, 4)
    assert result.method == SESSION_T and result.metric == metric and not result.conditional_on_speakers
    swapped = primary_difference(b, a, metric=metric)
    assert swapped.estimate == pytest.approx(-result.estimate) and swapped.p_value == pytest.approx(result.p_value)
    assert (swapped.ci_low, swapped.ci_high) == pytest.approx((-result.ci_high, -result.ci_low))


def test_a_level_and_a_weighted_contrast_are_the_same_machinery(models):
    a, b = models
    level = session_contrast([a], (1.0,))
    interval = t_interval(per_session(a, "weighted_f1").to_numpy())
    assert (level.estimate, level.ci_low, level.ci_high) == pytest.approx((interval.mean, interval.low, interval.high))
    assert np.isnan(level.p_value)  # a level is not a difference: nothing to test against 0
    c = random_runs(np.random.default_rng(12), "c", 0.7, [0, 1, 2])
    # (a + c) / 2 - b is the mean of the two differences, session by session
    main = session_contrast([a, c, b], (0.5, 0.5, -1.0))
    expected = (np.array(primary_difference(a, b).per_session) + np.array(primary_difference(c, b).per_session)) / 2
    assert main.per_session == pytest.approx(expected.tolist())
    with pytest.raises(ValueError, match="weight"):
        session_contrast([a, b], (1.0,))
    with pytest.raises(ValueError, match="metric"):
        primary_difference(a, b, metric="accuracy")


def test_a_single_test_session_falls_back_to_the_dialog_bootstrap_labelled_so(models):
    a, b = (m[m.fold == 5] for m in models)
    result = primary_difference(a, b, seed=3)
    boot = paired_bootstrap(a, b, seed=3)
    assert result.method == ONE_SESSION_BOOTSTRAP and result.conditional_on_speakers
    assert "conditional on these speakers" in result.method
    assert (result.estimate, result.ci_low, result.ci_high) == (boot.estimate, boot.ci_low, boot.ci_high)
    share = min(np.mean(boot.replicates <= 0), np.mean(boot.replicates >= 0))
    assert result.p_value == pytest.approx(2 * share, abs=3 / 1001)  # the bootstrap p of the same statistic
    assert result.n_sessions == 1 and np.isnan(result.se)


def test_the_dataframe_path_equals_the_array_path_the_simulation_uses():
    data = simulate(np.random.default_rng(5), Design(session_sd=0.02))
    a, b = data.frames()
    assert {"pair", "seed", "fold", "utterance_id", "dialog", "label", "pred", "p_neu", "p_exc"} <= set(a.columns)
    probabilities = a[[f"p_{e}" for e in ("neu", "ang", "hap", "sad", "fru", "exc")]].to_numpy()
    assert np.allclose(probabilities.sum(axis=1), 1) and (probabilities.argmax(axis=1) == a.pred).all()
    for metric in ("weighted_f1", "ua"):
        arrays = per_session_contrast(data.labels, data.sessions, 5, data.preds, (1.0, -1.0), metric)
        assert primary_difference(a, b, metric=metric).per_session == pytest.approx(arrays.tolist(), abs=1e-12)
    frame_boot = paired_bootstrap(a, b, n_boot=300, seed=9)
    array_boot = contrast_bootstrap(data.aligned(), (1.0, -1.0), n_boot=300, seed=9)
    assert np.array_equal(frame_boot.replicates, array_boot.replicates)


def test_equivalence_p_is_tost_on_the_same_t_statistic(models):
    a, b = models
    result = primary_difference(a, b)
    margin = 0.2
    by_hand = max(
        stats.t.sf((result.estimate + margin) / result.se, 4), stats.t.cdf((result.estimate - margin) / result.se, 4)
    )
    assert result.equivalence_p(margin) == pytest.approx(by_hand)
    # TOST rejects at 5% exactly when the 90% interval lies inside the margin
    ninety = primary_difference(a, b, confidence=0.90)
    for m in (0.01, 0.05, 0.1, 0.2, 0.5):
        inside = -m < ninety.ci_low and ninety.ci_high < m
        assert (result.equivalence_p(m) < 0.05) == inside
    same = primary_difference(a, a.assign(pair="copy"))
    assert (same.estimate, same.p_value, same.equivalence_p(0.02)) == (0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="margin"):
        result.equivalence_p(0.0)


def test_holm_bh_and_verdicts():
    p = [0.01, 0.04, 0.03, 0.5]
    assert holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    # BH: sorted .01 .03 .04 .5 -> .04, .06, .0533, .5, then the running minimum from the top
    assert benjamini_hochberg(p) == pytest.approx([0.04, 0.0533333, 0.0533333, 0.5])
    assert benjamini_hochberg([]).size == 0
    with pytest.raises(ValueError):
        benjamini_hochberg([0.2, 1.5])
    assert verdict(holm_p=0.001, equivalence_holm_p=0.5) == "different"
    assert verdict(holm_p=0.5, equivalence_holm_p=0.01) == "equivalent"
    assert verdict(holm_p=0.001, equivalence_holm_p=0.01) == "equivalent"  # non-zero but inside the margin
    assert verdict(holm_p=0.3, equivalence_holm_p=0.3) == "inconclusive"
    assert [format_p(x) for x in (5.7e-12, 0.0625, 0.5, 1.0, float("nan"))] == [
        "<0.001",
        "0.062",
        "0.500",
        "1.000",
        "n/a",
    ]
