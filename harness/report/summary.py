"""``report.md``: the entry point of the report. One section per group of comparable runs (data source,
protocol, class set, fold set), headed by what the group is in words, whose first screen answers the
question; every long table is linked, not inlined.

Per group, in this order:

1. **Headline table** (11 columns, rounded, one row per pair; fused pairs first, small-small, then each
   swap to large, then the unimodal baselines): each encoder's size and how it was used (frozen /
   fine-tuned top k / trained from scratch), UA and weighted F1 with their speaker-level 95% intervals
   (per-session t, ``harness.report.stats``), the difference in weighted F1 from the small-small pair
   (large minus small, the same per-session interval), the model's parameters, latency of a 4-s utterance
   and GFLOPs of that utterance (each test session's selected config: mean, with the range over sessions
   where they differ; the fusion/context head's share of the parameters), the model's training memory,
   and total compute (device-hours of search, final stage and feature extraction;
   ``harness.report.costs``).
2. **The answer** in a few computed sentences (``answer``).
3. **Per-emotion test F1** (pooled over seeds and folds; ``per_emotion.md`` has the spreads and the
   published results).
4. **One figure**, embedded: weighted F1 against latency (the question's trade-off).
5. **Details**: the group's header (protocol, checkpoints, budget, package versions ...), what each cost
   column includes, links to the factorial, selected-config and per-session cost tables.

Then links to every table and plot. Imports neither torch nor Ray.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.atomic import write_atomic
from harness.corpus.source import corpus_kind
from harness.models.pairs import PAIRS
from harness.report import stats
from harness.report.answer import answer_lines, mdd_lines, mdd_table
from harness.report.multiplicity import EQUIVALENCE_MARGIN

log = logging.getLogger(__name__)

TABLES = {
    "comparison_full": "every column of every pair (scores, sizes, memory, costs, explainability)",
    "factorial": "the 2x2 small/large contrasts: main effects, interaction, Holm p, equivalence verdicts",
    "pairwise": "every pair against every other (large minus small, fused minus unimodal)",
    "fusion_gain": "each fused pair minus its unimodal baselines",
    "per_emotion": "test F1 per emotion, with published results for the same protocol",
    "per_fold": "test and validation weighted F1 per test session",
    "subsets": "improvised vs scripted dialogs",
    "selected_configs": "the config each test session got, and whose labels chose it",
    "selected_costs": "size, latency and GFLOPs of each test session's selected config, the head's share",
    "importance": "hyperparameter importance per pair (PED-ANOVA on every trial's first-rung score)",
    "smoke_runs": "smoke tests, never part of the tables",
}
COST_NOTE = (
    "**What the cost columns include.** *latency 4 s*: median wall time of one 4-s utterance with a 12-word "
    "transcript at batch size 1, from the raw waveform and text string through every front end (log-mel, "
    "tokeniser, PCM scaling), collation, the copy to the device and the forward pass, timed after warm-up "
    "in a step of its own after training ({repeats} timed calls per length; `comparison_full` has 1 s and "
    "10 s, the IQRs and the real-time factor). *GFLOPs / 4 s*: the model's forward pass on that input, "
    "counted by `torch.utils.flop_counter` (recurrent kernels included), front ends excluded. *memory*: "
    "parameters + gradients + AdamW state of the trainable part. *compute*: device-hours of use ({basis}) of "
    "every search and final-stage trial's training, plus the full extraction cost of every feature the pair "
    "reads (a cached feature shared by pairs is charged to each, whichever ran first)."
)


def pair_order(pairs: list[str]) -> list[str]:
    """Fused pairs first, by number of large encoders (small-small, each single swap, large-large), then
    the unimodal baselines; registry order within each."""
    registry = {name: i for i, name in enumerate(PAIRS)}

    def key(pair: str) -> tuple:
        spec = PAIRS.get(pair)
        large = sum(v.pretrained for v in spec.variants.values()) if spec else 9
        return (not (spec and spec.is_fused), large, registry.get(pair, len(registry)), pair)

    return sorted(pairs, key=key)


def encoder_text(pair: str, modality: str, row: pd.Series, configs: list[dict]) -> str:
    """``wav2vec2 94.4M, frozen`` / ``bilstm 0.3M, trained`` / ``albert 11.7M, fine-tuned top 2``; several
    values when the selected configs differ between test sessions."""
    spec = PAIRS.get(pair)
    if spec is None or modality not in spec.encoders:
        return "-"
    variant = spec.variants[modality]
    size = row.get(f"params_{modality}_M")
    low, high = row.get(f"params_{modality}_M_min", size), row.get(f"params_{modality}_M_max", size)
    if isinstance(size, float) and not math.isnan(size):
        span = f"{low:.1f}–{high:.1f}" if f"{low:.1f}" != f"{high:.1f}" else f"{size:.1f}"
        sized = f"{variant.name} {span}M"
    else:
        sized = variant.name
    if not variant.pretrained:
        return f"{sized}, trained"
    ks = sorted({int(c.get(f"{modality}.finetune_layers", 0) or 0) for c in configs} or {0})
    used = ["frozen" if k == 0 else f"fine-tuned top {k}" for k in ks]
    return f"{sized}, {' / '.join(used)}"


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _with_ci(result: stats.ContrastResult | None, signed: bool = False) -> str:
    if result is None:
        return "n/a"
    sign = "+" if signed else ""
    return f"{result.estimate:{sign}.3f} [{result.ci_low:{sign}.3f}, {result.ci_high:{sign}.3f}]"


def _level(predictions: pd.DataFrame | None, metric: str) -> stats.ContrastResult | None:
    if predictions is None:
        return None
    try:
        return stats.session_contrast([predictions], (1.0,), metric)
    except ValueError as err:
        log.info("no interval for %s: %s", metric, err)
        return None


def _difference(a: pd.DataFrame | None, b: pd.DataFrame | None) -> stats.ContrastResult | None:
    if a is None or b is None:
        return None
    try:
        return stats.primary_difference(a, b, "weighted_f1")
    except ValueError as err:  # e.g. no seed in common
        log.info("no difference: %s", err)
        return None


def _compact(value: float, digits: int) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.{digits}g}" if abs(value) < 10 ** (digits - 1) else f"{value:,.0f}"


@dataclass
class Section:
    """One group of comparable runs, as ``harness.report.tables.write_reports`` hands it over."""

    heading: str  # the group's heading, as every other table's Markdown names it
    header: list[str]  # the group's header lines (data source, banners, protocol, budget, hardware ...)
    runs: list[Any]  # one ``harness.report.tables.Run`` per pair
    table: pd.DataFrame  # the group's rows of comparison_full
    key: tuple | None = None  # (data source, protocol, classes, test sessions): the title in words
    per_emotion: pd.DataFrame | None = None  # the group's rows of per_emotion
    suffix: str = ""  # the group's plot-file suffix ("" or "_groupN", ``harness.report.plots``)
    contrasts: pd.DataFrame | None = None  # the group's verdict table (``harness.report.contrasts.verdict_table``)
    margin: float = EQUIVALENCE_MARGIN  # the equivalence margin its verdicts used


PROTOCOL_WORDS = {
    "loso": "nested leave-one-session-out",
    "loso-flat": "leave-one-session-out, one config for every fold (optimistic)",
    "session5": "Sessions 1-4 → Session 5",
}


def group_title(key: tuple) -> str:
    """A group's heading in words: ``Demo corpus (synthetic, not IEMOCAP) · nested leave-one-session-out ·
    6 classes · test sessions 1 2 3 4 5``."""
    source, protocol, classes, folds = key
    data = "Demo corpus (synthetic, not IEMOCAP)" if source == "demo" else f"IEMOCAP ({source})"
    if source != "demo" and corpus_kind(source) != "iemocap":  # its label names corpus and protocol (docs/corpora.md)
        data = source
    base, _, subset = str(protocol).partition(" (")
    words = PROTOCOL_WORDS.get(base, base) + (f" ({subset}" if subset else "")
    sessions = " ".join(str(f) for f in folds)
    return f"{data} · {words} · {classes} classes · test session{'s' if len(folds) > 1 else ''} {sessions}"


def _spread(row: pd.Series, column: str, digits: int = 3) -> str:
    """``mean (min–max)`` over the test sessions' selected configs, or the mean alone where they agree."""
    mean = float(row.get(column, math.nan))
    low, high = float(row.get(f"{column}_min", math.nan)), float(row.get(f"{column}_max", math.nan))
    shown = _compact(mean, digits)
    if math.isnan(low) or math.isnan(high) or _compact(low, digits) == _compact(high, digits):
        return shown
    return f"{shown} ({_compact(low, digits)}–{_compact(high, digits)})"


def _parameters(row: pd.Series) -> str:
    text = _spread(row, "params_total_M")
    share = float(row.get("head_share", math.nan))
    return text if math.isnan(share) else f"{text}; head {share:.0%}"


def headline(runs_of: list[Any], table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, stats.ContrastResult | None]]:
    """The headline table of a group and each pair's difference from the small-small pair."""
    runs = {r.meta.pair: r for r in runs_of}
    rows = table.set_index("pair")
    order = pair_order([p for p in rows.index if p in runs])
    base = order[0] if order else ""
    differences: dict[str, stats.ContrastResult | None] = {}
    out = []
    for pair in order:
        run, row = runs[pair], rows.loc[pair]
        # each fold's own config (FoldRecord.config): a final-stage trial's folds each have theirs
        configs = [c for r in run.records if r.complete for c in r.fold_configs] or [r.config for r in run.records]
        difference = None if pair == base else _difference(run.predictions, runs[base].predictions)
        differences[pair] = difference
        f1 = _level(run.predictions, "weighted_f1")
        out.append(
            {
                "pair": pair + ("" if run.stage == "final" else " (search only)"),
                "audio encoder": encoder_text(pair, "audio", row, configs),
                "text encoder": encoder_text(pair, "text", row, configs),
                "UA [95% CI]": _with_ci(_level(run.predictions, "ua")),
                "weighted F1, per-session mean [95% CI]": _with_ci(f1) if f1 else _fmt(row.get("test_weighted_f1")),
                f"Δ wF1 vs {base} [CI; exploratory]": "(reference)"
                if pair == base
                else _with_ci(difference, signed=True),
                "parameters (M)": _parameters(row),
                "latency 4 s (ms)": _spread(row, "latency_4s_ms"),
                "GFLOPs / 4 s": _spread(row, "gflops_4s"),
                "memory (GB)": _compact(float(row.get("model_memory_gb", math.nan)), 2),
                "compute (device-h)": _compact(float(row.get("device_hours", math.nan)), 2),
            }
        )
    return pd.DataFrame(out), differences


def _swap(pair: str, base: str) -> str:
    a, b = PAIRS.get(pair), PAIRS.get(base)
    if a is None or b is None:
        return pair
    changed = [
        f"{m} {b.encoders.get(m, '-')} → {a.encoders.get(m, '-')}"
        for m in ("audio", "text")
        if a.encoders.get(m) != b.encoders.get(m)
    ]
    return ", ".join(changed) or "same encoders"


def _ratio(rows: pd.DataFrame, pair: str, base: str, column: str) -> str:
    try:
        value, reference = float(rows.loc[pair, column]), float(rows.loc[base, column])
    except (KeyError, TypeError, ValueError):
        return "n/a"
    if not (reference > 0) or math.isnan(value):
        return "n/a"
    return f"{value / reference:.3g}×"


def answer(table: pd.DataFrame, differences: dict[str, stats.ContrastResult | None]) -> list[str]:
    """What each fused pair costs relative to the small-small pair (its change in weighted F1 is an
    exploratory contrast: the headline table shows it; the Answer is ``harness.report.answer.answer_lines``)."""
    order = list(differences)
    if not order:
        return ["No pair has a complete run in this group yet."]
    base = order[0]
    rows = table.set_index("pair")
    lines = []
    for pair in order[1:]:
        spec = PAIRS.get(pair)
        if spec is None or not spec.is_fused:
            continue
        costs = (
            f"at {_ratio(rows, pair, base, 'latency_4s_ms')} the 4-s latency, {_ratio(rows, pair, base, 'gflops_4s')} "
            f"the GFLOPs and {_ratio(rows, pair, base, 'device_hours')} the compute of {base}"
        )
        lines.append(f"- {pair} ({_swap(pair, base)}): {costs}.")
    if not lines:
        return [f"Only {base} among the fused pairs: nothing to compare it with."]
    return [f"**Cost of each swap** (relative to the small-small pair {base}):", "", *lines]


_GROUP = ("data_source", "protocol", "classes", "folds")
FIGURE = ("f1_vs_latency", "weighted F1 against the latency of a 4-s utterance (95% CI over test sessions)")


def per_emotion_short(frame: pd.DataFrame | None) -> pd.DataFrame:
    """The per-emotion table for people: pooled F1 per emotion and weighted F1, 2 decimals, pairs in the
    headline's order (``per_emotion.md`` keeps the spreads and the published rows)."""
    if frame is None or frame.empty:
        return pd.DataFrame()
    kept = [c for c in frame.columns if c not in _GROUP and not c.endswith("_std")]
    shown = frame[kept].copy()
    order = {p: i for i, p in enumerate(pair_order(list(shown.pair)))}
    shown = shown.sort_values("pair", key=lambda c: c.map(order)).reset_index(drop=True)
    if "stage" in shown and (shown.stage == "final").all():
        shown = shown.drop(columns="stage")
    numeric = [c for c in shown.columns if shown[c].dtype.kind == "f"]
    for column in numeric:  # Series.map: DataFrame.map needs pandas 2.1, the floor is 2.0
        shown[column] = shown[column].map(lambda v: "n/a" if pd.isna(v) else f"{v:.2f}")
    return shown


def _links(results: Path, stems: list[str]) -> str:
    found = [f"[{stem}.md]({stem}.md)" for stem in stems if (results / f"{stem}.md").exists()]
    return ", ".join(found)


def _group_lines(results: Path, section: Section, plots: set[str], render: Callable[[pd.DataFrame], str]) -> list[str]:
    """One group: title, banner, headline, Answer, per-emotion table, one figure, then the details."""
    table = section.table
    title = group_title(section.key) if section.key else section.heading
    lines = [f"## {title}", ""]
    banners = [line for line in section.header if line.startswith("> ")]
    lines += [b for banner in banners for b in (banner, "")]
    if table.empty:
        return lines + ["_No complete run yet._", ""]
    verdicts = section.contrasts if section.contrasts is not None else pd.DataFrame()
    lines += mdd_lines(mdd_table(verdicts), section.margin)  # what the run can decide, before any result
    shown, differences = headline(section.runs, table)
    lines += [render(shown), "", *answer_lines(verdicts), "", *answer(table, differences), ""]
    emotions = per_emotion_short(section.per_emotion)
    if not emotions.empty:
        lines += ["Test F1 per emotion (per-session mean of seed means, as weighted F1 above; spreads and "
                  "published results in [per_emotion.md](per_emotion.md)):", "", render(emotions), ""]  # fmt: skip
    figure = f"{FIGURE[0]}{section.suffix}.png"
    if figure in plots:
        lines += [f"![{FIGURE[1]}]({figure})", ""]
    details = [line for line in section.header if line.startswith("- ")]
    repeats = (
        int(table["latency_repeats"].min())
        if "latency_repeats" in table and table["latency_repeats"].notna().any()
        else 0
    )
    bases = ", ".join(sorted({b for b in table.get("device_hours_basis", pd.Series(dtype=str)).dropna() if b}))
    lines += ["### Details", "", *details, ""]
    links = _links(results, ["factorial", "selected_configs", "selected_costs", "per_fold", "comparison_full"])
    if links:
        lines += [f"The 2x2 contrasts, the config and cost of each test session, every column: {links}.", ""]
    lines += [COST_NOTE.format(repeats=repeats or "n/a", basis=bases or "n/a"), ""]
    return lines


def write_summary(
    results: Path,
    sections: list[Section],
    plots: list[Path],
    render: Callable[[pd.DataFrame], str],
    skipped: list[str] | None = None,
) -> Path:
    """Write ``results/report.md`` (``render``: the tables' Markdown view; ``skipped``: what the run loader
    left out, ``harness.report.runs.Loaded.skipped``); returns its path."""
    lines = [
        "# Small vs large models for audio + text emotion recognition: report",
        "",
    ]
    if skipped:  # damaged records, runs without their books: counted here, named in the log
        shown = "; ".join(skipped[:3]) + (" ..." if len(skipped) > 3 else "")
        lines += [f"> **{len(skipped)} stored record(s) or run(s) skipped** (unreadable): {shown}", ""]
    # this report's plots, and any other writer's (explainability) in the same folder
    pngs = {p.name for p in plots} | {p.name for p in results.glob("*.png")}
    for section in sections:
        lines += _group_lines(results, section, pngs, render)
    if not sections:
        lines += [
            "_No real run yet: smoke tests (tiny checkpoints, one epoch) never enter the tables; they are listed in "
            "[smoke_runs.md](smoke_runs.md)._",
            "",
        ]
    lines += ["## Every table and plot", ""]
    for stem, what in TABLES.items():
        found = [f"[{stem}.{ext}]({stem}.{ext})" for ext in ("md", "csv") if (results / f"{stem}.{ext}").exists()]
        if found:
            lines.append(f"- {' / '.join(found)}: {what}")
    others = sorted(p.name for p in results.glob("*.md") if p.stem not in TABLES and p.name != "report.md")
    lines += [f"- [{name}]({name})" for name in others]
    lines += ["", "Plots:", ""]
    lines += [f"- [{name}]({name})" for name in sorted(pngs)] or ["- none"]
    path = results / "report.md"
    write_atomic(path, lambda p: p.write_text("\n".join(lines) + "\n"))
    return path
