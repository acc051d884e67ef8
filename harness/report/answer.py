"""The Answer of report.md, written from the verdicts, and what the run could detect before any result.

* :func:`answer_lines`: one sentence per pre-specified contrast (the primary family, then the fusion
  family) from :func:`harness.report.contrasts.verdict_table`: its estimate, the interval its verdict uses
  (overlap-aware), its Holm p and its verdict word. The wording is chosen by the verdict and nothing else,
  so no sentence can claim what its verdict does not ("excludes 0" only beside ``different``, "within the
  margin" only beside ``equivalent``). Exploratory contrasts are left out, and a line says where they are.
* :func:`mdd_table`: per family, the minimum difference detectable with 80% power at the run's number of
  sessions and the family's first Holm level, from the run's own per-session spread (or a stated
  assumption), and the smallest equivalence margin the run could show; :func:`mdd_lines` says it in words.

Imports neither torch nor Ray.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as _scipy_stats

from harness.report.inference import overlap_factor
from harness.report.multiplicity import ALPHA, format_p

POWER = 0.8
"""Power the minimum detectable difference is computed at."""

ASSUMED_SD = 0.03
"""Per-session SD of a difference in weighted F1 assumed when the run has none of its own (no contrast yet)."""

ASSUMED_SESSIONS = 5
PRESPECIFIED = ("primary", "fusion")
MDD_COLUMNS = [
    "family",
    "contrasts",
    "n_sessions",
    "test_alpha",
    "sd_per_session",
    "sd_source",
    "mdd_weighted_f1",
    "smallest_equivalence_margin",
]


def _signed(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:+.3f}"


def _sentence(row: pd.Series) -> str:
    """One contrast in words; the clause after the figures depends on the verdict word only.

    The interval shown is the one the verdict uses at its Holm step (``step_ci_*``, confidence
    1 - alpha / (m - rank)): it excludes 0 whenever the verdict is ``different``.
    """
    name = row["term"] if row["family"] == "primary" else f"{row['pairs']} ({row['term']})"
    one_session = row["method"].startswith("dialog bootstrap")
    kind = "dialog-bootstrap" if one_session else "overlap-aware"
    confidence = 100 * (1 - float(row["step_level"]))
    figures = (
        f"{name}: {_signed(row['estimate'])} weighted F1, {kind} {confidence:.4g}% CI (its Holm step) "
        f"[{_signed(row['step_ci_low'])}, {_signed(row['step_ci_high'])}], "
        f"Holm p {format_p(row['holm_p'])} ({row['family']} family of {int(row['family_size'])})"
    )
    margin = float(row["margin"])
    word = str(row["verdict"]).split(",")[0]
    if word == "different":
        clause = f"the interval excludes 0 ({'higher' if row['estimate'] > 0 else 'lower'} with the change)"
    elif word == "equivalent":
        clause = f"the change lies within ±{margin:g} weighted F1 (Holm-adjusted TOST)"
    else:
        stopped = row["step_ci_low"] > 0 or row["step_ci_high"] < 0
        clause = (
            ("Holm stopped at a contrast with a smaller p; " if stopped else "")
            + f"neither a difference from 0 nor a change within ±{margin:g} is shown; "
            "this is not evidence of no difference"
        )
    return f"- {figures}: **{row['verdict']}**; {clause}."


def answer_lines(contrasts: pd.DataFrame) -> list[str]:
    """The Answer: one line per primary, then fusion contrast of ``contrasts``
    (:func:`harness.report.contrasts.verdict_table`); exploratory contrasts are not in it.

    Args:
        contrasts: The group's verdict table.

    Returns:
        Markdown lines (a lead line, a blank line, bullets, and a line on the exploratory rest).
    """
    if contrasts is None or contrasts.empty:
        return ["No two pairs with final-stage predictions to compare in this group yet."]
    lines = []
    for family in PRESPECIFIED:
        rows = contrasts[contrasts["family"] == family]
        if rows.empty:
            continue
        if family != "primary":
            lines += ["*fusion gains (second family):*", ""] + [_sentence(row) for _, row in rows.iterrows()] + [""]
            continue
        for grid, terms in rows.groupby("grid", sort=False):  # the grid the terms are of: --grid chooses it
            title = f"factorial terms (primary family), grid {grid}"
            lines += [f"*{title}:*", ""] + [_sentence(row) for _, row in terms.iterrows()] + [""]
    if not lines:
        lines = ["No pre-specified contrast (factorial grid or fused pair with its baseline) in this group.", ""]
    lines += _seed_lines(contrasts)
    explored = int((contrasts["family"] == "exploratory").sum())
    if explored:
        lines.append(
            f"{explored} other differences (single swaps, other pairs) are exploratory "
            "(Benjamini-Hochberg `bh_p`, [pairwise.md](pairwise.md)) and not part of this answer."
        )
    rule = (
        "**Answer** (verdicts from the overlap-aware interval, Holm within each pre-specified family; each "
        "interval at its Holm step's level; `different` / `equivalent` / `inconclusive` as in "
        "[factorial.md](factorial.md)):"
    )
    return [rule, "", *lines]


def _seed_lines(contrasts: pd.DataFrame) -> list[str]:
    """A line when the pairs' final stages hold different numbers of seeds (a seed failed or is missing):
    each pair is averaged over its own seeds, so every contrast is still there."""
    seeds: dict[str, int] = {}
    for text in contrasts.get("seeds_per_pair", pd.Series(dtype=str)).dropna():
        for part in str(text).split(" / "):
            pair, _, count = part.rpartition(": ")
            if pair and count.isdigit():
                seeds[pair] = int(count)
    if len(set(seeds.values())) <= 1:
        return []
    most = max(seeds.values())
    short = ", ".join(f"{p} {n} of {most}" for p, n in sorted(seeds.items()) if n < most)
    return [f"Seeds: {short} (each pair is averaged over its own seeds; every contrast is kept).", ""]


def minimum_detectable(se: float, df: int, alpha: float, power: float = POWER) -> float:
    """Smallest true difference a two-sided t test at ``alpha`` rejects with ``power``, for a standard
    error ``se`` on ``df`` degrees of freedom (noncentral t)."""
    if not (se > 0 and df >= 1):
        return float("nan")
    critical = _scipy_stats.t.ppf(1 - alpha / 2, df)

    def shortfall(delta: float) -> float:
        shift = delta / se
        reject = _scipy_stats.nct.sf(critical, df, shift) + _scipy_stats.nct.sf(critical, df, -shift)
        return float(reject - power)

    upper = se * (critical + 10)
    while shortfall(upper) < 0:  # few df: the estimated spread's heavy tail needs a far larger shift
        upper *= 2
        if upper > 1e4 * se * critical:
            return float("inf")
    return float(optimize.brentq(shortfall, 0.0, upper))


def equivalence_reach(se: float, df: int, alpha: float, power: float = POWER) -> float:
    """Smallest margin a TOST at ``alpha`` shows with ``power`` when the truth is exactly 0 (the usual
    approximation: margin = (t_{1-alpha} + t_{1-(1-power)/2}) * se)."""
    if not (se > 0 and df >= 1):
        return float("nan")
    return float((_scipy_stats.t.ppf(1 - alpha, df) + _scipy_stats.t.ppf(1 - (1 - power) / 2, df)) * se)


def mdd_table(contrasts: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Per pre-specified family: what the run can detect, before any result is read.

    The test level is the family's first Holm step (alpha / number of contrasts: the level the smallest p
    must reach); the standard error is the overlap-aware one, ``sd * sqrt(1/J + 1/3)``, with ``sd`` the
    median per-session SD of the family's contrasts in this run (``sd_source`` says "this run"), or
    :data:`ASSUMED_SD` when the run has none ("assumed"). With one test session no speaker-level figure
    exists (NaN).

    Args:
        contrasts: :func:`harness.report.contrasts.verdict_table` of the group (may be empty).
        alpha: Family-wise level.
    """
    rows = []
    for family in PRESPECIFIED:
        part = contrasts[contrasts["family"] == family] if not contrasts.empty else contrasts
        # no contrast at all yet: the default grid's primary family, on the stated assumption
        m = len(part) if not contrasts.empty else (3 if family == "primary" else 0)
        if m == 0:
            continue
        sessions = int(part["n_sessions"].max()) if not part.empty else ASSUMED_SESSIONS
        spread = part["sd_per_session"].dropna() if not part.empty else pd.Series(dtype=float)
        sd, source = (float(spread.median()), "this run") if len(spread) else (ASSUMED_SD, "assumed")
        level = alpha / m
        se = sd * math.sqrt(overlap_factor(sessions)) if sessions > 1 else float("nan")
        rows.append(
            {
                "family": family,
                "contrasts": m,
                "n_sessions": sessions,
                "test_alpha": level,
                "sd_per_session": sd,
                "sd_source": source,
                "mdd_weighted_f1": minimum_detectable(se, sessions - 1, level),
                "smallest_equivalence_margin": equivalence_reach(se, sessions - 1, level),
            }
        )
    return pd.DataFrame(rows, columns=MDD_COLUMNS)


def mdd_lines(mdd: pd.DataFrame, margin: float) -> list[str]:
    """The MDD table in words, for report.md before any result: what each family can detect and which
    equivalence margins the run can reach against the margin in use."""
    if mdd.empty:
        return []
    lines = ["**What this run can decide** (80% power, overlap-aware standard error, before any result):", ""]
    for _, row in mdd.iterrows():
        if not np.isfinite(row["mdd_weighted_f1"]):
            lines.append(
                f"- {row['family']}: one test session, no speaker-level detectable difference "
                "(its verdicts are conditional on these speakers)."
            )
            continue
        reach = row["smallest_equivalence_margin"]
        verdict = "can" if margin >= reach else "cannot"
        lines.append(
            f"- {row['family']} family ({int(row['contrasts'])} contrasts, {int(row['n_sessions'])} sessions, "
            f"first Holm level {row['test_alpha']:.3g}, per-session SD {row['sd_per_session']:.3f} "
            f"({row['sd_source']})): detects a difference of {row['mdd_weighted_f1']:.3f} weighted F1; "
            f"shows equivalence only for margins of ±{reach:.3f} or wider, so the margin in use "
            f"(±{margin:g}) {verdict} be reached."
        )
    return lines + [""]
