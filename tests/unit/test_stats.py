"""harness.report.stats: summary metrics, dialog bootstrap, Holm, t intervals, and the dialog bootstrap's coverage
when dialogs are the only clusters (the speaker-level checks are in test_stats_coverage.py)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import f1_score

from harness.report.simulation import BASE, CONFUSION, MU
from harness.report.stats import (
    EMOTIONS,
    STD_CONVENTION,
    Interval,
    holm,
    paired_bootstrap,
    summarize,
    t_interval,
)
from tests.fixtures.predictions import random_runs


def predictions(
    pair: str,
    seed: int,
    fold: int,
    labels: list[int],
    preds: list[int],
    dialogs: list[str] | None = None,
    ids: list[str] | None = None,
) -> pd.DataFrame:
    """One (pair, seed, fold) run as a predictions table."""
    ids = ids or [f"f{fold}_u{i}" for i in range(len(labels))]
    dialogs = dialogs or [f"f{fold}_d0"] * len(labels)
    return pd.DataFrame(
        {
            "pair": pair,
            "seed": seed,
            "fold": fold,
            "utterance_id": ids,
            "dialog": dialogs,
            "label": labels,
            "pred": preds,
        }
    )


# --------------------------------------------------------------------------------------------------------
# summarize


@pytest.fixture
def tiny() -> pd.DataFrame:
    """One pair, two seeds x two folds. Seed 0 makes two mistakes, seed 1 none."""
    return pd.concat(
        [
            predictions("m", 0, 1, [0, 0, 1, 1], [0, 1, 1, 1]),
            predictions("m", 0, 2, [2, 3], [2, 0]),
            predictions("m", 1, 1, [0, 0, 1, 1], [0, 0, 1, 1]),
            predictions("m", 1, 2, [2, 3], [2, 3]),
        ],
        ignore_index=True,
    )


def test_emotions_are_the_six_classes_in_benchmark_order():
    assert EMOTIONS == ("neu", "ang", "hap", "sad", "fru", "exc")
    assert "ddof=1" in STD_CONVENTION


def test_summarize_matches_a_hand_computation(tiny):
    row = summarize(tiny).iloc[0]
    assert row["pair"] == "m"
    assert (row["n_runs"], row["n_seeds"], row["n_folds"], row["n_utterances"]) == (4, 2, 2, 6)

    # Seed 0 pooled over folds: labels 0 0 1 1 2 3, predictions 0 1 1 1 2 0.
    # F1 per class = 2 tp / (support + predicted): neu 2/4, ang 4/5, hap 2/2, sad 0/1; fru, exc absent.
    # weighted = (2 * .5 + 2 * .8 + 1 + 0) / 6 = .6; macro (present classes) = 2.3 / 4 = .575;
    # UA = mean recall (.5, 1, 1, 0) = .625; WA = 4 / 6. Seed 1 is perfect: 1 everywhere.
    assert row["pooled_weighted_f1"] == pytest.approx((0.6 + 1) / 2)
    assert row["pooled_macro_f1"] == pytest.approx((0.575 + 1) / 2)
    assert row["pooled_ua"] == pytest.approx((0.625 + 1) / 2)
    assert row["pooled_wa"] == pytest.approx((4 / 6 + 1) / 2)
    assert row["pooled_f1_neu"] == pytest.approx(0.75)
    assert row["pooled_f1_ang"] == pytest.approx(0.9)
    assert row["pooled_f1_hap"] == pytest.approx(1.0)
    assert row["pooled_f1_sad"] == pytest.approx(0.5)
    assert np.isnan(row["pooled_f1_fru"]) and np.isnan(row["pooled_f1_exc"])  # no true fru/exc utterance

    # Runs (seed, fold): (0, 1): neu F1 2/3, ang 4/5 -> weighted = macro = 11/15, UA .75, WA .75;
    # (0, 2): hap 1, sad 0 -> weighted = macro = UA = WA = .5; both seed-1 runs are perfect.
    runs_wf1 = [11 / 15, 0.5, 1.0, 1.0]
    assert row["run_mean_weighted_f1"] == pytest.approx(np.mean(runs_wf1))
    assert row["run_std_weighted_f1"] == pytest.approx(np.std(runs_wf1, ddof=1))
    assert row["run_std_weighted_f1"] != pytest.approx(np.std(runs_wf1, ddof=0))
    assert row["run_mean_ua"] == pytest.approx(np.mean([0.75, 0.5, 1, 1]))
    assert row["run_mean_wa"] == pytest.approx(np.mean([0.75, 0.5, 1, 1]))
    assert row["run_mean_macro_f1"] == pytest.approx(np.mean(runs_wf1))
    # neu only occurs in fold 1: runs (0, 1) and (1, 1).
    assert row["run_mean_f1_neu"] == pytest.approx(np.mean([2 / 3, 1]))
    assert row["run_std_f1_neu"] == pytest.approx(np.std([2 / 3, 1], ddof=1))


def test_summarize_has_both_aggregations_for_every_metric_and_one_row_per_pair(tiny):
    other = tiny.assign(pair="n")
    table = summarize(pd.concat([other, tiny]))
    assert table["pair"].tolist() == ["m", "n"]
    metrics = ["weighted_f1", "macro_f1", "ua", "wa", *(f"f1_{e}" for e in EMOTIONS)]
    for metric in metrics:
        assert {f"pooled_{metric}", f"run_mean_{metric}", f"run_std_{metric}"} <= set(table.columns)
    assert table.iloc[0].drop("pair").equals(table.iloc[1].drop("pair"))


def test_summarize_rejects_malformed_tables(tiny):
    with pytest.raises(ValueError, match="missing column"):
        summarize(tiny.drop(columns="dialog"))
    with pytest.raises(ValueError, match="outside 0..5"):
        summarize(tiny.assign(pred=tiny["pred"] + 3))
    with pytest.raises(ValueError, match="repeated"):
        summarize(pd.concat([tiny, tiny.iloc[:1]]))


# --------------------------------------------------------------------------------------------------------
# Holm, t interval


def test_holm_matches_a_hand_computation():
    # Sorted: .01 * 4 = .04; .03 * 3 = .09; .04 * 2 = .08 -> .09 (monotone); .5 * 1 = .5.
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.3, 0.6]) == pytest.approx([0.6, 0.6])
    assert holm([]).size == 0
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(0).uniform(0, 0.2, 12)
    p[3] = p[7]  # a tie
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1])
    with pytest.raises(ValueError):
        holm([0.1, float("nan")])


def test_t_interval_matches_scipy():
    values = [0.61, 0.58, 0.64, 0.55, 0.60]
    interval = t_interval(values)
    low, high = stats.t.interval(0.95, df=4, loc=np.mean(values), scale=stats.sem(values))
    assert interval == Interval(pytest.approx(np.mean(values)), pytest.approx(low), pytest.approx(high), 5)
    half = stats.t.ppf(0.975, 4) * np.std(values, ddof=1) / np.sqrt(5)
    assert interval.high - interval.mean == pytest.approx(half)
    mean, low90, high90, n = t_interval(values, confidence=0.9)
    assert (low90, high90) == pytest.approx(stats.t.interval(0.9, df=4, loc=mean, scale=stats.sem(values)))
    assert n == 5 and low < low90 < high90 < high


def test_t_interval_small_and_degenerate_samples():
    one = t_interval([0.7])
    assert one.mean == 0.7 and np.isnan(one.low) and np.isnan(one.high) and one.n == 1
    none = t_interval([])
    assert np.isnan(none.mean) and none.n == 0
    assert tuple(t_interval([0.5, 0.5, 0.5])) == (0.5, 0.5, 0.5, 3)


# --------------------------------------------------------------------------------------------------------
# paired bootstrap: exactness and mechanics


def weighted_f1(frame: pd.DataFrame) -> float:
    return f1_score(frame["label"], frame["pred"], labels=range(6), average="weighted", zero_division=0)


@pytest.mark.parametrize("cluster", ["dialog", None])
def test_bootstrap_estimate_is_the_mean_over_seeds_of_the_pooled_f1_difference(cluster):
    rng = np.random.default_rng(1)
    a, b = random_runs(rng, "a", 0.6, [0, 1, 2]), random_runs(rng, "b", 0.5, [0, 1, 2])
    result = paired_bootstrap(a, b, n_boot=1000, seed=0, cluster=cluster)
    expected = np.mean([weighted_f1(a[a.seed == s]) - weighted_f1(b[b.seed == s]) for s in range(3)])
    assert result.estimate == pytest.approx(expected, abs=1e-12)
    assert result.ci_low < result.estimate < result.ci_high
    assert (result.n_boot, result.n_seeds, result.n_dialogs, result.n_utterances) == (1000, 3, 40, len(a) // 3)
    assert result.replicates.shape == (1000,)
    assert (result.ci_low, result.ci_high) == pytest.approx(tuple(np.percentile(result.replicates, [2.5, 97.5])))


def test_bootstrap_is_reproducible_and_ignores_row_order():
    rng = np.random.default_rng(2)
    a, b = random_runs(rng, "a", 0.6, [0, 1]), random_runs(rng, "b", 0.55, [0, 1])
    first = paired_bootstrap(a, b, seed=7)
    shuffled = paired_bootstrap(a.sample(frac=1, random_state=0), b.sample(frac=1, random_state=1), seed=7)
    assert first == shuffled and np.array_equal(first.replicates, shuffled.replicates)
    assert paired_bootstrap(a, b, seed=8).ci_low != first.ci_low
    same = paired_bootstrap(a, a.assign(pair="copy"), seed=0)
    assert (same.estimate, same.ci_low, same.ci_high) == (0.0, 0.0, 0.0)


def test_bootstrap_pairs_seeds_by_value_and_utterances_by_fold_and_id():
    rng = np.random.default_rng(3)
    a, b = random_runs(rng, "a", 0.6, [0, 1, 2]), random_runs(rng, "b", 0.5, [1, 2, 3])
    result = paired_bootstrap(a, b, seed=0)
    assert result.seeds == (1, 2)
    expected = np.mean([weighted_f1(a[a.seed == s]) - weighted_f1(b[b.seed == s]) for s in (1, 2)])
    assert result.estimate == pytest.approx(expected)
    partial = b[b.fold != 3]  # b lacks one test fold: only the shared folds are compared
    assert paired_bootstrap(a, partial, seed=0).n_utterances == int(((a.fold != 3) & (a.seed == 1)).sum())
    with pytest.raises(ValueError, match="no seed in common"):
        paired_bootstrap(a, b.assign(seed=b.seed + 10))
    with pytest.raises(ValueError, match="no utterances in common"):
        paired_bootstrap(a[a.fold == 1], b[b.fold == 2])
    with pytest.raises(ValueError, match="several pairs"):
        paired_bootstrap(pd.concat([a, b]), b)
    with pytest.raises(ValueError, match="disagree"):
        paired_bootstrap(a, b.assign(label=(b.label + 1) % 6))


def test_bootstrap_is_fast_at_iemocap_scale():
    # ~7,400 utterances in 150 dialogs, five seeds per model, 1000 resamples: well under a second.
    rng = np.random.default_rng(4)
    kwargs = {"n_dialogs": 150, "sizes": (10, 88)}
    a = random_runs(rng, "a", 0.6, list(range(5)), **kwargs)
    b = random_runs(rng, "b", 0.55, list(range(5)), **kwargs)
    start = time.perf_counter()
    result = paired_bootstrap(a, b, n_boot=1000, seed=0)
    elapsed = time.perf_counter() - start
    assert result.n_utterances > 7000 and result.n_dialogs == 150 and result.n_seeds == 5
    assert elapsed < 2.0  # typically ~0.1 s; generous for a busy shared machine


# --------------------------------------------------------------------------------------------------------
# paired bootstrap: coverage under a known generative model with dialog clusters
#
# Each dialog has its own mix of emotions (Dirichlet around IEMOCAP-like shares), a difficulty shared by
# both models and a model-specific offset: an utterance is right when mu[model, label] + shared + offset +
# noise > 0 (probit; the utterance noise is correlated between the two models), and a wrong prediction goes
# to a class drawn from a fixed confusion profile. Utterances of a dialog are therefore correlated, and so
# is the a-vs-b difference, which an utterance-level bootstrap ignores.
#
# The true difference is the population value: the pooled confusion matrix of many dialogs converges to
# E[counts per dialog] / E[utterances per dialog], and with the mix, the size and the latents independent,
# P(label k) = BASE[k] and P(right | k) = Phi(mu_k / sqrt(1 + sd_shared^2 + sd_model^2)), in closed form.
# In long runs (thousands of datasets) the mean estimate sits within ~5e-4 of this value, i.e. no detectable
# finite-sample bias next to its standard error (~0.02), so the population value is the target a 95% interval
# should cover 95% of the time.

# the class shares, model strengths and error confusion of the report's own simulation
SD_SHARED, SD_MODEL, RHO, CONCENTRATION = 0.5, 0.4, 0.5, 3.0


def simulate(
    rng: np.random.Generator, n_dialogs: int, n_seeds: int = 1, sizes: tuple[int, int] = (10, 60)
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """labels (n,), dialog (n,), predictions {model: (n_seeds, n)} from the generative model above."""
    n = rng.integers(sizes[0], sizes[1] + 1, n_dialogs)
    dialog = np.repeat(np.arange(n_dialogs), n)
    mix = rng.dirichlet(CONCENTRATION * BASE, n_dialogs)
    labels = (rng.random(len(dialog))[:, None] > np.cumsum(mix, axis=1)[dialog, :-1]).sum(axis=1)
    shared = rng.normal(0.0, SD_SHARED, n_dialogs)
    common_noise = rng.normal(size=len(dialog))
    preds = {}
    for model, mu in MU.items():
        latent = mu[labels] + (shared + rng.normal(0.0, SD_MODEL, n_dialogs))[dialog]
        rows = []
        for _ in range(n_seeds):
            noise = np.sqrt(RHO) * common_noise + np.sqrt(1 - RHO) * rng.normal(size=len(dialog))
            error = (rng.random(len(dialog))[:, None] > np.cumsum(CONFUSION, axis=1)[labels, :-1]).sum(axis=1)
            rows.append(np.where(latent + noise > 0, labels, error))
        preds[model] = np.array(rows)
    return labels, dialog, preds


UTTERANCE_IDS = np.array([f"u{i}" for i in range(10_000)], dtype=object)  # names built once
DIALOG_NAMES = np.array([f"d{i}" for i in range(1_000)], dtype=object)


def as_frames(labels: np.ndarray, dialog: np.ndarray, preds: dict[str, np.ndarray]) -> list[pd.DataFrame]:
    """The two models' predictions tables (five folds of whole dialogs)."""
    n_seeds, n = preds["a"].shape
    # Object-dtype strings, made once: building pandas' default (Arrow) strings would dominate the runtime.
    ids, names = UTTERANCE_IDS[:n], DIALOG_NAMES[dialog]
    folds = dialog % 5 + 1
    return [
        pd.DataFrame(
            {
                "seed": np.repeat(np.arange(n_seeds), n),
                "fold": np.tile(folds, n_seeds),
                "utterance_id": pd.Series(np.tile(ids, n_seeds), dtype=object),
                "dialog": pd.Series(np.tile(names, n_seeds), dtype=object),
                "label": np.tile(labels, n_seeds),
                "pred": preds[model].ravel(),
            }
        )
        for model in ("a", "b")
    ]


def f1_from_confusion(confusion: np.ndarray) -> float:
    support, predicted, tp = confusion.sum(axis=1), confusion.sum(axis=0), np.diag(confusion)
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros(6), where=support + predicted > 0)
    return float((support * f1).sum() / support.sum())


def true_difference() -> float:
    """Population weighted F1 of a minus b, in closed form (see above)."""
    f1 = {}
    for model, mu in MU.items():
        right = stats.norm.cdf(mu / np.sqrt(1 + SD_SHARED**2 + SD_MODEL**2))
        confusion = BASE[:, None] * (1 - right)[:, None] * CONFUSION
        confusion[np.diag_indices(6)] = BASE * right
        f1[model] = f1_from_confusion(confusion)
    return f1["a"] - f1["b"]


def test_closed_form_truth_matches_a_large_simulated_population():
    labels, _, preds = simulate(np.random.default_rng(99), n_dialogs=20_000)
    population = [f1_score(labels, preds[m][0], labels=range(6), average="weighted") for m in ("a", "b")]
    assert true_difference() == pytest.approx(0.0309, abs=5e-4)
    assert population[0] - population[1] == pytest.approx(true_difference(), abs=0.004)  # ~3 SE of the population


N_DATASETS, N_UTTERANCE_LEVEL, N_DIALOGS = 400, 100, 120


@pytest.fixture(scope="module")
def coverage() -> dict[str, float]:
    """Share of simulated datasets whose 95% interval holds the true difference: the dialog bootstrap on
    N_DATASETS datasets, the utterance bootstrap on the first N_UTTERANCE_LEVEL of them."""
    truth = true_difference()
    rng = np.random.default_rng(2024)
    hits = {"dialog": 0, "utterance": 0}
    for i in range(N_DATASETS):
        a, b = as_frames(*simulate(rng, N_DIALOGS))
        for name, cluster in (("dialog", "dialog"), ("utterance", None)):
            if name == "utterance" and i >= N_UTTERANCE_LEVEL:
                continue
            result = paired_bootstrap(a, b, n_boot=1000, seed=rng, cluster=cluster)
            hits[name] += result.ci_low <= truth <= result.ci_high
    return {"dialog": hits["dialog"] / N_DATASETS, "utterance": hits["utterance"] / N_UTTERANCE_LEVEL}


def test_dialog_bootstrap_interval_has_nominal_coverage(coverage):
    # 400 datasets: the Monte Carlo SE of a coverage near 0.95 is 0.011, so [0.92, 0.98] is about +/- 2.7 SE.
    # (Long runs of this simulation, ~5,600 datasets, put the percentile interval's coverage at 0.943 +/- 0.003:
    # the usual small shortfall of a bootstrap variance from ~120 clusters, not a bias; 240 dialogs: ~0.957.)
    assert 0.92 <= coverage["dialog"] <= 0.98, coverage


def test_utterance_bootstrap_undercovers_on_clustered_data(coverage):
    # The same check is sensitive: treating correlated utterances as independent gives too narrow intervals.
    assert coverage["utterance"] < 0.92, coverage
    assert coverage["utterance"] < coverage["dialog"] - 0.1, coverage


def test_dialog_bootstrap_covers_with_several_seeds():
    # Multi-seed path: two seed replicates per model (same dialogs, fresh utterance noise), fewer datasets.
    truth, rng, hits, n = true_difference(), np.random.default_rng(7), 0, 100
    for _ in range(n):
        a, b = as_frames(*simulate(rng, N_DIALOGS, n_seeds=2))
        result = paired_bootstrap(a, b, n_boot=1000, seed=rng)
        hits += result.ci_low <= truth <= result.ci_high
    assert 0.88 <= hits / n <= 1.0  # 100 datasets: SE 0.022; a loose check that several seeds do not break it
