"""harness.report.explainability: per-session intervals (by simulation) and the tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as st

from harness.report.explainability import explainability_table, paired_session_difference, session_interval


def _sessions(rng: np.random.Generator, truth: float, n_sessions: int = 5, per: int = 60) -> pd.DataFrame:
    """Per-utterance differences with a session random effect (sd 0.3) around ``truth``, noise sd 0.5."""
    effects = rng.normal(0, 0.3, n_sessions)
    rows = [(s, f"u{s}_{i}", truth + effects[s] + rng.normal(0, 0.5)) for s in range(n_sessions) for i in range(per)]
    return pd.DataFrame(rows, columns=["fold", "utterance_id", "value"])


def test_the_session_interval_covers_the_truth_where_an_utterance_interval_does_not():
    rng = np.random.default_rng(0)
    covered = naive = 0
    runs = 400
    for _ in range(runs):
        frame = _sessions(rng, 0.2)
        interval = session_interval(frame)
        covered += interval.ci_low <= 0.2 <= interval.ci_high
        low, high = st.t.interval(0.95, len(frame) - 1, frame.value.mean(), st.sem(frame.value))
        naive += low <= 0.2 <= high
    assert 0.92 <= covered / runs <= 0.98  # nominal 95%: sessions are the independent units
    assert naive / runs < 0.6  # utterances treated as independent: far too narrow


def test_paired_differences_use_shared_utterances_and_one_session_has_no_interval():
    rng = np.random.default_rng(1)
    a = _sessions(rng, 0.0)
    b = a.assign(value=a.value - 0.1).iloc[:-10]  # b lacks ten utterances
    interval = paired_session_difference(a, b)
    assert np.isclose(interval.estimate, 0.1) and interval.n_utterances == len(b)
    single = session_interval(a[a.fold == 0])
    assert single.n_sessions == 1 and np.isnan(single.ci_low)


def test_the_table_has_sanity_completeness_and_stability_rows():
    rows = []
    for seed in (0, 1):
        for fold in (1, 2, 3):
            for u in range(4):
                uid = f"Ses0{fold}_{u}"
                rows += [
                    ("p", seed, fold, uid, "audio", "end_to_end", 0, m, 0.1 * u)
                    for m in ("sanity_rank_corr", "completeness_error")
                ]
                rows += [
                    ("p", seed, fold, uid, "audio", "end_to_end", k, "attribution", float(k * (u + 1)))
                    for k in range(5)
                ]
    frame = pd.DataFrame(
        rows, columns=["pair", "seed", "fold", "utterance_id", "modality", "level", "k", "metric", "value"]
    )
    table = explainability_table(frame).set_index("metric")
    assert {"sanity_rank_corr", "completeness_error", "stability_rank_corr", "sanity_flagged"} <= set(table.index)
    assert table.loc["stability_rank_corr", "estimate"] == 1.0 and table.loc["sanity_rank_corr", "n_sessions"] == 3
