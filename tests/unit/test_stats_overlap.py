"""The overlap-aware interval (Nadeau-Bengio corrected t) against the per-session t interval, in a simulated
world whose training-set effects follow the real LOSO fold overlap (``harness.corpus.folds``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.corpus.folds import make_folds
from harness.corpus.iemocap import SESSIONS
from harness.report.inference import TRAIN_SESSIONS, overlap_factor, primary_difference
from harness.report.simulation import Design, coverage, simulate


def loso_training_sets() -> tuple[tuple[int, ...], ...]:
    """Each fold's training sessions (0-based), read off the harness's own folds on a one-row-per-session
    manifest."""
    manifest = pd.DataFrame({"session": list(SESSIONS)})
    return tuple(tuple(sorted(int(manifest.session[i]) - 1 for i in fold.train)) for fold in make_folds(manifest))


def test_the_correction_is_derived_from_the_fold_design():
    sets = loso_training_sets()
    assert {len(t) for t in sets} == {TRAIN_SESSIONS}  # n_test / n_train = 1/3
    shared = np.array([[len(set(a) & set(b)) for b in sets] for a in sets])
    adjacent = [shared[k, (k + 1) % 5] for k in range(5)]
    others = [shared[k, (k + 2) % 5] for k in range(5)]
    assert adjacent == [2] * 5 and others == [1] * 5  # not "three shared", as the old README said
    assert overlap_factor(5) == pytest.approx(1 / 5 + 1 / 3)
    # Under the fold-overlap model (docs/statistics.md): with training-set variance t2 and independent
    # per-session variance e2, Var(mean) / E[s^2] = (e2/5 + 0.6 t2) / (e2 + 0.5 t2); the correction is exact
    # when t2 == e2 and the plain t's 1/5 only when t2 == 0.
    c = shared / TRAIN_SESSIONS
    var_mean = c.sum() / 25  # t2 = 1, e2 = 0
    expected_s2 = (np.trace(c) - c.sum() / 5) / 4
    assert var_mean == pytest.approx(0.6) and expected_s2 == pytest.approx(0.5)
    assert (1 / 5 + var_mean) / (1 + expected_s2) == pytest.approx(overlap_factor(5))


WORLD = {"n_dialogs": 28, "sizes": (20, 50)}  # IEMOCAP-sized sessions (~1,000 utterances)


def test_with_overlapping_training_sets_the_overlap_interval_covers_and_the_plain_one_falls_short():
    design = Design(training_sd=0.02, training_sets=loso_training_sets(), **WORLD)
    result = coverage(design, "weighted_f1", 400, seed=3, bootstrap_datasets=0)
    # Monte Carlo SE ~0.011 at 0.95: the plain t is visibly below nominal, the corrected one is not
    assert result.overlap_t >= 0.90, result
    assert result.session_t < 0.90, result
    assert result.overlap_t - result.session_t >= 0.05, result
    assert result.mean_width["overlap_t"] / result.mean_width["session_t"] == pytest.approx(
        np.sqrt(overlap_factor(5) * 5)
    )


@pytest.mark.parametrize("training_sd", [0.0, 0.02])
def test_with_independent_folds_both_intervals_cover(training_sd):
    design = Design(training_sd=training_sd, training_sets=None, **WORLD)
    result = coverage(design, "weighted_f1", 400, seed=4, bootstrap_datasets=0)
    assert result.session_t >= 0.93, result
    assert result.overlap_t >= 0.93, result  # over-covers (~0.99): the price of not knowing


def test_primary_difference_returns_the_overlap_interval_beside_the_plain_one():
    data = simulate(np.random.default_rng(5), Design(session_sd=0.02))
    a, b = data.frames()
    d = primary_difference(a, b)
    s = np.std(d.per_session, ddof=1)
    assert d.se == pytest.approx(s / np.sqrt(5))
    assert d.overlap_se == pytest.approx(s * np.sqrt(1 / 5 + 1 / 3))
    assert d.overlap_ci_low < d.ci_low < d.estimate < d.ci_high < d.overlap_ci_high
    assert (d.overlap_ci_high - d.overlap_ci_low) / (d.ci_high - d.ci_low) == pytest.approx(np.sqrt(5 / 3 + 1))
    assert d.overlap_p_value > d.p_value
    # the p value tests the statistic its interval is built on: it rejects exactly when 0 is outside
    assert (d.overlap_p_value < 0.05) == (d.overlap_ci_low > 0 or d.overlap_ci_high < 0)
