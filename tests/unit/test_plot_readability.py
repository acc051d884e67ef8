"""Every report plot rendered and read back as a reader meets it: aspect ratio, tick labels, a legend that is
not over the data, log axes where the space samples on a log scale, labels that do not overlap, counts that
are utterances (not utterances x seeds)."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from harness.report import figures, pareto, plots, search_plots
from harness.report.tables import write_reports
from tests.unit.test_summary import GRID, write_pair


@pytest.fixture
def drawn(monkeypatch) -> dict[str, object]:
    """Figures by file name, rendered (so text extents are real) just before they are saved."""
    seen: dict[str, object] = {}
    real = figures.save

    def keep(fig, path: Path) -> Path:
        fig.canvas.draw()
        seen[Path(path).name] = fig
        return real(fig, path)

    for module in (plots, search_plots, pareto):
        monkeypatch.setattr(module, "save", keep)
    return seen


def aspect(path: Path) -> float:
    height, width = mpimg.imread(path).shape[:2]
    return width / height


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_report_plots_are_readable(tmp_path, drawn):
    for pair, accuracy in GRID.items():
        write_pair(tmp_path, pair, accuracy)
    write_reports(tmp_path)
    pngs = sorted(tmp_path.glob("*.png"))
    assert len(pngs) >= 8
    for png in pngs:  # no strip, no tower
        assert 1 / 2.5 <= aspect(png) <= 3.5, (png.name, aspect(png))

    fig = drawn["per_session.png"]
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "4", "5"]  # sessions, not 1.5
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 1
    box = legends[0].get_window_extent()
    assert not any(overlaps(box, ax.get_window_extent()) for ax in fig.axes)  # beside the panels, not on them

    for name in ("f1_vs_latency.png", "f1_vs_params.png", "learning_curves.png", "per_emotion_f1.png"):
        fig = drawn[name]
        ax = fig.axes[0]
        legend = ax.get_legend()
        assert legend is not None and not overlaps(legend.get_window_extent(), ax.get_window_extent()), name

    # each seed's matrix counts the 30 test utterances per class once (2 seeds: not 60)
    fig = drawn["confusion_wav2vec_albert_wav2vec_albert_f.png"]
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0] == "neu (30)" and "mean of 2 seeds" in fig.axes[0].get_title()


def test_cost_plots_name_pairs_without_overlapping_labels(tmp_path, drawn):
    pairs = ["cnnbilstm_bilstm", "cnnbilstm", "bilstm", "wav2vec_bilstm", "wav2vec", "wav2vec_albert"]
    table = pd.DataFrame(
        {
            "pair": pairs,
            "checkpoints": ["none"] * 6,
            "test_weighted_f1": [0.50, 0.49, 0.495, 0.60, 0.59, 0.62],
            "test_weighted_f1_ci_low": [0.45, 0.44, 0.45, 0.55, 0.54, 0.57],
            "test_weighted_f1_ci_high": [0.55, 0.54, 0.54, 0.65, 0.64, 0.67],
            "params_total_M": [0.9, 0.5, 0.45, 95.0, 94.6, 106.0],  # baselines close to their fused pair
        }
    )
    plots._tradeoffs(tmp_path, table, plots._labels(table), "")
    fig = drawn["f1_vs_params.png"]
    ax = fig.axes[0]
    texts = [t for t in ax.texts if t.get_text()] + list(ax.get_legend().get_texts())
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= set(pairs)  # every pair is named
    boxes = [t.get_window_extent() for t in texts]
    assert not any(overlaps(a, b) for a, b in itertools.combinations(boxes, 2))


def test_learning_rates_are_on_a_log_axis_even_over_a_narrow_range(tmp_path, drawn):
    rng = np.random.default_rng(0)
    lrs, dropouts = rng.uniform(1e-4, 3e-4, 8), rng.uniform(0.1, 0.5, 8)  # lr spans 3x: a linear axis before
    configs = [{"lr": float(v), "dropout": float(d)} for v, d in zip(lrs, dropouts)]
    scores = pd.DataFrame({"config": configs, "score": rng.uniform(0.3, 0.6, 8)})
    search_plots._scatter(tmp_path, "bilstm", scores)
    fig = drawn["search_scores_bilstm.png"]
    scales = {ax.get_xlabel(): ax.get_xscale() for ax in fig.axes if ax.get_visible()}
    assert scales["lr"] == "log" and scales["dropout"] == "linear"


def test_pareto_panels_wrap_instead_of_a_strip(tmp_path, drawn):
    rng = np.random.default_rng(1)
    rows = [
        {"pair": f"pair{p}", "outer_fold": 1, "trial_id": f"t{i}", "weighted_f1": rng.uniform(0.3, 0.6),
         "params_m": 10 ** rng.uniform(-0.5, 2), "on_front": bool(i == 0)}
        for p in range(8)
        for i in range(5)
    ]  # fmt: skip
    assert pareto.pareto_plot(pd.DataFrame(rows), tmp_path / "pareto.png")
    assert 1 / 2.5 <= aspect(tmp_path / "pareto.png") <= 3.5  # eight pairs: 4 x 2 panels, not 8 x 1
    visible = [ax for ax in drawn["pareto.png"].axes if ax.get_visible()]
    assert len(visible) == 8 and all(ax.get_xscale() == "log" for ax in visible)  # a cost over 10x
