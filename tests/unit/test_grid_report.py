"""A ``--grid`` run's report names the chosen grid, also when it is read in a process (or on a machine, or
with a cache) that never composed the grid's pairs: the run loader composes them again from their names."""

from __future__ import annotations

import pandas as pd

from harness.models import pairs as registry
from harness.report.tables import write_reports
from tests.fixtures.records import write_final, write_search

# The grid of ``--grid audio=cnn_bilstm,whisper text=bilstm,qwen2_5`` (registered names where they exist)
GRID = {
    "cnnbilstm_bilstm": 0.55,
    "whisper_bilstm": 0.6,
    "cnn_bilstm_qwen2_5": 0.62,
    "whisper_qwen2_5": 0.7,
    "cnnbilstm": 0.45,
    "whisper": 0.5,
    "bilstm": 0.4,
    "qwen2_5": 0.5,
}


def test_a_grid_runs_report_names_its_grid_in_a_fresh_process(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "writer_cache"))
    assert set(registry.compose_grid(["cnn_bilstm", "whisper"], ["bilstm", "qwen2_5"])) == set(GRID)
    storage = tmp_path / "ray"
    for pair, accuracy in GRID.items():
        search = write_search(storage, pair, f"{pair}_search", [({"lr": 0.001}, 0.5)], "2026-01-01 00:00:00 UTC")
        write_final(storage, search, f"{pair}_final", seeds=2, accuracy=accuracy)
    # the report's process: another cache, and a registry that never saw the composed pairs
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "reader_cache"))
    fresh = {name: spec for name, spec in registry.PAIRS.items() if name not in ("whisper_bilstm", "whisper")}
    fresh = {n: s for n, s in fresh.items() if n not in ("cnn_bilstm_qwen2_5", "whisper_qwen2_5", "qwen2_5")}
    monkeypatch.setattr(registry, "PAIRS", fresh)
    for module in ("harness.report.families", "harness.report.summary", "harness.report.explainability"):
        monkeypatch.setattr(f"{module}.PAIRS", fresh)
    results = tmp_path / "results"
    results.mkdir()
    report = write_reports(results, storage).read_text()

    factorial = pd.read_csv(results / "factorial.csv")
    assert set(factorial.grid) == {"audio cnn_bilstm->whisper x text bilstm->qwen2_5"}
    assert {"audio size main effect", "text size main effect", "interaction"} <= set(factorial.term)
    answer = report[report.index("**Answer**") :]
    assert "*factorial terms (primary family), grid audio cnn_bilstm->whisper x text bilstm->qwen2_5:*" in answer
    assert "audio size main effect" in answer and "whisper_qwen2_5 - whisper (fusion gain over audio)" in answer
    assert "whisper_bilstm (audio cnn_bilstm → whisper)" in report  # the cost of each swap, named by encoder
