"""Word error rate of ASR transcripts per pair and subset, and what the ASR text costs each pair.

WER is counted by ``harness.features.asr.word_errors`` (pooled over utterances, on normalised text) when a
run's data is loaded, so the benchmark stage and this report share one definition. A run's books keep the
error and word counts per test session (``RunMeta.wer``), so the WER of any set of sessions is exact.
``text_source_table`` sets each pair's ASR run beside its gold run (same corpus, protocol, class set,
subset and folds): the gold-vs-ASR factor of a benchmark, as per-session paired differences of test
weighted F1 with a t interval over sessions.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from harness.features.asr import wer_of


def wer_table(runs: Iterable[Any]) -> pd.DataFrame:
    """One row per ASR run (``run.meta.text_source == "asr"``): pair, stage, subset, protocol, ASR model,
    the test sessions' pooled WER and each session's."""
    rows = []
    for run in runs:
        meta = run.meta
        if getattr(meta, "text_source", "gold") != "asr":
            continue
        row: dict[str, Any] = {
            "pair": meta.pair,
            "stage": run.stage,
            "subset": meta.subset,
            "protocol": meta.protocol,
            "asr_model": meta.asr_model,
            "wer": round(wer_of(meta.wer, meta.test_sessions), 4),
        }
        row |= {f"wer_s{s}": round(wer_of(meta.wer, [s]), 4) for s in meta.test_sessions}
        rows.append(row)
    return pd.DataFrame(rows)


def _session_f1(run: Any) -> pd.Series:
    """Mean test weighted F1 per test session over a run's scored folds (seeds averaged)."""
    folds = _scored_folds(run)
    frame = pd.DataFrame([{"session": f.fold, "f1": f.tested.weighted_f1} for f in folds])
    return frame.groupby("session")["f1"].mean() if len(frame) else pd.Series(dtype=float)


def _scored_folds(run: Any) -> list[Any]:
    if run.stage == "final":
        return [f for r in run.records if r.complete for f in r.folds if f.test is not None]
    best = run.best()
    return [f for f in best.folds if f.test is not None] if best else []


def text_source_table(runs: Iterable[Any]) -> pd.DataFrame:
    """Gold vs ASR text per pair: per-session test weighted F1 of each, their mean difference (ASR - gold)
    with a t interval over sessions (n - 1 df; none with one session), and the ASR run's WER.

    Runs are matched on pair, corpus, protocol (and subset), class set, folds and stage; a final-stage run
    is preferred to a search run."""
    by_key: dict[tuple, dict[str, Any]] = {}
    for run in runs:
        meta = run.meta
        source = getattr(meta, "text_source", "gold")
        key = (meta.pair, meta.data_source, meta.protocol_group, meta.classes, tuple(meta.test_sessions), run.stage)
        by_key.setdefault(key, {})[source] = run
    rows = []
    for (pair, _, protocol, classes, _folds, stage), found in sorted(by_key.items(), key=lambda kv: str(kv[0])):
        if "gold" not in found or "asr" not in found:
            continue
        gold, asr = _session_f1(found["gold"]), _session_f1(found["asr"])
        common = sorted(set(gold.index) & set(asr.index))
        if not common:
            continue
        diff = np.array([asr[s] - gold[s] for s in common])
        mean = float(diff.mean())
        if len(diff) > 1:
            half = float(stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff)))
            low, high = mean - half, mean + half
        else:
            low = high = float("nan")
        meta = found["asr"].meta
        rows.append(
            {
                "pair": pair,
                "stage": stage,
                "protocol": protocol,
                "classes": classes,
                "sessions": len(common),
                "gold_f1": round(float(gold[common].mean()), 4),
                "asr_f1": round(float(asr[common].mean()), 4),
                "asr_minus_gold": round(mean, 4),
                "ci_low": round(low, 4),
                "ci_high": round(high, 4),
                "wer": round(wer_of(meta.wer, common), 4),
                "asr_model": meta.asr_model,
            }
        )
    return pd.DataFrame(rows)


WER_TITLE = "ASR transcripts: word error rate against the gold transcripts, per pair and subset (test sessions)"
TEXT_SOURCE_TITLE = (
    "Gold vs ASR text: test weighted F1 per pair with each, and the difference (ASR - gold) with a t interval "
    "over test sessions (none with one session)"
)


def write_asr_tables(runs: Iterable[Any], results: str | Path) -> list[Path]:
    """``wer.md``/``.csv`` and ``text_source.md``/``.csv`` under ``results`` when any run read ASR text."""
    runs = list(runs)
    written: list[Path] = []
    for name, title, frame in (
        ("wer", WER_TITLE, wer_table(runs)),
        ("text_source", TEXT_SOURCE_TITLE, text_source_table(runs)),
    ):
        if frame.empty:
            continue
        frame.to_csv(Path(results) / f"{name}.csv", index=False)
        body = frame.to_markdown(index=False, disable_numparse=True)
        (Path(results) / f"{name}.md").write_text(f"# {title}\n\n{body}\n", encoding="utf-8")
        written.append(Path(results) / f"{name}.md")
    return written
