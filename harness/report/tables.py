"""Comparison tables from stored runs: ``write_reports(results, storage)``. Never reruns anything; imports
neither torch nor Ray.

Runs are read from the storage the trials wrote to (``--storage``, default ``RESULTS/ray``; a local path or
a URI, see ``harness.store``): trial records, ``search.json``, and for the final stage per-utterance
predictions. Tables and plots are written under ``RESULTS``.

Runs are grouped by (data source, protocol, class set, fold set): a table never
ranks runs of different groups together, and a pair's best config is chosen within one run. Smoke tests
(tiny random-init checkpoints, one epoch) never enter these tables; they are listed in ``smoke_runs.*``.

Where a pair has a final-stage run (``python -m harness.benchmark``), its rows come from it: the best
search config re-trained with several seeds on every fold, scored on per-utterance predictions.
Otherwise the row is the search's best config (one seed) and says so in ``stage``.

Aggregation (stated in every header): ``*_mean`` and ``*_std`` are over the seed x fold runs (sample
standard deviation, ddof=1); ``pooled_*`` are computed on all test predictions of a seed pooled over
folds, then averaged over seeds; ``ci_*`` over folds are t intervals with n-1 degrees of freedom.
Differences (``pairwise``, ``fusion_gain``, ``factorial``) and ``subsets`` are speaker-level: per-session
contrasts with a t interval and the t test of the same statistic, Holm over the pre-specified primary
family, Benjamini-Hochberg for the exploratory rest (``harness.report.contrasts``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from harness.atomic import write_atomic
from harness.corpus.iemocap import EMOTION_NAMES, EMOTIONS
from harness.corpus.protocols import OPTIMISTIC, describe_protocol
from harness.records import RunMeta, TrialRecord
from harness.report import contrasts, costs, explainability, stats
from harness.report.multiplicity import format_p
from harness.report.pareto import pareto_plot, pareto_table
from harness.report.runs import Group, Run, groups, load, test_folds
from harness.report.runs import load_runs as load_runs  # re-exported: the loader lives in harness.report.runs
from harness.report.selection import selected_configs_table
from harness.report.wer import write_asr_tables

log = logging.getLogger(__name__)
PROTOCOLS = {
    "loso": "Nested speaker-independent leave-one-session-out: fold k tests on Session k; its config is chosen "
    "(sampled, pruned, ranked) on inner folds of the other four sessions only, each validated on in turn; the chosen "
    "config is re-trained on three of them, early-stopped on the next session, and tested once on Session k. No "
    "label of Session k chooses, trains, stops or prunes anything of fold k (selected_configs).",
    "loso-flat": f"**{OPTIMISTIC['loso-flat'].upper()}.** Fold k tests on Session k, validates on the next session "
    "and trains on the other three; one config for every fold, ranked by mean validation weighted F1 over the five "
    "folds, whose validation sessions are the other folds' test sessions. Not comparable with nested runs.",
    "session5": "Train on Sessions 1-4, validate on held-out dialogues of the training sessions, test on Session 5 "
    "(the ERC benchmark split).",
}
PER_EMOTION_TITLE = (
    "Test F1 per emotion and weighted F1: per-session mean (each test session's F1 averaged over the pair's "
    "seeds, then the mean over the sessions, as in report.md's headline; ± SD over the sessions)"
)
AGGREGATION = (
    "mean/std over seed x fold runs (sample std, ddof=1); pooled_* on each seed's predictions pooled "
    "over folds, averaged over seeds; ci over folds: t interval, n-1 df"
)


def _stat(name: str, values: list[float]) -> dict[str, float]:
    """``name``: the mean and ``name_std``: the sample standard deviation (NaN for fewer than two values),
    over the values that are not NaN (a fold without an emotion has no F1 for it)."""
    values = [v for v in values if not np.isnan(v)]
    mean = float(np.mean(values)) if values else float("nan")
    std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return {name: round(mean, 4), f"{name}_std": round(std, 4) if not np.isnan(std) else std}


_folds = test_folds  # the fold records a row rests on (harness.report.runs)


def _checkpoints(meta: RunMeta) -> str:
    names = [f"{m}: {c}" for m, c in sorted(meta.checkpoints.items())]
    text = ", ".join(names) or "none (trained from scratch)"
    return text + (" [RANDOM-INIT STAND-IN: scores mean nothing]" if meta.stand_in else "")


def _val_weighted_f1(run: Run) -> float:
    """A search row: its best trial's mean validation F1 (what chose it). A final row: the mean over its
    complete trials (every seed), as its test columns are, not the luckiest seed's."""
    if run.stage == "final":
        values = [r.mean_val_weighted_f1 for r in run.records if r.complete and r.mean_val_weighted_f1 is not None]
        return round(float(np.mean(values)), 4) if values else float("nan")
    value = best.mean_val_weighted_f1 if (best := run.best()) else None
    return round(float(value), 4) if value is not None else float("nan")


def _search_counts(search: Run | None) -> dict[str, float]:
    """How the search that chose a row's config went; NaN for a final row whose search run is gone (its
    figures are not the final stage's to give)."""
    if search is None:
        return dict.fromkeys(("search_trials", "search_failed", "search_stopped_early"), float("nan"))
    return {
        "search_trials": len(search.records),
        "search_failed": sum(r.status == "failed" for r in search.records),
        "search_stopped_early": sum(r.status == "stopped_early" for r in search.records),
    }


def _search_wall(search: Run | None) -> float:
    return float("nan") if search is None else round(float(search.summary.get("wall_s", float("nan"))), 1)


def _cost_runs(run: Run, search: Run | None) -> list[tuple[list[TrialRecord], dict]]:
    """The runs whose compute a row is charged: its own and, for a final row, the search that chose it."""
    runs = [(run.records, run.summary)]
    if search is not None and search is not run:
        runs.append((search.records, search.summary))
    return runs


def comparison_row(run: Run, search: Run | None) -> dict:
    folds = _folds(run)
    best = run.best()
    searched = search or (run if run.stage == "search" else None)
    resources = [f.resources for f in folds]
    explanations = [f.explanation for f in folds if f.explanation is not None]
    fold_f1 = (
        pd.DataFrame([(f.fold, f.tested.weighted_f1) for f in folds], columns=["fold", "f1"]).groupby("fold").f1.mean()
    )
    interval = stats.t_interval(fold_f1.to_numpy())
    row = {
        "pair": run.meta.pair,
        "stage": run.stage,
        "run": run.meta.run,
        "checkpoints": _checkpoints(run.meta),
        "seeds": len({r.config.get("seed") for r in run.records if r.complete}) if run.stage == "final" else 1,
        **_search_counts(searched),
        "val_weighted_f1": _val_weighted_f1(run),
        **_stat("test_weighted_f1", [f.tested.weighted_f1 for f in folds]),
        "folds_n": len(fold_f1),
        "test_weighted_f1_ci_low": round(interval.low, 4),
        "test_weighted_f1_ci_high": round(interval.high, 4),
        **_stat("test_macro_f1", [f.tested.macro_f1 for f in folds]),
        **_stat("test_unweighted_acc", [f.tested.unweighted_accuracy for f in folds]),
        **_stat("test_weighted_acc", [f.tested.weighted_accuracy for f in folds]),
    }
    if run.predictions is not None:
        pooled = stats.summarize(run.predictions).iloc[0]
        row |= {f"pooled_{k}": round(float(pooled[f"pooled_{k}"]), 4) for k in ("weighted_f1", "macro_f1", "ua", "wa")}
    peak_gpu = [r.peak_gpu_gb for r in resources if r.peak_gpu_gb is not None]
    row |= {
        # every test session's selected config: mean, min and max over sessions, the head's share
        **costs.selected_costs(folds),
        "peak_vram_gb": round(max(peak_gpu), 3) if peak_gpu else float("nan"),
        "rss_above_idle_gb": round(max((r.rss_above_idle_gb for r in resources), default=float("nan")), 3),
        "peak_rss_gb": round(max((r.peak_rss_gb for r in resources), default=float("nan")), 3),
        "train_utt_per_s": round(float(np.mean([r.train_utterances_per_s for r in resources])), 1)
        if resources
        else float("nan"),
        "search_wall_s": _search_wall(searched),
        **costs.cost_columns(resources, _cost_runs(run, searched), complete=searched is not None),
        # one faithfulness column per explanation level (end to end, head level), never mixed
        **explainability.comparison_columns(explanations),
        **_stat(
            "audio_ablation_f1_drop",
            [e.ablation_f1_drop["audio"] for e in explanations if "audio" in e.ablation_f1_drop],
        ),
        **_stat(
            "text_ablation_f1_drop", [e.ablation_f1_drop["text"] for e in explanations if "text" in e.ablation_f1_drop]
        ),
        "explain_share": round(
            sum(f.seconds.get("explain", 0.0) for f in folds) / max(sum(sum(f.seconds.values()) for f in folds), 1e-9),
            3,
        )
        if explanations
        else float("nan"),
        "explained_per_fold": round(float(np.mean([e.n_samples for e in explanations])), 1)
        if explanations
        else float("nan"),
        "explain_peak_gb": max((e.peak_rss_gb or 0.0 for e in explanations), default=float("nan")),
        "device": best.device_name if best else "",
    }
    return row


def per_emotion_row(run: Run) -> dict:
    cells: dict[str, float] = {}
    if run.predictions is not None:  # the headline's estimator (issue 27): per-session mean of seed means
        means = stats.per_session_means(run.predictions)
        for e in EMOTIONS:
            cells[EMOTION_NAMES[e]] = round(means[f"f1_{e}"], 4)
            cells[f"{EMOTION_NAMES[e]}_std"] = round(means[f"f1_{e}_sd"], 4)  # over test sessions
        cells["weighted_f1"] = round(means["weighted_f1"], 4)
    else:
        folds = _folds(run)
        for e in EMOTIONS:
            cells |= _stat(EMOTION_NAMES[e], [f.tested.per_emotion_f1.get(e, float("nan")) for f in folds])
        cells |= _stat("weighted_f1", [f.tested.weighted_f1 for f in folds])
    return {"pair": run.meta.pair, "stage": run.stage} | cells


def _group_columns(key: tuple) -> dict:
    source, protocol, classes, folds = key
    return {"data_source": source, "protocol": protocol, "classes": classes, "folds": " ".join(str(f) for f in folds)}


def _finals(group: Group) -> dict[str, pd.DataFrame]:
    """The final-stage predictions of the group's pairs, by pair; with ``--top-k > 1`` each further rank is
    its own entry ``<pair> (rank r)`` (its own row, never extra seeds of the pair)."""
    out = {r.meta.pair: r.predictions for r in group.rows if r.predictions is not None}
    for run in group.rows:
        out |= {f"{run.meta.pair} (rank {rank})": frame for rank, frame in run.other_ranks.items()}
    return out


def _with_group(group: Group, table: pd.DataFrame) -> pd.DataFrame:
    if table.empty:
        return pd.DataFrame()
    return pd.concat([pd.DataFrame([_group_columns(group.key)] * len(table)), table.reset_index(drop=True)], axis=1)


def pairwise_table(group: Group, family: contrasts.Family | None = None) -> pd.DataFrame:
    """Every two final-stage pairs, oriented large minus small / fused minus unimodal (``harness.report.contrasts``)."""
    finals = _finals(group)
    return _with_group(group, contrasts.pairwise(finals, family or contrasts.evaluate_family(finals)))


def fusion_gain_table(group: Group, family: contrasts.Family | None = None) -> pd.DataFrame:
    """Each fused pair minus each of its unimodal baselines, with the primary family's Holm p values."""
    finals = _finals(group)
    return _with_group(group, contrasts.fusion_gain(finals, family or contrasts.evaluate_family(finals)))


def per_fold_table(group: Group) -> pd.DataFrame:
    rows = []
    for run in group.rows:
        for fold, items in pd.DataFrame(
            [(f.fold, f.tested.weighted_f1, f.validation.weighted_f1) for f in _folds(run)],
            columns=["fold", "test", "val"],
        ).groupby("fold"):
            rows.append(
                _group_columns(group.key)
                | {
                    "pair": run.meta.pair,
                    "stage": run.stage,
                    "test_session": fold,
                    "runs": len(items),
                    **_stat("test_weighted_f1", list(items.test)),
                    **_stat("val_weighted_f1", list(items.val)),
                }
            )
    return pd.DataFrame(rows)


def markdown_table(frame: pd.DataFrame) -> str:
    """The Markdown view of a table: ``x`` and ``x_std`` become one "mean ± std" column (3 decimals),
    p values (``p``, ``*_p``) are shown as ``<0.001`` or 3 decimals, other numbers with 4 decimals at most,
    NaN as n/a; numeric columns are right-aligned."""
    shown, align = {}, []
    for column in frame.columns:
        if column.endswith("_std") and column[:-4] in frame.columns:
            continue
        values = frame[column]
        numeric = values.dtype.kind in "iuf"
        if f"{column}_std" in frame.columns:
            values = [
                "n/a" if pd.isna(m) else f"{m:.3f}" if pd.isna(s) else f"{m:.3f} ± {s:.3f}"
                for m, s in zip(values, frame[f"{column}_std"])
            ]
        elif numeric and (column == "p" or column.endswith("_p")):
            values = [format_p(v) for v in values]  # rounded for display; the CSV keeps full precision
        elif numeric:  # 4 decimals at most: the CSV keeps full precision
            values = ["n/a" if pd.isna(v) else f"{round(float(v), 4):g}" for v in values]
        shown[column] = values
        align.append("right" if numeric else "left")
    return pd.DataFrame(shown).to_markdown(index=False, disable_numparse=True, colalign=align)


def _header(title: str, group_runs: list[Run], key: tuple | None) -> list[str]:
    lines = [f"## {title}" if key else f"# {title}", ""]
    if key is None:
        return lines
    source, protocol, classes, folds = key
    if source == "demo" or any(r.meta.data_source == "demo" for r in group_runs):  # ASR runs: "demo [text: ASR ..]"
        lines += [
            "> **DEMO CORPUS, NOT IEMOCAP.** These rows come from the synthetic corpus the harness generates; "
            "they test the pipeline and say nothing about emotion recognition.",
            "",
        ]
    if any(r.meta.stand_in for r in group_runs):
        lines += [
            "> **RANDOM-INIT STAND-INS.** Rows marked as such used randomly initialised checkpoints with the "
            "real architectures (the published weights were not available offline): parameters, memory and "
            "latency are real; their scores mean nothing.",
            "",
        ]
    skipped = sorted({s for r in group_runs for s in r.meta.skipped})
    devices = sorted({t.device_name for r in group_runs for t in r.records})
    dates = sorted(t.written_at for r in group_runs for t in r.records if t.written_at)
    budgets = sorted({r.budget for r in group_runs if r.budget})
    base, _, subset = protocol.partition(" (")
    subset_note = f" Subset: {subset.rstrip(')')}: trained, selected and tested on those dialogs." if subset else ""
    lines += [
        f"- Data source: {source}; classes: {classes}; test folds: {' '.join(map(str, folds))}",
        f"- Protocol: {PROTOCOLS.get(base) or describe_protocol(base)}{subset_note}",
        "- Checkpoints: " + "; ".join(f"{r.meta.pair}: {_checkpoints(r.meta)}" for r in group_runs),
        f"- Budget: {'; '.join(budgets) or 'per search run (see search_trials)'}",
        f"- Aggregation: {AGGREGATION}",
        f"- Hardware: {', '.join(devices)}",
        "- Versions: " + ("; ".join(_versions(group_runs)) or "n/a"),
        f"- Corpus entries skipped (--skip-bad): {len(skipped)}"
        + (f" ({', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''})" if skipped else ""),
        f"- Results dated: {dates[-1] if dates else 'n/a'} (latest trial record)",
        "",
    ]
    return lines


def _versions(group_runs: list[Run]) -> list[str]:
    """The package versions each run recorded (``RunMeta.versions``), every distinct one named."""
    seen: dict[str, set[str]] = {}
    for run in group_runs:
        for package, version in run.meta.versions.items():
            seen.setdefault(package, set()).add(str(version))
    return [f"{package} {' / '.join(sorted(v))}" for package, v in sorted(seen.items())]


PUBLISHED = Path(__file__).with_name("published.csv")


def published_rows(protocol: str, classes: int) -> pd.DataFrame:
    """Published results for the same protocol and class set (``published.csv``), in this table's units."""
    table = pd.read_csv(PUBLISHED, comment="#")
    table = table[(table.protocol == protocol) & (table.class_set == classes)]
    emotions = {f"f1_{e}": EMOTION_NAMES[e] for e in EMOTIONS}
    shown = table[["model", "modalities", "context", "metric"]].copy()
    for column, name in emotions.items():
        shown[name] = table[column] / 100
    shown["value"] = table["value"] / 100
    shown["source"] = table["source"]
    return shown.reset_index(drop=True)


def _write(
    results: Path,
    stem: str,
    title: str,
    parts: list[tuple[Group, pd.DataFrame]],
    empty: str,
    published: bool = False,
    note: str = "",
) -> None:
    frames = [frame for _, frame in parts if not frame.empty]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    write_atomic(results / f"{stem}.csv", lambda p: table.to_csv(p, index=False))
    lines = [f"# {title}", ""] + ([note, ""] if note else [])
    for group, frame in parts:
        lines += _header(", ".join(map(str, _group_columns(group.key).values())), group.rows, group.key)
        shown = frame.drop(columns=[c for c in ("data_source", "protocol", "classes", "folds") if c in frame])
        lines += [markdown_table(shown) if not frame.empty else f"_{empty}_", ""]
        if published:
            _, protocol, classes, _ = group.key
            rows = published_rows(protocol, classes)
            if not rows.empty:
                lines += [
                    f"Published, not run here ({protocol}, {classes} classes; see README on what they compare "
                    "with; `value` is the row's `metric`):",
                    "",
                    markdown_table(rows),
                    "",
                ]
    if not parts:
        lines += [f"_{empty}_", ""]
    write_atomic(results / f"{stem}.md", lambda p: p.write_text("\n".join(lines)))


def write_reports(results: str | Path, storage: str | Path | None = None, margin: float | None = None) -> Path:
    """Write every table and plot under ``results`` from the runs in ``storage`` (default RESULTS/ray);
    returns the path of ``report.md``, the entry point (``harness.report.summary``). ``margin``: the
    equivalence margin of the verdicts (weighted F1; default ``multiplicity.EQUIVALENCE_MARGIN``)."""
    results = Path(results)
    storage = storage or results / "ray"
    loaded = load(storage)
    runs = loaded.runs
    if not runs:
        raise FileNotFoundError(f"{storage}: no trial records found (a run's trials write them there)")
    grouped = groups(runs)
    selected = [(g, selected_configs_table(runs, g)) for g in grouped]
    if not any(g.rows for g in grouped) and not any(r.meta.smoke_test for r in runs):
        if all(frame.empty for _, frame in selected):
            raise FileNotFoundError(f"{results}: no trial finished all its folds yet")
        log.info("nested searches only: test scores come from the final stage (python -m harness.benchmark)")
    _write(
        results,
        "selected_configs",
        "Selected configs: one per pair and test session, and the sessions whose labels chose it",
        selected,
        "No search with a complete trial yet.",
    )
    fronts = [(g, pareto_table(list(g.searches.values()))) for g in grouped]
    _write(
        results,
        "pareto",
        "Accuracy and cost of every complete config (validation), non-dominated ones marked "
        "(on_front, on point estimates: a trial has no interval)",
        fronts,
        "No search with a complete trial yet.",
    )
    pareto_plot(pd.concat([f for _, f in fronts if not f.empty] or [pd.DataFrame()]), results / "pareto.png")
    comparison = [
        (g, pd.DataFrame([_group_columns(g.key) | comparison_row(r, g.searches.get(r.meta.pair)) for r in g.rows]))
        for g in grouped
    ]
    _write(results, "comparison_full", "Pair comparison, every column", comparison, "No complete run yet.")
    emotions = [(g, pd.DataFrame([_group_columns(g.key) | per_emotion_row(r) for r in g.rows])) for g in grouped]
    _write(
        results,
        "per_emotion",
        PER_EMOTION_TITLE,
        emotions,
        "No complete run yet.",
        published=True,
    )
    _write(
        results,
        "selected_costs",
        "Size, latency and GFLOPs of each test session's selected config (head: fusion and context, neither encoder)",
        [(g, _with_group(g, costs.selected_costs_table(g.rows, _folds))) for g in grouped],
        "No complete run yet.",
    )
    _write(
        results,
        "per_fold",
        "Per-fold test weighted F1",
        [(g, per_fold_table(g)) for g in grouped],
        "No complete run yet.",
    )
    write_asr_tables(runs, results)  # wer.md and text_source.md, when a run read ASR text (harness.report.wer)
    families = {g.key: contrasts.evaluate_family(_finals(g), margin) for g in grouped}
    _write(
        results,
        "pairwise",
        "Pairwise comparison (a minus b: large minus small, fused minus unimodal; final stage)",
        [(g, pairwise_table(g, families[g.key])) for g in grouped],
        "No rows: needs two pairs with a final stage in the same group (python -m harness.benchmark).",
        note=contrasts.STATISTICS_NOTE,
    )
    _write(
        results,
        "fusion_gain",
        "Gain from fusion: fused pair minus its unimodal baseline (final stage)",
        [(g, fusion_gain_table(g, families[g.key])) for g in grouped],
        "No rows: needs a fused pair and one of its unimodal baselines with a final stage "
        "(python -m harness.benchmark).",
        note=contrasts.STATISTICS_NOTE,
    )
    _write(
        results,
        "factorial",
        "Small vs large, 2x2: cells (weighted F1, per-session t CI), main effects and interaction (final stage)",
        [(g, _with_group(g, contrasts.factorial(_finals(g), families[g.key]))) for g in grouped],
        "No rows: needs the four pairs of a small/large grid with a final stage (python -m harness.benchmark).",
        note=contrasts.STATISTICS_NOTE,
    )
    _write(
        results,
        "subsets",
        "Improvised vs scripted dialogs (weighted F1, UA; ci: per-session t interval of weighted F1; final stage)",
        [(g, _with_group(g, contrasts.subsets(_finals(g)))) for g in grouped],
        "No rows: needs a pair with a final stage (python -m harness.benchmark).",
    )
    smoke = [r for r in runs if r.meta.smoke_test]
    smoke_rows = pd.DataFrame(
        [_group_columns(r.meta.group) | comparison_row(r, None) for r in smoke if r.best() is not None]
    )
    write_atomic(results / "smoke_runs.csv", lambda p: smoke_rows.to_csv(p, index=False))
    write_atomic(
        results / "smoke_runs.md",
        lambda p: p.write_text(
            "# Smoke tests (not results)\n\nTiny random-init checkpoints and one epoch: these runs check the plumbing "
            "and are never part of the comparison tables.\n\n"
            + (markdown_table(smoke_rows) if not smoke_rows.empty else "_None._")
            + "\n"
        ),
    )
    from harness.report.explainability import EMPTY, explainability_tables

    summary, pairwise = explainability_tables(storage, grouped, _group_columns)
    _write(results, "explainability", "Explainability per pair (final stage; see README)", summary, EMPTY)
    _write(
        results,
        "explainability_pairwise",
        "Explainability, paired per-session differences (a minus b, same utterances and level)",
        pairwise,
        EMPTY,
    )
    from harness.report.plots import write_plots

    plots = write_plots(results, grouped, comparison, runs)
    from harness.report.summary import Section, write_summary

    headings = [", ".join(map(str, _group_columns(g.key).values())) for g, _ in comparison]
    sections = [
        Section(
            h,
            _header(h, g.rows, g.key),
            g.rows,
            t,
            g.key,
            e,
            "" if len(comparison) == 1 else f"_group{i + 1}",
            contrasts.verdict_table(_finals(g), families[g.key]),
            families[g.key].margin,
        )
        for i, (h, (g, t), (_, e)) in enumerate(zip(headings, comparison, emotions))
    ]
    return write_summary(results, sections, plots, markdown_table, loaded.skipped)
