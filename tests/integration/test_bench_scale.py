"""benchmarks/bench_scale.py at a tiny scale: it runs end to end and writes its two tables (Markdown + JSON):
the measured costs, and the extrapolated full nested benchmark under both fidelity schedules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
def test_bench_scale_writes_its_tables(tmp_path):
    out = tmp_path / "scale.md"
    env = os.environ | {"HARNESS_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_scale.py"),
            "--scale",
            "0.005",
            "--pairs",
            "cnnbilstm_bilstm",
            "wav2vec_albert",
            "--devices",
            "cpu",
            "--out",
            str(out),
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = json.loads(out.with_suffix(".json").read_text())
    assert table["columns"] == ["metric", "item", "device", "value", "unit", "at_iemocap_size"]
    metrics = {(r["metric"], r["item"]) for r in table["rows"]}
    for kind in ("logmel", "words", "waveform", "subwords", "layers:wav2vec2", "layers:albert"):
        assert ("extract throughput", kind) in metrics and ("cache size", kind) in metrics
    for pair in ("cnnbilstm_bilstm", "wav2vec_albert"):
        for metric in (
            "trial start-up",
            "trial peak RSS",
            "first epoch (full fold)",  # timed apart: cuDNN autotuning and first-touch costs (issue 26)
            "epoch, steady state (full fold)",
            "fixed per fold",
            "default search",
            "40-trial search",
        ):
            assert (metric, pair) in metrics
    assert any(metric == "inspect" for metric, _ in metrics)
    assert all(r["value"] is None or r["value"] >= 0 for r in table["rows"])
    nested = table["nested"]
    # header row + one line per row, for each of the two tables
    assert out.read_text().count("\n| ") == len(table["rows"]) + 1 + len(nested["rows"]) + 1
    assert "| metric | item | device | value | unit | at_iemocap_size |" in result.stdout
    assert "| " + " | ".join(nested["columns"]) + " |" in result.stdout

    rows = {(r["pair"], r["fidelity"]): r for r in nested["rows"]}
    assert {f for _, f in rows} == {"epochs", "folds"}
    assert all(r["device"] == "cpu" and r["gpu_hours"] is None for r in rows.values())
    for fidelity in ("epochs", "folds"):
        pairs = [rows[(p, fidelity)] for p in ("cnnbilstm_bilstm", "wav2vec_albert")]
        # the subprocess's registry: pairs composed by earlier tests (compose_grid) live in this process only
        total = next(r for (p, f), r in rows.items() if f == fidelity and p.startswith("TOTAL (2 of "))
        for column in ("trial_epochs", "slot_hours", "wall_hours"):
            assert total[column] == pytest.approx(sum(r[column] for r in pairs))
        for r in pairs:
            assert r["trial_epochs"] == pytest.approx(r["search_trial_epochs"] + r["final_trial_epochs"])
            assert r["wall_hours"] == pytest.approx(r["slot_hours"] / r["slots"])
            assert r["slot_hours"] > 0
    for pair in ("cnnbilstm_bilstm", "wav2vec_albert"):  # rungs in epochs train fewer epochs than in folds
        assert rows[(pair, "epochs")]["search_trial_epochs"] < rows[(pair, "folds")]["search_trial_epochs"] / 3
        assert rows[(pair, "epochs")]["final_trial_epochs"] == rows[(pair, "folds")]["final_trial_epochs"]
