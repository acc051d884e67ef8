"""The Answer of report.md follows the verdicts (harness.report.answer), the families five sessions can
decide (harness.report.contrasts), and the minimum detectable difference printed before any result."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from harness.report import contrasts
from harness.report.answer import answer_lines, mdd_lines, mdd_table, minimum_detectable
from harness.report.multiplicity import format_p
from tests.fixtures.predictions import random_runs

CELLS = ("cnnbilstm_bilstm", "cnnbilstm_albert", "wav2vec_bilstm", "wav2vec_albert")


def simulated_finals(rng: np.random.Generator, audio_gain: float, text_gain: float) -> dict[str, pd.DataFrame]:
    """The demo grid plus one baseline per modality, with true gains per swap to large (accuracy units)."""
    out = {}
    for pair in (*CELLS, "bilstm", "cnnbilstm"):
        accuracy = 0.45 + audio_gain * pair.startswith("wav2vec") + text_gain * pair.endswith("albert")
        accuracy -= 0.08 * (pair in ("bilstm", "cnnbilstm"))
        accuracy += rng.normal(0, 0.01)  # this draw's architecture effect
        out[pair] = random_runs(np.random.default_rng(rng.integers(1 << 31)), pair, accuracy, [0, 1, 2], 40, (8, 12))
    return out


SCENARIOS = [(0.15, 0.0), (0.03, 0.03), (0.0, 0.0), (0.06, -0.02)]


@pytest.fixture(scope="module")
def tables() -> list[pd.DataFrame]:
    rng = np.random.default_rng(2027)
    return [contrasts.verdict_table(simulated_finals(rng, a, t)) for a, t in SCENARIOS]


def bullets(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("- ")]


def test_every_sentence_carries_its_holm_p_and_verdict_and_claims_nothing_else(tables):
    words = {"different": "excludes 0", "equivalent": "lies within", "inconclusive": "not evidence of no difference"}
    seen = set()
    for table in tables:
        decided = table[table.family.isin(["primary", "fusion"])].reset_index(drop=True)
        sentences = bullets(answer_lines(table))
        assert len(sentences) == len(decided)  # every pre-specified contrast, nothing exploratory
        for sentence, (_, row) in zip(sentences, decided.iterrows()):
            seen.add(row.verdict)
            assert f"Holm p {format_p(row.holm_p)}" in sentence
            assert f"**{row.verdict}**" in sentence
            low, high = f"{row.step_ci_low:+.3f}", f"{row.step_ci_high:+.3f}"
            assert f"[{low}, {high}]" in sentence and f"{row.estimate:+.3f}" in sentence
            for word, claim in words.items():
                # a verdict word or its claim appears only beside that verdict
                assert (claim in sentence) == (row.verdict == word), sentence
                assert bool(re.search(rf"\*\*{word}\*\*", sentence)) == (row.verdict == word)
            # the interval printed is the one the verdict used: it excludes 0 exactly when Holm rejects,
            # unless Holm stopped earlier (and the sentence then says so)
            excludes = row.step_ci_low > 0 or row.step_ci_high < 0
            if row.verdict == "different":
                assert row.holm_p < 0.05 and excludes
            if row.verdict == "inconclusive":
                assert row.holm_p >= 0.05
                assert excludes == ("Holm stopped" in sentence)
            # the step interval is at least as wide as the plain 95% overlap-aware one
            assert row.step_ci_low <= row.overlap_ci_low + 1e-12 and row.step_ci_high >= row.overlap_ci_high - 1e-12
    assert {"different", "inconclusive"} <= seen


def test_exploratory_contrasts_stay_out_of_the_answer(tables):
    for table in tables:
        text = "\n".join(answer_lines(table))
        for _, row in table[table.family == "exploratory"].iterrows():
            assert f"- {row.pairs}" not in text
        assert "exploratory" in text


def test_the_primary_family_of_the_default_grid_has_three_contrasts(tables):
    for table in tables:
        primary = table[table.family == "primary"]
        assert primary.term.tolist() == ["audio size main effect", "text size main effect", "interaction"]
        assert (primary.family_size == 3).all()
        fusion = table[table.family == "fusion"]
        assert len(fusion) == 4 and (fusion.family_size == 4).all()  # each cell against its present baselines
        assert {"audio swap (text small)"}.isdisjoint(set(table.term))  # swaps are pairwise, exploratory rows
        assert table[table.family == "exploratory"].holm_p.isna().all()


def test_removing_one_final_seed_leaves_every_contrast_in_place():
    finals = simulated_finals(np.random.default_rng(3), 0.1, 0.0)
    full = contrasts.verdict_table(finals)
    finals["wav2vec_albert"] = finals["wav2vec_albert"][finals["wav2vec_albert"].seed != 2]
    short = contrasts.verdict_table(finals)
    assert short[["family", "term", "pairs"]].equals(full[["family", "term", "pairs"]])
    touched = short.seeds_per_pair.str.contains("wav2vec_albert: 2")
    assert touched.any() and (short.seeds_per_pair[~touched] == full.seeds_per_pair[~touched]).all()
    # a contrast without that pair is unchanged
    assert np.allclose(short.estimate[~touched], full.estimate[~touched])
    # and the missing seed is reported beside the Answer
    assert "Seeds: wav2vec_albert 2 of 3" in "\n".join(answer_lines(short))
    assert "Seeds:" not in "\n".join(answer_lines(full))


def test_seeds_are_not_paired_by_value():
    finals = simulated_finals(np.random.default_rng(4), 0.1, 0.0)
    renamed = dict(finals) | {"wav2vec_albert": finals["wav2vec_albert"].assign(seed=lambda f: f.seed + 100)}
    assert contrasts.verdict_table(renamed).estimate.tolist() == pytest.approx(
        contrasts.verdict_table(finals).estimate.tolist()
    )


def test_one_test_session_qualifies_every_verdict():
    finals = {p: f[f.fold == 5] for p, f in simulated_finals(np.random.default_rng(5), 0.1, 0.0).items()}
    table = contrasts.verdict_table(finals)
    assert table.verdict.str.endswith(
        "conditional on the Session-5 speakers (dialog bootstrap; no speaker-level claim)"
    ).all()
    text = "\n".join(answer_lines(table))
    assert "dialog-bootstrap " in text and "overlap-aware" not in text.split("*factorial")[1]
    assert mdd_table(table).mdd_weighted_f1.isna().all()


def test_the_mdd_table_comes_from_the_runs_spread_and_matches_a_simulated_power():
    table = mdd_table(pd.DataFrame())
    assert table.family.tolist() == ["primary"] and table.sd_source.tolist() == ["assumed"]
    se, df, alpha = 0.02, 4, 0.05 / 3
    mdd = minimum_detectable(se, df, alpha)
    # check the noncentral-t figure by simulating the test it describes, in the world where the overlap-aware
    # standard error is right: the mean ~ N(mdd, se^2), the spread an independent chi-square on 4 df
    rng = np.random.default_rng(0)
    mean = rng.normal(mdd, se, 40000)
    spread = np.sqrt(rng.chisquare(df, 40000) / df)
    t = mean / (se * spread)
    from scipy import stats

    assert np.mean(np.abs(t) > stats.t.ppf(1 - alpha / 2, df)) == pytest.approx(0.8, abs=0.01)
    only_explored = pd.DataFrame({"family": ["exploratory"], "n_sessions": [5], "sd_per_session": [0.03]})
    assert mdd_table(only_explored).empty  # no pre-specified family in the group: nothing to promise
    lines = mdd_lines(mdd_table(pd.DataFrame()), margin=0.02)
    assert "cannot be reached" in lines[2]


def test_the_mdd_uses_the_families_own_spread(tables):
    table = mdd_table(tables[0])
    assert table.family.tolist() == ["primary", "fusion"]
    assert (table.sd_source == "this run").all() and (table.n_sessions == 5).all()
    primary = tables[0][tables[0].family == "primary"]
    assert table.sd_per_session[0] == pytest.approx(primary.sd_per_session.median())
    assert table.test_alpha.tolist() == pytest.approx([0.05 / 3, 0.05 / 4])


def test_two_test_sessions_give_figures_not_an_error():
    finals = {p: f[f.fold <= 2] for p, f in simulated_finals(np.random.default_rng(6), 0.1, 0.0).items()}
    table = contrasts.verdict_table(finals)
    assert (table.n_sessions == 2).all() and table.overlap_ci_low.notna().all()
    mdd = mdd_table(table)
    assert np.isfinite(mdd.mdd_weighted_f1).all() and (mdd.mdd_weighted_f1 > 0.1).all()  # 1 df: very little
    assert minimum_detectable(0.02, 1, 0.05 / 8) > minimum_detectable(0.02, 1, 0.05) > minimum_detectable(0.02, 4, 0.05)
    assert len(bullets(answer_lines(table))) == 7
