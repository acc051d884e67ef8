"""harness.report.contrasts: the grid and the primary family from the registry, orientation by the question,
one Holm p value per contrast wherever it appears, the factorial table and the improvised/scripted subsets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.models.pairs import GRID
from harness.report import contrasts
from harness.report.inference import ONE_SESSION_BOOTSTRAP, primary_difference, session_contrast
from harness.report.multiplicity import holm
from tests.fixtures.predictions import random_runs

CELLS = {  # (audio large, text large) -> pair
    (False, False): "cnnbilstm_bilstm",
    (False, True): "cnnbilstm_albert",
    (True, False): "wav2vec_bilstm",
    (True, True): "wav2vec_albert",
}
GRID_NAME = "audio cnn_bilstm->wav2vec2 x text bilstm->albert"


@pytest.fixture(scope="module")
def finals() -> dict[str, pd.DataFrame]:
    """The demo grid and its baselines. The text swap changes nothing (same predictions: albert = bilstm);
    the large audio encoder is much better."""
    accuracy = {"cnnbilstm": 0.45, "wav2vec": 0.7, "bilstm": 0.5, "albert": 0.5}
    out = {}
    for pair in GRID:
        audio_large = pair.startswith("wav2vec")
        acc = accuracy.get(pair, 0.75 if audio_large else 0.55)
        seed = {"albert": "bilstm", "cnnbilstm_albert": "cnnbilstm_bilstm", "wav2vec_albert": "wav2vec_bilstm"}
        rng = np.random.default_rng(sum(map(ord, seed.get(pair, pair))))
        out[pair] = random_runs(rng, pair, acc, [0, 1, 2], 40, (8, 12))
    return out


@pytest.fixture(scope="module")
def family(finals) -> contrasts.Family:
    return contrasts.evaluate_family(finals)


def test_the_grid_comes_from_the_registry_and_needs_all_four_cells():
    (grid,) = contrasts.grids(list(GRID))
    assert grid.name == GRID_NAME and grid.cells == CELLS
    assert contrasts.grids([p for p in GRID if p != "wav2vec_albert"]) == []
    assert contrasts.grids(["cnnbilstm_bilstm", "wav2vec_bilstm", "cnnbilstm_albert", "wavlm_roberta"]) == []


def test_differences_are_oriented_by_the_question_never_alphabetically():
    assert contrasts.orient("cnnbilstm_bilstm", "wav2vec_bilstm") == (
        "wav2vec_bilstm",
        "cnnbilstm_bilstm",
        "large - small",
    )
    assert contrasts.orient("albert", "bilstm") == ("albert", "bilstm", "large - small")  # alphabetical is a-b here
    assert contrasts.orient("bilstm", "albert") == ("albert", "bilstm", "large - small")
    assert contrasts.orient("wav2vec", "cnnbilstm_bilstm") == ("cnnbilstm_bilstm", "wav2vec", "fused - unimodal")
    assert contrasts.orient("wav2vec_bilstm", "cnnbilstm_albert")[2] == "registry order"
    assert contrasts.orient("cnnbilstm_albert", "wav2vec_bilstm") == contrasts.orient(
        "wav2vec_bilstm", "cnnbilstm_albert"
    )


def test_the_families_are_the_factorial_terms_the_fusion_gains_and_the_rest(finals, family):
    terms = [(x.grid, x.term) for x in contrasts.primary_family(finals)]
    assert terms == [(GRID_NAME, t) for t in ("audio size main effect", "text size main effect", "interaction")]
    gains = sorted(f"{x.pairs[0]} - {x.pairs[1]}" for x in contrasts.fusion_family(finals))
    assert gains == [
        "cnnbilstm_albert - albert",
        "cnnbilstm_albert - cnnbilstm",
        "cnnbilstm_bilstm - bilstm",
        "cnnbilstm_bilstm - cnnbilstm",
        "wav2vec_albert - albert",
        "wav2vec_albert - wav2vec",
        "wav2vec_bilstm - bilstm",
        "wav2vec_bilstm - wav2vec",
    ]
    swap = next(
        x for x in contrasts.grid_contrasts(contrasts.grids(list(finals))[0]) if x.term.startswith("audio swap")
    )
    assert swap.terms == (("wav2vec_bilstm", 1.0), ("cnnbilstm_bilstm", -1.0))  # large minus small
    assert family.family[swap.key] == "exploratory"  # a single swap is a pairwise difference, explored


def test_holm_runs_within_each_family_and_each_contrast_has_one_adjusted_p(finals, family):
    for name, size in (("primary", 3), ("fusion", 8)):
        keys = [k for k, f in family.family.items() if f == name]
        assert len(keys) == size
        overlap = [family.evaluated[k].f1.overlap_p_value for k in keys]  # the verdicts' interval
        assert [family.holm_p[k] for k in keys] == pytest.approx(holm(overlap))
    table = contrasts.pairwise(finals, family)
    assert len(table) == 28  # 8 pairs
    assert table.family.value_counts().to_dict() == {"exploratory": 20, "fusion": 8}
    gain = contrasts.fusion_gain(finals, family)
    merged = gain.merge(table, left_on=["pair", "baseline"], right_on=["pair_a", "pair_b"])
    assert (
        len(merged) == 8 and (merged.holm_p_x == merged.holm_p_y).all() and (merged.verdict_x == merged.verdict_y).all()
    )
    exploratory = table[table.family == "exploratory"]
    assert (
        exploratory.holm_p.isna().all()
        and exploratory.bh_p.notna().all()
        and (exploratory.bh_p >= exploratory.overlap_p).all()
    )
    row = table.set_index(["pair_a", "pair_b"]).loc[("wav2vec_bilstm", "cnnbilstm_bilstm")]
    direct = primary_difference(finals["wav2vec_bilstm"], finals["cnnbilstm_bilstm"])
    assert (row.diff_weighted_f1, row.ci_low, row.ci_high, row.p) == pytest.approx(
        (direct.estimate, direct.ci_low, direct.ci_high, direct.p_value)
    )
    assert (row.overlap_ci_low, row.overlap_ci_high, row.overlap_p) == pytest.approx(
        (direct.overlap_ci_low, direct.overlap_ci_high, direct.overlap_p_value)
    )
    ua = primary_difference(finals["wav2vec_bilstm"], finals["cnnbilstm_bilstm"], metric="ua")
    assert (row.diff_ua, row.ua_p) == pytest.approx((ua.estimate, ua.p_value))
    assert row.ci_low_given_speakers < row.diff_weighted_f1 < row.ci_high_given_speakers


def test_the_factorial_table_has_the_cells_then_the_effects(finals, family):
    table = contrasts.factorial(finals, family)
    assert list(table.columns) == contrasts.FACTORIAL_COLUMNS
    assert (table.grid == GRID_NAME).all() and len(table) == 7
    cells, effects = table.iloc[:4], table.iloc[4:].set_index("term")
    assert cells.term.tolist()[0] == "cnnbilstm_bilstm (audio small, text small)"
    level = session_contrast([finals["cnnbilstm_bilstm"]], (1.0,))
    assert cells.iloc[0][["estimate", "ci_low", "ci_high"]].tolist() == pytest.approx(
        [level.estimate, level.ci_low, level.ci_high]
    )
    assert cells.p.isna().all() and cells.holm_p.isna().all()
    swaps = {
        x.term: np.array(contrasts.evaluate(finals, x).f1.per_session)
        for x in contrasts.grid_contrasts(contrasts.grids(list(finals))[0])
        if "swap" in x.term
    }
    main = (swaps["audio swap (text small)"] + swaps["audio swap (text large)"]) / 2
    assert effects.loc["audio size main effect", "estimate"] == pytest.approx(main.mean())
    interaction = swaps["audio swap (text large)"] - swaps["audio swap (text small)"]
    assert effects.loc["interaction", "estimate"] == pytest.approx(interaction.mean())
    # a large audio gain is "different"; the text swap that changes no prediction is "equivalent"
    assert effects.loc["audio size main effect", "verdict"] == "different"
    assert effects.loc["audio size main effect", "estimate"] > 0.1
    assert effects.loc["text size main effect", "verdict"] == "equivalent"
    assert (effects.holm_p >= effects.overlap_p).all() and (effects.overlap_p >= effects.p).all()
    assert (effects.family == "primary").all()


def test_the_equivalence_margin_is_settable(finals):
    wide = contrasts.evaluate_family(finals, margin=0.5)
    narrow = contrasts.evaluate_family(finals, margin=1e-4)
    assert sum(v == "equivalent" for v in wide.verdict.values()) > sum(
        v == "equivalent" for v in narrow.verdict.values()
    )
    assert wide.margin == 0.5 and contrasts.evaluate_family(finals).margin == 0.02


def test_subsets_split_improvised_and_scripted_dialogs(finals):
    table = contrasts.subsets({"bilstm": finals["bilstm"]})
    assert list(table.columns) == ["pair", "subset", "n_utterances", "weighted_f1", "ua", "ci_low", "ci_high"]
    rows = table.set_index("subset")
    frame = finals["bilstm"]
    scripted = frame[frame.dialog.str.contains("_script")]
    assert rows.loc["scripted", "n_utterances"] == scripted.drop_duplicates(["fold", "utterance_id"]).shape[0]
    assert (
        rows.loc["improvised", "n_utterances"] + rows.loc["scripted", "n_utterances"] == rows.loc["all", "n_utterances"]
    )
    level = session_contrast([scripted], (1.0,))
    assert rows.loc["scripted", ["weighted_f1", "ci_low", "ci_high"]].tolist() == pytest.approx(
        [level.estimate, level.ci_low, level.ci_high]
    )
    assert rows.loc["all", "ci_low"] < rows.loc["all", "weighted_f1"] < rows.loc["all", "ci_high"]


def test_one_test_session_is_labelled_conditional_on_these_speakers(finals):
    one = {p: f[f.fold == 5] for p, f in finals.items() if p in ("cnnbilstm_bilstm", "cnnbilstm")}
    table = contrasts.pairwise(one, contrasts.evaluate_family(one))
    assert (table.method == ONE_SESSION_BOOTSTRAP).all() and (table.n_sessions == 1).all()
    assert table.verdict.str.contains("conditional on the Session-5 speakers").all()  # never a bare LOSO word
