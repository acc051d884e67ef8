"""``protocol_gap``: how much a toolkit's protocol (a preset, ``harness.corpus.presets``) overstates a pair's
score against nested leave-one-session-out, on the same pairs, budget and final stage.

One row per (pair, preset): the weighted F1 of the preset's final stage minus nested LOSO's, matched on
the same utterances, with the speaker-level interval of ``harness.report.stats.primary_difference``: per
test session, the difference of the two runs' weighted F1 on that session's utterances, then a t interval
over the sessions (and the overlap-aware one beside it). Under ``speaker-dependent`` the test folds are
random parts, not sessions: each utterance is assigned to its session for the comparison (every
utterance is tested once under either protocol), so the unit stays the session.

The presets are never ranked with honest runs: this table is the only place they meet, as differences,
and its header says so. The runs are found in the storage by the benchmark's name (``..._NAME_final``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.atomic import write_atomic
from harness.books import RUN_BOOK, RunIdentity, read_book
from harness.corpus.presets import PRESETS, SOURCES, WARNINGS
from harness.report.stats import primary_difference
from harness.store import RunStore, Storage

HONEST = "loso"
HEADER = (
    "**PROTOCOL PRESETS ARE NEVER RANKED WITH HONEST RUNS.** Each row is a toolkit's protocol reproduced on the "
    "same pair, budget and final stage, minus nested leave-one-session-out (the honest protocol), in weighted F1 "
    "on the same utterances: the optimism of that protocol. Weighted F1 here is the mean over test sessions of "
    "each session's weighted F1 (seeds averaged), so `optimism` = `preset_weighted_f1` - `loso_weighted_f1`. "
    "Interval: per-session differences, t over the test sessions (`ci`), and the overlap-aware interval "
    "(`overlap_ci`, Nadeau-Bengio corrected t) beside it."
)
_SESSION = re.compile(r"^Ses0*(\d+)")


@dataclass(frozen=True)
class FinalRun:
    identity: RunIdentity
    store: RunStore


def final_runs(storage: Storage, name: str) -> list[FinalRun]:
    """The final stages of the benchmark named ``name`` in ``storage`` (runs ``PAIR_..._NAME_final``)."""
    found = []
    for store in storage.runs():
        if not store.name.endswith(f"_{name}_final"):
            continue
        identity = read_book(store, RUN_BOOK, RunIdentity)
        if identity is not None and identity.stage == "final":
            found.append(FinalRun(identity, store))
    return found


def by_session(predictions: pd.DataFrame) -> pd.DataFrame:
    """``fold`` set to each utterance's session (its ``session`` column, else the IEMOCAP dialog name's
    ``SesNN``), so that runs whose folds are not sessions compare session by session."""
    out = predictions.copy()
    if "session" in out:
        out["fold"] = out["session"].astype(int)
        return out
    sessions = out["dialog"].astype(str).str.extract(_SESSION)[0]
    if sessions.isna().any():
        raise ValueError("predictions without a session column and with dialogs not named SesNN...")
    out["fold"] = sessions.astype(int)
    return out


def _weighted_f1(predictions: pd.DataFrame) -> float:
    from sklearn.metrics import f1_score

    # the mean over sessions of each session's weighted F1 (seeds averaged): the scale ``optimism`` is the
    # difference of (a pooled F1 over sessions is another statistic, and can differ by several points)
    scores = [
        f1_score(group.label, group.pred, average="weighted", zero_division=0)
        for _, group in predictions.groupby(["seed", "fold"])
    ]
    return float(np.mean(scores))


def gap_table(storage: Storage, name: str, presets: tuple[str, ...] = PRESETS) -> pd.DataFrame:
    """One row per (pair, preset) whose final stage and nested LOSO's final stage both ran under ``name``
    with the same corpus, class set, labels and subset."""
    runs = final_runs(storage, name)
    rows = []
    for honest in (r for r in runs if r.identity.protocol == HONEST):
        key = _setting(honest.identity)
        b = honest.store.predictions()
        if b is None:
            continue
        for preset in presets:
            match = [r for r in runs if r.identity.protocol == preset and _setting(r.identity) == key]
            if not match:
                continue
            a = match[0].store.predictions()
            if a is None:
                continue
            rows.append(gap_row(honest.identity.pair, preset, a, b) | {"data_source": honest.identity.data_source})
    return pd.DataFrame(rows)


def gap_row(pair: str, preset: str, preset_predictions: pd.DataFrame, loso_predictions: pd.DataFrame) -> dict:
    """The preset's optimism over nested LOSO on their common utterances, session by session."""
    a, b = by_session(preset_predictions), by_session(loso_predictions)
    common = set(a.utterance_id) & set(b.utterance_id)
    a, b = a[a.utterance_id.isin(common)], b[b.utterance_id.isin(common)]
    result = primary_difference(a, b)
    return {
        "pair": pair,
        "preset": preset,
        "reproduces": SOURCES[preset],
        "loso_weighted_f1": round(_weighted_f1(b), 4),
        "preset_weighted_f1": round(_weighted_f1(a), 4),
        "optimism": round(result.estimate, 4),
        "ci_low": round(result.ci_low, 4),
        "ci_high": round(result.ci_high, 4),
        "overlap_ci_low": round(getattr(result, "overlap_ci_low", float("nan")), 4),
        "overlap_ci_high": round(getattr(result, "overlap_ci_high", float("nan")), 4),
        "n_sessions": result.n_sessions,
        "n_utterances": result.n_utterances,
        "statement": statement(preset, result.estimate, result.ci_low, result.ci_high),
        "warning": WARNINGS[preset],
    }


def _setting(identity: RunIdentity) -> tuple:
    return (identity.pair, identity.data_source, identity.classes, identity.labels, identity.subset)


def statement(preset: str, estimate: float, low: float, high: float) -> str:
    """ "random-val overstates weighted F1 by +0.031 [-0.004, 0.066]" (or understates, for a negative gap)."""
    verb = "overstates" if estimate >= 0 else "understates"
    return f"{preset} {verb} weighted F1 by {estimate:+.3f} [{low:+.3f}, {high:+.3f}]"


def write_protocol_gap(results: str | Path, storage: str | Path, name: str, presets: tuple[str, ...]) -> str:
    """``protocol_gap.csv`` and ``.md`` in ``results``; returns the markdown (the command prints it)."""
    table = gap_table(Storage(storage), name, presets)
    results = Path(results)
    write_atomic(results / "protocol_gap.csv", lambda p: table.to_csv(p, index=False))
    lines = ["# Protocol gap: the optimism of toolkit protocols", "", HEADER, ""]
    if table.empty:
        lines += ["_No pair has both a nested LOSO and a preset final stage under this benchmark name._"]
    else:
        demo = (table.data_source == "demo").any()
        if demo:
            lines += ["> **DEMO CORPUS, NOT IEMOCAP**: these gaps mean nothing about emotion recognition.", ""]
        shown = table.drop(columns=["warning", "data_source", "reproduces"])
        lines += [_markdown(shown), ""]
        lines += [f"- {p}: reproduces {SOURCES[p]}; {WARNINGS[p]}." for p in presets]
    text = "\n".join(lines) + "\n"
    write_atomic(results / "protocol_gap.md", lambda p: p.write_text(text))
    return text


def _markdown(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])
