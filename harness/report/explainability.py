"""Explainability tables from the final stage's per-utterance explanation rows (``explanations.parquet``):
``explainability.csv/.md`` and ``explainability_pairwise.csv/.md``. Imports neither torch nor Ray.

Every figure rests on the fold's explanation set, the same utterances for every pair (drawn from the
fold's ids and a fixed seed), in the same units (100 ms waveform bins, transcript words). A row's ``level``
says what was explained: ``end_to_end`` (the model from its input units) or ``head_level`` (the head over a
frozen representation); rows of the two levels are never pooled or compared.

Inference is per session (the unit a speaker-independent claim generalises over): each utterance's value
is averaged over the pair's seeds, then over the utterances of its session (its LOSO fold); the estimate
is the mean of the session means, with a t interval on n_sessions - 1 degrees of freedom
(``session_interval``). Two pairs are compared on the utterances both explained: per-session means of the
per-utterance differences, the same t interval and the t test of that mean (``paired_session_difference``);
Holm's correction runs over the pairwise table. With one session there is no interval (NaN): say so
rather than treat utterances as independent.

``stability_rank_corr`` (per utterance: Spearman correlation of the unit attributions of every two seeds,
averaged) needs two seeds. ``sanity_flagged`` is the share of utterances whose ``sanity_rank_corr`` is above
0.5 (attributions barely changed when the trained head was randomised).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from harness.models.pairs import PAIRS, unimodal_baseline
from harness.records import Explanation

log = logging.getLogger(__name__)
PER_K = ("comprehensiveness_minus_random", "sufficiency_minus_random")
SUMMARY = (
    "aopc_comprehensiveness",
    "aopc_sufficiency",
    "whole_modality_drop",
    "completeness_error",
    "completeness_over_tolerance",
    "ig_steps",
    "sanity_rank_corr",
    "permutation_prob_drop",
    "permutation_correct_drop",
)
COMPARED = ("aopc_comprehensiveness", "aopc_sufficiency", "sanity_rank_corr", "permutation_prob_drop")
SANITY_MAX_RANK_CORR = 0.5  # as harness.train.explain.attribute (kept here: the report imports no torch)
SESSION = "fold"  # LOSO: the test session
END_TO_END, HEAD_LEVEL = "end_to_end", "head_level"  # as harness.train.explain.units


@dataclass(frozen=True)
class Interval:
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    n_utterances: int
    n_sessions: int


def session_interval(frame: pd.DataFrame, value: str = "value", confidence: float = 0.95) -> Interval:
    """Mean of per-session means of ``value`` with a t interval on n_sessions - 1 df (and the t test of
    mean 0); rows with NaN values are left out."""
    frame = frame[frame[value].notna()]
    means = frame.groupby(SESSION)[value].mean().to_numpy(dtype=float)
    n = len(means)
    if n == 0:
        return Interval(*(float("nan"),) * 4, 0, 0)
    estimate = float(means.mean())
    if n < 2:
        return Interval(estimate, float("nan"), float("nan"), float("nan"), len(frame), n)
    se = float(means.std(ddof=1)) / np.sqrt(n)
    half = float(st.t.ppf(0.5 + confidence / 2, n - 1)) * se
    p = float(2 * st.t.sf(abs(estimate) / se, n - 1)) if se > 0 else float("nan")
    return Interval(estimate, estimate - half, estimate + half, p, len(frame), n)


def paired_session_difference(a: pd.DataFrame, b: pd.DataFrame, value: str = "value") -> Interval:
    """``a`` minus ``b`` on the utterances both hold (columns utterance_id, fold and ``value``, one row per
    utterance): per-session mean differences, t interval and t test on n_sessions - 1 df."""
    both = a.merge(b, on=["utterance_id", SESSION], suffixes=("_a", "_b"))
    both["difference"] = both[f"{value}_a"] - both[f"{value}_b"]
    return session_interval(both, "difference")


def _per_utterance(frame: pd.DataFrame) -> pd.DataFrame:
    """One value per (pair, level, modality, metric, fold, utterance): the mean over seeds."""
    keys = ["pair", "level", "modality", "metric", SESSION, "utterance_id"]
    return frame.groupby(keys, as_index=False, dropna=False)["value"].mean()


def _named(frame: pd.DataFrame) -> pd.DataFrame:
    """Summary metrics; per-k metrics named ``metric@k``; sanity_flagged derived."""
    summary = frame[frame.metric.isin(SUMMARY)]
    per_k = frame[frame.metric.isin(PER_K)].assign(metric=lambda f: f.metric + "@" + f.k.astype(str))
    flags = frame[frame.metric == "sanity_rank_corr"].assign(
        metric="sanity_flagged",
        value=lambda f: np.where(f.value.isna(), np.nan, (f.value > SANITY_MAX_RANK_CORR) * 1.0),
    )
    return pd.concat([summary, per_k, flags], ignore_index=True)


def stability(frame: pd.DataFrame) -> pd.DataFrame:
    """``stability_rank_corr`` rows: per utterance, the mean Spearman correlation of unit attributions over
    every two seeds of the pair (utterances with one seed or fewer than two units have none)."""
    rows = []
    attributions = frame[frame.metric == "attribution"]
    for (pair, level, modality, fold, utterance), group in attributions.groupby(
        ["pair", "level", "modality", SESSION, "utterance_id"]
    ):
        table = group.pivot_table(index="k", columns="seed", values="value")
        if table.shape[1] < 2 or table.shape[0] < 2:
            continue
        corrs = [st.spearmanr(table[s], table[t]).statistic for s, t in itertools.combinations(table.columns, 2)]
        corrs = [c for c in corrs if np.isfinite(c)]
        if corrs:
            rows.append((pair, -1, fold, utterance, modality, level, 0, "stability_rank_corr", float(np.mean(corrs))))
    columns = ["pair", "seed", SESSION, "utterance_id", "modality", "level", "k", "metric", "value"]
    return pd.DataFrame(rows, columns=columns)


def explainability_table(frame: pd.DataFrame) -> pd.DataFrame:
    """pair, modality, level, metric, estimate, ci_low, ci_high, n_utterances, n_sessions, seeds."""
    seeds = frame.groupby("pair").seed.nunique()
    values = _per_utterance(pd.concat([_named(frame), stability(frame)], ignore_index=True))
    rows = []
    for (pair, modality, level, metric), group in values.groupby(["pair", "modality", "level", "metric"]):
        interval = session_interval(group)
        rows.append(
            {"pair": pair, "modality": modality, "metric": metric, "level": level}
            | {k: round(v, 4) if isinstance(v, float) else v for k, v in interval.__dict__.items() if k != "p_value"}
            | {"seeds": int(seeds.get(pair, 0))}
        )
    columns = ["pair", "modality", "metric", "estimate", "ci_low", "ci_high", "n_utterances", "level", "n_sessions"]
    return pd.DataFrame(rows, columns=[*columns, "seeds"])


def contrasts(pairs: list[str]) -> list[tuple[str, str, str, str]]:
    """(a, b, modality, kind) compared: each fused pair vs its unimodal baseline on that modality, and
    pairs that differ only by swapping one modality's small encoder for a large one (a = large)."""
    out = []
    specs = {p: PAIRS[p] for p in pairs if p in PAIRS}
    for name, pair in specs.items():
        if pair.is_fused:
            for modality in pair.encoders:
                baseline = unimodal_baseline(pair, modality)
                if baseline is not None and baseline.name in specs:
                    out.append((name, baseline.name, modality, "fused_vs_unimodal"))
    for (a, pa), (b, pb) in itertools.permutations(specs.items(), 2):
        if set(pa.encoders) != set(pb.encoders):
            continue
        swapped = [m for m in pa.encoders if pa.encoders[m] != pb.encoders[m]]
        if len(swapped) == 1 and pa.variants[swapped[0]].pretrained and not pb.variants[swapped[0]].pretrained:
            out.append((a, b, swapped[0], "large_vs_small"))
    return out


def pairwise_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Paired per-session differences (a minus b) for ``contrasts``, same level only, Holm over the table."""
    values = _per_utterance(frame[frame.metric.isin(COMPARED)])
    rows = []
    for a, b, modality, kind in contrasts(sorted(values.pair.unique())):
        for metric in COMPARED:
            sa = values[(values.pair == a) & (values.modality == modality) & (values.metric == metric)]
            sb = values[(values.pair == b) & (values.modality == modality) & (values.metric == metric)]
            if sa.empty or sb.empty:
                continue
            if set(sa.level) != set(sb.level):
                log.info("%s vs %s (%s, %s) not compared: levels differ", a, b, modality, metric)
                continue
            interval = paired_session_difference(sa, sb)
            rows.append(
                {"pair_a": a, "pair_b": b, "contrast": kind, "modality": modality, "metric": metric}
                | {"level": sa.level.iloc[0]}
                | {k: round(v, 4) if isinstance(v, float) else v for k, v in interval.__dict__.items()}
            )
    table = pd.DataFrame(rows)
    if not table.empty:
        tested = table.p_value.notna()
        table["holm_p"] = np.nan
        if tested.any():
            table.loc[tested, "holm_p"] = multipletests(table.p_value[tested], method="holm")[1].round(4)
    return table


def _fold_faithfulness(explanation: Explanation, level: str) -> float:
    """A fold's faithfulness over its branches explained at ``level``: the mean over those branches of
    comprehensiveness minus its random control. Both are means over the same (utterance, k) cells (a
    normaliser under the floor makes both NaN), so each branch's difference is its mean
    ``aopc_comprehensiveness`` and, with one level, the mean is the record's ``faithfulness``."""
    values = [
        explanation.comprehensiveness[m] - explanation.random_comprehensiveness.get(m, float("nan"))
        for m, at in explanation.level.items()
        if at == level and m in explanation.comprehensiveness
    ]
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def _level_label(explanations: list[Explanation]) -> str:
    """``end_to_end`` or ``head_level`` when every branch was explained at that level, else each branch's
    (``audio:end_to_end text:head_level``); ``unlabelled`` for records from before levels were stored."""
    levels = {(m, at) for e in explanations for m, at in e.level.items()}
    if not explanations:
        return ""
    if not levels:
        return "unlabelled"
    if len({at for _, at in levels}) == 1:
        return next(iter(levels))[1]
    return " ".join(f"{m}:{at}" for m, at in sorted(levels))


def comparison_columns(explanations: list[Explanation]) -> dict[str, float | str]:
    """The explainability columns of a comparison row, one faithfulness column per level so that no
    column mixes figures of the two levels: ``faithfulness`` (mean over folds) from end-to-end branches
    only, ``faithfulness_head_level`` from head-level ones, each with its ``_std`` over folds, and
    ``explain_level``. Older records without levels (and folds that explained nothing) give neither."""
    explained = [e for e in explanations if e.n_samples]
    columns: dict[str, float | str] = {"explain_level": _level_label(explanations)}
    for level, name in ((END_TO_END, "faithfulness"), (HEAD_LEVEL, "faithfulness_head_level")):
        values = [v for v in (_fold_faithfulness(e, level) for e in explained) if np.isfinite(v)]
        mean = round(float(np.mean(values)), 4) if values else float("nan")
        std = round(float(np.std(values, ddof=1)), 4) if len(values) > 1 else float("nan")
        columns |= {name: mean, f"{name}_std": std}
    return columns


EMPTY = "No rows: needs a final-stage run with explanations (python -m harness.benchmark)."


def explainability_tables(storage: str | Path, grouped: list, group_columns: Any) -> tuple[list, list]:
    """Per group of ``harness.report.tables``, the ``explainability`` and ``explainability_pairwise`` tables
    of its final runs (``group_columns``: the group's key columns); the tables module writes them."""
    from harness.store import Storage

    root = Storage(storage)
    summary: list = []
    pairwise: list = []
    for group in grouped:
        parts = []
        for run in group.rows:
            if run.stage != "final":
                continue
            store = root.run(run.location.rstrip("/").rsplit("/", 1)[-1])
            frame = store.explanations()
            if frame is not None:
                parts.append(frame)
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        columns = pd.DataFrame([group_columns(group.key)])
        tables = (explainability_table(frame), pairwise_table(frame)) if not frame.empty else (pd.DataFrame(),) * 2
        for out, table in zip((summary, pairwise), tables):
            out.append((group, columns.merge(table, how="cross") if not table.empty else table))
    return summary, pairwise
