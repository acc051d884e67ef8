"""``python -m harness.report [--results DIR]``: comparison tables and plots from stored trial results.

Reads ``RESULTS/<pair>/<run>/trial_*.json`` (and ``search.json``); never reruns anything and imports
neither torch nor ray. Per pair and data source, the best trial is chosen by mean *validation* weighted
F1 over its folds (only trials that finished every fold of their run compete); its *test* scores are
reported. Every file is written atomically and the same results give identical tables.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from harness.atomic import write_atomic
from harness.corpus import EMOTIONS, EMOTION_NAMES
from harness.models.pairs import PAIRS, get_pair

log = logging.getLogger(__name__)
PROTOCOL = ("Speaker-independent leave-one-session-out: fold k tests on Session k; early stopping and model "
            "selection use one held-out speaker of the training sessions; configs are ranked by mean "
            "validation weighted F1, test sessions are scored only for this report. Six classes (neu, ang, "
            "hap, sad, fru, exc); utterances with other labels are excluded, not counted as errors.")


def load_trials(results: Path) -> pd.DataFrame:
    rows = []
    for path in sorted(results.glob("*/*/trial_*.json")):
        record = json.loads(path.read_text())
        search = path.parent / "search.json"
        rows.append(record | {"path": str(path), "search": json.loads(search.read_text()) if search.exists() else {}})
    return pd.DataFrame(rows)


def _mean_std(name: str, values: list[float]) -> dict[str, float]:
    """``name``: mean over folds and ``name_std``: their standard deviation (NaN for one fold or none).
    CSVs keep both as numbers; the Markdown tables show them as "mean ± std"."""
    mean = float(np.mean(values)) if values else float("nan")
    return {name: round(mean, 4), f"{name}_std": round(float(np.std(values)), 4) if len(values) > 1 else float("nan")}


def best_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per (pair, data source): the complete trial with the best mean validation weighted F1."""
    chosen = []
    for (pair, source), group in trials.groupby([trials.meta.map(lambda m: m["pair"]),
                                                 trials.meta.map(lambda m: m["data_source"])], sort=True):
        n_folds = group.meta.map(lambda m: len(m["test_sessions"]))
        complete = group[(group.folds.map(len) == n_folds) & (group.status == "finished")]
        if complete.empty:
            log.warning("%s (%s): no trial finished all its folds", pair, source)
            continue
        best = complete.sort_values(["mean_val_weighted_f1", "trial_id"], ascending=[False, True]).iloc[0]
        chosen.append(best.to_dict() | {"pair": pair, "data_source": source, "n_trials": len(group),
                                        "n_failed": int((group.status == "failed").sum())})
    return pd.DataFrame(chosen)


def _fold_values(folds: list[dict], *keys: str) -> list[float]:
    values = []
    for fold in folds:
        value = fold
        for key in keys:
            value = None if value is None else value.get(key)
        if value is not None:
            values.append(float(value))
    return values


def comparison_table(best: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for row in best.itertuples(index=False):
        folds = row.folds
        run_trials = trials[trials.path.map(lambda p: Path(p).parent) == Path(row.path).parent]
        train_s = sum(sum(_fold_values(t, "resources", "train_wall_s")) for t in run_trials.folds)
        gpus = row.search.get("gpus_per_trial", 0.0) or 0.0
        memory = _fold_values(folds, "resources", "peak_gpu_gb") or _fold_values(folds, "resources", "peak_rss_gb")
        energy = _fold_values(folds, "resources", "energy_j")
        rows.append({
            "pair": row.pair, "data_source": row.data_source, "trials": row.n_trials, "failed": row.n_failed,
            "best_trial": row.trial_id, "folds": len(folds),
            "val_weighted_f1": round(float(row.mean_val_weighted_f1), 4),
            **_mean_std("test_weighted_f1", _fold_values(folds, "test", "weighted_f1")),
            **_mean_std("test_macro_f1", _fold_values(folds, "test", "macro_f1")),
            **_mean_std("test_unweighted_acc", _fold_values(folds, "test", "unweighted_accuracy")),
            **_mean_std("test_weighted_acc", _fold_values(folds, "test", "weighted_accuracy")),
            "params_total_M": round(folds[0]["resources"]["params_total"] / 1e6, 3),
            "params_trainable_M": round(folds[0]["resources"]["params_trainable"] / 1e6, 3),
            "memory_kind": "peak VRAM" if _fold_values(folds, "resources", "peak_gpu_gb") else "peak RSS",
            "peak_memory_gb": round(max(memory), 3),
            "train_utt_per_s": round(float(np.mean(_fold_values(folds, "resources", "train_utterances_per_s"))), 1),
            "latency_ms": round(float(np.mean(_fold_values(folds, "resources", "latency_ms"))), 2),
            "search_wall_s": round(float(row.search.get("wall_s", float("nan"))), 1),
            "gpu_hours": round(train_s * gpus / 3600, 4),
            "energy_kj": round(sum(energy) / 1000, 2) if energy else float("nan"),
            **_mean_std("faithfulness", _fold_values(folds, "explanation", "faithfulness")),
            **_mean_std("audio_ablation_f1_drop", _fold_values(folds, "explanation", "ablation_f1_drop", "audio")),
            **_mean_std("text_ablation_f1_drop", _fold_values(folds, "explanation", "ablation_f1_drop", "text")),
            "device": row.device_name,
        })
    return pd.DataFrame(rows)


def per_emotion_table(best: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for row in best.itertuples(index=False):
        cells = {}
        for e in EMOTIONS:
            cells |= _mean_std(EMOTION_NAMES[e], _fold_values(row.folds, "test", "per_emotion_f1", e))
        rows.append({"pair": row.pair, "data_source": row.data_source} | cells)
    return pd.DataFrame(rows)


def per_fold_table(best: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame([{"pair": row.pair, "data_source": row.data_source, "test_session": f["fold"],
                          "test_weighted_f1": round(f["test"]["weighted_f1"], 4),
                          "val_weighted_f1": round(f["validation"]["weighted_f1"], 4)}
                         for row in best.itertuples(index=False) for f in row.folds])


PAIRED_STATS = ["folds", "per_fold_diff", "mean_diff", "ci95_low", "ci95_high", "paired_t_p"]


def _paired_difference(a: pd.Series, b: pd.Series, seed: int, n_boot: int) -> dict:
    """Per-fold differences a - b over the folds both have: mean, bootstrap 95% CI over folds, paired t-test."""
    from scipy.stats import ttest_rel

    both = pd.concat([a, b], axis=1).dropna()
    diff = (both.iloc[:, 0] - both.iloc[:, 1]).to_numpy()
    if len(diff) == 0:
        return {}
    boots = np.random.default_rng(seed).choice(diff, size=(n_boot, len(diff)), replace=True).mean(1)
    p = float(ttest_rel(both.iloc[:, 0], both.iloc[:, 1]).pvalue) if len(diff) > 1 and diff.std() > 0 else float("nan")
    return {"folds": len(diff), "per_fold_diff": " ".join(f"{d:+.3f}" for d in diff),
            "mean_diff": round(float(diff.mean()), 4), "ci95_low": round(float(np.percentile(boots, 2.5)), 4),
            "ci95_high": round(float(np.percentile(boots, 97.5)), 4), "paired_t_p": round(p, 4)}


def _fold_scores(per_fold: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Data source -> [test session x pair] table of test weighted F1."""
    return {source: group.pivot(index="test_session", columns="pair", values="test_weighted_f1")
            for source, group in per_fold.groupby("data_source")}


def paired_comparison(per_fold: pd.DataFrame, seed: int = 0, n_boot: int = 10_000) -> pd.DataFrame:
    """Per-fold test F1 differences between pairs on the same folds, with a bootstrap 95% CI over folds
    and a paired t-test (with five folds, read the CI: it is wide for a reason)."""
    rows = []
    for source, table in _fold_scores(per_fold).items():
        pairs = sorted(table.columns)
        for i, a in enumerate(pairs):
            for b in pairs[i + 1:]:
                stats = _paired_difference(table[a], table[b], seed, n_boot)
                if stats:
                    rows.append({"data_source": source, "pair_a": a, "pair_b": b} | stats)
    return pd.DataFrame(rows, columns=["data_source", "pair_a", "pair_b", *PAIRED_STATS])


def fusion_gain(per_fold: pd.DataFrame, seed: int = 0, n_boot: int = 10_000) -> pd.DataFrame:
    """What fusion adds: each fused pair against the unimodal baseline of each of its own encoders
    (found in the pair registry: the pair with only that encoder), on the folds both were run on."""
    unimodal = {tuple(p.encoders.items()): p.name for p in PAIRS.values() if not p.is_fused}
    rows = []
    for source, table in _fold_scores(per_fold).items():
        for fused in sorted(c for c in table.columns if get_pair(c).is_fused):
            for modality, encoder in get_pair(fused).encoders.items():
                baseline = unimodal.get(((modality, encoder),))
                if baseline not in table.columns:
                    continue
                stats = _paired_difference(table[fused], table[baseline], seed, n_boot)
                if stats:
                    rows.append({"data_source": source, "pair": fused, "baseline": baseline,
                                 "baseline_modality": modality} | stats)
    columns = ["data_source", "pair", "baseline", "baseline_modality", *PAIRED_STATS]
    return pd.DataFrame(rows, columns=columns).rename(columns={"mean_diff": "gain"})


def markdown_table(frame: pd.DataFrame) -> str:
    """The Markdown view of a table: ``x`` and ``x_std`` become one "mean ± std" column (3 decimals),
    other numbers are printed as stored, NaN as n/a; numeric columns are right-aligned."""
    shown, align = {}, []
    for column in frame.columns:
        if column.endswith("_std") and column[:-4] in frame.columns:
            continue
        values = frame[column]
        numeric = values.dtype.kind in "iuf"
        if f"{column}_std" in frame.columns:
            values = ["n/a" if pd.isna(m) else f"{m:.3f}" if pd.isna(s) else f"{m:.3f} ± {s:.3f}"
                      for m, s in zip(values, frame[f"{column}_std"])]
        elif numeric:
            values = ["n/a" if pd.isna(v) else f"{v:g}" for v in values]
        shown[column] = values
        align.append("right" if numeric else "left")
    return pd.DataFrame(shown).to_markdown(index=False, disable_numparse=True, colalign=align)


def _write_table(frame: pd.DataFrame, out: Path, stem: str, header: str,
                 empty: str = "No rows yet.") -> None:
    write_atomic(out / f"{stem}.csv", lambda p: frame.to_csv(p, index=False))
    markdown = markdown_table(frame) if not frame.empty else f"_{empty}_"
    write_atomic(out / f"{stem}.md", lambda p: p.write_text(header + "\n" + markdown + "\n"))


def _header(title: str, best: pd.DataFrame) -> str:
    sources = sorted(best.data_source.unique())
    demo = "demo" in sources
    checkpoints = sorted({f"{row.pair}: {row.config[f'{m}.model']}" for row in best.itertuples()
                          for m, encoder in get_pair(row.pair).encoders.items() if encoder in ("wav2vec2", "albert")})
    devices = sorted(best.device_name.unique())
    dates = sorted(best.written_at.dropna()) if "written_at" in best else []
    lines = [f"# {title}", ""]
    if demo:
        lines += ["> **DEMO CORPUS, NOT IEMOCAP.** Rows with data source `demo` come from the synthetic corpus "
                  "the harness generates; they test the pipeline and say nothing about emotion recognition.", ""]
    lines += [f"- Data source: {', '.join(sources)}",
              f"- Model checkpoints (as configured): {', '.join(checkpoints) or 'n/a'}",
              f"- Hardware: {', '.join(devices)}",
              f"- Protocol: {PROTOCOL}",
              f"- Results dated: {dates[-1] if dates else 'n/a'} (latest trial record)", ""]
    return "\n".join(lines)


def write_reports(results: str | Path) -> Path:
    """Write every table and plot under ``results``; returns the comparison.md path."""
    results = Path(results)
    trials = load_trials(results)
    if trials.empty:
        raise FileNotFoundError(f"{results}: no trial results (results/<pair>/<run>/trial_*.json) found")
    best = best_trials(trials)
    if best.empty:
        raise FileNotFoundError(f"{results}: no trial finished all its folds yet")
    comparison = comparison_table(best, trials)
    per_fold = per_fold_table(best)
    _write_table(comparison, results, "comparison", _header("Pair comparison", best))
    _write_table(per_emotion_table(best), results, "per_emotion", _header("Test F1 per emotion (mean ± std over folds)", best))
    _write_table(per_fold, results, "per_fold", _header("Per-fold test scores of each pair's best config", best))
    _write_table(paired_comparison(per_fold), results, "paired_comparison",
                 _header("Paired comparison of pairs (per-fold test weighted F1 differences)", best),
                 empty="No rows yet: needs two pairs run on the same folds.")
    _write_table(fusion_gain(per_fold), results, "fusion_gain",
                 _header("Gain from fusion: fused pair minus its unimodal baseline (per-fold test weighted F1)", best),
                 empty="No rows yet: needs a fused pair and one of its unimodal baselines (e.g. cnnbilstm_bilstm "
                       "and bilstm) run on the same folds.")
    from harness.report.plots import write_plots

    write_plots(results, best, comparison, trials)
    return results / "comparison.md"
