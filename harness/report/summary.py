"""``report.md``: the entry point of the report. One section per group of comparable runs (data source,
protocol, class set, fold set) that starts with the answer and links every other table and plot.

Per group, in this order:

1. **Headline table** (10 columns, rounded, one row per pair; fused pairs first, small-small, then each
   swap to large, then the unimodal baselines): each encoder's size and how it was used (frozen /
   fine-tuned top k / trained from scratch), UA and weighted F1 with their speaker-level 95% intervals
   (per-session t, ``harness.report.stats``), the difference in weighted F1 from the small-small pair
   (large minus small, the same per-session interval), latency of a 4-s utterance, GFLOPs of that
   utterance, the model's training memory, and total compute (device-hours of search, final stage and
   feature extraction; ``harness.report.costs``).
2. **The answer** in a few computed sentences: each swap's change in weighted F1 with its interval, and what
   it costs in latency, FLOPs and compute relative to the small-small pair.
3. The factorial table and the selected configs (from ``factorial.md`` and ``selected_configs.md``).
4. What each cost column includes, then links to every other table and plot.

Imports neither torch nor Ray.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.atomic import write_atomic
from harness.models.pairs import PAIRS
from harness.report import stats

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
    sized = f"{variant.name} {size:.1f}M" if isinstance(size, float) and not math.isnan(size) else variant.name
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
        configs = [r.config for r in run.records if r.complete] or [r.config for r in run.records]
        difference = None if pair == base else _difference(run.predictions, runs[base].predictions)
        differences[pair] = difference
        f1 = _level(run.predictions, "weighted_f1")
        out.append(
            {
                "pair": pair + ("" if run.stage == "final" else " (search only)"),
                "audio encoder": encoder_text(pair, "audio", row, configs),
                "text encoder": encoder_text(pair, "text", row, configs),
                "UA [95% CI]": _with_ci(_level(run.predictions, "ua")),
                "weighted F1 [95% CI]": _with_ci(f1) if f1 else _fmt(row.get("test_weighted_f1")),
                f"Δ wF1 vs {base} [CI]": "(reference)" if pair == base else _with_ci(difference, signed=True),
                "latency 4 s (ms)": _compact(float(row.get("latency_4s_ms", math.nan)), 3),
                "GFLOPs / 4 s": _compact(float(row.get("gflops_4s", math.nan)), 3),
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
    """Computed sentences: each fused pair's change in weighted F1 from the small-small pair, and its cost."""
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
        d = differences[pair]
        costs = (
            f"at {_ratio(rows, pair, base, 'latency_4s_ms')} the 4-s latency, {_ratio(rows, pair, base, 'gflops_4s')} "
            f"the GFLOPs and {_ratio(rows, pair, base, 'device_hours')} the compute of {base}"
        )
        if d is None:
            lines.append(f"- {pair} ({_swap(pair, base)}): no paired final-stage predictions to compare; {costs}.")
            continue
        shown = "the interval excludes 0" if d.ci_low > 0 or d.ci_high < 0 else "the interval includes 0"
        lines.append(
            f"- {pair} ({_swap(pair, base)}) changes weighted F1 by {d.estimate:+.3f} "
            f"[{d.ci_low:+.3f}, {d.ci_high:+.3f}] ({shown}; {d.n_sessions} test sessions, {d.method}), {costs}."
        )
    if not lines:
        return [f"Only {base} among the fused pairs: nothing to compare it with."]
    return [f"**Answer** (each fused pair minus the small-small pair {base}, weighted F1):", "", *lines]


def _section(path: Path, heading: str) -> str | None:
    """The body of ``heading``'s section in a Markdown file written by ``tables._write`` (None: absent)."""
    if not path.exists():
        return None
    text = path.read_text()
    parts = re.split(r"^## ", text, flags=re.MULTILINE)
    for part in parts[1:]:
        title, _, body = part.partition("\n")
        if title.strip() == heading:  # the table (or its "none" line), without the group's header repeated
            lines = body.strip().splitlines()
            start = next((i for i, line in enumerate(lines) if line.startswith(("|", "_"))), 0)
            return "\n".join(lines[start:]).strip()
    return None


def write_summary(
    results: Path, sections: list[Section], plots: list[Path], render: Callable[[pd.DataFrame], str]
) -> Path:
    """Write ``results/report.md`` (``render``: the tables' Markdown view); returns its path."""
    lines = [
        "# Small vs large models for audio + text emotion recognition: report",
        "",
        "Start here. Each group below holds runs that may be compared (same data, protocol, class set and folds).",
        "",
    ]
    for section in sections:
        heading, table = section.heading, section.table
        lines += section.header
        if table.empty:
            lines += ["_No complete run yet._", ""]
            continue
        shown, differences = headline(section.runs, table)
        lines += [render(shown), "", *answer(table, differences), ""]
        for stem, title in (("factorial", "Factorial (2x2 small/large)"), ("selected_configs", "Selected configs")):
            body = _section(results / f"{stem}.md", heading)
            lines += [f"### {title}", "", body or f"_None for this group (see [{stem}.md]({stem}.md))._", ""]
        repeats = (
            int(table["latency_repeats"].min())
            if "latency_repeats" in table and table["latency_repeats"].notna().any()
            else 0
        )
        bases = ", ".join(sorted({b for b in table.get("device_hours_basis", pd.Series(dtype=str)).dropna() if b}))
        lines += [COST_NOTE.format(repeats=repeats or "n/a", basis=bases or "n/a"), ""]
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
    # this report's plots, and any other writer's (explainability) in the same folder
    shown = sorted({p.name for p in plots} | {p.name for p in results.glob("*.png")})
    lines += [f"- [{name}]({name})" for name in shown] or ["- none"]
    path = results / "report.md"
    write_atomic(path, lambda p: p.write_text("\n".join(lines) + "\n"))
    return path
