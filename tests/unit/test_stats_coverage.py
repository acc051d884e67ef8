"""Coverage of the speaker-level interval in a simulation with a known architecture-level difference and a
session-level random effect of the a-b difference, where the dialog bootstrap visibly falls short
(``benchmarks/bench_coverage.py`` runs the full table)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.report.inference import per_session_contrast
from harness.report.simulation import Design, coverage, simulate, true_difference


def population(design: Design, metric: str, n_sessions: int, seed: int) -> np.ndarray:
    """Per-session differences of one very long simulated dataset."""
    big = Design(design.session_sd, n_sessions=n_sessions, n_dialogs=design.n_dialogs, sizes=design.sizes)
    data = simulate(np.random.default_rng(seed), big)
    return per_session_contrast(data.labels, data.sessions, n_sessions, data.preds, (1.0, -1.0), metric)


@pytest.mark.parametrize("metric", ["weighted_f1", "ua"])
def test_the_closed_form_truth_is_the_mean_per_session_difference(metric):
    design = Design(session_sd=0.03)
    d = population(design, metric, 3000, seed=1)
    se = d.std(ddof=1) / np.sqrt(len(d))
    assert abs(d.mean() - true_difference(design, metric)) < 3.5 * se  # se ~ 0.0007
    assert 0.02 < true_difference(design, metric) < 0.04


def test_the_session_effect_has_the_stated_sd_in_weighted_f1():
    # Var(d) = within-session noise + session_sd^2: the difference of variances recovers 0.03^2.
    noisy = population(Design(session_sd=0.03), "weighted_f1", 3000, seed=2).var(ddof=1)
    flat = population(Design(session_sd=0.0), "weighted_f1", 3000, seed=3).var(ddof=1)
    assert np.sqrt(max(noisy - flat, 0.0)) == pytest.approx(0.03, abs=0.006)


@pytest.mark.parametrize("metric", ["weighted_f1", "ua"])
@pytest.mark.parametrize("session_sd", [0.0, 0.03])
def test_the_speaker_level_interval_keeps_its_coverage(metric, session_sd):
    # 300 datasets: Monte Carlo SE ~0.013 at 0.95, so 0.90 is ~4 SE below nominal (the full benchmark, 2,000
    # datasets per cell, is in the README).
    result = coverage(Design(session_sd=session_sd), metric, 300, seed=7, bootstrap_datasets=0)
    assert 0.90 <= result.session_t <= 0.99, result
    assert abs(result.mean_estimate - result.truth) < 0.003  # no bias next to a half-width of ~0.04


def test_the_dialog_bootstrap_falls_short_when_the_difference_varies_by_session():
    result = coverage(Design(session_sd=0.03), "weighted_f1", 200, seed=8, bootstrap_datasets=200, n_boot=400)
    # Long runs: the dialog bootstrap covers ~0.79 here, the speaker-level interval ~0.95.
    assert result.dialog_bootstrap < 0.87, result
    assert result.session_t - result.dialog_bootstrap > 0.07, result
    assert result.mean_width["dialog_bootstrap"] < result.mean_width["session_t"]
