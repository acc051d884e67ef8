"""The contrasts a group's report answers, and the tables built on them: ``pairwise``, ``fusion_gain``,
``factorial`` and ``subsets``. Imports neither torch nor Ray.

**The primary family**, fixed by the design before any result is seen (:func:`primary_family`): for every
small/large grid the registry defines (audio encoders trained from scratch vs pretrained, text likewise,
with all four fused pairs in the group's final runs), each small-to-large swap (audio swapped with the text
encoder fixed, text swapped with the audio encoder fixed), the audio-size and text-size main effects and
their interaction; and each fused pair against its own unimodal baselines. Holm runs over that family
only, and a contrast has one ``holm_p`` wherever it appears. Every other pairwise row is exploratory, with a
Benjamini-Hochberg ``bh_p`` over those rows.

**Every difference is oriented by the question**: large minus small, fused minus unimodal; never
alphabetically (:func:`orient`).

Every estimate, interval and p value comes from :func:`harness.report.inference.aligned_contrast` (per-session
contrasts, t on n_sessions - 1 df; one test session: the dialog bootstrap, labelled conditional on these
speakers). The dialog bootstrap's interval is kept as a secondary column ``*_given_speakers``.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.corpus.dialogs import dialog_type
from harness.models.encoders.registry import get_encoder
from harness.models.pairs import PAIRS, unimodal_baseline
from harness.report.bootstrap import contrast_bootstrap
from harness.report.inference import ContrastResult, aligned_contrast
from harness.report.multiplicity import EQUIVALENCE_MARGIN, benjamini_hochberg, holm, verdict
from harness.report.predictions import align

log = logging.getLogger(__name__)

SUBSETS = ("all", "improvised", "scripted")


@dataclass(frozen=True)
class Contrast:
    """A weighted sum of pairs' metric: ``sum(weight * metric(pair))``.

    Attributes:
        term: What it measures, in words (``audio swap (text bilstm)``, ``interaction``, ...).
        terms: ``(pair, weight)`` per pair.
        grid: The grid it belongs to (``""`` for a fusion gain or an exploratory difference).
    """

    term: str
    terms: tuple[tuple[str, float], ...]
    grid: str = ""

    @property
    def key(self) -> tuple[tuple[str, float], ...]:
        """The same contrast whatever its name or where it appears."""
        return tuple(sorted(self.terms))

    @property
    def pairs(self) -> tuple[str, ...]:
        return tuple(pair for pair, _ in self.terms)


@dataclass(frozen=True)
class Grid:
    """A 2x2 small/large grid: cells[(audio_large, text_large)] is the fused pair of that cell."""

    name: str
    cells: dict[tuple[bool, bool], str]


def _large(encoder: str | None) -> bool:
    """Whether a registered encoder is pretrained (large) rather than trained from scratch (small)."""
    return encoder is not None and get_encoder(encoder).pretrained


def _size(pair: str) -> int:
    """Number of pretrained (large) encoders of a registered pair (0 for an unknown one)."""
    spec = PAIRS.get(pair)
    return sum(v.pretrained for v in spec.variants.values()) if spec else 0


def _fused(pair: str) -> bool:
    spec = PAIRS.get(pair)
    return bool(spec and spec.is_fused)


def grids(pairs: list[str]) -> list[Grid]:
    """Every small/large grid with all four fused pairs among ``pairs`` (registry order): audio encoders
    trained from scratch x pretrained, text likewise."""
    fused = {(PAIRS[p].audio, PAIRS[p].text): p for p in PAIRS if p in pairs and PAIRS[p].is_fused}
    audio = list(dict.fromkeys(a for a, _ in fused))
    text = list(dict.fromkeys(t for _, t in fused))
    out = []
    for a_small, a_large in ((s, x) for s in audio if not _large(s) for x in audio if _large(x)):
        for t_small, t_large in ((s, x) for s in text if not _large(s) for x in text if _large(x)):
            cells = {
                (al, tl): fused.get((a_large if al else a_small, t_large if tl else t_small))
                for al in (False, True)
                for tl in (False, True)
            }
            if all(cells.values()):
                name = f"audio {a_small}->{a_large} x text {t_small}->{t_large}"
                out.append(Grid(name, {k: v for k, v in cells.items() if v is not None}))
    return out


def grid_contrasts(grid: Grid) -> list[Contrast]:
    """The grid's four swaps, two main effects and interaction, each oriented large minus small."""
    c = grid.cells
    swaps = [
        Contrast(f"audio swap (text {'large' if tl else 'small'})", ((c[True, tl], 1.0), (c[False, tl], -1.0)))
        for tl in (False, True)
    ] + [
        Contrast(f"text swap (audio {'large' if al else 'small'})", ((c[al, True], 1.0), (c[al, False], -1.0)))
        for al in (False, True)
    ]
    effects = [
        Contrast(
            "audio size main effect",
            ((c[True, False], 0.5), (c[True, True], 0.5), (c[False, False], -0.5), (c[False, True], -0.5)),
        ),
        Contrast(
            "text size main effect",
            ((c[False, True], 0.5), (c[True, True], 0.5), (c[False, False], -0.5), (c[True, False], -0.5)),
        ),
        Contrast(
            "interaction",
            ((c[True, True], 1.0), (c[False, True], -1.0), (c[True, False], -1.0), (c[False, False], 1.0)),
        ),
    ]
    return [Contrast(x.term, x.terms, grid.name) for x in swaps + effects]


def fusion_contrasts(pairs: list[str]) -> list[tuple[Contrast, str]]:
    """Each fused pair among ``pairs`` minus each of its unimodal baselines present, with the baseline's
    modality."""
    out = []
    for name in sorted(pairs):
        spec = PAIRS.get(name)
        if spec is None or not spec.is_fused:
            continue
        for modality in spec.encoders:
            baseline = unimodal_baseline(spec, modality)
            if baseline is not None and baseline.name in pairs:
                out.append((Contrast(f"fusion gain over {modality}", ((name, 1.0), (baseline.name, -1.0))), modality))
    return out


def comparable(finals: dict[str, pd.DataFrame], pairs: tuple[str, ...]) -> bool:
    """Whether the pairs' final runs hold the same seeds (the statistics pair seeds by value, so runs of other
    seed sets would be compared on their shared seeds only, unlike their rows)."""
    seeds = {p: sorted(finals[p].seed.unique()) for p in pairs}
    if len({tuple(s) for s in seeds.values()}) > 1:
        log.warning("%s not compared: their final stages have other seeds (%s)", " vs ".join(pairs), seeds)
        return False
    return True


def primary_family(finals: dict[str, pd.DataFrame]) -> list[Contrast]:
    """The group's primary contrasts (see the module docstring), each once, from the pairs with a final run."""
    names = list(finals)
    candidates = [x for g in grids(names) for x in grid_contrasts(g)] + [x for x, _ in fusion_contrasts(names)]
    out, seen = [], set()
    for contrast in candidates:
        if contrast.key not in seen and comparable(finals, contrast.pairs):
            seen.add(contrast.key)
            out.append(contrast)
    return out


@dataclass(frozen=True)
class Evaluated:
    """A contrast with its weighted-F1 and UA results and the dialog bootstrap interval (given speakers)."""

    contrast: Contrast
    f1: ContrastResult
    ua: ContrastResult
    given_speakers: tuple[float, float]


def evaluate(finals: dict[str, pd.DataFrame], contrast: Contrast, n_boot: int = 1000) -> Evaluated:
    """Weighted F1 and UA of ``contrast`` at the speaker level, plus the dialog bootstrap's interval.

    The bootstrap's random stream is seeded from the contrast's pairs and weights, so a contrast gets the
    same figures in every table and whatever else the group holds.
    """
    data = align([finals[p] for p in contrast.pairs], contrast.pairs)
    weights = [w for _, w in contrast.terms]
    seed = zlib.crc32(repr(contrast.key).encode())
    f1 = aligned_contrast(data, weights, "weighted_f1", n_boot=n_boot, seed=seed)
    ua = aligned_contrast(data, weights, "ua", n_boot=n_boot, seed=seed)
    boot = contrast_bootstrap(data, weights, "weighted_f1", n_boot, seed)
    return Evaluated(contrast, f1, ua, (boot.ci_low, boot.ci_high))


@dataclass(frozen=True)
class Family:
    """The evaluated primary family with its Holm-adjusted p values and verdicts, by contrast key."""

    evaluated: dict[tuple, Evaluated]
    holm_p: dict[tuple, float]
    verdict: dict[tuple, str]
    margin: float


def evaluate_family(finals: dict[str, pd.DataFrame], margin: float | None = None) -> Family:
    """Evaluate the primary family; Holm over its p values and over its TOST p values (margin in weighted
    F1, default :data:`harness.report.multiplicity.EQUIVALENCE_MARGIN`)."""
    margin = EQUIVALENCE_MARGIN if margin is None else float(margin)
    evaluated = {x.key: evaluate(finals, x) for x in primary_family(finals)}
    keys = list(evaluated)
    adjusted = holm([evaluated[k].f1.p_value for k in keys])
    equivalence = holm([evaluated[k].f1.equivalence_p(margin) for k in keys])
    return Family(
        evaluated,
        dict(zip(keys, adjusted.tolist())),
        {k: verdict(h, e) for k, h, e in zip(keys, adjusted, equivalence)},
        margin,
    )


def _result_columns(e: Evaluated, diff: str) -> dict:
    return {
        diff: e.f1.estimate,
        "ci_low": e.f1.ci_low,
        "ci_high": e.f1.ci_high,
        "p": e.f1.p_value,
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
        "n_seeds": e.f1.n_seeds,
        "method": e.f1.method,
    }


def orient(x: str, y: str) -> tuple[str, str, str]:
    """``(a, b, rule)``: the order in which a difference a minus b answers the question.

    Fused minus unimodal when exactly one is fused; else large minus small (more pretrained encoders first);
    else the registry's order (the pair registered first is the reference b; unknown pairs after known
    ones, by name).
    """
    if _fused(x) != _fused(y):
        return (x, y, "fused - unimodal") if _fused(x) else (y, x, "fused - unimodal")
    if _size(x) != _size(y):
        return (x, y, "large - small") if _size(x) > _size(y) else (y, x, "large - small")
    order = list(PAIRS)

    def rank(p: str) -> tuple[int, str]:
        return (order.index(p) if p in order else len(order), p)

    return (y, x, "registry order") if rank(x) < rank(y) else (x, y, "registry order")


def pairwise(finals: dict[str, pd.DataFrame], family: Family) -> pd.DataFrame:
    """Every two pairs with the same seeds, oriented by :func:`orient`; ``family`` primary (the difference is
    in the primary family: its ``holm_p`` and verdict) or exploratory (``bh_p`` over the exploratory rows)."""
    names = list(finals)
    rows = []
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            if not comparable(finals, (x, y)):
                continue
            a, b, rule = orient(x, y)
            contrast = Contrast(f"{a} - {b}", ((a, 1.0), (b, -1.0)))
            primary = contrast.key in family.evaluated
            e = family.evaluated[contrast.key] if primary else evaluate(finals, contrast)
            rows.append(
                {
                    "pair_a": a,
                    "pair_b": b,
                    "orientation": rule,
                    "family": "primary" if primary else "exploratory",
                    **_result_columns(e, "diff_weighted_f1"),
                    "holm_p": family.holm_p[contrast.key] if primary else np.nan,
                    "bh_p": np.nan,
                    "verdict": family.verdict[contrast.key] if primary else "",
                    **_secondary_columns(e, "diff_ua"),
                }
            )
    table = pd.DataFrame(rows)
    if rows:
        exploratory = table["family"] == "exploratory"
        if exploratory.any():
            table.loc[exploratory, "bh_p"] = benjamini_hochberg(table.loc[exploratory, "p"].to_numpy())
        table = table.sort_values(["family", "pair_a", "pair_b"], key=_primary_first).reset_index(drop=True)
    return table


def _primary_first(column: pd.Series) -> pd.Series:
    return column.map({"primary": 0, "exploratory": 1}) if column.name == "family" else column


def fusion_gain(finals: dict[str, pd.DataFrame], family: Family) -> pd.DataFrame:
    """Each fused pair minus each of its unimodal baselines (all primary contrasts)."""
    rows = []
    for contrast, modality in fusion_contrasts(list(finals)):
        if contrast.key not in family.evaluated:
            continue  # other seed sets: not compared (logged)
        e = family.evaluated[contrast.key]
        rows.append(
            {
                "pair": contrast.pairs[0],
                "baseline": contrast.pairs[1],
                "baseline_modality": modality,
                **_result_columns(e, "gain_weighted_f1"),
                "holm_p": family.holm_p[contrast.key],
                "verdict": family.verdict[contrast.key],
                **_secondary_columns(e, "gain_ua"),
            }
        )
    return pd.DataFrame(rows)


def factorial(finals: dict[str, pd.DataFrame], family: Family) -> pd.DataFrame:
    """Per grid: its four cells (weighted F1 with a per-session t interval of the pair's level), then the
    audio-size and text-size main effects and the interaction (estimate, interval, p, Holm p, verdict)."""
    rows = []
    for grid in grids(list(finals)):
        effects = [x for x in grid_contrasts(grid) if "swap" not in x.term]
        if not all(x.key in family.evaluated for x in effects):
            continue  # other seed sets: not compared (logged)
        for (al, tl), pair in sorted(grid.cells.items()):
            level = aligned_contrast(align([finals[pair]], [pair]), (1.0,))
            size = f"audio {'large' if al else 'small'}, text {'large' if tl else 'small'}"
            rows.append(
                {
                    "grid": grid.name,
                    "term": f"{pair} ({size})",
                    "estimate": level.estimate,
                    "ci_low": level.ci_low,
                    "ci_high": level.ci_high,
                    "p": np.nan,
                    "holm_p": np.nan,
                    "verdict": "",
                }
            )
        for x in effects:
            e = family.evaluated[x.key]
            rows.append(
                {
                    "grid": grid.name,
                    "term": x.term,
                    "estimate": e.f1.estimate,
                    "ci_low": e.f1.ci_low,
                    "ci_high": e.f1.ci_high,
                    "p": e.f1.p_value,
                    "holm_p": family.holm_p[x.key],
                    "verdict": family.verdict[x.key],
                }
            )
    return pd.DataFrame(rows, columns=["grid", "term", "estimate", "ci_low", "ci_high", "p", "holm_p", "verdict"])


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
    "Intervals: 95% per-session t (n_sessions - 1 df) over the test sessions, p = the t test of the same "
    "difference; one test session: dialog bootstrap, conditional on these speakers (see `method`). "
    "`holm_p`: Holm over the primary family only; `bh_p`: Benjamini-Hochberg over the exploratory rows; "
    f"`verdict`: TOST with margin +/-{EQUIVALENCE_MARGIN} weighted F1. "
    "`*_given_speakers`: dialog bootstrap interval, conditional on these speakers."
)
"""What the comparison tables' statistics are, for their headers."""
