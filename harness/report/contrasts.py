"""The contrasts a group's report answers, and the tables built on them: ``pairwise``, ``fusion_gain``,
``factorial``, ``subsets`` and :func:`verdict_table` (what the Answer of report.md is written from,
:mod:`harness.report.answer`). Imports neither torch nor Ray.

**Three families**, fixed by the design before any result is seen (the ``family`` column;
:mod:`harness.report.families` defines them):

* ``primary`` (:func:`primary_family`): for every small/large grid the registry defines (audio encoders
  trained from scratch vs pretrained, text likewise, with all four fused pairs in the group's final runs),
  the audio-size main effect, the text-size main effect and their interaction: 3 contrasts on the default
  grid, Holm over them. Five sessions can carry three (the first Holm step needs |t| > 3.96 on 4 df, not
  the 6.25 of a 15-contrast family; ``harness.report.answer.mdd_table`` prints what that can detect).
* ``fusion``: each fused pair against its own unimodal baselines, a second pre-specified family with its
  own Holm.
* ``exploratory``: everything else (the single swaps, every other pairwise difference), with a
  Benjamini-Hochberg ``bh_p`` over those rows.

A contrast has one adjusted p and one verdict wherever it appears. **The verdict rule** uses the
overlap-aware interval (Nadeau-Bengio corrected t, ``overlap_*``; :mod:`harness.report.inference`):
``equivalent`` when the family-adjusted TOST p of that interval's statistic is below alpha, else
``different`` when the family-adjusted p of "contrast = 0" is, else ``inconclusive``. With a single test
session (``session5``) the only interval is the dialog bootstrap's, conditional on the Session-5 speakers,
and the verdict column says so in every cell (:func:`qualified`).

**Every difference is oriented by the question**: large minus small, fused minus unimodal; never
alphabetically (:func:`orient`).

Every estimate, interval and p value comes from :func:`harness.report.inference.aligned_contrast` (per-session
contrasts, t on n_sessions - 1 df; one test session: the dialog bootstrap, labelled conditional on these
speakers). The dialog bootstrap's interval is kept as a secondary column ``*_given_speakers``.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats

from harness.corpus.dialogs import dialog_type
from harness.report.bootstrap import contrast_bootstrap
from harness.report.families import (
    FACTORIAL_TERMS,
    FAMILIES,
    Contrast,
    Grid,
    exploratory_contrasts,
    fusion_contrasts,
    fusion_family,
    grid_contrasts,
    grids,
    orient,
    primary_family,
)
from harness.report.inference import ContrastResult, align_models, aligned_contrast
from harness.report.multiplicity import ALPHA, EQUIVALENCE_MARGIN, benjamini_hochberg, holm, verdict
from harness.report.predictions import align

log = logging.getLogger(__name__)

SUBSETS = ("all", "improvised", "scripted")


@dataclass(frozen=True)
class Evaluated:
    """A contrast with its weighted-F1 and UA results and the dialog bootstrap interval (given speakers)."""

    contrast: Contrast
    f1: ContrastResult
    ua: ContrastResult
    given_speakers: tuple[float, float]


def evaluate(finals: dict[str, pd.DataFrame], contrast: Contrast, n_boot: int = 1000) -> Evaluated:
    """Weighted F1 and UA of ``contrast`` at the speaker level, plus the dialog bootstrap's interval.

    Each model is averaged over its own seeds (:func:`harness.report.inference.align_models`), so a missing
    seed of one pair changes that pair's mean and removes no contrast. The bootstrap's random stream is
    seeded from the contrast's pairs and weights, so a contrast gets the same figures in every table and
    whatever else the group holds.
    """
    data = align_models([finals[p] for p in contrast.pairs], contrast.pairs)
    weights = [w for _, w in contrast.terms]
    seed = zlib.crc32(repr(contrast.key).encode())
    f1 = aligned_contrast(data, weights, "weighted_f1", n_boot=n_boot, seed=seed)
    ua = aligned_contrast(data, weights, "ua", n_boot=n_boot, seed=seed)
    boot = contrast_bootstrap(data, weights, "weighted_f1", n_boot, seed)
    return Evaluated(contrast, f1, ua, (boot.ci_low, boot.ci_high))


def qualified(word: str, sessions: list) -> str:
    """The verdict cell: the word itself when the interval is speaker-level; with one test session the
    words are conditional on its speakers, and the cell says so (never the bare LOSO word)."""
    if len(sessions) != 1:
        return word
    return f"{word}, conditional on the Session-{sessions[0]} speakers (dialog bootstrap; no speaker-level claim)"


@dataclass(frozen=True)
class Family:
    """Every contrast of a group, evaluated, with its family, adjusted p values and verdict, by contrast key.

    Attributes:
        evaluated: The contrast's results.
        family: ``primary``, ``fusion`` or ``exploratory``.
        holm_p: Holm-adjusted overlap-aware p within its family (primary, fusion); NaN for exploratory.
        bh_p: Benjamini-Hochberg-adjusted overlap-aware p over the exploratory contrasts; NaN otherwise.
        tost_p: Unadjusted TOST p of ``|contrast| < margin`` (overlap-aware standard error).
        verdict: ``different`` / ``equivalent`` / ``inconclusive`` from the family-adjusted p values
            (see the module docstring), qualified with one test session.
        margin: The equivalence margin (weighted F1).
        sessions: The test sessions of the group.
        alpha: Level of the tests.
        step_alpha: Holm's level at the contrast's step (alpha / (m - rank), rank 0 for the smallest p);
            the interval at 1 - this level excludes 0 whenever Holm rejects; NaN for exploratory.
    """

    evaluated: dict[tuple, Evaluated]
    family: dict[tuple, str]
    holm_p: dict[tuple, float]
    bh_p: dict[tuple, float]
    tost_p: dict[tuple, float]
    verdict: dict[tuple, str]
    margin: float
    sessions: list = field(default_factory=list)
    alpha: float = ALPHA
    step_alpha: dict[tuple, float] = field(default_factory=dict)


def step_interval(e: Evaluated, level: float) -> tuple[float, float]:
    """The interval the verdict uses at Holm's step level: overlap-aware t at ``1 - level`` (one test
    session: the bootstrap's percentile interval at that level)."""
    if not np.isfinite(level):
        return float("nan"), float("nan")
    if e.f1.conditional_on_speakers:
        low, high = np.quantile(e.f1.replicates, [level / 2, 1 - level / 2])
        return float(low), float(high)
    half = float(_scipy_stats.t.ppf(1 - level / 2, e.f1.df)) * e.f1.overlap_se
    return e.f1.estimate - half, e.f1.estimate + half


def _overlap_p(e: Evaluated) -> float:
    """The p value the verdicts use: overlap-aware t; the bootstrap's with one test session."""
    return e.f1.p_value if e.f1.conditional_on_speakers else e.f1.overlap_p_value


def evaluate_family(finals: dict[str, pd.DataFrame], margin: float | None = None, alpha: float = ALPHA) -> Family:
    """Evaluate every contrast of the group; Holm within the primary and the fusion family, BH over the
    exploratory rest, over the overlap-aware p values and their TOST p values (margin in weighted F1,
    default :data:`harness.report.multiplicity.EQUIVALENCE_MARGIN`)."""
    margin = EQUIVALENCE_MARGIN if margin is None else float(margin)
    if not margin > 0:
        raise ValueError(f"equivalence margin must be positive, got {margin!r}")
    sessions = sorted({int(v) for f in finals.values() for v in pd.unique(f["fold"])})
    members: dict[str, list[Contrast]] = {"primary": primary_family(finals)}
    members["fusion"] = [x for x in fusion_family(finals) if x.key not in {y.key for y in members["primary"]}]
    members["exploratory"] = exploratory_contrasts(finals, {x.key for m in members.values() for x in m})
    evaluated, family, holm_p, bh_p, tost_p, verdicts, steps = {}, {}, {}, {}, {}, {}, {}
    for name in FAMILIES:
        keys = []
        for contrast in members[name]:
            try:
                evaluated[contrast.key] = evaluate(finals, contrast)
            except ValueError as err:  # no utterance in common: not comparable
                log.warning("%s not compared: %s", " vs ".join(contrast.pairs), err)
                continue
            keys.append(contrast.key)
            family[contrast.key] = name
        p = [_overlap_p(evaluated[k]) for k in keys]
        tost = [evaluated[k].f1.equivalence_p(margin, overlap=True) for k in keys]
        adjust = benjamini_hochberg if name == "exploratory" else holm
        adjusted, adjusted_tost = adjust(p), adjust(tost)
        rank = np.empty(len(p), dtype=int)
        rank[np.argsort(p, kind="stable")] = np.arange(len(p))
        for k, r in zip(keys, rank):
            steps[k] = float("nan") if name == "exploratory" else alpha / (len(keys) - r)
        for k, a, t, raw_t in zip(keys, adjusted, adjusted_tost, tost):
            holm_p[k] = float("nan") if name == "exploratory" else float(a)
            bh_p[k] = float(a) if name == "exploratory" else float("nan")
            tost_p[k] = float(raw_t)
            verdicts[k] = qualified(verdict(a, t, alpha), sessions)
    return Family(evaluated, family, holm_p, bh_p, tost_p, verdicts, margin, sessions, alpha, steps)


def _seeds_text(e: Evaluated) -> str:
    return " / ".join(f"{p}: {n}" for p, n in zip(e.contrast.pairs, e.f1.seeds_per_model))


def _result_columns(e: Evaluated, diff: str) -> dict:
    return {
        diff: e.f1.estimate,
        "ci_low": e.f1.ci_low,
        "ci_high": e.f1.ci_high,
        "p": e.f1.p_value,
        "overlap_ci_low": e.f1.overlap_ci_low,
        "overlap_ci_high": e.f1.overlap_ci_high,
        "overlap_p": e.f1.overlap_p_value,
    }


def _decision_columns(family: Family, key: tuple) -> dict:
    return {
        "holm_p": family.holm_p[key],
        "bh_p": family.bh_p[key],
        "tost_p": family.tost_p[key],
        "verdict": family.verdict[key],
    }


def _secondary_columns(e: Evaluated, diff_ua: str) -> dict:
    return {
        diff_ua: e.ua.estimate,
        "ua_ci_low": e.ua.ci_low,
        "ua_ci_high": e.ua.ci_high,
        "ua_p": e.ua.p_value,
        "ci_low_given_speakers": e.given_speakers[0],
        "ci_high_given_speakers": e.given_speakers[1],
        "n_sessions": e.f1.n_sessions,
        "n_dialogs": e.f1.n_dialogs,
        "n_utterances": e.f1.n_utterances,
        "seeds_per_pair": _seeds_text(e),
        "method": e.f1.method,
    }


def pairwise(finals: dict[str, pd.DataFrame], family: Family) -> pd.DataFrame:
    """Every two pairs, oriented by :func:`orient`; ``family`` says which family the difference belongs to
    (``fusion`` for a fused pair against its own baseline, else ``exploratory``: ``bh_p``)."""
    names = list(finals)
    rows = []
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            a, b, rule = orient(x, y)
            key = Contrast(f"{a} - {b}", ((a, 1.0), (b, -1.0))).key
            if key not in family.evaluated:
                continue  # not comparable (logged)
            e = family.evaluated[key]
            rows.append(
                {
                    "pair_a": a,
                    "pair_b": b,
                    "orientation": rule,
                    "family": family.family[key],
                    **_result_columns(e, "diff_weighted_f1"),
                    **_decision_columns(family, key),
                    **_secondary_columns(e, "diff_ua"),
                }
            )
    table = pd.DataFrame(rows)
    if rows:
        table = table.sort_values(["family", "pair_a", "pair_b"], key=_family_order).reset_index(drop=True)
    return table


def _family_order(column: pd.Series) -> pd.Series:
    return column.map({f: i for i, f in enumerate(FAMILIES)}) if column.name == "family" else column


def fusion_gain(finals: dict[str, pd.DataFrame], family: Family) -> pd.DataFrame:
    """Each fused pair minus each of its unimodal baselines (the ``fusion`` family, its own Holm)."""
    rows = []
    for contrast, modality in fusion_contrasts(list(finals)):
        if contrast.key not in family.evaluated:
            continue  # not comparable (logged)
        e = family.evaluated[contrast.key]
        rows.append(
            {
                "pair": contrast.pairs[0],
                "baseline": contrast.pairs[1],
                "baseline_modality": modality,
                "family": family.family[contrast.key],
                **_result_columns(e, "gain_weighted_f1"),
                **_decision_columns(family, contrast.key),
                **_secondary_columns(e, "gain_ua"),
            }
        )
    return pd.DataFrame(rows)


FACTORIAL_COLUMNS = [
    "grid",
    "term",
    "family",
    "estimate",
    "ci_low",
    "ci_high",
    "p",
    "overlap_ci_low",
    "overlap_ci_high",
    "overlap_p",
    "holm_p",
    "tost_p",
    "verdict",
]


def factorial(finals: dict[str, pd.DataFrame], family: Family) -> pd.DataFrame:
    """Per grid: its four cells (weighted F1 with a per-session t interval of the pair's level), then the
    audio-size and text-size main effects and the interaction (the primary family: estimate, per-session t
    interval and p, overlap-aware interval and p, Holm p, TOST p, verdict)."""
    rows = []
    for grid in grids(list(finals)):
        effects = [x for x in grid_contrasts(grid) if x.term in FACTORIAL_TERMS]
        if not all(x.key in family.evaluated for x in effects):
            continue  # not comparable (logged)
        for (al, tl), pair in sorted(grid.cells.items()):
            level = aligned_contrast(align([finals[pair]], [pair]), (1.0,))
            size = f"audio {'large' if al else 'small'}, text {'large' if tl else 'small'}"
            rows.append(
                {
                    "grid": grid.name,
                    "term": f"{pair} ({size})",
                    "family": "",
                    "estimate": level.estimate,
                    "ci_low": level.ci_low,
                    "ci_high": level.ci_high,
                    "verdict": "",
                }
            )
        for x in effects:
            e = family.evaluated[x.key]
            rows.append(
                {"grid": grid.name, "term": x.term, "family": family.family[x.key]}
                | _result_columns(e, "estimate")
                | _decision_columns(family, x.key)
            )
    return pd.DataFrame(rows, columns=FACTORIAL_COLUMNS)


def verdict_table(finals: dict[str, pd.DataFrame], family: Family | None = None) -> pd.DataFrame:
    """One row per evaluated contrast, families in order (primary, fusion, exploratory): what the Answer is
    written from (:func:`harness.report.answer.answer_lines`) and the MDD table is computed from.

    Columns: ``family``, ``grid``, ``term``, ``pairs`` (``a - b`` or the cells), ``estimate`` (weighted F1),
    ``ci_low``/``ci_high``/``p`` (per-session t, conditional on these training sets), ``overlap_ci_low``/
    ``overlap_ci_high``/``overlap_p`` (the interval the verdict uses), ``holm_p``, ``bh_p``, ``tost_p``,
    ``verdict``, ``margin``, ``alpha``, ``family_size``, ``n_sessions``, ``sd_per_session`` (SD of the
    per-session contrasts), ``seeds_per_pair``, ``method``, ``step_level`` (Holm's level at the contrast's
    step) and ``step_ci_low``/``step_ci_high`` (the overlap-aware interval at 1 - that level: it excludes 0
    whenever Holm rejects).
    """
    family = family or evaluate_family(finals)
    sizes = {f: sum(v == f for v in family.family.values()) for f in FAMILIES}
    rows = []
    for key, e in family.evaluated.items():
        x = e.contrast
        per_session = np.asarray(e.f1.per_session, dtype=float)
        rows.append(
            {
                "family": family.family[key],
                "grid": x.grid,
                "term": x.term,
                "pairs": x.term if x.grid else f"{x.pairs[0]} - {x.pairs[1]}",
            }
            | _result_columns(e, "estimate")
            | _decision_columns(family, key)
            | {
                "margin": family.margin,
                "alpha": family.alpha,
                "family_size": sizes[family.family[key]],
                "n_sessions": e.f1.n_sessions,
                "sd_per_session": float(per_session.std(ddof=1)) if per_session.size > 1 else float("nan"),
                "seeds_per_pair": _seeds_text(e),
                "method": e.f1.method,
                "step_level": family.step_alpha.get(key, float("nan")),
            }
            | dict(zip(("step_ci_low", "step_ci_high"), step_interval(e, family.step_alpha.get(key, float("nan")))))
        )
    table = pd.DataFrame(rows)
    if rows:
        table = table.sort_values("family", key=_family_order, kind="stable").reset_index(drop=True)
    return table


def subsets(finals: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per pair and subset (all, improvised, scripted dialogs): utterances, weighted F1 and UA (means over
    test sessions of the seed-averaged per-session values) and the per-session t interval of weighted F1."""
    rows = []
    for pair in sorted(finals):
        frame = finals[pair]
        kinds = frame["dialog"].map(dialog_type)
        for subset in SUBSETS:
            part = frame if subset == "all" else frame[kinds == subset]
            row = {"pair": pair, "subset": subset, "n_utterances": len(part.drop_duplicates(["fold", "utterance_id"]))}
            if part.empty:
                rows.append(row | dict.fromkeys(("weighted_f1", "ua", "ci_low", "ci_high"), np.nan))
                continue
            data = align([part], [pair])
            f1 = aligned_contrast(data, (1.0,), "weighted_f1")
            ua = aligned_contrast(data, (1.0,), "ua")
            rows.append(
                row | {"weighted_f1": f1.estimate, "ua": ua.estimate, "ci_low": f1.ci_low, "ci_high": f1.ci_high}
            )
    return pd.DataFrame(rows, columns=["pair", "subset", "n_utterances", "weighted_f1", "ua", "ci_low", "ci_high"])


STATISTICS_NOTE = (
    "Weighted F1 of a pair in a test session = the mean over that pair's own seeds (no pairing by seed value); "
    "a difference's estimate = the mean over the test sessions. `ci_*`, `p`: 95% per-session t "
    "(n_sessions - 1 df), conditional on these five training sets. `overlap_ci_*`, `overlap_p`: the "
    "overlap-aware interval (Nadeau-Bengio corrected t, variance x (1/J + 1/3): LOSO training sets overlap); "
    "**the verdicts use it**. `family`: primary (the factorial terms), fusion (fused minus its baselines) or "
    "exploratory. `holm_p`: Holm within the primary or the fusion family; `bh_p`: Benjamini-Hochberg over the "
    "exploratory rows; `tost_p`: TOST of |difference| < margin (unadjusted; the verdict uses it "
    "family-adjusted); `verdict`: equivalent / different / inconclusive (docs/statistics.md). One test "
    "session: dialog bootstrap, conditional on these speakers (see `method` and the verdict). "
    "`*_given_speakers`: dialog bootstrap interval, conditional on these speakers."
)
"""What the comparison tables' statistics are, for their headers."""


__all__ = [
    "FACTORIAL_TERMS",
    "FAMILIES",
    "Contrast",
    "Evaluated",
    "Family",
    "Grid",
    "evaluate",
    "evaluate_family",
    "exploratory_contrasts",
    "factorial",
    "fusion_contrasts",
    "fusion_family",
    "fusion_gain",
    "grid_contrasts",
    "grids",
    "orient",
    "pairwise",
    "primary_family",
    "qualified",
    "subsets",
    "verdict_table",
]
